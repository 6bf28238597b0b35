//! The provider's cookies: the SSO session and the browser binding of login interactions.
//! Both are `HttpOnly`, `SameSite=Lax` (sent on the top-level navigations that bring a person
//! back from a relying party) and `Secure` whenever the issuer is https.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

use crate::ProviderConfig;
use crate::flow::BrowserCookies;

pub const SESSION_COOKIE: &str = "caducee_session";
pub const BROWSER_COOKIE: &str = "caducee_browser";

/// The cookies of a request that belong to the provider.
#[derive(Clone, Default)]
pub struct CookieJar {
    session: Option<String>,
    browser: Option<String>,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Both are bearer values: the session's secret, the browser's login binding.
        f.debug_struct("CookieJar")
            .field("session", &self.session.as_ref().map(|_| "<redacted>"))
            .field("browser", &self.browser.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl CookieJar {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut jar = CookieJar::default();
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for c in Cookie::split_parse(value).flatten() {
                match c.name() {
                    SESSION_COOKIE => jar.session = Some(c.value().to_owned()),
                    BROWSER_COOKIE => jar.browser = Some(c.value().to_owned()),
                    _ => {}
                }
            }
        }
        jar
    }

    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    pub fn browser_cookies(&self) -> BrowserCookies {
        BrowserCookies { session: self.session.clone(), browser: self.browser.clone() }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CookieJar {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(CookieJar::from_headers(&parts.headers))
    }
}

fn base(name: &'static str, value: String, config: &ProviderConfig) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(config.cookie_path().to_owned())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(config.secure_cookies)
        .build()
}

/// The SSO session cookie; it lives as long as the browser session (the server-side record
/// carries the real expiry).
pub fn session_cookie(value: &str, config: &ProviderConfig) -> Cookie<'static> {
    base(SESSION_COOKIE, value.to_owned(), config)
}

pub fn clear_session_cookie(config: &ProviderConfig) -> Cookie<'static> {
    let mut c = base(SESSION_COOKIE, String::new(), config);
    c.make_removal();
    c
}

pub fn browser_cookie(value: &str, config: &ProviderConfig) -> Cookie<'static> {
    base(BROWSER_COOKIE, value.to_owned(), config)
}

/// Appends a `Set-Cookie` header.
pub fn set(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_lax_and_secure_on_https() {
        let http = ProviderConfig::new("http://127.0.0.1:8080").unwrap();
        let https = ProviderConfig::new("https://idp.example").unwrap();
        let plain = session_cookie("v", &http).to_string();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax") && plain.contains("Path=/"));
        assert!(!plain.contains("Secure"));
        let secure = browser_cookie("v", &https).to_string();
        assert!(secure.contains("Secure") && secure.contains("HttpOnly"));
        let cleared = clear_session_cookie(&https).to_string();
        assert!(cleared.contains("Max-Age=0") && cleared.contains("Secure"));
    }

    #[test]
    fn cookies_stay_under_the_issuers_path() {
        let realm = ProviderConfig::new("https://idp.example/auth/realms/esante-wallet/").unwrap();
        let c = session_cookie("v", &realm);
        assert_eq!(c.path(), Some("/auth/realms/esante-wallet"));
        assert_eq!(browser_cookie("v", &realm).path(), Some("/auth/realms/esante-wallet"));
    }

    #[test]
    fn reads_only_the_providers_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("other=1; caducee_session=s.x; caducee_browser=b"));
        let jar = CookieJar::from_headers(&headers);
        assert_eq!(jar.session(), Some("s.x"));
        assert_eq!(jar.browser_cookies().browser.as_deref(), Some("b"));
    }
}
