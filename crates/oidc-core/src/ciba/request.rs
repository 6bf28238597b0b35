//! CIBA's authentication request (CIBA Core 1.0 §7): its form, its checks, its answer.

use serde::{Deserialize, Serialize};

use crate::client::{CibaDeliveryMode, Client};
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::secret::SecretString;

const MAX_PARAM_LEN: usize = 2048;
const MAX_NOTIFICATION_TOKEN_LEN: usize = 1024;

/// The authentication request's form fields (CIBA §7.1); client credentials come apart.
#[derive(Debug, Default, Deserialize)]
pub struct BackchannelParams {
    pub scope: Option<String>,
    pub login_hint: Option<String>,
    pub login_hint_token: Option<String>,
    pub id_token_hint: Option<String>,
    pub binding_message: Option<String>,
    pub acr_values: Option<String>,
    pub requested_expiry: Option<String>,
    pub client_notification_token: Option<SecretString>,
    pub user_code: Option<SecretString>,
    /// Pro Santé Connect's hint of the device to use: `MOBILE` (the phone app) or `CARD`.
    pub channel: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_assertion: Option<SecretString>,
    pub client_assertion_type: Option<String>,
}

crate::http::oauth::client_form!(BackchannelParams);

/// The successful answer (CIBA §7.3).
#[derive(Debug, Serialize)]
pub struct BackchannelResponse {
    #[serde(serialize_with = "crate::secret::serialize")]
    pub auth_req_id: SecretString,
    pub expires_in: i64,
    pub interval: i64,
}

/// A `binding_message` this provider can check on the phone: the number the relying party
/// shows, typed by the professional (2 to 8 digits; Pro Santé Connect sends two).
fn is_binding_number(message: &str) -> bool {
    (2..=8).contains(&message.len()) && message.bytes().all(|b| b.is_ascii_digit())
}

/// What a well-formed request asks.
pub(super) struct CheckedRequest<'a> {
    pub(super) login_hint: &'a str,
    pub(super) binding_message: &'a str,
    pub(super) scopes: Vec<String>,
    pub(super) required_acr: Option<String>,
    pub(super) requested_expiry: Option<i64>,
    pub(super) notification_token: Option<String>,
}

pub(super) fn check_request<'a>(
    params: &'a BackchannelParams,
    client: &Client,
    acr_levels: &[String],
    mode: CibaDeliveryMode,
) -> Result<CheckedRequest<'a>, EndpointError> {
    let texts = [
        &params.scope,
        &params.login_hint,
        &params.login_hint_token,
        &params.id_token_hint,
        &params.binding_message,
        &params.acr_values,
        &params.requested_expiry,
        &params.channel,
    ];
    if texts.iter().any(|t| t.as_ref().is_some_and(|v| v.len() > MAX_PARAM_LEN)) {
        return Err(OAuthError::invalid_request("a parameter is too long").into());
    }
    if params.request.is_some() || params.request_uri.is_some() {
        return Err(OAuthError::invalid_request("signed authentication requests are not supported").into());
    }
    // §7.1: exactly one hint.
    let hints = [params.login_hint.is_some(), params.login_hint_token.is_some(), params.id_token_hint.is_some()];
    if hints.iter().filter(|h| **h).count() != 1 {
        return Err(OAuthError::invalid_request(
            "exactly one of login_hint, login_hint_token, id_token_hint is required",
        )
        .into());
    }
    let Some(login_hint) = params.login_hint.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(OAuthError::invalid_request("only login_hint (the national identifier) is supported").into());
    };
    let requested: Vec<&str> =
        params.scope.as_deref().map(|s| s.split(' ').filter(|p| !p.is_empty()).collect()).unwrap_or_default();
    if !requested.contains(&"openid") {
        return Err(OAuthError::new(ErrorCode::InvalidScope, "the openid scope is required").into());
    }
    let scopes: Vec<String> = crate::claims::SUPPORTED_SCOPES
        .iter()
        .filter(|s| requested.contains(s) && client.metadata.allows_scope(s))
        .map(|s| (*s).to_owned())
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(ErrorCode::InvalidScope, "this client may not use the openid scope").into());
    }
    match params.channel.as_deref() {
        None | Some("MOBILE") => {}
        Some("CARD") => {
            return Err(OAuthError::invalid_request("channel CARD is not offered here; use MOBILE").into());
        }
        Some(_) => return Err(OAuthError::invalid_request("unknown channel (MOBILE is offered)").into()),
    }
    let Some(binding_message) = params.binding_message.as_deref() else {
        return Err(OAuthError::new(
            ErrorCode::InvalidBindingMessage,
            "binding_message is required: the number the relying party shows, which the professional types on the phone",
        )
        .into());
    };
    if !is_binding_number(binding_message) {
        return Err(OAuthError::new(ErrorCode::InvalidBindingMessage, "binding_message must be 2 to 8 digits").into());
    }
    let requested_expiry = match params.requested_expiry.as_deref() {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(OAuthError::invalid_request("requested_expiry must be a positive integer").into()),
        },
    };
    let required_acr = params.acr_values.as_deref().and_then(|v| {
        v.split(' ')
            .filter_map(|a| acr_levels.iter().position(|l| l == a))
            .min()
            .and_then(|rank| acr_levels.get(rank).cloned())
    });
    let notification_token = match mode {
        CibaDeliveryMode::Poll => None,
        CibaDeliveryMode::Ping => {
            let token = crate::secret::exposed(&params.client_notification_token).map(str::to_owned);
            match token {
                Some(t) if !t.is_empty() && t.len() <= MAX_NOTIFICATION_TOKEN_LEN => Some(t),
                Some(_) => return Err(OAuthError::invalid_request("client_notification_token is too long").into()),
                None => {
                    return Err(
                        OAuthError::invalid_request("client_notification_token is required in ping mode").into()
                    );
                }
            }
        }
    };
    Ok(CheckedRequest { login_hint, binding_message, scopes, required_acr, requested_expiry, notification_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_messages_are_numbers_to_type() {
        for good in ["42", "07", "12345678"] {
            assert!(is_binding_number(good), "{good}");
        }
        for bad in ["4", "123456789", "4 2", "quarante-deux", "", "٤٢"] {
            assert!(!is_binding_number(bad), "{bad}");
        }
    }
}
