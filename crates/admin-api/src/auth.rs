//! Who administers a request: a client-credentials token holding the `caducee:admin` scope,
//! whose client still exists, still holds that right and still has the credentials the token
//! was obtained with (checked against the database on every call), or a client certificate
//! that a trusted proxy verified (mutual TLS) and whose thumbprint is registered.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};

use directory::ClientRecord;
use oidc_core::client::ClientMetadata;
use oidc_core::token::AccessTokenClaims;

use crate::http::{ADMIN_SCOPE, Failure, failure, invalid_token};
use crate::service::{Actor, AdminService};

/// The authenticated administrator of a request.
pub struct Admin(pub Actor);

/// The client-certificate header exactly as a trusted proxy passed it: every copy, not yet
/// parsed. The server's edge removes the header from every request and keeps it here for
/// requests from trusted proxies only; the admin API, its only reader, parses it when it
/// needs it, so that no other request pays for decoding a certificate.
#[derive(Debug, Clone)]
pub struct ProxiedClientCertificate(pub Vec<HeaderValue>);

impl FromRequestParts<AdminService> for Admin {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, svc: &AdminService) -> Result<Self, Self::Rejection> {
        // The client's address as the server's edge established it (behind trusted proxies).
        let source_ip = match parts.extensions.get::<oidc_core::http::ClientIp>() {
            Some(ip) => Some(ip.0.to_string()),
            None => parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string()),
        };
        let certificate = proxied_certificate(parts)?;
        // Mutual TLS: without a bearer token, a verified certificate on the allowlist administers.
        if !parts.headers.contains_key(header::AUTHORIZATION)
            && let Some(thumbprint) = certificate
        {
            let known = svc
                .admin_certificates
                .iter()
                .fold(false, |found, t| found | oidc_core::util::constant_time_eq(t.as_bytes(), thumbprint.as_bytes()));
            if !known {
                return Err(failure(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this client certificate is not registered for the admin API",
                ));
            }
            return Ok(Admin(Actor { id: format!("cert:{thumbprint}"), source_ip }));
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
            .ok_or_else(|| failure(StatusCode::UNAUTHORIZED, "unauthorized", "a bearer token is required"))?;
        let now = (svc.clock)();
        let claims = svc.provider.live_access_token(&token, now).await.map_err(|e| {
            tracing::error!(error = %e.into_oauth(), "admin token check failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot check the token now")
        })?;
        let claims = claims.ok_or_else(|| invalid_token("the token is invalid, expired or revoked"))?;
        // Only a client acting on its own behalf, holding the admin scope, administers.
        let admin = claims.sid.is_none() && claims.scope.split(' ').any(|s| s == ADMIN_SCOPE);
        if !admin {
            return Err(failure(StatusCode::FORBIDDEN, "forbidden", "the token lacks the caducee:admin scope"));
        }
        // Read from the database on every call, past the node's client cache: a client deleted
        // or changed by another node or by the command line must count from its next call.
        let client = svc.directory.clients().get(&claims.client_id).await.map_err(|e| {
            tracing::error!(error = %e, "admin token check failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot check the token now")
        })?;
        client_still_administers(client, &claims)?;
        Ok(Admin(Actor { id: format!("client:{}", claims.client_id), source_ip }))
    }
}

/// A token is worth what its client is worth now: the client must still exist (and be the one
/// the token was issued to, not another registered since under the same id), still be allowed
/// to get the admin scope with the client-credentials grant, and still authenticate with the
/// credentials the token was obtained with. Tokens carry whole seconds, so one issued in the
/// very second the credentials changed is refused too: its client gets a new one.
fn client_still_administers(client: Option<ClientRecord>, claims: &AccessTokenClaims) -> Result<(), Failure> {
    let gone = || invalid_token("the client of this token no longer exists");
    let client = client.ok_or_else(gone)?;
    if claims.iat < client.created_at {
        return Err(gone());
    }
    let allowed = serde_json::from_value::<ClientMetadata>(client.metadata).is_ok_and(|m| {
        !m.is_public()
            && m.allows_grant(oidc_core::client::GrantType::ClientCredentials)
            && m.allowed_scopes.iter().any(|s| s == ADMIN_SCOPE)
    });
    if !allowed {
        return Err(invalid_token("the client of this token is no longer allowed the caducee:admin scope"));
    }
    if client.credentials_changed_at.is_some_and(|at| claims.iat <= at) {
        return Err(invalid_token("the client's credentials changed after this token was issued"));
    }
    Ok(())
}

/// The thumbprint of the certificate a trusted proxy passed, if it passed one that parses.
/// Refused when the header came more than once: which copy is the proxy's cannot be told.
fn proxied_certificate(parts: &Parts) -> Result<Option<String>, Failure> {
    match parts.extensions.get::<ProxiedClientCertificate>().map(|c| c.0.as_slice()) {
        None | Some([]) => Ok(None),
        Some([value]) => Ok(certificate_thumbprint(value)),
        Some(_) => Err(failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the client certificate header appears more than once",
        )),
    }
}

/// The SHA-256 thumbprint (base64url) of a certificate passed by a proxy as URL-encoded PEM
/// (nginx) or base64 DER (HAProxy); `None` if it is neither.
fn certificate_thumbprint(value: &HeaderValue) -> Option<String> {
    oidc_core::mtls::ClientCertificate::from_forwarded(value.to_str().ok()?).map(|c| c.thumbprint())
}
