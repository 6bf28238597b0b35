//! The password factor: argon2id hashes (OWASP parameters), verified off the async runtime.
//! Unknown identifiers are checked against a dummy hash so that timing does not reveal them.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use directory::{AccountStatus, Directory};
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
};

pub const METHOD_ID: MethodId = "pwd";

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| AuthError::Internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password for storage (PHC string).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Internal(e.to_string()))?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(e.to_string()))
}

/// Checks a password against a stored PHC hash (constant time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // The parameters come from the stored hash, so older hashes keep verifying after a change.
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// At most this many password checks run at once per core; the others wait their turn. Each
/// check needs 19 MiB, so without a bound a burst of logins (or an attacker posting passwords)
/// would take memory in proportion to the requests in flight, with no gain in throughput since
/// the work is CPU-bound.
const CHECKS_PER_CORE: usize = 2;

fn password_checks() -> &'static tokio::sync::Semaphore {
    static CHECKS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    CHECKS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new(cores.saturating_mul(CHECKS_PER_CORE))
    })
}

/// [`verify_password`] off the async runtime, within the bound on concurrent checks.
pub async fn verify_password_bounded(password: Zeroizing<String>, hash: String) -> Result<bool, AuthError> {
    // The semaphore is never closed, so acquiring only waits.
    let permit = password_checks().acquire().await.map_err(|e| AuthError::Internal(e.to_string()))?;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    drop(permit);
    Ok(ok)
}

/// A hash of a random password, computed once, verified when the identifier is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 24];
        rand::rng().fill_bytes(&mut random);
        let password: String = random.iter().map(|b| char::from(b'a' + b % 26)).collect();
        hash_password(&password).unwrap_or_default()
    })
}

/// The identifier as typed, normalised the way accounts are stored (national identifiers).
pub fn normalise_identifier(raw: &str) -> String {
    raw.trim().to_owned()
}

pub struct PasswordMethod {
    directory: Directory,
}

impl PasswordMethod {
    pub fn new(directory: Directory) -> Self {
        // Warm the dummy hash now rather than on the first unknown identifier.
        let _ = dummy_hash();
        PasswordMethod { directory }
    }
}

#[async_trait]
impl AuthMethod for PasswordMethod {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Knowledge
    }

    fn needs_subject(&self) -> bool {
        false
    }

    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    async fn begin(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<Step, AuthError> {
        Ok(Step::Continue { state: MethodState::default(), prompt: Prompt::Fields(vec!["username", "password"]) })
    }

    async fn submit(&self, cx: &AuthContext, _state: MethodState, input: &Input) -> Result<Step, AuthError> {
        let identifier = normalise_identifier(input.get("username").unwrap_or(""));
        let password = Zeroizing::new(input.get("password").unwrap_or("").to_owned());
        let account = if identifier.is_empty() || identifier.len() > 64 {
            None
        } else {
            self.directory.professionals().get_by_national_id(&identifier).await?
        };
        let (hash, candidate) = match &account {
            Some(p) if p.status == AccountStatus::Active => match &p.password_hash {
                Some(h) => (h.clone(), Some(p.subject.clone())),
                None => (dummy_hash().to_owned(), None),
            },
            _ => (dummy_hash().to_owned(), None),
        };
        let ok = verify_password_bounded(password, hash).await?;
        match (ok, candidate) {
            (true, Some(subject)) => Ok(Step::Done(FactorResult {
                subject,
                method: METHOD_ID.to_owned(),
                credential: None,
                kind: FactorKind::Knowledge,
                phishing_resistant: false,
                amr: vec!["pwd".to_owned()],
                at: cx.now,
            })),
            _ => Ok(Step::Failed(Failure::Bad)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash_password("correct horse").unwrap_or_default(), h, "salts differ");
    }
}
