//! The REST face of the admin operations, under `/admin/v1`, described by the OpenAPI document
//! served at `/admin/v1/openapi.json`. Every route needs a bearer access token obtained with the
//! client-credentials grant by a client registered for the `caducee:admin` scope.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use oidc_core::secret::SecretString;

use crate::audit::{AuditCheck, AuditFilter, AuditRecordView};
pub use crate::auth::{Admin, ProxiedClientCertificate};
use crate::lockout::LockoutView;
use crate::push::PushBlockView;
use crate::service::{
    AccountView, ActivationCodeView, AdminError, AdminService, AuthenticatorView, ClientView, CreatedClient,
    DeliveryView, NewClient, SessionView,
};

/// The scope a client must hold to call the admin API.
pub const ADMIN_SCOPE: &str = "caducee:admin";

/// A JSON error with a stable code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid_request`, `unavailable`, `internal_error`.
    pub error: String,
    pub message: String,
}

pub struct Failure {
    status: StatusCode,
    body: ApiError,
    /// The `WWW-Authenticate` challenge of a 401, when it says more than the bare realm.
    challenge: Option<&'static str>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = self.challenge.unwrap_or("Bearer realm=\"caducee-admin\"");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if self.status == StatusCode::FORBIDDEN {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"caducee-admin\", error=\"insufficient_scope\", scope=\"caducee:admin\"",
                ),
            );
        }
        r
    }
}

pub(crate) fn failure(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
    Failure { status, body: ApiError { error: code.to_owned(), message: message.into() }, challenge: None }
}

/// A bearer token was presented and is worth nothing (RFC 6750 3.1 `invalid_token`).
pub(crate) fn invalid_token(message: &str) -> Failure {
    Failure {
        challenge: Some("Bearer realm=\"caducee-admin\", error=\"invalid_token\""),
        ..failure(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        let status = match e {
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "admin API failure");
        }
        let message =
            if status == StatusCode::INTERNAL_SERVER_ERROR { "internal error".to_owned() } else { e.to_string() };
        failure(status, e.code(), message)
    }
}

type ApiResult<T> = Result<T, Failure>;

/// Path parameters, refused with a JSON error (axum's own rejection is plain text).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| failure(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload.map(|Json(v)| v).map_err(|e| failure(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))
}

fn query<T>(params: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    params.map(|Query(v)| v).map_err(|e| failure(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub sessions: usize,
}

/// A client's new secret, shown once; redacted from `Debug`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Secret {
    #[serde(serialize_with = "oidc_core::secret::serialize")]
    #[schema(value_type = String)]
    pub client_secret: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientUpdate {
    pub metadata: oidc_core::client::ClientMetadata,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    pub sid: Option<String>,
    pub client_id: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/professionals/{national_id}", params(("national_id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn get_account(
    State(s): State<AdminService>,
    _a: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(s.account(&id).await?))
}

#[utoipa::path(get, path = "/admin/v1/professionals/{national_id}/sessions", params(("national_id" = String, Path)),
    responses((status = 200, body = Vec<SessionView>), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn list_sessions(
    State(s): State<AdminService>,
    _a: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<SessionView>>> {
    Ok(Json(s.sessions(&id).await?))
}

#[utoipa::path(delete, path = "/admin/v1/professionals/{national_id}/sessions", params(("national_id" = String, Path)),
    responses((status = 200, body = Revoked), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn revoke_all(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Revoked>> {
    Ok(Json(Revoked { sessions: s.revoke_all(&a, &id).await? }))
}

#[utoipa::path(delete, path = "/admin/v1/sessions/{sid}", params(("sid" = String, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn revoke_session(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(sid): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.revoke_session(&a, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/professionals/{national_id}/block", params(("national_id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn block(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(s.block(&a, &id).await?))
}

#[utoipa::path(post, path = "/admin/v1/professionals/{national_id}/unblock", params(("national_id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn unblock(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(s.unblock(&a, &id).await?))
}

#[utoipa::path(get, path = "/admin/v1/professionals/{national_id}/lockout", params(("national_id" = String, Path)),
    responses((status = 200, body = LockoutView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn get_lockout(
    State(s): State<AdminService>,
    _a: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LockoutView>> {
    Ok(Json(s.lockout_status(&id).await?))
}

#[utoipa::path(post, path = "/admin/v1/professionals/{national_id}/lockout/reset", params(("national_id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn reset_lockout(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.reset_lockout(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/admin/v1/professionals/{national_id}/push", params(("national_id" = String, Path)),
    responses((status = 200, body = PushBlockView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn get_push(
    State(s): State<AdminService>,
    _a: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PushBlockView>> {
    Ok(Json(s.push_block(&id).await?))
}

#[utoipa::path(post, path = "/admin/v1/professionals/{national_id}/push/block", params(("national_id" = String, Path)),
    responses((status = 200, body = PushBlockView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn block_pushes(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PushBlockView>> {
    Ok(Json(s.block_pushes(&a, &id).await?))
}

#[utoipa::path(post, path = "/admin/v1/professionals/{national_id}/push/unblock", params(("national_id" = String, Path)),
    responses((status = 200, body = PushBlockView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn unblock_pushes(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PushBlockView>> {
    Ok(Json(s.unblock_pushes(&a, &id).await?))
}

#[utoipa::path(get, path = "/admin/v1/professionals/{national_id}/authenticators", params(("national_id" = String, Path)),
    responses((status = 200, body = Vec<AuthenticatorView>), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn list_authenticators(
    State(s): State<AdminService>,
    _a: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<AuthenticatorView>>> {
    Ok(Json(s.authenticators(&id).await?))
}

#[utoipa::path(delete, path = "/admin/v1/professionals/{national_id}/authenticators/{id}",
    params(("national_id" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn remove_authenticator(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath((national_id, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    s.remove_authenticator(&a, &national_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/professionals/{national_id}/activation-code", params(("national_id" = String, Path)),
    responses((status = 201, body = ActivationCodeView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn issue_activation_code(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<ActivationCodeView>)> {
    Ok((StatusCode::CREATED, Json(s.issue_activation_code(&a, &id).await?)))
}

#[utoipa::path(delete, path = "/admin/v1/professionals/{national_id}/activation-code", params(("national_id" = String, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn revoke_activation_code(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.revoke_activation_code(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/admin/v1/clients", responses((status = 200, body = Vec<ClientView>), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn list_clients(State(s): State<AdminService>, _a: Admin) -> ApiResult<Json<Vec<ClientView>>> {
    Ok(Json(s.clients().await?))
}

#[utoipa::path(post, path = "/admin/v1/clients", request_body = NewClient,
    responses((status = 201, body = CreatedClient), (status = 400, body = ApiError), (status = 409, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn create_client(
    State(s): State<AdminService>,
    Admin(a): Admin,
    payload: Result<Json<NewClient>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CreatedClient>)> {
    Ok((StatusCode::CREATED, Json(s.create_client(&a, body(payload)?).await?)))
}

#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", params(("client_id" = String, Path)),
    responses((status = 200, body = ClientView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn get_client(
    State(s): State<AdminService>,
    _a: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ClientView>> {
    Ok(Json(s.client(&id).await?))
}

#[utoipa::path(put, path = "/admin/v1/clients/{client_id}", params(("client_id" = String, Path)), request_body = ClientUpdate,
    responses((status = 200, body = ClientView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn update_client(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
    payload: Result<Json<ClientUpdate>, JsonRejection>,
) -> ApiResult<Json<ClientView>> {
    Ok(Json(s.update_client(&a, &id, &body(payload)?.metadata).await?))
}

#[utoipa::path(delete, path = "/admin/v1/clients/{client_id}", params(("client_id" = String, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn delete_client(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.delete_client(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/secret", params(("client_id" = String, Path)),
    responses((status = 200, body = Secret), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn rotate_secret(
    State(s): State<AdminService>,
    Admin(a): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Secret>> {
    Ok(Json(Secret { client_secret: s.rotate_secret(&a, &id).await? }))
}

#[utoipa::path(get, path = "/admin/v1/audit", params(AuditFilter),
    responses((status = 200, body = Vec<AuditRecordView>), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn audit(
    State(s): State<AdminService>,
    _a: Admin,
    f: Result<Query<AuditFilter>, QueryRejection>,
) -> ApiResult<Json<Vec<AuditRecordView>>> {
    Ok(Json(s.audit_query(query(f)?).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditVerifyParams {
    /// A head kept from an earlier check (`ID:HASH`): the chain must still reach it unchanged.
    pub head: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/audit/verify", params(AuditVerifyParams),
    responses((status = 200, body = AuditCheck), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn audit_verify(
    State(s): State<AdminService>,
    _a: Admin,
    params: Result<Query<AuditVerifyParams>, QueryRejection>,
) -> ApiResult<Json<AuditCheck>> {
    let params = query(params)?;
    Ok(Json(s.audit_verify(params.head.as_deref()).await?))
}

#[utoipa::path(get, path = "/admin/v1/logout-deliveries", params(DeliveryFilter),
    responses((status = 200, body = Vec<DeliveryView>), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 503, body = ApiError)), security(("bearer" = []), ("mutual_tls" = [])))]
async fn deliveries(
    State(s): State<AdminService>,
    _a: Admin,
    f: Result<Query<DeliveryFilter>, QueryRejection>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    let f = query(f)?;
    Ok(Json(s.deliveries(f.sid, f.client_id, f.status).await?))
}

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "mutual_tls",
            SecurityScheme::MutualTls {
                description: Some(
                    "A client certificate verified by the TLS-terminating proxy, whose SHA-256 thumbprint is in admin.client_certificates.".into(),
                ),
                extensions: None,
            },
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Caducée admin API", version = "1", description = "Sessions, accounts, push blocks, authenticators, clients and audit. Callers present a bearer token from the client-credentials grant with the caducee:admin scope, or a client certificate (mutual TLS, verified by the TLS-terminating proxy) registered in admin.client_certificates."),
    paths(get_account, list_sessions, revoke_all, revoke_session, block, unblock, get_lockout, reset_lockout, get_push, block_pushes, unblock_pushes, list_authenticators,
          remove_authenticator, issue_activation_code, revoke_activation_code, list_clients, create_client, get_client, update_client, delete_client, rotate_secret,
          audit, audit_verify, deliveries),
    components(schemas(ApiError, AccountView, ActivationCodeView, LockoutView, PushBlockView, SessionView, AuthenticatorView, ClientView, NewClient, CreatedClient,
                       ClientUpdate, Secret, Revoked, AuditRecordView, AuditCheck, DeliveryView,
                       oidc_core::client::ClientMetadata, oidc_core::client::TokenEndpointAuthMethod,
                       oidc_core::keys::SigningAlg)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Unknown routes too are only answered to administrators: the API's shape is not for strangers.
async fn not_found(_a: Admin) -> Failure {
    failure(StatusCode::NOT_FOUND, "not_found", "no such admin route")
}

/// The admin API's routes.
pub fn router(service: AdminService) -> Router {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/professionals/{national_id}", get(get_account))
        .route("/admin/v1/professionals/{national_id}/sessions", get(list_sessions).delete(revoke_all))
        .route("/admin/v1/sessions/{sid}", delete(revoke_session))
        .route("/admin/v1/professionals/{national_id}/block", post(block))
        .route("/admin/v1/professionals/{national_id}/unblock", post(unblock))
        .route("/admin/v1/professionals/{national_id}/lockout", get(get_lockout))
        .route("/admin/v1/professionals/{national_id}/lockout/reset", post(reset_lockout))
        .route("/admin/v1/professionals/{national_id}/push", get(get_push))
        .route("/admin/v1/professionals/{national_id}/push/block", post(block_pushes))
        .route("/admin/v1/professionals/{national_id}/push/unblock", post(unblock_pushes))
        .route("/admin/v1/professionals/{national_id}/authenticators", get(list_authenticators))
        .route("/admin/v1/professionals/{national_id}/authenticators/{id}", delete(remove_authenticator))
        .route(
            "/admin/v1/professionals/{national_id}/activation-code",
            post(issue_activation_code).delete(revoke_activation_code),
        )
        .route("/admin/v1/clients", get(list_clients).post(create_client))
        .route("/admin/v1/clients/{client_id}", get(get_client).put(update_client).delete(delete_client))
        .route("/admin/v1/clients/{client_id}/secret", post(rotate_secret))
        .route("/admin/v1/audit", get(audit))
        .route("/admin/v1/audit/verify", get(audit_verify))
        .route("/admin/v1/logout-deliveries", get(deliveries))
        .route("/admin/v1/{*rest}", axum::routing::any(not_found))
        .with_state(service)
}
