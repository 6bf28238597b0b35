//! The administrators' operations, shared by the REST API and the `caducee` command line, so
//! that both go through the same checks and leave the same audit records.

use std::sync::Arc;

use authn_methods::AuthEngine;
use directory::{
    AccountStatus, AuditEvent, ClientRecord, DeliveryQuery, DeliveryStatus, Directory, DirectoryError,
    LogoutDeliveryRecord, Professional,
};
use oidc_core::Provider;
use oidc_core::client::{ClientMetadata, MetadataError, TokenEndpointAuthMethod, new_client_secret};
use oidc_core::secret::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who acts: the admin client of an API token, or an operator at the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub source_ip: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    /// The stable code the API returns for it.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::Invalid(_) => "invalid_request",
            AdminError::Unavailable(_) => "unavailable",
            AdminError::Internal(_) => "internal_error",
        }
    }
}

impl From<DirectoryError> for AdminError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound => AdminError::NotFound("record"),
            DirectoryError::Conflict(m) => AdminError::Conflict(m),
            DirectoryError::Unavailable(m) => AdminError::Unavailable(m),
            DirectoryError::Invalid(m) => AdminError::Invalid(m),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<oidc_core::error::ProviderError> for AdminError {
    fn from(e: oidc_core::error::ProviderError) -> Self {
        if e.is_unavailable() { AdminError::Unavailable(e.to_string()) } else { AdminError::Internal(e.to_string()) }
    }
}

impl From<oidc_core::session::SessionError> for AdminError {
    fn from(e: oidc_core::session::SessionError) -> Self {
        oidc_core::error::ProviderError::from(e).into()
    }
}

impl From<authn_methods::AuthError> for AdminError {
    fn from(e: authn_methods::AuthError) -> Self {
        if e.is_unavailable() { AdminError::Unavailable(e.to_string()) } else { AdminError::Internal(e.to_string()) }
    }
}

impl From<MetadataError> for AdminError {
    fn from(e: MetadataError) -> Self {
        AdminError::Invalid(e.to_string())
    }
}

/// An SSO session as administrators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub sid: String,
    pub subject: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub methods: Vec<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The relying parties it signed into.
    pub clients: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub national_id: String,
    pub subject: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    /// `active` or `blocked`.
    pub status: String,
}

impl From<&Professional> for AccountView {
    fn from(p: &Professional) -> Self {
        AccountView {
            national_id: p.national_id.clone(),
            subject: p.subject.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            email: p.email.clone(),
            status: p.status.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthenticatorView {
    pub id: String,
    /// `totp` (app), `hotp` or `totp-token` (OTP tokens), `push` (approval phone), `webauthn`
    /// (passkey or security key: `serial` is `webauthn:` and its credential id, `label` the
    /// name its owner gave it).
    pub kind: String,
    pub label: String,
    pub serial: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A code to hand over to a professional who lost every second factor: typed in the login form's
/// code field with the password, it signs them in once, to enrol a new authenticator.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivationCodeView {
    /// Twelve digits in groups of four; shown once, only its hash is kept. Redacted from `Debug`.
    #[serde(serialize_with = "oidc_core::secret::serialize")]
    #[schema(value_type = String)]
    pub code: SecretString,
    pub expires_at: i64,
}

/// A client's registration, as read and written by the API (RFC 7591 names).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new client: its id (generated if absent) and metadata.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewClient {
    pub client_id: Option<String>,
    pub metadata: ClientMetadata,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedClient {
    pub client: ClientView,
    /// Shown once: only its hash is kept. Redacted from `Debug`.
    #[serde(serialize_with = "oidc_core::secret::serialize_option")]
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub sid: String,
    pub subject: String,
    pub client_id: String,
    pub uri: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<LogoutDeliveryRecord> for DeliveryView {
    fn from(d: LogoutDeliveryRecord) -> Self {
        DeliveryView {
            status: d.status.as_str().to_owned(),
            id: d.id,
            sid: d.sid,
            subject: d.subject,
            client_id: d.client_id,
            uri: d.uri,
            attempts: d.attempts,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A new secret for a client that authenticates with one, and what to store for it: its
/// hash, or, for `client_secret_jwt` (whose assertions the provider checks with the secret
/// itself), the secret sealed under the master key. `(None, None)` for the other methods.
pub fn new_secret_for(
    directory: &Directory,
    client_id: &str,
    method: TokenEndpointAuthMethod,
) -> Result<(Option<String>, Option<String>), directory::DirectoryError> {
    if !method.has_secret() {
        return Ok((None, None));
    }
    let (secret, hash) = new_client_secret();
    let stored =
        if method.keeps_secret_readable() { directory.clients().seal_secret(client_id, &secret)? } else { hash };
    Ok((Some(secret), Some(stored)))
}

/// The operations, over the provider, the directory and the authentication engine.
#[derive(Clone)]
pub struct AdminService {
    pub provider: Arc<Provider>,
    pub directory: Directory,
    pub engine: Arc<AuthEngine>,
    /// Push blocks go through it, which ends a push pending at the time.
    pub push: Arc<authn_methods::push::PushApprovals>,
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// SHA-256 thumbprints (base64url) of the client certificates that administer (mutual TLS).
    pub admin_certificates: Arc<Vec<String>>,
}

impl AdminService {
    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Every administrative action leaves one audit record, with who did it.
    pub(crate) async fn audit(&self, actor: &Actor, event: &str, subject: Option<&str>, details: serde_json::Value) {
        let record = AuditEvent {
            event: event.to_owned(),
            actor: Some(actor.id.clone()),
            subject: subject.map(str::to_owned),
            client_id: None,
            source_ip: actor.source_ip.clone(),
            outcome: "success".into(),
            details,
            at: self.now(),
        };
        if let Err(e) = self.directory.audit().append(record).await {
            tracing::error!(error = %e, event, "audit append failed");
        }
    }

    pub async fn professional(&self, national_id: &str) -> Result<Professional, AdminError> {
        self.directory
            .professionals()
            .get_by_national_id(national_id)
            .await?
            .ok_or(AdminError::NotFound("professional"))
    }

    pub async fn account(&self, national_id: &str) -> Result<AccountView, AdminError> {
        Ok(AccountView::from(&self.professional(national_id).await?))
    }

    pub async fn sessions(&self, national_id: &str) -> Result<Vec<SessionView>, AdminError> {
        let p = self.professional(national_id).await?;
        let sessions = self.provider.sessions().list_for_subject(&p.subject, self.now()).await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                clients: s.clients.iter().map(|c| c.client_id.clone()).collect(),
                sid: s.sid,
                subject: s.subject,
                created_at: s.created_at,
                expires_at: s.expires_at,
                auth_time: s.auth_time,
                acr: s.acr,
                amr: s.amr,
                methods: s.methods,
                source_ip: s.source_ip,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// Ends one session: every relying party is told, every token of it dies.
    pub async fn revoke_session(&self, actor: &Actor, sid: &str) -> Result<(), AdminError> {
        let ended = self.provider.end_session(sid, "admin", self.now()).await?;
        let Some(session) = ended else {
            return Err(AdminError::NotFound("session"));
        };
        self.audit(actor, "admin.session.revoke", Some(&session.subject), serde_json::json!({ "sid": sid })).await;
        Ok(())
    }

    /// Ends every session of a professional (forced logout everywhere). Returns how many.
    pub async fn revoke_all(&self, actor: &Actor, national_id: &str) -> Result<usize, AdminError> {
        let p = self.professional(national_id).await?;
        let ended = self.end_all(&p.subject, "admin").await?;
        self.audit(actor, "admin.session.revoke_all", Some(&p.subject), serde_json::json!({ "sessions": ended })).await;
        Ok(ended)
    }

    async fn end_all(&self, subject: &str, reason: &'static str) -> Result<usize, AdminError> {
        Ok(self.provider.end_every_session(subject, reason, self.now()).await?.len())
    }

    /// Blocks an account: no more sign-in, and every session ends now.
    pub async fn block(&self, actor: &Actor, national_id: &str) -> Result<AccountView, AdminError> {
        let p = self.professional(national_id).await?;
        self.directory.professionals().set_status(&p.id, AccountStatus::Blocked).await?;
        // The block holds from here (sessions of a blocked account are refused), so it is
        // recorded even when its sessions cannot be ended now; calling again finishes the job.
        let ended = self.end_all(&p.subject, "account_blocked").await;
        let details = match &ended {
            Ok(n) => serde_json::json!({ "sessions_ended": n }),
            Err(e) => serde_json::json!({ "sessions_ended": null, "error": e.to_string() }),
        };
        self.audit(actor, "admin.account.block", Some(&p.subject), details).await;
        if let Err(e) = ended {
            return Err(AdminError::Unavailable(format!(
                "the account is blocked, but its sessions could not be ended now ({e}): call again"
            )));
        }
        self.account(national_id).await
    }

    pub async fn unblock(&self, actor: &Actor, national_id: &str) -> Result<AccountView, AdminError> {
        let p = self.professional(national_id).await?;
        self.directory.professionals().set_status(&p.id, AccountStatus::Active).await?;
        self.audit(actor, "admin.account.unblock", Some(&p.subject), serde_json::Value::Null).await;
        self.account(national_id).await
    }

    /// Lifts a lockout (and its escalation) on an identifier, existing or not.
    pub async fn reset_lockout(&self, actor: &Actor, national_id: &str) -> Result<(), AdminError> {
        let identifier = authn_methods::password::normalise_identifier(national_id)
            .ok_or_else(|| AdminError::Invalid("this cannot be a national identifier".into()))?;
        self.engine.lockout().reset(&identifier).await.map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let subject = self.directory.professionals().get_by_national_id(&identifier).await?.map(|p| p.subject);
        self.audit(actor, "admin.lockout.reset", subject.as_deref(), serde_json::json!({ "identifier": identifier }))
            .await;
        Ok(())
    }

    /// Issues an activation code (replacing any pending one). The code itself is never audited.
    pub async fn issue_activation_code(
        &self,
        actor: &Actor,
        national_id: &str,
    ) -> Result<ActivationCodeView, AdminError> {
        let p = self.professional(national_id).await?;
        let issued = self
            .engine
            .activation_codes()
            .issue(&p.subject, self.now())
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        self.audit(
            actor,
            "admin.authenticator.activation_code",
            Some(&p.subject),
            serde_json::json!({ "expires_at": issued.expires_at }),
        )
        .await;
        Ok(ActivationCodeView { code: issued.code.into(), expires_at: issued.expires_at })
    }

    /// Withdraws a pending activation code.
    pub async fn revoke_activation_code(&self, actor: &Actor, national_id: &str) -> Result<(), AdminError> {
        let p = self.professional(national_id).await?;
        self.engine.activation_codes().revoke(&p.subject).await.map_err(|e| AdminError::Unavailable(e.to_string()))?;
        self.audit(actor, "admin.authenticator.activation_code_revoke", Some(&p.subject), serde_json::Value::Null)
            .await;
        Ok(())
    }

    pub async fn authenticators(&self, national_id: &str) -> Result<Vec<AuthenticatorView>, AdminError> {
        let p = self.professional(national_id).await?;
        let list = self.directory.authenticators().list_for_subject(&p.subject).await?;
        Ok(list
            .into_iter()
            .map(|a| AuthenticatorView {
                id: a.id,
                kind: a.kind,
                label: a.label,
                serial: a.serial,
                active: a.active,
                created_at: a.created_at,
                last_used_at: a.last_used_at,
            })
            .collect())
    }

    /// Removes an authenticator of a professional: an app is deleted, a token goes back to the pool.
    pub async fn remove_authenticator(&self, actor: &Actor, national_id: &str, id: &str) -> Result<(), AdminError> {
        let p = self.professional(national_id).await?;
        let enrolment = authn_methods::enrolment::Enrolment::new(self.directory.clone(), "Caducée");
        let removed = enrolment.remove(&p.subject, id).await.map_err(|e| AdminError::Internal(e.to_string()))?;
        if !removed {
            return Err(AdminError::NotFound("authenticator"));
        }
        self.audit(actor, "admin.authenticator.remove", Some(&p.subject), serde_json::json!({ "authenticator": id }))
            .await;
        Ok(())
    }

    pub async fn clients(&self) -> Result<Vec<ClientView>, AdminError> {
        Ok(self.directory.clients().list().await?.into_iter().map(client_view).collect())
    }

    pub async fn client(&self, client_id: &str) -> Result<ClientView, AdminError> {
        self.directory.clients().get(client_id).await?.map(client_view).ok_or(AdminError::NotFound("client"))
    }

    fn checked_metadata(metadata: &ClientMetadata) -> Result<serde_json::Value, AdminError> {
        metadata.validate()?;
        serde_json::to_value(metadata).map_err(|e| AdminError::Internal(e.to_string()))
    }

    pub async fn create_client(&self, actor: &Actor, new: NewClient) -> Result<CreatedClient, AdminError> {
        let parsed = new.metadata;
        let metadata = Self::checked_metadata(&parsed)?;
        let client_id = new.client_id.unwrap_or_else(oidc_core::util::random_id);
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(AdminError::Invalid("client_id must have 1 to 255 characters".into()));
        }
        let (secret, hash) = new_secret_for(&self.directory, &client_id, parsed.token_endpoint_auth_method)?;
        let now = self.now();
        let record = ClientRecord {
            client_id: client_id.clone(),
            secret_hash: hash,
            metadata,
            created_at: now,
            updated_at: now,
            credentials_changed_at: None,
        };
        self.directory.clients().create(record).await?;
        self.audit(actor, "admin.client.create", None, serde_json::json!({ "client_id": client_id })).await;
        Ok(CreatedClient { client: self.client(&client_id).await?, client_secret: secret.map(SecretString::from) })
    }

    pub async fn update_client(
        &self,
        actor: &Actor,
        client_id: &str,
        metadata: &ClientMetadata,
    ) -> Result<ClientView, AdminError> {
        let new = Self::checked_metadata(metadata)?;
        let current = self.directory.clients().get(client_id).await?.ok_or(AdminError::NotFound("client"))?;
        // The keys or the way it authenticates change: what proved it was the client before
        // proves nothing now, so its admin tokens stop (see `crate::auth`).
        let credentials_changed = match serde_json::from_value::<ClientMetadata>(current.metadata) {
            Ok(before) => {
                before.token_endpoint_auth_method != metadata.token_endpoint_auth_method || before.jwks != metadata.jwks
            }
            Err(_) => true,
        };
        let changed_at = credentials_changed.then(|| self.now());
        self.directory.clients().update_metadata(client_id, new, changed_at).await.map_err(|e| match e {
            DirectoryError::NotFound => AdminError::NotFound("client"),
            other => other.into(),
        })?;
        let details = serde_json::json!({ "client_id": client_id, "credentials_changed": credentials_changed });
        self.audit(actor, "admin.client.update", None, details).await;
        self.client(client_id).await
    }

    /// Removes a client; its refresh tokens are revoked and its access tokens refused.
    pub async fn delete_client(&self, actor: &Actor, client_id: &str) -> Result<u64, AdminError> {
        if !self.directory.clients().delete(client_id).await? {
            return Err(AdminError::NotFound("client"));
        }
        let revoked = self.directory.refresh_tokens().revoke_client(client_id, self.now()).await?;
        self.audit(
            actor,
            "admin.client.delete",
            None,
            serde_json::json!({ "client_id": client_id, "refresh_tokens_revoked": revoked }),
        )
        .await;
        Ok(revoked)
    }

    /// A new secret; the old one stops working at once. Returns it (shown once).
    pub async fn rotate_secret(&self, actor: &Actor, client_id: &str) -> Result<SecretString, AdminError> {
        let record = self.directory.clients().get(client_id).await?.ok_or(AdminError::NotFound("client"))?;
        let meta: ClientMetadata =
            serde_json::from_value(record.metadata).map_err(|e| AdminError::Internal(e.to_string()))?;
        let (Some(secret), hash) = new_secret_for(&self.directory, client_id, meta.token_endpoint_auth_method)? else {
            return Err(AdminError::Invalid("this client does not authenticate with a secret".into()));
        };
        self.directory.clients().set_secret_hash(client_id, hash, self.now()).await?;
        self.audit(actor, "admin.client.rotate_secret", None, serde_json::json!({ "client_id": client_id })).await;
        Ok(secret.into())
    }

    pub async fn deliveries(
        &self,
        sid: Option<String>,
        client_id: Option<String>,
        status: Option<String>,
    ) -> Result<Vec<DeliveryView>, AdminError> {
        let status = match status.as_deref() {
            None => None,
            Some("pending") => Some(DeliveryStatus::Pending),
            Some("delivered") => Some(DeliveryStatus::Delivered),
            Some("failed") => Some(DeliveryStatus::Failed),
            Some(other) => return Err(AdminError::Invalid(format!("unknown status {other}"))),
        };
        let q = DeliveryQuery { sid, subject: None, client_id, status, limit: Some(500) };
        Ok(self.directory.logout_deliveries().query(&q).await?.into_iter().map(DeliveryView::from).collect())
    }
}

fn client_view(r: ClientRecord) -> ClientView {
    ClientView { client_id: r.client_id, metadata: r.metadata, created_at: r.created_at, updated_at: r.updated_at }
}
