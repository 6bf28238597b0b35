//! The authorization request: parsing, validation in the order the specs impose, and where each
//! error goes (to the person when the client or redirect URI cannot be trusted, to the client
//! otherwise).

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::util::split_spaces;

/// The query (or form) parameters of `/authorize`, as received. `Debug` leaves out what names
/// or identifies the person (`login_hint`, `id_token_hint`) and the request objects.
#[derive(Default, Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub ui_locales: Option<String>,
    pub id_token_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub claims: Option<String>,
    pub display: Option<String>,
}

/// `Some("<redacted>")` for a value that is there, for `Debug` output.
fn redacted<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| "<redacted>")
}

impl std::fmt::Debug for AuthorizeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeParams")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("response_type", &self.response_type)
            .field("response_mode", &self.response_mode)
            .field("scope", &self.scope)
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("code_challenge", &self.code_challenge)
            .field("code_challenge_method", &self.code_challenge_method)
            .field("prompt", &self.prompt)
            .field("max_age", &self.max_age)
            .field("login_hint", &redacted(&self.login_hint))
            .field("acr_values", &self.acr_values)
            .field("ui_locales", &self.ui_locales)
            .field("id_token_hint", &redacted(&self.id_token_hint))
            .field("request", &redacted(&self.request))
            .field("request_uri", &self.request_uri)
            .field("claims", &self.claims)
            .field("display", &self.display)
            .finish()
    }
}

/// Page languages. French first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    Fr,
    En,
}

impl Locale {
    /// The first supported language in a space-separated `ui_locales` list (BCP 47 tags).
    pub fn from_ui_locales(value: Option<&str>) -> Locale {
        value.into_iter().flat_map(split_spaces).find_map(Locale::from_tag).unwrap_or_default()
    }

    pub fn from_tag(tag: &str) -> Option<Locale> {
        let primary = tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Locale::Fr),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }
}

/// A validated authorization request, kept in the interaction while the person logs in.
/// `Debug` leaves out the login hint (a national identifier, typically).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Vec<String>,
    pub locale: Locale,
    /// The subject named by a valid `id_token_hint`, if one was sent.
    pub hinted_subject: Option<String>,
    /// The `claims` parameter, as honoured ([`crate::claims_request`]).
    #[serde(default)]
    pub claims: crate::claims_request::ClaimsRequest,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("code_challenge", &self.code_challenge)
            .field("prompt_none", &self.prompt_none)
            .field("prompt_login", &self.prompt_login)
            .field("max_age", &self.max_age)
            .field("login_hint", &redacted(&self.login_hint))
            .field("acr_values", &self.acr_values)
            .field("locale", &self.locale)
            .field("hinted_subject", &self.hinted_subject)
            .field("claims", &self.claims)
            .finish()
    }
}

/// Why a request cannot even be redirected back: shown to the person as an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    UnknownClient,
    MissingRedirectUri,
    UnregisteredRedirectUri,
    /// A malformed request (e.g. a repeated parameter) before the client could be identified.
    MalformedRequest,
    /// The login step expired or was already used.
    InteractionExpired,
    /// A form was posted without its valid anti-forgery token, or from another browser.
    Forbidden,
    /// A dependency is down: the provider refuses logins (fail closed).
    Unavailable,
    /// Too many sign-ins started from this address or browser lately (429, `Retry-After`).
    TooManyRequests,
    Internal,
}

/// Where an authorization request failure must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Page(PageError),
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

/// Longest value of a parameter kept with a login (state, nonce, login_hint...): every
/// `/authorize` that needs a login stores them for the interaction's life, so what a stranger can
/// make the provider hold must stay small. 512 bytes is far above what relying parties send.
pub const MAX_PARAM_LEN: usize = 512;
const PKCE_METHOD_S256: &str = "S256";

/// Step 1: who is asking and where may we answer? Without a known client and one of its
/// registered redirect URIs (exact string match), nothing is redirected.
pub fn check_client_and_redirect(params: &AuthorizeParams, client: Option<&Client>) -> Result<String, Rejection> {
    let Some(client) = client else {
        return Err(Rejection::Page(PageError::UnknownClient));
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref() else {
        return Err(Rejection::Page(PageError::MissingRedirectUri));
    };
    if !client.metadata.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Rejection::Page(PageError::UnregisteredRedirectUri));
    }
    Ok(redirect_uri.to_owned())
}

fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Step 2: the rest of the request, whose errors go back to the client's redirect URI.
/// `acr_levels` are the supported `acr` values (unknown requested values are ignored, as
/// `acr_values` is a voluntary request).
pub fn validate(
    params: AuthorizeParams,
    client: &Client,
    redirect_uri: String,
    acr_levels: &[String],
) -> Result<AuthorizationRequest, Rejection> {
    let state = params.state.clone();
    let reject =
        |error: OAuthError| Rejection::Redirect { redirect_uri: redirect_uri.clone(), state: state.clone(), error };
    let fields = [
        &params.state,
        &params.nonce,
        &params.scope,
        &params.login_hint,
        &params.acr_values,
        &params.ui_locales,
        &params.code_challenge,
        &params.prompt,
        &params.max_age,
    ];
    if fields.iter().any(|f| f.as_ref().is_some_and(|v| v.len() > MAX_PARAM_LEN)) {
        return Err(reject(OAuthError::invalid_request("a parameter is too long")));
    }
    if params.request.is_some() {
        return Err(reject(OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported")));
    }
    if params.request_uri.is_some() {
        return Err(reject(OAuthError::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported")));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(reject(OAuthError::invalid_request("response_type is required"))),
        Some(_) => {
            return Err(reject(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    if let Some(mode) = params.response_mode.as_deref()
        && mode != "query"
    {
        return Err(reject(OAuthError::invalid_request("only response_mode=query is supported")));
    }
    let claims = match params.claims.as_deref() {
        None => crate::claims_request::ClaimsRequest::default(),
        Some(text) => {
            let releasable =
                |name: &str| crate::claims::scope_of(name).is_some_and(|scope| client.metadata.allows_scope(scope));
            crate::claims_request::parse(text, releasable)
                .map_err(|e| reject(OAuthError::invalid_request(e.to_string())))?
        }
    };
    if !client.metadata.allows_grant(crate::client::GrantType::AuthorizationCode) {
        return Err(reject(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        )));
    }

    // Scopes: `openid` is required (this is an OpenID provider); unknown or unallowed scopes
    // are dropped, as RFC 6749 3.3 lets the server grant fewer than asked.
    let requested: Vec<&str> = params.scope.as_deref().map(|s| split_spaces(s).collect()).unwrap_or_default();
    if !requested.contains(&"openid") {
        return Err(reject(OAuthError::new(ErrorCode::InvalidScope, "the openid scope is required")));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in crate::claims::SUPPORTED_SCOPES {
        if requested.contains(&s) && client.metadata.allows_scope(s) {
            scopes.push(s.to_owned());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(reject(OAuthError::new(ErrorCode::InvalidScope, "this client may not use the openid scope")));
    }

    // PKCE (RFC 7636): S256 only; mandatory for public clients.
    let code_challenge = match (params.code_challenge.as_deref(), params.code_challenge_method.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(reject(OAuthError::invalid_request("code_challenge_method without code_challenge")));
        }
        (Some(c), method) => {
            // RFC 7636 4.3 makes `plain` the default method: refusing it means refusing a missing method too.
            if method != Some(PKCE_METHOD_S256) {
                return Err(reject(OAuthError::invalid_request(
                    "code_challenge_method must be S256 (plain is not allowed)",
                )));
            }
            if !is_pkce_value(c) {
                return Err(reject(OAuthError::invalid_request("malformed code_challenge")));
            }
            Some(c.to_owned())
        }
    };
    if code_challenge.is_none() && client.metadata.is_public() {
        return Err(reject(OAuthError::invalid_request(
            "PKCE (code_challenge with S256) is required for public clients",
        )));
    }

    let (mut prompt_none, mut prompt_login) = (false, false);
    if let Some(prompt) = params.prompt.as_deref() {
        let values: Vec<&str> = split_spaces(prompt).collect();
        for v in &values {
            match *v {
                "none" => prompt_none = true,
                "login" => prompt_login = true,
                _ => return Err(reject(OAuthError::invalid_request("unsupported prompt value"))),
            }
        }
        if prompt_none && values.len() > 1 {
            return Err(reject(OAuthError::invalid_request("prompt=none cannot be combined with other values")));
        }
    }

    let max_age = match params.max_age.as_deref() {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return Err(reject(OAuthError::invalid_request("max_age must be a non-negative integer"))),
        },
    };

    // `acr_values`, or else the `acr` the `claims` parameter asks for the ID token.
    let acr_values = match params.acr_values.as_deref() {
        Some(v) => split_spaces(v).filter(|a| acr_levels.iter().any(|l| l == a)).map(str::to_owned).collect(),
        None => claims.acr_values.iter().filter(|a| acr_levels.contains(a)).cloned().collect(),
    };

    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        scopes,
        state: params.state,
        nonce: params.nonce,
        code_challenge,
        prompt_none,
        prompt_login,
        max_age,
        login_hint: params.login_hint,
        acr_values,
        locale: Locale::from_ui_locales(params.ui_locales.as_deref()),
        hinted_subject: None,
        claims,
    })
}

/// The weakest level among the requested `acr_values` (any of them satisfies the request), as
/// a rank in `acr_levels`.
pub fn required_acr_rank(request: &AuthorizationRequest, acr_levels: &[String]) -> Option<usize> {
    request.acr_values.iter().filter_map(|a| acr_levels.iter().position(|l| l == a)).min()
}

/// Builds the redirect back to the client with `params` added to its query, plus `iss`
/// (RFC 9207) so that the client can tell which provider answered.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)], issuer: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
                q.append_pair("iss", issuer);
            }
            url.into()
        }
        // Registered URIs are validated at registration; this branch keeps a bad row harmless.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The redirect carrying an error to the client.
pub fn error_redirect(redirect_uri: &str, state: Option<&str>, error: &OAuthError, issuer: &str) -> String {
    let mut params: Vec<(&str, &str)> = vec![("error", error.error.as_str())];
    if let Some(d) = error.error_description.as_deref() {
        params.push(("error_description", d));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_with(redirect_uri, &params, issuer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::ClientMetadata;

    fn client(public: bool) -> Client {
        let mut meta: ClientMetadata = serde_json::from_value(serde_json::json!({
            "redirect_uris": ["https://rp.example/cb"],
        }))
        .unwrap();
        if public {
            meta.token_endpoint_auth_method = crate::client::TokenEndpointAuthMethod::None;
        }
        Client { client_id: "rp".into(), secret_hash: None, metadata: meta, secret: None }
    }

    fn params(extra: &[(&str, &str)]) -> AuthorizeParams {
        let mut pairs = vec![
            ("client_id", "rp"),
            ("redirect_uri", "https://rp.example/cb"),
            ("response_type", "code"),
            ("scope", "openid profile unknown"),
            ("state", "xyz"),
        ];
        pairs.extend_from_slice(extra);
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap()).unwrap()
    }

    fn levels() -> Vec<String> {
        vec!["eidas1".into(), "eidas2".into(), "eidas3".into()]
    }

    fn run(p: AuthorizeParams, c: &Client) -> Result<AuthorizationRequest, Rejection> {
        let uri = check_client_and_redirect(&p, Some(c))?;
        validate(p, c, uri, &levels())
    }

    fn redirect_error(r: Result<AuthorizationRequest, Rejection>) -> ErrorCode {
        match r {
            Err(Rejection::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                error.error
            }
            other => panic!("expected a redirected error, got {other:?}"),
        }
    }

    #[test]
    fn valid_request_keeps_known_scopes() {
        let r = run(params(&[]), &client(false)).unwrap();
        assert_eq!(r.scopes, vec!["openid", "profile"]);
        assert_eq!(r.locale, Locale::Fr);
    }

    #[test]
    fn unknown_client_and_unregistered_redirect_are_not_redirected() {
        let p = params(&[]);
        assert_eq!(check_client_and_redirect(&p, None), Err(Rejection::Page(PageError::UnknownClient)));
        let p: AuthorizeParams =
            serde_urlencoded::from_str("client_id=rp&redirect_uri=https%3A%2F%2Fevil.example%2Fcb").unwrap();
        assert_eq!(
            check_client_and_redirect(&p, Some(&client(false))),
            Err(Rejection::Page(PageError::UnregisteredRedirectUri))
        );
        // Exact match: a prefix or an extra query does not pass.
        let p: AuthorizeParams =
            serde_urlencoded::from_str("client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb%3Fx%3D1").unwrap();
        assert!(check_client_and_redirect(&p, Some(&client(false))).is_err());
    }

    #[test]
    fn pkce_rules() {
        let verifier_hash = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(
            run(params(&[("code_challenge", verifier_hash), ("code_challenge_method", "S256")]), &client(true)).is_ok()
        );
        assert_eq!(redirect_error(run(params(&[]), &client(true))), ErrorCode::InvalidRequest);
        assert_eq!(
            redirect_error(run(
                params(&[("code_challenge", verifier_hash), ("code_challenge_method", "plain")]),
                &client(false)
            )),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(run(params(&[("code_challenge", verifier_hash)]), &client(false))),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(run(
                params(&[("code_challenge", "short"), ("code_challenge_method", "S256")]),
                &client(false)
            )),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn spec_errors_are_redirected_with_state() {
        let c = client(false);
        let p: AuthorizeParams = serde_urlencoded::from_str(
            "client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=token&scope=openid&state=xyz",
        )
        .unwrap();
        assert_eq!(redirect_error(run(p, &c)), ErrorCode::UnsupportedResponseType);
        let p: AuthorizeParams = serde_urlencoded::from_str(
            "client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=profile&state=xyz",
        )
        .unwrap();
        assert_eq!(redirect_error(run(p, &c)), ErrorCode::InvalidScope);
        assert_eq!(redirect_error(run(params(&[("prompt", "none login")]), &c)), ErrorCode::InvalidRequest);
        assert_eq!(redirect_error(run(params(&[("prompt", "consent")]), &c)), ErrorCode::InvalidRequest);
        assert_eq!(redirect_error(run(params(&[("max_age", "-1")]), &c)), ErrorCode::InvalidRequest);
        assert_eq!(redirect_error(run(params(&[("request", "x")]), &c)), ErrorCode::RequestNotSupported);
        assert_eq!(redirect_error(run(params(&[("response_mode", "fragment")]), &c)), ErrorCode::InvalidRequest);
    }

    #[test]
    fn prompt_max_age_acr_and_locale_are_read() {
        let r = run(
            params(&[
                ("prompt", "login"),
                ("max_age", "300"),
                ("acr_values", "eidas3 bogus eidas1"),
                ("ui_locales", "en-GB fr"),
            ]),
            &client(false),
        )
        .unwrap();
        assert!(r.prompt_login && !r.prompt_none);
        assert_eq!(r.max_age, Some(300));
        assert_eq!(r.acr_values, vec!["eidas3", "eidas1"]);
        assert_eq!(required_acr_rank(&r, &levels()), Some(0));
        assert_eq!(r.locale, Locale::En);
    }

    #[test]
    fn redirects_carry_iss_and_keep_existing_query() {
        let url = redirect_with("https://rp.example/cb?a=1", &[("code", "c d")], "https://op.example");
        assert_eq!(url, "https://rp.example/cb?a=1&code=c+d&iss=https%3A%2F%2Fop.example");
    }
}
