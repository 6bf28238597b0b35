//! Errors in two tiers: [`OAuthError`] is what the protocol says to a client (its codes are the
//! RFC 6749 / OIDC Core / RFC 6750 / RFC 7009 names), [`ProviderError`] is an internal failure
//! that becomes `server_error` or `temporarily_unavailable` (fail closed, 503).
//!
//! What a client is told (`error`, `error_description`) is kept apart from what only the logs
//! may see: an [`OAuthError`]'s [`detail`](OAuthError::with_detail), and a [`ProviderError`]
//! entirely. The HTTP answers for both are in `http::oauth`.

use std::borrow::Cow;

use serde::Serialize;

/// The error codes of the specs, serialised by their registered names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    LoginRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    UnsupportedTokenType,
    /// OpenID CIBA Core 1.0 §11 (token endpoint) and §13 (authentication request).
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    UnknownUserId,
    InvalidBindingMessage,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::LoginRequired => "login_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnknownUserId => "unknown_user_id",
            Self::InvalidBindingMessage => "invalid_binding_message",
        }
    }
}

/// An error the protocol reports to the client: `error` and `error_description` are its JSON
/// body (RFC 6749 5.2); `detail` is for the logs only, never serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    pub error: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<Cow<'static, str>>,
    #[serde(skip)]
    detail: Option<String>,
    /// The HTTP status where an endpoint's spec sets another than the code's usual one (CIBA's
    /// authentication endpoint answers `access_denied` with 403).
    #[serde(skip)]
    status: Option<u16>,
}

impl OAuthError {
    pub fn new(error: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError { error, error_description: Some(description.into()), detail: None, status: None }
    }

    /// Adds what we know and the client need not (what was received, which check failed):
    /// logged with the error code when the answer is produced, never sent.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The detail for the logs, if any (see [`OAuthError::with_detail`]).
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// Answers with `status` instead of the code's usual one.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// HTTP status for a JSON error response (token, introspection, revocation endpoints).
    pub fn status(&self) -> u16 {
        if let Some(status) = self.status {
            return status;
        }
        match self.error {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_description {
            Some(d) => write!(f, "{}: {d}", self.error.as_str()),
            None => f.write_str(self.error.as_str()),
        }
    }
}

impl std::error::Error for OAuthError {}

/// A failure of something the protocol depends on. Never shown in detail to clients.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("session store: {0}")]
    Store(#[from] session_store::StoreError),
    #[error("client registry: {0}")]
    Registry(#[from] crate::client::RegistryError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("grant storage: {0}")]
    Grants(#[from] crate::grants::GrantError),
    #[error("account directory: {0}")]
    Accounts(#[from] crate::claims::AccountError),
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Audit(#[from] crate::provider::AuditUnavailable),
}

impl ProviderError {
    /// Dependencies that are down make the provider refuse service (503) until they are back.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ProviderError::Store(_)
                | ProviderError::Registry(_)
                | ProviderError::Grants(crate::grants::GrantError::Unavailable(_))
                | ProviderError::Accounts(_)
                | ProviderError::Audit(_)
        )
    }

    pub fn to_oauth(&self) -> OAuthError {
        if self.is_unavailable() {
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "a dependency of the provider is unavailable, try again later",
            )
        } else {
            OAuthError::new(ErrorCode::ServerError, "internal error")
        }
    }
}

/// Either a protocol answer to the client or an internal failure.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl EndpointError {
    pub fn into_oauth(self) -> OAuthError {
        match self {
            EndpointError::OAuth(e) => e,
            EndpointError::Provider(e) => {
                tracing::error!(error = %e, "endpoint failed");
                e.to_oauth()
            }
        }
    }
}

macro_rules! from_provider_source {
    ($($t:ty),*) => {$(
        impl From<$t> for EndpointError {
            fn from(e: $t) -> Self { EndpointError::Provider(e.into()) }
        }
    )*};
}
from_provider_source!(
    session_store::StoreError,
    crate::client::RegistryError,
    crate::keys::KeyError,
    crate::grants::GrantError,
    crate::claims::AccountError
);
