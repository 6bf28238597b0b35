//! Where a login stands, kept in the session store under the interaction's id so that any node
//! takes the next step: who is trying (identifier and source, for the lockout), the factors
//! already proven, and the method under way with its private state and the prompt it showed.
//!
//! Every step reads it, then writes it back with a compare-and-swap on the bytes it read: of
//! two tabs or two nodes taking a step of one login at once, one moves it on and the other is
//! told so (no factor is counted twice, no state is lost).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_store::SessionStore;

use crate::lockout::Source;
use crate::method::{AuthError, FactorResult, MethodState, Prompt};

/// An attempt on an identifier, from a source, as the lockout counts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Attempt {
    pub identifier: String,
    pub source: Source,
}

/// The method under way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Current {
    pub method: String,
    pub state: MethodState,
    pub prompt: Prompt,
    /// Out-of-band steps: when the other device can no longer answer, and how soon to ask.
    pub expires_at: Option<i64>,
    pub poll_after_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub attempt: Option<Attempt>,
    pub factors: Vec<FactorResult>,
    pub current: Option<Current>,
}

impl Progress {
    /// The person the factors so far prove (they all name the same one: the engine sees to it).
    pub fn subject(&self) -> Option<&str> {
        self.factors.first().map(|f| f.subject.as_str())
    }
}

/// A progress as read, with the bytes a write must find unchanged.
pub(crate) struct Snapshot {
    pub progress: Progress,
    read: Option<Vec<u8>>,
}

/// The store of login progress.
pub(crate) struct Progresses {
    store: Arc<dyn SessionStore>,
    ttl: Duration,
}

/// Another step of the same login moved it on first.
#[derive(Debug)]
pub(crate) struct Raced;

fn key(interaction: &str) -> String {
    crate::store_keys::LOGIN_PROGRESS.key(interaction)
}

fn internal(e: serde_json::Error) -> AuthError {
    AuthError::Internal(e.to_string())
}

/// Written in place of a finished login's progress, for a moment: a step racing the last one
/// finds it changed.
const FINISHED: &[u8] = b"finished";

impl Progresses {
    pub fn new(store: Arc<dyn SessionStore>, ttl: Duration) -> Self {
        Progresses { store, ttl }
    }

    pub async fn read(&self, interaction: &str) -> Result<Snapshot, AuthError> {
        let read = self.store.get(&key(interaction)).await?;
        let progress = match read.as_deref() {
            // A finished login, or one written by an older version: nothing to continue.
            Some(bytes) => serde_json::from_slice(bytes).unwrap_or_default(),
            None => Progress::default(),
        };
        Ok(Snapshot { progress, read })
    }

    /// Writes `progress` if the login has not moved since `snapshot` was read.
    pub async fn write(
        &self,
        interaction: &str,
        snapshot: &Snapshot,
        progress: &Progress,
    ) -> Result<Result<(), Raced>, AuthError> {
        let bytes = serde_json::to_vec(progress).map_err(internal)?;
        let written = match &snapshot.read {
            None => self.store.put_if_absent(&key(interaction), &bytes, self.ttl).await?,
            Some(old) => self.store.compare_and_swap(&key(interaction), old, &bytes, self.ttl).await?,
        };
        Ok(if written { Ok(()) } else { Err(Raced) })
    }

    /// Ends the login's progress if it has not moved since `snapshot`: only one step finishes it.
    pub async fn finish(&self, interaction: &str, snapshot: &Snapshot) -> Result<Result<(), Raced>, AuthError> {
        let k = key(interaction);
        let short = Duration::from_secs(5);
        let finished = match &snapshot.read {
            None => self.store.put_if_absent(&k, FINISHED, short).await?,
            Some(old) => self.store.compare_and_swap(&k, old, FINISHED, short).await?,
        };
        Ok(if finished { Ok(()) } else { Err(Raced) })
    }
}
