//! An ephemeral Redis Sentinel deployment for tests: a primary and one replica (`redis-server`),
//! watched by three sentinels (`redis-server CONFIG --sentinel`, the Debian binary in sentinel
//! mode) with a quorum of two, all on free loopback ports in temporary directories, killed when
//! dropped.
//!
//! The handle can kill the current primary and wait until the sentinels have promoted the
//! replica, and can make sure the replica holds every write acknowledged so far (`WAIT 1`), so
//! that tests can check what a failover keeps and how clients live through it. Timings are short
//! by default ([`SentinelOptions`]) so that a failover takes a few seconds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::redis::{RedisOptions, RedisServer, RedisTls, find_program, io_error, log_tail, open_log, redis_cli};
use crate::{HarnessError, free_port};

const SENTINELS: usize = 3;
const QUORUM: usize = 2;
/// Sentinels find each other and the replica through the primary within seconds; a busy machine
/// may take longer.
const READY_DEADLINE: Duration = Duration::from_secs(60);
const PORT_ATTEMPTS: usize = 5;
const LOG_FILE: &str = "sentinel.log";
const CONFIG_FILE: &str = "sentinel.conf";

/// How quickly the sentinels act.
#[derive(Debug, Clone)]
pub struct SentinelOptions {
    /// The service name (`sentinel monitor NAME ...`).
    pub service: String,
    /// How long the primary must be silent before a sentinel thinks it down. Short in failover
    /// tests; long enough elsewhere that a busy machine does not cause a failover of its own.
    pub down_after: Duration,
    /// The sentinels' `failover-timeout` (also how long before a failed failover is tried again).
    pub failover_timeout: Duration,
    /// An ACL user `(name, password)` on the data nodes, besides the open default user the
    /// sentinels and the harness use.
    pub data_user: Option<(String, String)>,
    /// A password every sentinel asks of its clients (and of each other).
    pub sentinel_password: Option<String>,
    /// TLS ports on every process (data nodes and sentinels), which then talk to one another over
    /// TLS: the sentinels name the data nodes by their TLS ports. The harness keeps to the plain
    /// ports.
    pub tls: Option<RedisTls>,
}

impl Default for SentinelOptions {
    fn default() -> Self {
        SentinelOptions {
            service: "caducee".into(),
            down_after: Duration::from_secs(5),
            failover_timeout: Duration::from_secs(10),
            data_user: None,
            sentinel_password: None,
            tls: None,
        }
    }
}

impl SentinelOptions {
    /// A failover within a few seconds of the primary's death.
    pub fn quick_failover() -> Self {
        SentinelOptions {
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(3000),
            ..SentinelOptions::default()
        }
    }
}

/// A primary, its replica and three sentinels.
#[derive(Debug)]
pub struct RedisSentinelGroup {
    options: SentinelOptions,
    /// The primary first, as started; a failover swaps the roles, not the order.
    servers: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
}

#[derive(Debug)]
struct SentinelProcess {
    port: u16,
    tls_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
    _tempdir: TempDir,
}

impl RedisSentinelGroup {
    /// Starts with the default (slow to fail over) timings.
    pub fn start() -> Result<RedisSentinelGroup, HarnessError> {
        Self::start_with(SentinelOptions::default())
    }

    /// Starts the primary, the replica (waiting until it is in sync) and the sentinels (waiting
    /// until each knows the replica and the two other sentinels).
    pub fn start_with(options: SentinelOptions) -> Result<RedisSentinelGroup, HarnessError> {
        let users: Vec<(String, String)> = options.data_user.iter().cloned().collect();
        let tls_replication: Vec<String> =
            if options.tls.is_some() { vec!["--tls-replication".into(), "yes".into()] } else { Vec::new() };
        let primary = RedisServer::start_with(RedisOptions {
            tls: options.tls.clone(),
            users: users.clone(),
            extra_args: tls_replication.clone(),
        })?;
        // Over TLS when the nodes have it: the replica then announces its TLS port.
        let primary_port = primary.tls_port().unwrap_or(primary.port());
        let replica = RedisServer::start_with(RedisOptions {
            tls: options.tls.clone(),
            users,
            extra_args: [tls_replication, vec!["--replicaof".into(), "127.0.0.1".into(), primary_port.to_string()]]
                .concat(),
        })?;
        wait_until("the replica's sync", || {
            let info = redis_cli(replica.port(), &["INFO", "replication"], None).unwrap_or_default();
            info.contains("master_link_status:up").then_some(()).ok_or(info)
        })?;
        let mut group = RedisSentinelGroup { options, servers: vec![primary, replica], sentinels: Vec::new() };
        for _ in 0..SENTINELS {
            // The primary as the sentinels know it: by its TLS port, with TLS.
            let sentinel = SentinelProcess::start(&group.options, primary_port)?;
            group.sentinels.push(sentinel);
        }
        wait_until("the sentinels' view", || {
            let views: Vec<Vec<(String, String)>> = group.sentinels.iter().map(|s| group.master_view(s.port)).collect();
            let ready = views
                .iter()
                .all(|view| field(view, "num-slaves") == Some("1") && field(view, "num-other-sentinels") == Some("2"));
            ready.then_some(()).ok_or_else(|| format!("{views:?}"))
        })?;
        Ok(group)
    }

    /// The service name the sentinels watch.
    pub fn service(&self) -> &str {
        &self.options.service
    }

    /// `redis://[:password@]127.0.0.1:PORT` of each sentinel, or `rediss://[:password@]localhost:TLS_PORT`
    /// with TLS.
    pub fn sentinel_urls(&self) -> Vec<String> {
        let auth = self.options.sentinel_password.as_ref().map(|p| format!(":{p}@")).unwrap_or_default();
        self.sentinels
            .iter()
            .map(|s| match s.tls_port {
                Some(port) => format!("rediss://{auth}localhost:{port}"),
                None => format!("redis://{auth}127.0.0.1:{}", s.port),
            })
            .collect()
    }

    /// The data nodes (primary and replica, in the order started).
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The primary's (plain) port, as a quorum of sentinels tells it.
    pub fn primary_port(&self) -> Result<u16, HarnessError> {
        let ports: Vec<u16> = self
            .sentinels
            .iter()
            .filter_map(|s| self.sentinel_primary(s.port))
            .map(|reported| self.plain_port(reported))
            .collect();
        ports
            .iter()
            .copied()
            .find(|p| ports.iter().filter(|q| *q == p).count() >= QUORUM)
            .ok_or_else(|| HarnessError::NotReady("redis sentinel", format!("no agreed primary: {ports:?}")))
    }

    /// Makes sure every write the primary acknowledged so far has reached the replica: a write of
    /// the harness's own, then `WAIT 1` on the same connection (the replication stream is in
    /// order, so the replica holding that write holds every earlier one).
    pub fn sync_replica(&self) -> Result<(), HarnessError> {
        let port = self.primary_port()?;
        let output = redis_cli(port, &[], Some("SET caducee-harness:sync 1\nWAIT 1 10000\n"))?;
        let acknowledged = output.lines().nth(1).and_then(|l| l.trim().parse::<u32>().ok()).unwrap_or(0);
        if acknowledged >= 1 {
            Ok(())
        } else {
            Err(HarnessError::NotReady("redis replica", format!("WAIT 1 answered {output:?}")))
        }
    }

    /// Kills the current primary (as a crash would) and returns its port.
    pub fn kill_primary(&mut self) -> Result<u16, HarnessError> {
        let port = self.primary_port()?;
        let server = self
            .servers
            .iter_mut()
            .find(|s| s.port() == port)
            .ok_or_else(|| HarnessError::NotReady("redis sentinel", format!("no server of ours on port {port}")))?;
        server.stop();
        Ok(port)
    }

    /// Waits until a quorum of sentinels names a primary other than `old_port` and that node
    /// says it is a primary; returns its port.
    pub fn wait_for_failover(&self, old_port: u16) -> Result<u16, HarnessError> {
        wait_until("the failover", || {
            let port = self.primary_port().map_err(|e| e.to_string())?;
            if port == old_port {
                return Err(format!("still {old_port}"));
            }
            let role = redis_cli(port, &["ROLE"], None).map_err(|e| e.to_string())?;
            if role.lines().next() == Some("master") { Ok(port) } else { Err(format!("{port} says {role}")) }
        })
    }

    /// Asks the sentinels for a planned failover (`SENTINEL FAILOVER`): the replica is promoted
    /// and the primary, still running, becomes its replica.
    pub fn switchover(&self) -> Result<(), HarnessError> {
        let sentinel = self.sentinels.first().map(|s| s.port).unwrap_or_default();
        let mut args = self.sentinel_args();
        args.extend(["SENTINEL", "FAILOVER", &self.options.service]);
        let output = redis_cli(sentinel, &args, None)?;
        if output.trim() == "OK" {
            Ok(())
        } else {
            Err(HarnessError::NotReady("redis sentinel", format!("SENTINEL FAILOVER answered {output:?}")))
        }
    }

    /// Waits until the node on `port` is a replica of the one on `primary`, in sync.
    pub fn wait_for_replica_of(&self, port: u16, primary: u16) -> Result<(), HarnessError> {
        wait_until("the old primary's demotion", || {
            let info = redis_cli(port, &["INFO", "replication"], None).map_err(|e| e.to_string())?;
            let primary_tls = self.servers.iter().find(|s| s.port() == primary).and_then(RedisServer::tls_port);
            let names_primary = |p: u16| info.lines().any(|l| l.trim() == format!("master_port:{p}"));
            let ok = info.contains("role:slave")
                && (names_primary(primary) || primary_tls.is_some_and(names_primary))
                && info.contains("master_link_status:up");
            ok.then_some(()).ok_or(info)
        })
    }

    /// The logs of every process, for a failing test's message.
    pub fn logs(&self) -> String {
        let servers = self.servers.iter().map(|s| format!("--- redis {}\n{}", s.port(), s.log_tail()));
        let sentinels =
            self.sentinels.iter().map(|s| format!("--- sentinel {}\n{}", s.port, log_tail(&s.dir.join(LOG_FILE))));
        servers.chain(sentinels).collect::<Vec<_>>().join("\n")
    }

    /// The plain port of the server the sentinels name by `port` (its TLS port, with TLS).
    fn plain_port(&self, port: u16) -> u16 {
        self.servers.iter().find(|s| s.tls_port() == Some(port)).map_or(port, RedisServer::port)
    }

    fn sentinel_args(&self) -> Vec<&str> {
        match &self.options.sentinel_password {
            Some(p) => vec!["--no-auth-warning", "-a", p],
            None => Vec::new(),
        }
    }

    fn master_view(&self, sentinel: u16) -> Vec<(String, String)> {
        let mut args = self.sentinel_args();
        args.extend(["SENTINEL", "MASTER", &self.options.service]);
        let output = redis_cli(sentinel, &args, None).unwrap_or_default();
        let lines: Vec<&str> = output.lines().collect();
        lines.chunks(2).filter_map(|pair| Some(((*pair.first()?).to_owned(), (*pair.get(1)?).to_owned()))).collect()
    }

    fn sentinel_primary(&self, sentinel: u16) -> Option<u16> {
        let mut args = self.sentinel_args();
        args.extend(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.options.service]);
        let output = redis_cli(sentinel, &args, None).ok()?;
        output.lines().nth(1)?.trim().parse().ok()
    }
}

fn field<'a>(view: &'a [(String, String)], name: &str) -> Option<&'a str> {
    view.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Polls `check` until it succeeds, or fails with its last complaint past the deadline.
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> Result<T, HarnessError> {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(why) if Instant::now() >= deadline => {
                return Err(HarnessError::NotReady("redis sentinel", format!("{what}: {why}")));
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

impl SentinelProcess {
    fn start(options: &SentinelOptions, primary_port: u16) -> Result<SentinelProcess, HarnessError> {
        let tempdir = tempfile::Builder::new()
            .prefix("caducee-sentinel-")
            .tempdir()
            .map_err(|source| io_error("creating the sentinel directory", source))?;
        let dir =
            tempdir.path().canonicalize().map_err(|source| io_error("resolving the sentinel directory", source))?;
        let mut process = SentinelProcess { port: 0, tls_port: None, dir, child: None, _tempdir: tempdir };
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            process.port = free_port()?;
            if options.tls.is_some() {
                process.tls_port = Some(free_port()?);
            }
            process.write_config(options, primary_port)?;
            process.spawn()?;
            match process.wait_ready(options, primary_port) {
                Ok(()) => return Ok(process),
                Err(detail) => {
                    process.stop();
                    if !detail.contains("Address already in use") {
                        return Err(HarnessError::NotReady("redis-sentinel", detail));
                    }
                    last = detail;
                }
            }
        }
        Err(HarnessError::NotReady("redis-sentinel", format!("no usable port after {PORT_ATTEMPTS} attempts: {last}")))
    }

    fn write_config(&self, options: &SentinelOptions, primary_port: u16) -> Result<(), HarnessError> {
        let service = &options.service;
        let mut config = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {dir}\n\
             sentinel resolve-hostnames no\n\
             sentinel monitor {service} 127.0.0.1 {primary_port} {QUORUM}\n\
             sentinel down-after-milliseconds {service} {down}\n\
             sentinel failover-timeout {service} {failover}\n\
             sentinel parallel-syncs {service} 1\n",
            port = self.port,
            dir = self.dir.display(),
            down = options.down_after.as_millis(),
            failover = options.failover_timeout.as_millis(),
        );
        if let (Some(tls), Some(port)) = (&options.tls, self.tls_port) {
            // `tls-replication`: the sentinels reach the data nodes and one another over TLS.
            config.push_str(&format!(
                "tls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n\
                 tls-replication yes\n",
                tls.certificate.display(),
                tls.key.display(),
                tls.ca.display(),
            ));
        }
        if let Some(password) = &options.sentinel_password {
            // Asked of clients, and given to the other sentinels (which ask it too).
            config.push_str(&format!("requirepass \"{password}\"\nsentinel sentinel-pass \"{password}\"\n"));
        }
        std::fs::write(self.dir.join(CONFIG_FILE), config)
            .map_err(|source| io_error("writing the sentinel configuration", source))
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let log = open_log(&self.dir.join(LOG_FILE))?;
        let log_err = log.try_clone().map_err(|source| io_error("duplicating the sentinel log handle", source))?;
        let child = Command::new(find_program("redis-server")?)
            .arg(self.dir.join(CONFIG_FILE))
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| io_error("starting redis-server --sentinel", source))?;
        self.child = Some(child);
        Ok(())
    }

    /// Ready once it answers about our primary (which also tells it from another test's sentinel
    /// that won the race for the port).
    fn wait_ready(&mut self, options: &SentinelOptions, primary_port: u16) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut args: Vec<&str> = match &options.sentinel_password {
            Some(p) => vec!["--no-auth-warning", "-a", p],
            None => Vec::new(),
        };
        args.extend(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &options.service]);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("exited with {status}; log:\n{}", log_tail(&self.dir.join(LOG_FILE))));
            }
            if let Ok(output) = redis_cli(self.port, &args, None)
                && output.lines().nth(1).map(str::trim) == Some(&primary_port.to_string())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no answer on port {}; log:\n{}", self.port, log_tail(&self.dir.join(LOG_FILE))));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_sentinels_promote_the_replica_when_the_primary_dies() {
        let mut group = RedisSentinelGroup::start_with(SentinelOptions::quick_failover()).unwrap();
        let first = group.primary_port().unwrap();
        assert_eq!(first, group.servers()[0].port());
        group.sync_replica().unwrap();
        let old = group.kill_primary().unwrap();
        let new = group.wait_for_failover(old).unwrap_or_else(|e| panic!("{e}\n{}", group.logs()));
        assert_eq!(new, group.servers()[1].port());
    }
}
