//! Activation codes: a one-time code an administrator issues to a professional who has lost
//! every second factor (phone replaced, token broken, no mailbox), handed over out of band after
//! checking who they are. Typed in the login form's code field with the password, it signs them
//! in once, so that they can enrol a new authenticator from their wallet.
//!
//! Twelve digits (the code field is numeric), valid for [`ACTIVATION_VALIDITY`], usable once; a
//! new code replaces the previous one. Only a keyed hash is kept (HMAC under a key derived from
//! the master key, so that a copy of the store does not give the code away), in the session
//! store, so that every node sees it and it expires by itself. Guesses count against the account's lockout like any
//! other code.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use directory::KeyedHash;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use session_store::SessionStore;
use subtle::ConstantTimeEq as _;

use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
};

pub const METHOD_ID: MethodId = "activation-code";

/// How long an activation code stays valid: long enough for a letter or a phone call to reach
/// the professional, short enough not to linger.
pub const ACTIVATION_VALIDITY: Duration = Duration::from_secs(72 * 3600);

/// A code just issued, to hand over to the professional (it is not kept in clear, and `Debug`
/// does not show it).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// Twelve digits in groups of four, e.g. `4821 0937 5516`.
    pub code: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode").field("code", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Pending {
    hash: String,
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct State {
    subject: String,
}

fn key(subject: &str) -> String {
    crate::store_keys::ACTIVATION.key(subject)
}

/// Issues activation codes and checks them at login.
pub struct ActivationCodes {
    store: Arc<dyn SessionStore>,
    /// Keyed (purpose `"activation-code"`): whoever copies the store cannot test guesses.
    code_hash: KeyedHash,
}

impl ActivationCodes {
    pub fn new(store: Arc<dyn SessionStore>, code_hash: KeyedHash) -> Self {
        ActivationCodes { store, code_hash }
    }

    fn hash(&self, subject: &str, digits: &str) -> String {
        self.code_hash.hex(&[subject.as_bytes(), digits.as_bytes()])
    }

    /// A new code for `subject`, replacing any previous one.
    pub async fn issue(&self, subject: &str, now: i64) -> Result<IssuedCode, AuthError> {
        let digits: String = {
            let mut rng = rand::rng();
            (0..12).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
        };
        let expires_at = now + i64::try_from(ACTIVATION_VALIDITY.as_secs()).unwrap_or(i64::MAX);
        let pending = Pending { hash: self.hash(subject, &digits), expires_at };
        let bytes = serde_json::to_vec(&pending).map_err(|e| AuthError::Internal(e.to_string()))?;
        self.store.put(&key(subject), &bytes, ACTIVATION_VALIDITY).await?;
        let code = format!("{} {} {}", &digits[0..4], &digits[4..8], &digits[8..12]);
        Ok(IssuedCode { code, expires_at })
    }

    /// Withdraws a pending code (issued by mistake, or to the wrong person).
    pub async fn revoke(&self, subject: &str) -> Result<(), AuthError> {
        self.store.delete(&key(subject)).await?;
        Ok(())
    }
}

#[async_trait]
impl AuthMethod for ActivationCodes {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn needs_subject(&self) -> bool {
        true
    }

    /// Available while a code issued to this person is pending.
    async fn available(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<bool, AuthError> {
        match subject {
            Some(s) => Ok(self.store.get(&key(s)).await?.is_some()),
            None => Ok(false),
        }
    }

    async fn begin(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
        let Some(subject) = subject else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let state = serde_json::to_value(State { subject: subject.to_owned() })
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(Step::Continue { state: MethodState(state), prompt: Prompt::fields(&["otp"]) })
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        let Ok(State { subject }) = serde_json::from_value::<State>(state.0) else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let digits: String = input.get("otp").unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 12 {
            return Ok(Step::Failed(Failure::Bad));
        }
        let k = key(&subject);
        let Some(bytes) = self.store.get(&k).await? else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let Ok(pending) = serde_json::from_slice::<Pending>(&bytes) else {
            return Ok(Step::Failed(Failure::Bad));
        };
        if pending.expires_at <= cx.now {
            return Ok(Step::Failed(Failure::Expired));
        }
        if !bool::from(self.hash(&subject, &digits).as_bytes().ct_eq(pending.hash.as_bytes())) {
            return Ok(Step::Failed(Failure::Bad));
        }
        // Single use: of concurrent submissions of the right code, only one swaps it out.
        if !self.store.compare_and_swap(&k, &bytes, b"used", Duration::from_secs(1)).await? {
            return Ok(Step::Failed(Failure::Bad));
        }
        self.store.delete(&k).await?;
        Ok(Step::Done(FactorResult {
            subject,
            method: METHOD_ID.to_owned(),
            credential: None,
            kind: FactorKind::Possession,
            also: Vec::new(),
            phishing_resistant: false,
            amr: vec!["otp".to_owned()],
            at: cx.now,
            level: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use session_store::MemoryStore;

    fn cx(now: i64) -> AuthContext {
        AuthContext {
            now,
            source_ip: None,
            interaction: "test".into(),
            device_cookie: None,
            user_agent: None,
            client_name: String::new(),
            required_acr: None,
            tls_client_chain: None,
        }
    }

    async fn attempt(codes: &ActivationCodes, now: i64, subject: &str, typed: &str) -> Step {
        let Step::Continue { state, .. } = codes.begin(&cx(now), Some(subject)).await.unwrap() else { panic!("begin") };
        codes.submit(&cx(now), state, &Input::new().with("otp", typed)).await.unwrap()
    }

    #[tokio::test]
    async fn a_code_signs_in_once_for_its_person_until_it_expires() {
        let key = directory::DataKey::from_bytes([7; 32]).sub_keys().keyed_hash("activation-code");
        let codes = ActivationCodes::new(Arc::new(MemoryStore::new()), key);
        let issued = codes.issue("alice", 1000).await.unwrap();
        assert_eq!(issued.code.len(), 14);
        assert_eq!(issued.expires_at, 1000 + 72 * 3600);
        assert!(codes.available(&cx(1000), Some("alice")).await.unwrap());
        assert!(!codes.available(&cx(1000), Some("bob")).await.unwrap());
        assert_eq!(attempt(&codes, 1001, "bob", &issued.code).await, Step::Failed(Failure::Bad));
        assert_eq!(attempt(&codes, 1001, "alice", "000000000000").await, Step::Failed(Failure::Bad));
        assert!(matches!(attempt(&codes, 1002, "alice", &issued.code).await, Step::Done(f) if f.subject == "alice"));
        assert_eq!(attempt(&codes, 1003, "alice", &issued.code).await, Step::Failed(Failure::Bad), "used once");

        let again = codes.issue("alice", 2000).await.unwrap();
        let newest = codes.issue("alice", 2000).await.unwrap();
        assert_eq!(attempt(&codes, 2001, "alice", &again.code).await, Step::Failed(Failure::Bad), "replaced");
        let expired = attempt(&codes, newest.expires_at, "alice", &newest.code).await;
        assert_eq!(expired, Step::Failed(Failure::Expired));
        codes.revoke("alice").await.unwrap();
        assert!(!codes.available(&cx(2001), Some("alice")).await.unwrap());
    }
}
