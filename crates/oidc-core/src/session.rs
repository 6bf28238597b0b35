//! Single sign-on sessions, kept in the session store so that every node sees them.
//!
//! The browser holds `sid.secret`; the store holds the session under its `sid` with only a hash
//! of the secret. `sid` is also sent to relying parties (ID token, logout token), so knowing it
//! must not be enough to wear the session: the secret is.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_store::{SessionStore, StoreError};

use crate::store_keys;
use crate::util::{constant_time_eq, random_id, random_token, sha256_b64};

/// What the login pages report once a person is authenticated (mapped from the
/// authentication methods' result; the protocol never learns how it was done beyond this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResult {
    pub subject: String,
    pub acr: String,
    pub amr: Vec<String>,
    pub auth_time: i64,
    /// The methods used (for the professional's own view of their sessions).
    pub methods: Vec<String>,
}

/// A relying party this session has signed into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClient {
    pub client_id: String,
    pub first_at: i64,
    pub last_at: i64,
}

/// A person's SSO session at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSession {
    pub sid: String,
    secret_hash: String,
    pub subject: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub methods: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The last sign-in, single sign-on or token refresh under this session (the idle timeout
    /// counts from it; sessions written before it existed count from `created_at`).
    #[serde(default)]
    pub last_active_at: i64,
    /// Every relying party that received tokens under this session (for logout).
    pub clients: Vec<SessionClient>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Where a session was opened from, for the professional's and the admins' eyes.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

const MAX_CAS_ATTEMPTS: usize = 16;

fn key(sid: &str) -> String {
    store_keys::SSO.key(sid)
}

fn subject_key(subject: &str) -> String {
    store_keys::SSO_SUBJECT.key(subject)
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt session record: {0}")]
    Corrupt(String),
    #[error("session changed concurrently too often")]
    Contended,
}

impl From<SessionError> for crate::error::ProviderError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Store(s) => crate::error::ProviderError::Store(s),
            // Not a broken record: the caller may try again (503, not 500).
            SessionError::Contended => crate::error::ProviderError::Store(StoreError::Unavailable(
                "the session changed concurrently too often".into(),
            )),
            other => crate::error::ProviderError::Corrupt(other.to_string()),
        }
    }
}

impl From<SessionError> for crate::error::EndpointError {
    fn from(e: SessionError) -> Self {
        crate::error::EndpointError::Provider(e.into())
    }
}

/// Reads and writes SSO sessions.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    ttl: i64,
    /// Seconds without activity after which a session is over (none: only `ttl` ends it).
    idle: Option<i64>,
}

/// A refresh writes the session's activity at most this often (seconds): the idle timeout is
/// counted in minutes, and a write per refresh would be a cost for nothing.
const ACTIVITY_GRAIN: i64 = 60;

fn ttl_until(expires_at: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0).max(1))
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, ttl: i64) -> Self {
        Sessions { store, ttl, idle: None }
    }

    /// Sessions also end after `idle` seconds without activity (Keycloak's «SSO Session Idle»).
    pub fn with_idle_timeout(mut self, idle: Option<i64>) -> Self {
        self.idle = idle.filter(|i| *i > 0);
        self
    }

    /// Whether a session is still on: before its end, and active recently enough.
    fn live(&self, s: &SsoSession, now: i64) -> bool {
        s.expires_at > now && self.idle.is_none_or(|idle| now - s.last_active_at.max(s.created_at) <= idle)
    }

    /// Opens a new session; returns it and the cookie value the browser must hold.
    pub async fn create(
        &self,
        login: &LoginResult,
        origin: &RequestOrigin,
        now: i64,
    ) -> Result<(SsoSession, String), SessionError> {
        let sid = random_id();
        let secret = random_token();
        let session = SsoSession {
            sid: sid.clone(),
            secret_hash: sha256_b64(secret.as_bytes()),
            subject: login.subject.clone(),
            auth_time: login.auth_time,
            acr: login.acr.clone(),
            amr: login.amr.clone(),
            methods: login.methods.clone(),
            created_at: now,
            expires_at: now + self.ttl,
            last_active_at: now,
            clients: Vec::new(),
            source_ip: origin.source_ip.clone(),
            user_agent: origin.user_agent.clone(),
        };
        let ttl = ttl_until(session.expires_at, now);
        self.store.put(&key(&sid), &encode(&session)?, ttl).await?;
        self.store
            .set_add(&subject_key(&session.subject), &sid, Duration::from_secs(u64::try_from(self.ttl).unwrap_or(1)))
            .await?;
        Ok((session, format!("{sid}.{secret}")))
    }

    pub async fn get(&self, sid: &str, now: i64) -> Result<Option<SsoSession>, SessionError> {
        match self.store.get(&key(sid)).await? {
            None => Ok(None),
            Some(bytes) => {
                let s = decode(&bytes)?;
                Ok(self.live(&s, now).then_some(s))
            }
        }
    }

    /// The session a browser's cookie designates, if the cookie's secret matches.
    pub async fn from_cookie(&self, cookie: &str, now: i64) -> Result<Option<SsoSession>, SessionError> {
        let Some((sid, secret)) = cookie.split_once('.') else {
            return Ok(None);
        };
        if sid.len() > 64 || secret.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self.get(sid, now).await? else {
            return Ok(None);
        };
        let presented = sha256_b64(secret.as_bytes());
        Ok(constant_time_eq(presented.as_bytes(), session.secret_hash.as_bytes()).then_some(session))
    }

    /// Applies `change` to the session with compare-and-swap, so that two nodes updating the
    /// same session at once both land. Returns `None` if the session is gone.
    async fn update<F>(&self, sid: &str, now: i64, mut change: F) -> Result<Option<SsoSession>, SessionError>
    where
        F: FnMut(&mut SsoSession) + Send,
    {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(old_bytes) = self.store.get(&key(sid)).await? else {
                return Ok(None);
            };
            let mut session = decode(&old_bytes)?;
            if !self.live(&session, now) {
                return Ok(None);
            }
            change(&mut session);
            let new_bytes = encode(&session)?;
            // Many requests of one session in the same second (codes for several relying
            // parties, tabs) change nothing after the first: no write, no contention.
            if new_bytes == old_bytes {
                return Ok(Some(session));
            }
            let ttl = ttl_until(session.expires_at, now);
            if self.store.compare_and_swap(&key(sid), &old_bytes, &new_bytes, ttl).await? {
                return Ok(Some(session));
            }
            // Let the writer that won finish before reading again.
            tokio::task::yield_now().await;
        }
        Err(SessionError::Contended)
    }

    /// Records that `client_id` received tokens under this session.
    pub async fn add_client(&self, sid: &str, client_id: &str, now: i64) -> Result<Option<SsoSession>, SessionError> {
        self.update(sid, now, |s| {
            s.last_active_at = now;
            match s.clients.iter_mut().find(|c| c.client_id == client_id) {
                Some(c) => c.last_at = now,
                None => s.clients.push(SessionClient { client_id: client_id.to_owned(), first_at: now, last_at: now }),
            }
        })
        .await
    }

    /// A token refresh under this session counts as activity (only when an idle timeout is set,
    /// and at most once a minute).
    pub async fn touch(&self, session: &SsoSession, now: i64) -> Result<(), SessionError> {
        if self.idle.is_none() || now - session.last_active_at < ACTIVITY_GRAIN {
            return Ok(());
        }
        self.update(&session.sid, now, |s| s.last_active_at = now).await?;
        Ok(())
    }

    /// The same person authenticated again (re-authentication or step-up) in this session.
    /// Returns the session and the new cookie value the browser must hold: the secret changes
    /// in the same compare-and-swap as the authentication, so a cookie copied before a login
    /// never wears what that login is worth, and the old cookie stops working at once. The
    /// `sid` stays: relying parties hold it in ID tokens and logout tokens.
    pub async fn reauthenticate(
        &self,
        sid: &str,
        login: &LoginResult,
        now: i64,
    ) -> Result<Option<(SsoSession, String)>, SessionError> {
        let secret = random_token();
        let secret_hash = sha256_b64(secret.as_bytes());
        let updated = self
            .update(sid, now, |s| {
                s.secret_hash.clone_from(&secret_hash);
                s.auth_time = login.auth_time;
                s.acr = login.acr.clone();
                s.amr = login.amr.clone();
                s.methods = login.methods.clone();
                s.last_active_at = now;
            })
            .await?;
        Ok(updated.map(|session| (session, format!("{sid}.{secret}"))))
    }

    /// Ends the session: it is removed atomically, so only one caller gets it back.
    pub async fn end(&self, sid: &str) -> Result<Option<SsoSession>, SessionError> {
        let Some(bytes) = self.store.take(&key(sid)).await? else {
            return Ok(None);
        };
        let session = decode(&bytes)?;
        self.store.set_remove(&subject_key(&session.subject), sid).await?;
        Ok(Some(session))
    }

    /// The live sessions of a professional.
    pub async fn list_for_subject(&self, subject: &str, now: i64) -> Result<Vec<SsoSession>, SessionError> {
        let sids = self.store.set_members(&subject_key(subject)).await?;
        let mut out = Vec::with_capacity(sids.len());
        for sid in sids {
            match self.get(&sid, now).await? {
                Some(s) => out.push(s),
                None => self.store.set_remove(&subject_key(subject), &sid).await?,
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    /// Whether `sid` is still a live session (tokens issued under it are usable).
    pub async fn is_alive(&self, sid: &str, now: i64) -> Result<bool, SessionError> {
        Ok(self.get(sid, now).await?.is_some())
    }
}

fn encode(session: &SsoSession) -> Result<Vec<u8>, SessionError> {
    serde_json::to_vec(session).map_err(|e| SessionError::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<SsoSession, SessionError> {
    serde_json::from_slice(bytes).map_err(|e| SessionError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn login(subject: &str, auth_time: i64) -> LoginResult {
        LoginResult {
            subject: subject.into(),
            acr: "eidas1".into(),
            amr: vec!["pwd".into(), "otp".into()],
            auth_time,
            methods: vec!["pwd".into()],
        }
    }

    /// Issue 13, item 9: a re-authentication gives the session a new secret; the cookie from
    /// before no longer designates it, the new one does, and the `sid` stays.
    #[tokio::test]
    async fn item_9_reauthentication_replaces_the_session_secret() {
        let store: Arc<dyn SessionStore> = Arc::new(session_store::MemoryStore::new());
        let sessions = Sessions::new(store, 3600);
        let (session, old_cookie) = sessions.create(&login("sub", 100), &RequestOrigin::default(), 100).await.unwrap();
        let (again, new_cookie) =
            sessions.reauthenticate(&session.sid, &login("sub", 200), 200).await.unwrap().unwrap();
        assert_eq!(again.sid, session.sid);
        assert_eq!(again.auth_time, 200);
        assert_ne!(new_cookie, old_cookie);
        assert!(new_cookie.starts_with(&format!("{}.", session.sid)));
        assert!(sessions.from_cookie(&old_cookie, 201).await.unwrap().is_none(), "the old cookie is dead");
        assert_eq!(sessions.from_cookie(&new_cookie, 201).await.unwrap().map(|s| s.auth_time), Some(200));
        assert!(sessions.reauthenticate("gone", &login("sub", 200), 200).await.unwrap().is_none());
    }

    /// Codes for many relying parties at once, under one session: every request succeeds, and
    /// after the first of a second nothing is rewritten.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_requests_of_one_session_all_land() {
        let store: Arc<dyn SessionStore> = Arc::new(session_store::MemoryStore::new());
        let sessions = Sessions::new(store, 3600);
        let (session, _) = sessions.create(&login("sub", 100), &RequestOrigin::default(), 100).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (sessions, sid) = (sessions.clone(), session.sid.clone());
            tasks.push(tokio::spawn(async move { sessions.add_client(&sid, &format!("rp{}", i % 4), 101).await }));
        }
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_some(), "every update lands");
        }
        let clients = sessions.get(&session.sid, 101).await.unwrap().unwrap().clients;
        assert_eq!(clients.len(), 4, "each relying party recorded once");
    }
}
