//! The Redis backend, for several stateless nodes sharing one store.
//!
//! Every trait operation is one atomic Redis command, one Lua script or one MULTI/EXEC transaction,
//! so that single use and counting hold across nodes. The connection is a
//! [`ConnectionManager`], which reconnects by itself; while Redis is down or hung, operations fail
//! with [`StoreError::Unavailable`] within a few seconds rather than waiting, so that callers fail
//! closed and recover when Redis is back.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, Value};

use crate::{Counter, SessionStore, StoreError, StoreResult, ttl_millis};

/// Bounds each connection attempt; Redis normally sits on the same network, where a connection
/// takes milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds the wait for one reply on a live connection (a hung or overloaded server).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Hard bound on a whole operation, reconnection attempts included: past this, fail closed.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// Few, quick retries: a request waiting for a reconnection must still end within the bound above;
/// later requests start new attempts anyway.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Replaces the value only if it still equals the expected one: GET and SET cannot be split.
static COMPARE_AND_SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
            return 1
        end
        return 0
        ",
    )
});

/// Sets the expiry only when the counter is created, so the window does not slide. A counter
/// found without expiry (which our writes never leave) gets one too, so that none lives forever.
/// Answers the new value and the milliseconds the window has left.
static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local n = redis.call('INCR', KEYS[1])
        local ttl = redis.call('PTTL', KEYS[1])
        if n == 1 or ttl < 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[1])
            ttl = tonumber(ARGV[1])
        end
        return {n, ttl}
        ",
    )
});

/// Decrements an existing counter above zero, leaving its expiry; creates nothing.
static DECREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local v = redis.call('GET', KEYS[1])
        if v and tonumber(v) and tonumber(v) > 0 then
            redis.call('DECR', KEYS[1])
        end
        return 0
        ",
    )
});

/// The Redis [`SessionStore`]. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection's own Debug shows the URL, which may carry a password.
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` where TLS is compiled in) and checks that it answers.
    ///
    /// Fails with [`StoreError::Unavailable`] if the server cannot be reached within a few
    /// seconds. Must be called inside a tokio runtime.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_ca(url, None).await
    }

    /// [`RedisStore::connect`] to a `rediss://` server whose certificate chains to the CA of
    /// `ca_pem` (PEM) instead of the system's trust store.
    pub async fn connect_with_ca(url: &str, ca_pem: Option<&[u8]>) -> StoreResult<Self> {
        let client = client_with_ca(url, ca_pem)?;
        let connection = with_timeout("connect", ConnectionManager::new_with_config(client, config())).await?;
        Ok(RedisStore { connection, prefix: Arc::from("") })
    }

    /// Like [`RedisStore::connect`], but without waiting for the server: the first operations
    /// connect. Lets a node start while Redis is down; it refuses logins until Redis answers.
    /// Only the URL is checked here. Must be called inside a tokio runtime.
    pub fn connect_lazy(url: &str) -> StoreResult<Self> {
        Self::connect_lazy_with_ca(url, None)
    }

    /// [`RedisStore::connect_lazy`] with the CA of [`RedisStore::connect_with_ca`].
    pub fn connect_lazy_with_ca(url: &str, ca_pem: Option<&[u8]>) -> StoreResult<Self> {
        let connection = ConnectionManager::new_lazy_with_config(client_with_ca(url, ca_pem)?, config())
            .map_err(|e| unavailable("connect", &e))?;
        Ok(RedisStore { connection, prefix: Arc::from("") })
    }

    /// Puts every key of this store under `prefix` (for example `caducee:`), so that several
    /// deployments or test suites can share one Redis without seeing each other's keys.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }

    /// A handle for one operation: clones share the multiplexed connection.
    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

fn client_with_ca(url: &str, ca_pem: Option<&[u8]>) -> StoreResult<redis::Client> {
    // The error would echo the URL, password included: keep it out of messages and logs.
    let invalid = |_| StoreError::Invalid("the Redis URL cannot be parsed");
    // Two rustls back-ends are compiled in (through other crates): without a choice, the first
    // TLS connection would panic. Idempotent.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match ca_pem {
        None => redis::Client::open(url).map_err(invalid),
        Some(ca) => {
            let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) };
            redis::Client::build_with_tls(url, certificates).map_err(invalid)
        }
    }
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY)
}

async fn with_timeout<T>(what: &'static str, operation: impl Future<Output = RedisResult<T>>) -> StoreResult<T> {
    match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(map_error(what, &error)),
        Err(_) => Err(StoreError::Unavailable(format!("{what}: no answer from Redis within {OPERATION_TIMEOUT:?}"))),
    }
}

/// Mixing kinds (a set where a value is expected) is the caller's mistake, not an outage: report
/// it as the in-process backend does. Everything else means Redis cannot serve us.
fn map_error(what: &'static str, error: &RedisError) -> StoreError {
    if has_code(error, "WRONGTYPE") {
        return StoreError::Invalid("the key holds a value of another kind");
    }
    unavailable(what, error)
}

fn has_code(error: &RedisError, code: &str) -> bool {
    error.code() == Some(code)
        || error.clone().into_server_errors().is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == code))
}

fn unavailable(what: &'static str, error: &RedisError) -> StoreError {
    StoreError::Unavailable(format!("{what}: {error}"))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let ms = ttl_millis(ttl)?;
        let mut conn = self.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("PX").arg(ms);
        with_timeout("put", cmd.exec_async(&mut conn)).await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let ms = ttl_millis(ttl)?;
        let mut conn = self.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(ms);
        let reply: Value = with_timeout("put_if_absent", cmd.query_async(&mut conn)).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn();
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        with_timeout("get", cmd.query_async(&mut conn)).await
    }

    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        // MGET without keys is a syntax error.
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = with_timeout("get_many", cmd.query_async(&mut conn)).await?;
        if values.len() != keys.len() {
            return Err(StoreError::Unavailable("get_many: Redis answered for the wrong number of keys".into()));
        }
        Ok(values)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn();
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key(key));
        with_timeout("take", cmd.query_async(&mut conn)).await
    }

    async fn swap_existing(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<Option<Vec<u8>>> {
        let ms = ttl_millis(ttl)?;
        let mut conn = self.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("XX").arg("GET").arg("PX").arg(ms);
        with_timeout("swap_existing", cmd.query_async(&mut conn)).await
    }

    async fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8], ttl: Duration) -> StoreResult<bool> {
        let ms = ttl_millis(ttl)?;
        let mut conn = self.conn();
        let mut invocation = COMPARE_AND_SWAP.key(self.key(key));
        invocation.arg(expected).arg(new).arg(ms);
        let swapped: i64 = with_timeout("compare_and_swap", invocation.invoke_async(&mut conn)).await?;
        Ok(swapped == 1)
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        let removed: u64 = with_timeout("delete", cmd.query_async(&mut conn)).await?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<Counter> {
        let ms = ttl_millis(ttl)?;
        let mut conn = self.conn();
        let mut invocation = INCREMENT.key(self.key(key));
        invocation.arg(ms);
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT, invocation.invoke_async::<(i64, i64)>(&mut conn)).await;
        match outcome {
            Ok(Ok((n, left))) => {
                let value =
                    u64::try_from(n).map_err(|_| StoreError::Invalid("the key holds a value that is not a counter"))?;
                let resets_in = Duration::from_millis(u64::try_from(left).unwrap_or(0));
                Ok(Counter { value, resets_in })
            }
            // INCR's own complaints: a value that is not a decimal number, or an overflow.
            Ok(Err(e)) if e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError) => {
                Err(StoreError::Invalid("the key holds a value that is not a counter"))
            }
            Ok(Err(e)) => Err(map_error("increment", &e)),
            Err(_) => {
                Err(StoreError::Unavailable(format!("increment: no answer from Redis within {OPERATION_TIMEOUT:?}")))
            }
        }
    }

    async fn decrement(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let invocation = DECREMENT.key(self.key(key));
        let _: i64 = with_timeout("decrement", invocation.invoke_async(&mut conn)).await?;
        Ok(())
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        let ms = ttl_millis(ttl)?;
        let key = self.key(key);
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("SADD").arg(&key).arg(member).ignore().cmd("PEXPIRE").arg(&key).arg(ms).ignore();
        with_timeout("set_add", pipe.exec_async(&mut conn)).await
    }

    async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut cmd = redis::cmd("SREM");
        cmd.arg(self.key(key)).arg(member);
        with_timeout("set_remove", cmd.exec_async(&mut conn)).await
    }

    async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.key(key));
        with_timeout("set_members", cmd.query_async(&mut conn)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let reply: String = with_timeout("ping", redis::cmd("PING").query_async(&mut conn)).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!("ping: unexpected answer {reply:?}")))
        }
    }
}
