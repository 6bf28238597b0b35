//! The connection to the primary of a service watched by Redis Sentinel, following failovers.
//!
//! The `redis` crate finds the primary through the sentinels (it skips a primary they flag as
//! down and checks that the node it names says it is a primary), but keeps no connection that
//! follows a failover. This module owns that: one multiplexed connection to the primary known,
//! forgotten as soon as it fails (a connection or I/O error, a timeout) or answers `READONLY`
//! (the node was demoted to replica), after which the next operation asks the sentinels again.
//! While no primary is known, operations fail at once with the last error: the store fails
//! closed rather than answering from a replica.
//!
//! A command refused with `READONLY` was not executed, so it is sent once more to the new
//! primary. A command whose connection broke is not: it may have run, and sending it again could
//! consume a code twice.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// Bounds one search for the primary (the sentinels, then the node they name): a hung sentinel
/// or node must not hold every operation waiting behind the search.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A handle on the primary of one service; clones share the connection and the search.
#[derive(Clone)]
pub(crate) struct SentinelConnection {
    inner: Arc<Inner>,
}

struct Inner {
    /// Serialises the searches: one at a time asks the sentinels, the others wait for its outcome.
    client: tokio::sync::Mutex<SentinelClient>,
    state: Mutex<State>,
    config: AsyncConnectionConfig,
}

#[derive(Default)]
struct State {
    primary: Option<Primary>,
    /// Counts the searches that ended, so that an operation that waited for one knows it did.
    searches: u64,
    /// Counts the primaries connected, to tell an old connection from the current one.
    generation: u64,
    /// Why the last search failed, for the operations that waited for it.
    last_failure: Option<String>,
}

#[derive(Clone)]
struct Primary {
    connection: MultiplexedConnection,
    generation: u64,
}

/// What an answer says about the connection it came on.
enum Verdict {
    /// The primary answered (possibly with an error about the data).
    Answered,
    /// The node is no longer the primary: the command was refused, not executed.
    Demoted,
    /// The connection failed; the command may or may not have run.
    Broken,
}

impl SentinelConnection {
    /// No I/O: the first operation searches for the primary.
    pub(crate) fn new(client: SentinelClient, config: AsyncConnectionConfig) -> Self {
        SentinelConnection {
            inner: Arc::new(Inner {
                client: tokio::sync::Mutex::new(client),
                state: Mutex::new(State::default()),
                config,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding this lock leaves consistent data (plain assignments).
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The primary known, or a new search for it.
    async fn primary(&self) -> RedisResult<Primary> {
        let searches_seen = {
            let state = self.state();
            if let Some(primary) = &state.primary {
                return Ok(primary.clone());
            }
            state.searches
        };
        let mut client = self.inner.client.lock().await;
        {
            let state = self.state();
            if let Some(primary) = &state.primary {
                return Ok(primary.clone());
            }
            if state.searches != searches_seen {
                // A search ended, without a primary, while this operation waited: fail now rather
                // than queue one search after another while the service has no primary.
                let why = state.last_failure.clone().unwrap_or_default();
                return Err(no_primary(why));
            }
        }
        let search = async {
            let node = client.async_get_client().await?;
            node.get_multiplexed_async_connection_with_config(&self.inner.config).await
        };
        let outcome = match tokio::time::timeout(DISCOVERY_TIMEOUT, search).await {
            Ok(outcome) => outcome,
            Err(_) => Err(no_primary(format!(
                "the sentinels and the primary they name did not answer within {DISCOVERY_TIMEOUT:?}"
            ))),
        };
        drop(client);
        let mut state = self.state();
        state.searches += 1;
        match outcome {
            Ok(connection) => {
                state.generation += 1;
                let primary = Primary { connection, generation: state.generation };
                state.primary = Some(primary.clone());
                state.last_failure = None;
                tracing::info!("connected to the Redis primary named by the sentinels");
                Ok(primary)
            }
            Err(error) => {
                state.last_failure = Some(error.to_string());
                tracing::warn!(%error, "no Redis primary found through the sentinels");
                Err(error)
            }
        }
    }

    /// Forgets `generation`'s connection, unless another already replaced it.
    fn forget(&self, generation: u64) {
        let mut state = self.state();
        if state.primary.as_ref().is_some_and(|p| p.generation == generation) {
            state.primary = None;
            tracing::warn!("the Redis primary stopped answering as one: asking the sentinels again");
        }
    }
}

fn no_primary(why: String) -> RedisError {
    RedisError::from((ErrorKind::MasterNameNotFoundBySentinel, "no Redis primary known", why))
}

fn verdict_of_error(error: &RedisError) -> Verdict {
    if is_readonly(error.code(), &error.to_string()) {
        Verdict::Demoted
    } else if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
        || error.code() == Some("MASTERDOWN")
    {
        Verdict::Broken
    } else {
        Verdict::Answered
    }
}

fn verdict(outcome: &RedisResult<Value>) -> Verdict {
    match outcome {
        Ok(Value::ServerError(error)) if is_readonly(Some(error.code()), &format!("{error:?}")) => Verdict::Demoted,
        Ok(_) => Verdict::Answered,
        Err(error) => verdict_of_error(error),
    }
}

/// `READONLY`, as a command's code or inside a script's error (a script's write on a replica).
fn is_readonly(code: Option<&str>, text: &str) -> bool {
    code == Some("READONLY") || text.contains("READONLY")
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut resent = false;
            loop {
                let mut primary = self.primary().await?;
                let outcome = primary.connection.req_packed_command(cmd).await;
                match verdict(&outcome) {
                    Verdict::Answered => return outcome,
                    Verdict::Demoted if !resent => {
                        self.forget(primary.generation);
                        resent = true;
                    }
                    Verdict::Demoted | Verdict::Broken => {
                        self.forget(primary.generation);
                        return outcome;
                    }
                }
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // Pipelines are not resent: part of one may have run.
        Box::pin(async move {
            let mut primary = self.primary().await?;
            let outcome = primary.connection.req_packed_commands(pipeline, offset, count).await;
            let broken = match &outcome {
                Ok(values) => values.iter().any(|v| matches!(verdict(&Ok(v.clone())), Verdict::Demoted)),
                Err(error) => !matches!(verdict_of_error(error), Verdict::Answered),
            };
            if broken {
                self.forget(primary.generation);
            }
            outcome
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}
