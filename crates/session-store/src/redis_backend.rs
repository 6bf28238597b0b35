//! The Redis backend, for several stateless nodes sharing one store: one server, a Redis Cluster,
//! or a primary and its replicas under Redis Sentinel ([`RedisTopology`]).
//!
//! Every trait operation is one atomic Redis command or one Lua script, and each touches exactly
//! one key: single use and counting hold across nodes, and on a cluster every operation goes
//! whole to the one node that owns its key's slot (no `{hash tag}` is needed, since no record
//! spans two keys). `get_many` reads keys of many slots: on a cluster the `redis` crate splits its
//! `MGET` by slot and puts the answers back in order.
//!
//! The connections reconnect by themselves: [`ConnectionManager`] for one server, the crate's
//! cluster connection (which follows `MOVED` and refreshes its slot map) for a cluster, and
//! [`SentinelConnection`] (which asks the sentinels again after a failover) for Sentinel. While
//! Redis is down, hung or without a primary, operations fail with [`StoreError::Unavailable`]
//! within [`OPERATION_TIMEOUT`] rather than waiting, so that callers fail closed and recover
//! when Redis is back.
//!
//! Where a connection library resends a command after a connection broke (the cluster client
//! does), the command may run twice. Every operation is written so that a second run can only
//! refuse: a second `take` finds nothing, a second `swap_existing` sees its own marker (a
//! replay), a second `increment` counts one more failure. Never a code granted twice.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Script, ServerErrorKind,
    Value,
};

use crate::redis_sentinel::SentinelConnection;
use crate::redis_topology::{RedisTopology, cluster_builder, sentinel_client, single_client};
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
/// The cluster client retries a request on a redirection (`MOVED`, `ASK`) or a failed node, with
/// waits that must also fit in [`OPERATION_TIMEOUT`].
const CLUSTER_RETRIES: u32 = 3;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 50;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

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

/// Adds a member and sets the whole set's time to live. A script rather than MULTI/EXEC: the
/// same one-key atomic unit on one server, a cluster or a Sentinel primary.
static SET_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('SADD', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 0
        ",
    )
});

/// The Redis [`SessionStore`]. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connections' own Debug shows URLs, which may carry a password: only the kind here.
        f.debug_struct("RedisStore")
            .field("topology", &self.connection.kind())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The connection of each kind of deployment; every one reconnects by itself.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(SentinelConnection),
}

impl Connection {
    fn kind(&self) -> &'static str {
        match self {
            Connection::Single(_) => "single",
            Connection::Cluster(_) => "cluster",
            Connection::Sentinel(_) => "sentinel",
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
            Connection::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
            Connection::Sentinel(c) => c.get_db(),
        }
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
        Self::connect_to(&RedisTopology::Single(url.to_owned()), ca_pem).await
    }

    /// Connects to Redis as deployed (one server, a cluster, or Sentinel), trusting the CA of
    /// `ca_pem` (PEM) for every TLS connection when given, and checks that it answers.
    ///
    /// Fails with [`StoreError::Unavailable`] if Redis cannot be reached within a few seconds.
    /// Must be called inside a tokio runtime.
    pub async fn connect_to(topology: &RedisTopology, ca_pem: Option<&[u8]>) -> StoreResult<Self> {
        let connection = match topology {
            RedisTopology::Single(url) => {
                let client = single_client(url, ca_pem)?;
                Connection::Single(
                    with_timeout("connect", ConnectionManager::new_with_config(client, manager_config())).await?,
                )
            }
            RedisTopology::Cluster(nodes) => {
                let client = cluster_client(nodes, ca_pem)?;
                Connection::Cluster(with_timeout("connect", client.get_async_connection()).await?)
            }
            RedisTopology::Sentinel(settings) => {
                Connection::Sentinel(SentinelConnection::new(sentinel_client(settings, ca_pem)?, node_config()))
            }
        };
        let store = RedisStore { connection, prefix: Arc::from("") };
        // The cluster and Sentinel connections answer only once asked something.
        store.ping().await?;
        Ok(store)
    }

    /// Like [`RedisStore::connect`], but without waiting for the server: the first operations
    /// connect. Lets a node start while Redis is down; it refuses logins until Redis answers.
    /// Only the URL is checked here. Must be called inside a tokio runtime.
    pub fn connect_lazy(url: &str) -> StoreResult<Self> {
        Self::connect_lazy_with_ca(url, None)
    }

    /// [`RedisStore::connect_lazy`] with the CA of [`RedisStore::connect_with_ca`].
    pub fn connect_lazy_with_ca(url: &str, ca_pem: Option<&[u8]>) -> StoreResult<Self> {
        Self::connect_lazy_to(&RedisTopology::Single(url.to_owned()), ca_pem)
    }

    /// [`RedisStore::connect_to`] without waiting for Redis: the first operations connect (to
    /// the seed nodes, or through the sentinels). Only the settings are checked here. Must be
    /// called inside a tokio runtime.
    pub fn connect_lazy_to(topology: &RedisTopology, ca_pem: Option<&[u8]>) -> StoreResult<Self> {
        let connection = match topology {
            RedisTopology::Single(url) => Connection::Single(
                ConnectionManager::new_lazy_with_config(single_client(url, ca_pem)?, manager_config())
                    .map_err(|e| unavailable("connect", &e))?,
            ),
            RedisTopology::Cluster(nodes) => Connection::Cluster(
                // The configuration given here replaces the builder's timeouts: the same again.
                cluster_client(nodes, ca_pem)?.get_pending_async_connection_with_config(
                    redis::cluster::ClusterConfig::new()
                        .set_connection_timeout(CONNECT_TIMEOUT)
                        .set_response_timeout(RESPONSE_TIMEOUT),
                ),
            ),
            RedisTopology::Sentinel(settings) => {
                Connection::Sentinel(SentinelConnection::new(sentinel_client(settings, ca_pem)?, node_config()))
            }
        };
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

    /// A handle for one operation: clones share the multiplexed connections.
    fn conn(&self) -> Connection {
        self.connection.clone()
    }
}

fn cluster_client(nodes: &[String], ca_pem: Option<&[u8]>) -> StoreResult<redis::cluster::ClusterClient> {
    cluster_builder(nodes, ca_pem)?
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        // Retries and redirections share the operation's whole budget, not one reply's.
        .overall_response_timeout(Some(OPERATION_TIMEOUT))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
        .build()
        // The error would echo the URLs, passwords included.
        .map_err(|_| StoreError::Invalid("the Redis Cluster settings are not usable"))
}

/// The connections to a Sentinel service's primary.
fn node_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

fn manager_config() -> ConnectionManagerConfig {
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
        let mut conn = self.conn();
        let mut invocation = SET_ADD.key(self.key(key));
        invocation.arg(member).arg(ms);
        let _: i64 = with_timeout("set_add", invocation.invoke_async(&mut conn)).await?;
        Ok(())
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
