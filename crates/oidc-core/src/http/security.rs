//! The security headers, built in this one place: those of every answer (pages, JSON, the
//! public documents, errors), which the server adds to everything it sends, and those of pages
//! for people (never cached, never framed, a Content-Security-Policy that allows only what the
//! page needs).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Browsers take the declared content type at its word (no sniffing a script out of JSON).
const NOSNIFF: &str = "nosniff";
/// URLs here name interactions, codes and sessions: they are never sent on to another site.
const NO_REFERRER: &str = "no-referrer";
/// HTTPS only, for a year, once a browser has seen an https issuer answer. Subdomains are left
/// out: other services of the domain may not be ready for it (a proxy can widen it).
const HSTS: &str = "max-age=31536000";

/// The headers every answer carries, whoever built it; static values, so that adding them costs
/// no allocation, even on the public documents.
pub struct ResponseHeaders {
    /// `X-Content-Type-Options`.
    pub nosniff: (HeaderName, HeaderValue),
    /// `Referrer-Policy`.
    pub referrer_policy: (HeaderName, HeaderValue),
    /// `Strict-Transport-Security`, when the issuer is https (over plain http a browser ignores
    /// it, and a developer's `http://127.0.0.1` must not be pinned to https).
    pub strict_transport_security: Option<(HeaderName, HeaderValue)>,
}

impl ResponseHeaders {
    pub fn for_issuer(issuer: &str) -> Self {
        ResponseHeaders {
            nosniff: (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static(NOSNIFF)),
            referrer_policy: (header::REFERRER_POLICY, HeaderValue::from_static(NO_REFERRER)),
            strict_transport_security: issuer
                .starts_with("https://")
                .then(|| (header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS))),
        }
    }
}

/// What a page may load beyond its own stylesheet and images.
#[derive(Debug, Clone, Copy)]
pub enum PageAllows<'a> {
    /// Nothing more: no script, no frame (every page but the two below).
    Nothing,
    /// Our own script, asking our own origin (the push waiting page).
    OwnScript,
    /// Our own script, asking our own origin and this one too (the card agent on the
    /// professional's computer).
    OwnScriptReaching(&'a str),
    /// Frames from these URLs' origins (the relying parties' front-channel logout pages).
    Frames(&'a [String]),
}

/// The page's Content-Security-Policy.
pub fn content_security_policy(allows: PageAllows<'_>) -> String {
    let mut policy = String::from("default-src 'none'; style-src 'self'; img-src 'self' data:");
    match allows {
        PageAllows::Nothing => {}
        PageAllows::OwnScript => policy.push_str("; script-src 'self'; connect-src 'self'"),
        PageAllows::OwnScriptReaching(origin) => {
            policy.push_str("; script-src 'self'; connect-src 'self'");
            // An origin only (scheme, host, port): nothing that could end the directive.
            if origin.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'.' | b'-' | b'[' | b']'))
            {
                policy.push(' ');
                policy.push_str(origin);
            }
        }
        PageAllows::Frames(urls) => {
            let mut origins: Vec<String> = urls
                .iter()
                .filter_map(|f| url::Url::parse(f).ok())
                .map(|u| u.origin().ascii_serialization())
                .filter(|o| o != "null")
                .collect();
            origins.sort();
            origins.dedup();
            policy.push_str("; frame-src ");
            policy.push_str(&if origins.is_empty() { "'none'".to_owned() } else { origins.join(" ") });
        }
    }
    policy.push_str("; frame-ancestors 'none'; base-uri 'none'");
    policy
}

/// A page for people: never cached, never framed, no referrer, nothing loaded but what
/// `allows` names.
pub fn page(status: StatusCode, body: String, allows: PageAllows<'_>) -> Response {
    let mut r = (status, Html(body)).into_response();
    let h = r.headers_mut();
    no_store(h);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Also set by the server on every answer; here too, so that a page is never without it.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static(NO_REFERRER));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static(NOSNIFF));
    let csp = HeaderValue::from_str(&content_security_policy(allows)).unwrap_or_else(|_| {
        // Registered URIs are validated; origins that cannot be a header keep the strict policy.
        tracing::warn!("a page's Content-Security-Policy does not fit in a header");
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    });
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    r
}

/// Never kept by a browser or a proxy (tokens, codes, personal data, one-time pages).
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policies_allow_only_what_the_page_needs() {
        let plain = content_security_policy(PageAllows::Nothing);
        assert_eq!(
            plain,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
        );
        let script = content_security_policy(PageAllows::OwnScript);
        assert!(script.contains("script-src 'self'; connect-src 'self'") && !script.contains("frame-src"));
        let frames =
            ["https://b.example/fc?x=1".to_owned(), "https://a.example:8443/fc".into(), "https://b.example/o".into()];
        let framed = content_security_policy(PageAllows::Frames(&frames));
        assert!(
            framed.contains("; frame-src https://a.example:8443 https://b.example; frame-ancestors 'none'"),
            "{framed}"
        );
        assert!(!framed.contains("script-src"));
        assert!(content_security_policy(PageAllows::Frames(&[])).contains("frame-src 'none'"));
    }

    #[test]
    fn hsts_only_for_an_https_issuer() {
        assert!(ResponseHeaders::for_issuer("https://auth.example").strict_transport_security.is_some());
        assert!(ResponseHeaders::for_issuer("http://127.0.0.1:8080").strict_transport_security.is_none());
    }
}
