//! The protocol's storage traits implemented over the directory. This is the only place where
//! `oidc-core` and `directory` meet: each side keeps its own types.

use std::sync::Arc;

use async_trait::async_trait;
use directory::{
    AccountStatus, ClientRecord, ConsumeOutcome, DeliveryStatus, Directory, DirectoryError, LogoutDeliveryRecord,
    RefreshTokenRecord, SigningKeyRecord,
};
use oidc_core::backchannel::{Delivery, DeliveryLog, DeliveryLogError, DeliveryOutcome};
use oidc_core::claims::{Account, AccountDirectory, AccountError};
use oidc_core::client::{Client, ClientMetadata, ClientRegistry, RegistryError};
use oidc_core::grants::{ConsumeResult, GrantContext, GrantError, RefreshGrant, RefreshTokenStore, Successor};
use oidc_core::http::Clock;
use oidc_core::keys::{KeyError, KeyStore, SigningAlg, StoredKey};
use oidc_core::{AuditEntry, AuditSink};

use crate::recent::RecentCache;

/// Implements every protocol storage trait over one [`Directory`].
#[derive(Clone)]
pub struct DirectoryAdapter {
    pub directory: Directory,
    pub clock: Clock,
    /// Clients and accounts recently read (see [`crate::recent`]); shared by the clones.
    clients: Arc<RecentCache<Arc<Client>>>,
    accounts: Arc<RecentCache<Arc<Account>>>,
}

impl DirectoryAdapter {
    pub fn new(directory: Directory, clock: Clock) -> Self {
        DirectoryAdapter { directory, clock, clients: Arc::default(), accounts: Arc::default() }
    }

    /// The protocol's audit entry as the audit log's event, dated now.
    fn audit_event(&self, entry: AuditEntry) -> directory::AuditEvent {
        directory::AuditEvent {
            event: entry.event.as_str().to_owned(),
            actor: None,
            subject: entry.subject,
            client_id: entry.client_id,
            source_ip: entry.source_ip,
            outcome: entry.outcome.to_owned(),
            details: entry.details,
            at: (self.clock)(),
        }
    }
}

fn registry_error(e: DirectoryError) -> RegistryError {
    RegistryError::Unavailable(e.to_string())
}

fn grant_error(e: DirectoryError) -> GrantError {
    match e {
        DirectoryError::Unavailable(m) => GrantError::Unavailable(m),
        other => GrantError::Failed(other.to_string()),
    }
}

/// A write that carried an audit record failed: whatever the cause, the record could not be
/// written, which refuses service (503) as the audit log being down does ([`AuditSink`]).
fn recorded_error(e: DirectoryError, recorded: bool) -> GrantError {
    match e {
        DirectoryError::Conflict(_) => grant_error(e),
        e if recorded => GrantError::Unavailable(e.to_string()),
        e => grant_error(e),
    }
}

fn key_error(e: DirectoryError) -> KeyError {
    KeyError::Storage(e.to_string())
}

/// A stored client row as the protocol's client. A row whose metadata no longer parses is
/// treated as unknown (and logged) rather than half-trusted.
/// The protocol's client from its record; a `client_secret_jwt` client's sealed secret is
/// opened (it MACs the client's assertions).
pub fn client_from_record(directory: &Directory, record: ClientRecord) -> Option<Client> {
    match serde_json::from_value::<ClientMetadata>(record.metadata) {
        Ok(metadata) => {
            let secret = match (&record.secret_hash, metadata.token_endpoint_auth_method.keeps_secret_readable()) {
                (Some(stored), true) => directory
                    .clients()
                    .open_secret(&record.client_id, stored)
                    .map(|s| oidc_core::secret::SecretString::from(s.as_str().to_owned())),
                _ => None,
            };
            Some(Client { client_id: record.client_id, secret_hash: record.secret_hash, metadata, secret })
        }
        Err(e) => {
            tracing::error!(client_id = %record.client_id, error = %e, "stored client metadata is invalid");
            None
        }
    }
}

#[async_trait]
impl ClientRegistry for DirectoryAdapter {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Client>>, RegistryError> {
        let change_count = self.directory.change_count();
        if let Some(client) = self.clients.get(client_id, change_count) {
            return Ok(Some(client));
        }
        let record = self.directory.clients().get(client_id).await.map_err(registry_error)?;
        let client = record.and_then(|r| client_from_record(&self.directory, r)).map(Arc::new);
        if let Some(c) = &client {
            self.clients.put(client_id, change_count, c.clone());
        }
        Ok(client)
    }
}

#[async_trait]
impl AccountDirectory for DirectoryAdapter {
    async fn account(&self, subject: &str) -> Result<Option<Arc<Account>>, AccountError> {
        let change_count = self.directory.change_count();
        if let Some(account) = self.accounts.get(subject, change_count) {
            return Ok(Some(account));
        }
        let p = self
            .directory
            .professionals()
            .get_by_subject(subject)
            .await
            .map_err(|e| AccountError::Unavailable(e.to_string()))?;
        let account = p.map(|p| {
            Arc::new(Account {
                active: p.status == AccountStatus::Active,
                professional_claims: p.psc_claims(),
                subject: p.subject,
                given_name: p.given_name,
                family_name: p.family_name,
                national_id: p.national_id,
                email: p.email,
            })
        });
        if let Some(a) = &account {
            self.accounts.put(subject, change_count, a.clone());
        }
        Ok(account)
    }
}

fn grant_from_record(r: RefreshTokenRecord) -> Result<RefreshGrant, GrantError> {
    let context: GrantContext =
        serde_json::from_value(r.payload).map_err(|e| GrantError::Failed(format!("refresh token payload: {e}")))?;
    Ok(RefreshGrant {
        token_hash: r.token_hash,
        grant_id: r.grant_id,
        client_id: r.client_id,
        subject: r.subject,
        sid: r.sid,
        context,
        created_at: r.created_at,
        expires_at: r.expires_at,
        consumed_at: r.consumed_at,
        revoked_at: r.revoked_at,
    })
}

#[async_trait]
impl RefreshTokenStore for DirectoryAdapter {
    async fn insert(&self, g: &RefreshGrant, issued: Option<AuditEntry>) -> Result<(), GrantError> {
        let payload = serde_json::to_value(&g.context).map_err(|e| GrantError::Failed(e.to_string()))?;
        let record = RefreshTokenRecord {
            token_hash: g.token_hash.clone(),
            grant_id: g.grant_id.clone(),
            client_id: g.client_id.clone(),
            subject: g.subject.clone(),
            sid: g.sid.clone(),
            payload,
            created_at: g.created_at,
            expires_at: g.expires_at,
            consumed_at: None,
            revoked_at: None,
        };
        let recorded = issued.is_some();
        let issued = issued.map(|e| self.audit_event(e));
        self.directory.refresh_tokens().insert_recorded(record, issued).await.map_err(|e| recorded_error(e, recorded))
    }

    async fn get(&self, token_hash: &str) -> Result<Option<RefreshGrant>, GrantError> {
        match self.directory.refresh_tokens().get(token_hash).await.map_err(grant_error)? {
            Some(r) => Ok(Some(grant_from_record(r)?)),
            None => Ok(None),
        }
    }

    async fn consume(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<Successor>,
        issued: Option<AuditEntry>,
    ) -> Result<ConsumeResult, GrantError> {
        let successor = successor.map(|s| directory::Successor {
            token_hash: s.token_hash,
            created_at: s.created_at,
            expires_at: s.expires_at,
        });
        let recorded = issued.is_some();
        let issued = issued.map(|e| self.audit_event(e));
        let tokens = self.directory.refresh_tokens();
        let rotated = tokens.rotate_recorded(token_hash, now, successor, issued).await;
        Ok(match rotated.map_err(|e| recorded_error(e, recorded))? {
            ConsumeOutcome::Consumed(r) => ConsumeResult::Consumed(grant_from_record(r)?),
            ConsumeOutcome::AlreadyConsumed(r) => ConsumeResult::Reused(grant_from_record(r)?),
            ConsumeOutcome::Revoked(r) => ConsumeResult::Revoked(grant_from_record(r)?),
            ConsumeOutcome::Expired(r) => ConsumeResult::Expired(grant_from_record(r)?),
            ConsumeOutcome::Unknown => ConsumeResult::Unknown,
        })
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, GrantError> {
        self.directory.refresh_tokens().revoke_grant(grant_id, now).await.map_err(grant_error)
    }

    async fn revoke_sid(&self, subject: &str, sid: &str, now: i64) -> Result<u64, GrantError> {
        self.directory.refresh_tokens().revoke_sid(subject, sid, now).await.map_err(grant_error)
    }

    async fn revoke_subject(&self, subject: &str, now: i64) -> Result<u64, GrantError> {
        self.directory.refresh_tokens().revoke_subject(subject, now).await.map_err(grant_error)
    }
}

#[async_trait]
impl KeyStore for DirectoryAdapter {
    async fn load(&self) -> Result<Vec<StoredKey>, KeyError> {
        let rows = self.directory.signing_keys().list().await.map_err(key_error)?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            // Keys of algorithms this build does not sign with are skipped, not fatal.
            let Some(alg) = SigningAlg::parse(&r.alg) else {
                tracing::warn!(kid = %r.kid, alg = %r.alg, "ignoring a signing key of an unsupported algorithm");
                continue;
            };
            keys.push(StoredKey {
                kid: r.kid,
                alg,
                pkcs8: r.private_pkcs8,
                created_at: r.created_at,
                retired_at: r.retired_at,
                publish_until: r.publish_until,
            });
        }
        Ok(keys)
    }

    async fn insert(&self, key: &StoredKey) -> Result<(), KeyError> {
        let record = SigningKeyRecord {
            kid: key.kid.clone(),
            alg: key.alg.as_str().to_owned(),
            private_pkcs8: key.pkcs8.clone(),
            created_at: key.created_at,
            retired_at: key.retired_at,
            publish_until: key.publish_until,
        };
        self.directory.signing_keys().insert(record).await.map_err(key_error)
    }

    async fn retire(&self, kid: &str, at: i64, publish_until: i64) -> Result<(), KeyError> {
        self.directory.signing_keys().retire(kid, at, publish_until).await.map_err(key_error)
    }

    async fn purge(&self, now: i64) -> Result<u64, KeyError> {
        self.directory.signing_keys().purge(now).await.map_err(key_error)
    }
}

#[async_trait]
impl AuditSink for DirectoryAdapter {
    async fn record(&self, entry: AuditEntry) -> Result<(), oidc_core::AuditUnavailable> {
        let event = self.audit_event(entry);
        self.directory.audit().append(event).await.map(drop).map_err(|e| oidc_core::AuditUnavailable(e.to_string()))
    }
}

fn log_error(e: DirectoryError) -> DeliveryLogError {
    DeliveryLogError(e.to_string())
}

#[async_trait]
impl DeliveryLog for DirectoryAdapter {
    async fn created(&self, d: &Delivery, now: i64, first_due: i64) -> Result<(), DeliveryLogError> {
        let record = LogoutDeliveryRecord {
            id: d.id.clone(),
            sid: d.sid.clone(),
            subject: d.subject.clone(),
            client_id: d.client_id.clone(),
            uri: d.uri.clone(),
            status: DeliveryStatus::Pending,
            attempts: d.attempts,
            last_error: None,
            // Not due for the retry job until the first attempts are over: if this node dies
            // during them, another one sends it then.
            next_attempt_at: Some(first_due),
            created_at: now,
            updated_at: now,
        };
        self.directory.logout_deliveries().insert(&record).await.map_err(log_error)
    }

    async fn attempted(&self, d: &Delivery, outcome: &DeliveryOutcome, now: i64) -> Result<(), DeliveryLogError> {
        let (status, error, next) = match outcome {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, None, None),
            DeliveryOutcome::Retry { at, error } => (DeliveryStatus::Pending, Some(error.clone()), Some(*at)),
            DeliveryOutcome::Failed { error } => (DeliveryStatus::Failed, Some(error.clone()), None),
        };
        self.directory.logout_deliveries().update(&d.id, status, d.attempts, error, next, now).await.map_err(log_error)
    }

    async fn claim_due(&self, now: i64, lease_until: i64) -> Result<Vec<Delivery>, DeliveryLogError> {
        let rows = self.directory.logout_deliveries().claim_due(now, lease_until, 100).await.map_err(log_error)?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery {
                id: r.id,
                sid: r.sid,
                subject: r.subject,
                client_id: r.client_id,
                uri: r.uri,
                attempts: r.attempts,
            })
            .collect())
    }
}

#[async_trait]
impl login_ui::wallet_sessions::WalletData for DirectoryAdapter {
    async fn recent_activity(
        &self,
        subject: &str,
        limit: u64,
    ) -> Result<Vec<login_ui::wallet_sessions::ActivityEntry>, login_ui::wallet_sessions::WalletDataError> {
        let query = directory::AuditQuery {
            subject: Some(subject.to_owned()),
            limit: Some(limit),
            newest_first: true,
            ..Default::default()
        };
        let records = self
            .directory
            .audit()
            .query(query)
            .await
            .map_err(|e| login_ui::wallet_sessions::WalletDataError(e.to_string()))?;
        Ok(records
            .into_iter()
            .map(|r| login_ui::wallet_sessions::ActivityEntry {
                at: r.at,
                event: r.event,
                outcome: r.outcome,
                source_ip: r.source_ip,
                client_id: r.client_id,
            })
            .collect())
    }
}
