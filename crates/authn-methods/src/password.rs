//! The password factor: argon2id hashes (OWASP parameters), verified off the async runtime.
//! Unknown identifiers are checked against a dummy hash so that timing does not reveal them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use directory::{AccountStatus, Directory};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
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

/// Checks a password against a stored PHC hash; the outputs are compared in constant time.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    // The parameters come from the stored hash, so older hashes keep verifying after a change.
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut memory = WorkingMemory::take(params.block_count());
    let mut computed = Zeroizing::new(vec![0u8; expected.len()]);
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut computed,
        memory.blocks.as_mut_slice(),
    );
    memory.give_back();
    hashed.is_ok() && bool::from(computed.as_slice().ct_eq(expected.as_bytes()))
}

/// How many password checks run right now, the most that ever ran at once, and how many argon2
/// working areas exist: what the bound on concurrent checks must keep small whatever clients do
/// (tests read it; a metrics endpoint may later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckStats {
    /// Checks started since the process began.
    pub started: usize,
    pub running: usize,
    pub peak: usize,
    pub working_areas: usize,
    /// The bound: checks that may run at once.
    pub bound: usize,
}

static STARTED: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static WORKING_AREAS: AtomicUsize = AtomicUsize::new(0);

pub fn check_stats() -> CheckStats {
    CheckStats {
        started: STARTED.load(Ordering::SeqCst),
        running: RUNNING.load(Ordering::SeqCst),
        peak: PEAK.load(Ordering::SeqCst),
        working_areas: WORKING_AREAS.load(Ordering::SeqCst),
        bound: max_concurrent_checks(),
    }
}

/// Counts a check as running for as long as it lives.
struct Running;

impl Running {
    fn start() -> Self {
        STARTED.fetch_add(1, Ordering::SeqCst);
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// argon2's working area (19 MiB at our parameters), reused from one check to the next.
/// Allocating it for each check costs the page faults of 19 MiB every time, and lets the
/// allocator keep a freed area in each of its per-thread arenas: hundreds of MiB of resident
/// memory after a burst of logins. The pool holds at most as many areas as checks may run at once.
struct WorkingMemory {
    blocks: Vec<Block>,
}

fn memory_pool() -> &'static std::sync::Mutex<Vec<Vec<Block>>> {
    static POOL: OnceLock<std::sync::Mutex<Vec<Vec<Block>>>> = OnceLock::new();
    POOL.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

impl WorkingMemory {
    fn take(blocks: usize) -> Self {
        let reused = {
            let mut pool = memory_pool().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pool.iter().position(|b| b.len() == blocks).map(|i| pool.swap_remove(i))
        };
        let blocks = reused.unwrap_or_else(|| {
            let areas = WORKING_AREAS.fetch_add(1, Ordering::SeqCst) + 1;
            report_working_areas(areas);
            vec![Block::default(); blocks]
        });
        WorkingMemory { blocks }
    }

    fn give_back(self) {
        let mut pool = memory_pool().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < max_concurrent_checks() {
            pool.push(self.blocks);
        } else {
            let areas = WORKING_AREAS.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
            report_working_areas(areas);
        }
    }
}

/// `caducee_password_working_areas`: the argon2 working areas this process holds, 19 MiB each,
/// what its resident memory grows by in steps under logins (docs/benchmarks.md, «Soak»).
fn report_working_areas(areas: usize) {
    metrics::gauge!("caducee_password_working_areas").set(areas as f64);
}

/// At most this many password checks run at once per core; the others wait their turn. Each
/// check needs 19 MiB, so without a bound a burst of logins (or an attacker posting passwords)
/// would take memory in proportion to the requests in flight, with no gain in throughput since
/// the work is CPU-bound.
const CHECKS_PER_CORE: usize = 2;

fn password_checks() -> &'static Arc<tokio::sync::Semaphore> {
    static CHECKS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    CHECKS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(max_concurrent_checks())))
}

/// Read once: `available_parallelism` asks the kernel (and may read cgroup files), which has
/// no place on every login.
fn max_concurrent_checks() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        cores.saturating_mul(CHECKS_PER_CORE)
    })
}

/// [`verify_password`] off the async runtime, within the bound on concurrent checks.
///
/// The permit goes into the blocking task and is released only when the check ends: if the
/// request is abandoned meanwhile (the client hung up), the check still runs to its end, and it
/// must keep its place until then, or clients posting logins and hanging up would run argon2
/// (and its 19 MiB) without bound.
pub async fn verify_password_bounded(password: Zeroizing<String>, hash: String) -> Result<bool, AuthError> {
    // The semaphore is never closed, so acquiring only waits.
    let permit = password_checks().clone().acquire_owned().await.map_err(|e| AuthError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        // Counted as running until the work ends, and only then is the place given up: the
        // next check cannot start before this one is counted out.
        let ok = {
            let _running = Running::start();
            verify_password(&password, &hash)
        };
        drop(permit);
        ok
    })
    .await
    .map_err(|e| AuthError::Internal(e.to_string()))
}

/// The hash unknown identifiers are checked against: our parameters, a random salt and a random
/// output, which no password can be expected to produce (a chance of 2^-256). Checking against it
/// costs what checking a stored hash costs. It is made, not computed: computing it would take
/// 19 MiB of working memory at start-up that the allocator keeps mapped in a node that then
/// idles (docs/benchmarks.md, «Memory»).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut salt = [0u8; 16];
        let mut output = [0u8; 32];
        rand::rng().fill_bytes(&mut salt);
        rand::rng().fill_bytes(&mut output);
        let (Ok(salt), Ok(output), Ok(hasher)) = (SaltString::encode_b64(&salt), Output::new(&output), hasher()) else {
            // Not reachable with these lengths; an empty hash verifies nothing (and costs
            // nothing, which only a broken build would show).
            return String::new();
        };
        let params = hasher.params();
        format!(
            "$argon2id$v=19$m={},t={},p={}${}${output}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            salt.as_str()
        )
    })
}

/// The identifier as typed, normalised the way accounts are stored (national identifiers), or
/// `None` when it cannot be one ([`directory::is_valid_national_id`]): such input is refused
/// before anything is stored or counted under it, so that no one can grow the store, the
/// counters or the audit log with it.
pub fn normalise_identifier(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    directory::is_valid_national_id(trimmed).then(|| trimmed.to_owned())
}

pub struct PasswordMethod {
    directory: Directory,
}

impl PasswordMethod {
    pub fn new(directory: Directory) -> Self {
        // Made now rather than on the first unknown identifier.
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

    fn identifier_field(&self) -> Option<&'static str> {
        Some("username")
    }

    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    async fn begin(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<Step, AuthError> {
        Ok(Step::Continue { state: MethodState::default(), prompt: Prompt::fields(&["username", "password"]) })
    }

    async fn submit(&self, cx: &AuthContext, _state: MethodState, input: &Input) -> Result<Step, AuthError> {
        let password = Zeroizing::new(input.get("password").unwrap_or("").to_owned());
        let account = match normalise_identifier(input.get("username").unwrap_or("")) {
            None => None,
            Some(identifier) => self.directory.professionals().get_by_national_id(&identifier).await?,
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
                also: Vec::new(),
                phishing_resistant: false,
                amr: vec!["pwd".to_owned()],
                at: cx.now,
                level: None,
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

    /// The dummy hash has the shape and cost of a stored one (same algorithm, version,
    /// parameters and lengths as [`hash_password`]'s) and verifies no password.
    #[test]
    fn the_dummy_hash_costs_what_a_stored_hash_costs() {
        let stored = PasswordHash::new(Box::leak(hash_password("x").unwrap().into_boxed_str())).unwrap();
        let dummy = PasswordHash::new(dummy_hash()).unwrap();
        assert_eq!(dummy.algorithm, stored.algorithm);
        assert_eq!(dummy.version, stored.version);
        assert_eq!(dummy.params, stored.params);
        assert_eq!(dummy.salt.unwrap().len(), stored.salt.unwrap().len());
        assert_eq!(dummy.hash.unwrap().len(), stored.hash.unwrap().len());
        assert_eq!(dummy_hash(), dummy_hash(), "made once");
        assert!(!verify_password("", dummy_hash()));
        assert!(!verify_password("x", dummy_hash()));
    }

    /// Hashes stored with other parameters or variants (older settings, imports) still verify,
    /// one working area size after another, and an altered hash never does.
    #[test]
    fn other_parameters_and_variants_verify() {
        let salt = SaltString::encode_b64(b"sel-de-guerande!").unwrap();
        for (alg, m, t) in
            [(Algorithm::Argon2id, 4096, 1), (Algorithm::Argon2i, 8192, 3), (Algorithm::Argon2d, 4096, 2)]
        {
            let params = Params::new(m, t, 1, Some(32)).unwrap();
            let h = Argon2::new(alg, Version::V0x13, params).hash_password(b"mot de passe", &salt).unwrap().to_string();
            assert!(verify_password("mot de passe", &h), "{h}");
            assert!(!verify_password("mot de passe.", &h), "{h}");
            // A character inside the output (the last one also carries unused bits).
            let i = h.len() - 5;
            let flipped = if &h[i..=i] == "A" { "B" } else { "A" };
            let altered = format!("{}{flipped}{}", &h[..i], &h[i + 1..]);
            assert!(!verify_password("mot de passe", &altered), "{altered}");
        }
        assert!(!verify_password("x", "$argon2id$v=19$m=4096,t=1,p=1$c2VsZGVndWVyYW5kZQ"), "no output");
    }
}
