//! The OAuth endpoints' HTTP edge (token, introspection, revocation): how their errors are
//! answered and how their requests are read.
//!
//! - [`OAuthError`] answers as RFC 6749 5.2 says: a JSON body `{"error", "error_description"?}`,
//!   the status its code gives ([`OAuthError::status`]), `Cache-Control: no-store` and
//!   `Pragma: no-cache`, and on 401 a `WWW-Authenticate: Basic realm="caducee"` challenge,
//!   whatever client authentication method was tried. Its detail is logged, never sent.
//! - [`EndpointError`] answers as its OAuth error, or, for an internal failure, logs the failure
//!   and answers the generic `server_error` / `temporarily_unavailable` of
//!   [`ProviderError::to_oauth`](crate::error::ProviderError::to_oauth).
//! - [`BasicClient`] and [`OAuthForm`] extract the client's Basic credentials and the form
//!   body, rejecting with an [`OAuthError`]. Put `BasicClient` before `OAuthForm` in a
//!   handler's arguments: a malformed `Authorization` header is answered before the form is
//!   looked at. [`ClientCall`] does both in that order for the endpoints a client
//!   authenticates at, and adds the connection's certificate (mutual TLS) to the credentials.
//!
//! The pages for people (authorize, end_session) answer their errors as HTML, not here.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::json_response;
use crate::client_auth::ClientCredentials;
use crate::error::{EndpointError, OAuthError};
use crate::secret::SecretString;

/// The challenge sent with every 401 of the OAuth endpoints.
const BASIC_CHALLENGE: &str = "Basic realm=\"caducee\"";

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let Some(detail) = self.detail() {
            tracing::debug!(error = self.error.as_str(), detail, "oauth error answered");
        }
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = json_response(status, &self);
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
        }
        r
    }
}

impl IntoResponse for EndpointError {
    /// An internal failure is logged (`tracing::error!`) and answered generically: its detail
    /// never reaches the client.
    fn into_response(self) -> Response {
        self.into_oauth().into_response()
    }
}

/// The client's credentials from `Authorization: Basic` (RFC 6749 2.3.1), if it sent them.
/// Another scheme counts as none (the endpoint then looks for credentials in the form); a
/// malformed value rejects with `invalid_client` (401).
#[derive(Debug)]
pub struct BasicClient(pub Option<(String, SecretString)>);

impl<S: Send + Sync> FromRequestParts<S> for BasicClient {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        basic_credentials(&parts.headers).map(BasicClient)
    }
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, SecretString)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Err(OAuthError::invalid_client("malformed Authorization header")
            .with_detail("the Authorization header is not visible ASCII"));
    };
    match ClientCredentials::parse_basic(value) {
        None => Ok(None),
        Some(Ok(pair)) => Ok(Some(pair)),
        Some(Err(())) => Err(OAuthError::invalid_client("malformed Basic credentials")),
    }
}

/// A form body (`application/x-www-form-urlencoded`) deserialised into `T`. Rejects with
/// `invalid_request` (400) another content type, or parameters `T` refuses (a repeated one
/// among them, when `T`'s fields are single values). The body is read within the limits the
/// router sets (its `RequestBodyLimitLayer`, axum's `DefaultBodyLimit`): a body beyond them is
/// answered as axum answers it (413), not as an OAuth error.
#[derive(Debug)]
pub struct OAuthForm<T>(pub T);

/// Why an [`OAuthForm`] was not read.
#[derive(Debug)]
pub enum OAuthFormRejection {
    /// The request is not a form the endpoint accepts.
    OAuth(OAuthError),
    /// The body could not be read (beyond the size limit, connection failed): answered as
    /// axum's own rejection, as before there was this extractor.
    Body(BytesRejection),
}

impl IntoResponse for OAuthFormRejection {
    fn into_response(self) -> Response {
        match self {
            OAuthFormRejection::OAuth(e) => e.into_response(),
            OAuthFormRejection::Body(e) => e.into_response(),
        }
    }
}

impl From<OAuthError> for OAuthFormRejection {
    fn from(e: OAuthError) -> Self {
        OAuthFormRejection::OAuth(e)
    }
}

impl<S, T> FromRequest<S> for OAuthForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = OAuthFormRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        // The body is read first, then judged (as when handlers took `Bytes`): a body over the
        // limit is refused as such whatever its content type.
        let bytes = Bytes::from_request(req, state).await.map_err(OAuthFormRejection::Body)?;
        Ok(OAuthForm(form(content_type.as_ref(), &bytes)?))
    }
}

/// A form a client authenticates in (token, introspection, revocation, CIBA): what its client
/// authentication fields and a Basic header make.
pub trait ClientForm: DeserializeOwned {
    fn credentials(&self, basic: Option<(String, SecretString)>) -> ClientCredentials;
}

/// Implements [`ClientForm`] for a form struct with the four client-authentication fields
/// (`client_id`, `client_secret`, `client_assertion`, `client_assertion_type`). Each form keeps
/// its own fields rather than a flattened shared struct: flattened fields would no longer be
/// refused when repeated.
macro_rules! client_form {
    ($form:ty) => {
        impl $crate::http::oauth::ClientForm for $form {
            fn credentials(
                &self,
                basic: Option<(String, $crate::secret::SecretString)>,
            ) -> $crate::client_auth::ClientCredentials {
                $crate::client_auth::ClientCredentials::from_fields(
                    basic,
                    &self.client_id,
                    &self.client_secret,
                    &self.client_assertion,
                    &self.client_assertion_type,
                )
            }
        }
    };
}
pub(crate) use client_form;

/// An authenticating client's request: its form, and every credential it carries (the Basic
/// header, the form's fields, the certificate the connection presented).
#[derive(Debug)]
pub struct ClientCall<T> {
    pub params: T,
    pub creds: ClientCredentials,
}

impl<S, T> FromRequest<S> for ClientCall<T>
where
    S: Send + Sync,
    T: ClientForm,
{
    type Rejection = OAuthFormRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        // The `Authorization` header is judged before the form is read.
        let BasicClient(basic) = BasicClient::from_request_parts(&mut parts, state).await?;
        let certificate = parts.extensions.get::<crate::mtls::ClientCertificate>().cloned();
        let OAuthForm(params) = OAuthForm::<T>::from_request(Request::from_parts(parts, body), state).await?;
        let creds = params.credentials(basic).with_certificate(certificate);
        Ok(ClientCall { params, creds })
    }
}

/// A form body, for the endpoints that read it by hand (pages, userinfo): the content type must
/// be `application/x-www-form-urlencoded` (its parameters and case aside), and the parameters
/// must deserialise into `T`.
pub(super) fn parse_form<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, OAuthError> {
    form(headers.get(header::CONTENT_TYPE), body)
}

fn form<T: DeserializeOwned>(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<T, OAuthError> {
    let is_form = content_type.and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !is_form {
        let received = match content_type {
            Some(v) => format!("received Content-Type {v:?}"),
            None => "no Content-Type".to_owned(),
        };
        return Err(
            OAuthError::invalid_request("the body must be application/x-www-form-urlencoded").with_detail(received)
        );
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::invalid_request("malformed or repeated parameters").with_detail(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;
    use crate::error::{ErrorCode, ProviderError};

    #[derive(serde::Deserialize)]
    struct Form {
        token: Option<String>,
    }

    async fn echo(
        BasicClient(basic): BasicClient,
        OAuthForm(form): OAuthForm<Form>,
    ) -> Result<Response, EndpointError> {
        let who = basic.map(|(id, _)| id).unwrap_or_default();
        Ok(json_response(StatusCode::OK, &serde_json::json!({ "client": who, "token": form.token })))
    }

    async fn corrupt() -> Result<Response, EndpointError> {
        Err(ProviderError::Corrupt("grant 42 has no subject".into()).into())
    }

    async fn unavailable() -> Result<Response, EndpointError> {
        Err(session_store::StoreError::Unavailable("redis://10.0.0.7 refused".into()).into())
    }

    async fn with_detail() -> Result<Response, EndpointError> {
        Err(OAuthError::invalid_grant("invalid refresh token").with_detail("grant 42 was revoked at 1700000000").into())
    }

    fn app() -> Router {
        Router::new()
            .route("/echo", post(echo))
            .route("/corrupt", post(corrupt))
            .route("/unavailable", post(unavailable))
            .route("/detail", post(with_detail))
    }

    async fn call(path: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::post(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = app().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

    fn assert_no_store_json(headers: &HeaderMap) {
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::PRAGMA], "no-cache");
    }

    #[tokio::test]
    async fn a_form_is_read() {
        let (status, headers, body) = call(
            "/echo",
            &[("content-type", "Application/X-WWW-Form-URLEncoded; charset=UTF-8"), ("authorization", "Basic YTpi")],
            "token=t1&other=x",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_no_store_json(&headers);
        assert_eq!(body, r#"{"client":"a","token":"t1"}"#);
    }

    #[tokio::test]
    async fn another_content_type_is_an_invalid_request() {
        for content_type in [Some("application/json"), Some("text/plain; a=application/x-www-form-urlencoded"), None] {
            let headers: Vec<(&str, &str)> = content_type.map(|ct| ("content-type", ct)).into_iter().collect();
            let (status, headers, body) = call("/echo", &headers, "token=t1").await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_no_store_json(&headers);
            assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
            assert_eq!(
                body,
                r#"{"error":"invalid_request","error_description":"the body must be application/x-www-form-urlencoded"}"#
            );
        }
    }

    #[tokio::test]
    async fn a_repeated_parameter_is_an_invalid_request() {
        let (status, headers, body) = call("/echo", &[FORM], "token=t1&token=t2").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_no_store_json(&headers);
        assert_eq!(body, r#"{"error":"invalid_request","error_description":"malformed or repeated parameters"}"#);
        // The detail (serde's message names the field) is for the logs only.
        assert!(!body.contains("duplicate"));
    }

    #[tokio::test]
    async fn malformed_basic_credentials_are_challenged() {
        for authorization in ["Basic !!!not-base64", "Basic bm8tY29sb24="] {
            let (status, headers, body) = call("/echo", &[FORM, ("authorization", authorization)], "token=t1").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_no_store_json(&headers);
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"caducee\"");
            assert_eq!(body, r#"{"error":"invalid_client","error_description":"malformed Basic credentials"}"#);
        }
    }

    #[tokio::test]
    async fn the_basic_credentials_are_judged_before_the_form() {
        let (status, headers, body) =
            call("/echo", &[("content-type", "text/plain"), ("authorization", "Basic !!!")], "token=t1&token=t2").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"caducee\"");
        assert_eq!(body, r#"{"error":"invalid_client","error_description":"malformed Basic credentials"}"#);
    }

    #[tokio::test]
    async fn another_authorization_scheme_is_no_basic_credentials() {
        let (status, _, body) = call("/echo", &[FORM, ("authorization", "Bearer abc")], "token=t1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"client":"","token":"t1"}"#);
    }

    #[tokio::test]
    async fn a_body_beyond_the_limit_is_refused_as_axum_refuses_it() {
        let app = app().layer(axum::extract::DefaultBodyLimit::max(16));
        let req = Request::post("/echo")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("token=".to_owned() + &"x".repeat(64)))
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_ne!(res.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
    }

    #[tokio::test]
    async fn an_internal_failure_is_answered_without_its_detail() {
        let (status, headers, body) = call("/corrupt", &[], "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_no_store_json(&headers);
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(body, r#"{"error":"server_error","error_description":"internal error"}"#);

        let (status, headers, body) = call("/unavailable", &[], "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_no_store_json(&headers);
        assert_eq!(
            body,
            r#"{"error":"temporarily_unavailable","error_description":"a dependency of the provider is unavailable, try again later"}"#
        );
    }

    #[tokio::test]
    async fn an_oauth_errors_detail_is_not_sent() {
        let (status, headers, body) = call("/detail", &[], "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_no_store_json(&headers);
        assert_eq!(body, r#"{"error":"invalid_grant","error_description":"invalid refresh token"}"#);
    }

    #[test]
    fn the_detail_is_kept_but_not_serialised() {
        let e = OAuthError::new(ErrorCode::InvalidClient, "client authentication failed").with_detail("unknown client");
        assert_eq!(e.detail(), Some("unknown client"));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#
        );
    }
}
