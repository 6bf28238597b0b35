//! What the request log says of a request: its method, its path and the names of its query
//! parameters, never their values. Query strings carry authorization codes, `id_token_hint`s,
//! `login_hint`s (a national identifier) and `state`s, which a log line must not keep.

use std::fmt;

use axum::http::Request;

/// At most this many parameter names are written, each cut to `MAX_NAME` characters: a request
/// cannot fill the log through its query string.
const MAX_NAMES: usize = 32;
const MAX_NAME: usize = 64;

/// The header that carries a request's id, from a trusted proxy or made here, and back in the
/// answer.
pub const REQUEST_ID: &str = "x-request-id";

/// A request id a proxy may pass on: printable ASCII, at most 128 characters.
pub fn acceptable_request_id(value: &axum::http::HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The span of a request (under `tower_http::trace`, so that the usual `RUST_LOG` directives
/// govern it as before), with its id.
pub fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    let span = tracing::debug_span!(
        target: "tower_http::trace::make_span",
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        query = %QueryNames(request.uri().query()),
        version = ?request.version(),
        // For the traces ([`crate::telemetry`], which names the span by its route).
        otel.kind = "server",
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, request.headers());
    span
}

/// The names of a query's parameters, `&`-separated, without their values.
struct QueryNames<'a>(Option<&'a str>);

impl fmt::Display for QueryNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(query) = self.0 else { return Ok(()) };
        let mut names = query.split('&').filter(|p| !p.is_empty()).map(|p| p.split('=').next().unwrap_or(""));
        for (i, name) in names.by_ref().take(MAX_NAMES).enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            let cut = name.char_indices().nth(MAX_NAME).map_or(name.len(), |(at, _)| at);
            f.write_str(&name[..cut])?;
        }
        if names.next().is_some() {
            f.write_str("&…")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_are_written() {
        let names = |q: Option<&str>| QueryNames(q).to_string();
        assert_eq!(names(Some("code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj&iss=https%3A%2F%2Fx")), "code&state&iss");
        assert_eq!(names(Some("id_token_hint=eyJhbGciOi.x.y&&flag")), "id_token_hint&flag");
        assert_eq!(names(None), "");
        let many = (0..40).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&");
        let written = names(Some(&many));
        assert!(written.ends_with("p31&…") && !written.contains('='), "{written}");
        assert_eq!(names(Some(&format!("{}=v", "n".repeat(100)))).len(), MAX_NAME);
    }
}
