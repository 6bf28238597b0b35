//! The device API over HTTP: `POST {endpoint}{path}`, body one compact JWS
//! (`Content-Type: application/jose`), answer JSON; errors `{"error", "error_description"}`.

use std::time::Duration;

use serde_json::Value;

use crate::Error;

/// How long an ordinary request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The provider's device API, at its `/push/v1` URL (also the `aud` of every request).
#[derive(Debug, Clone)]
pub struct DeviceApi {
    endpoint: String,
    http: reqwest::Client,
}

/// The device API's paths.
pub mod paths {
    pub const DEVICES: &str = "/devices";
    pub const CHALLENGES: &str = "/challenges";
    pub const ANSWERS: &str = "/answers";
    pub const BLOCKS: &str = "/blocks";
    pub const QR: &str = "/qr";
}

impl DeviceApi {
    /// `endpoint` as checked by [`endpoint`].
    pub fn new(endpoint: &str) -> Result<DeviceApi, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("caducee-authenticator/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(DeviceApi { endpoint: endpoint.to_owned(), http })
    }

    /// The `/push/v1` URL: the audience of every request.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Posts a signed request; the JSON answer on success (2xx), [`Error::Refused`] otherwise.
    pub async fn post(&self, path: &str, jws: String, timeout: Duration) -> Result<Value, Error> {
        let response = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/jose")
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .body(jws)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body.filter(Value::is_object).ok_or_else(|| Error::Protocol {
                status: status.as_u16(),
                detail: "la réponse n'est pas un objet JSON".into(),
            });
        }
        let field = |name: &str| body.as_ref().and_then(|b| b.get(name)).and_then(Value::as_str).map(str::to_owned);
        match field("error") {
            Some(error) => {
                Err(Error::Refused { status: status.as_u16(), error, description: field("error_description") })
            }
            None => Err(Error::Protocol {
                status: status.as_u16(),
                detail: text.chars().filter(|c| !c.is_control()).take(200).collect(),
            }),
        }
    }
}

/// Checks a server URL and returns the `/push/v1` URL to talk to: `https`, or `http` on a
/// loopback address only (tests, a provider on this machine); no query nor fragment. An issuer
/// URL is accepted too (`/push/v1` is appended). The text is kept as given otherwise, since it
/// must equal the provider's own `aud` byte for byte.
pub fn endpoint(given: &str) -> Result<String, Error> {
    let given = given.trim();
    let url =
        url::Url::parse(given).map_err(|e| Error::Usage(format!("adresse du serveur invalide ({e}) : {given}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(Error::Usage(format!("le serveur doit être en https (http seulement en local) : {given}"))),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Usage(format!("adresse du serveur inattendue : {given}")));
    }
    let trimmed = given.trim_end_matches('/');
    Ok(if trimmed.ends_with("/push/v1") { trimmed.to_owned() } else { format!("{trimmed}/push/v1") })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_are_https_or_loopback_and_end_in_push_v1() {
        assert_eq!(endpoint("https://idp.example/push/v1").unwrap(), "https://idp.example/push/v1");
        assert_eq!(
            endpoint("https://idp.example/auth/realms/esante-wallet/").unwrap(),
            "https://idp.example/auth/realms/esante-wallet/push/v1"
        );
        assert_eq!(endpoint("http://127.0.0.1:8080/push/v1").unwrap(), "http://127.0.0.1:8080/push/v1");
        assert!(endpoint("http://idp.example/push/v1").is_err());
        assert!(endpoint("ftp://idp.example/").is_err());
        assert!(endpoint("https://idp.example/push/v1?x=1").is_err());
        assert!(endpoint("not a url").is_err());
    }
}
