//! The Redis and PostgreSQL servers of the bench's production-shape run, and what one SSO
//! session costs in Redis.

use std::path::Path;

use anyhow::bail;
use tokio::process::Command;

use crate::procs::{self, Server};
use crate::run::{Bench, say};

impl Bench {
    /// PostgreSQL as production runs it (every commit synced, files on disk), pinned to the
    /// server core like Caducée.
    pub(crate) fn start_postgres(&self) -> anyhow::Result<test_support::postgres::PostgresServer> {
        let pg = test_support::postgres::PostgresServer::start_durable()?;
        procs::pin(pg.postmaster_pid()?, procs::SERVER_CORE)?;
        say(format!("PostgreSQL on port {}", pg.port()));
        Ok(pg)
    }

    pub(crate) async fn start_redis(&self) -> anyhow::Result<Server> {
        let addr = procs::free_addr()?;
        let dir = self.path("redis");
        std::fs::create_dir_all(&dir)?;
        let mut c = procs::server_command(Path::new("redis-server"));
        c.args(["--bind", "127.0.0.1", "--port", &addr.port().to_string(), "--save", "", "--appendonly", "no"])
            .current_dir(&dir);
        Server::spawn_then(c, "redis", addr, &self.path("redis.log"), || async move {
            let mut ping = Command::new("redis-cli");
            ping.args(["-p", &addr.port().to_string(), "ping"]);
            Ok(procs::output(ping, None).await?.trim() == "PONG")
        })
        .await
    }
}

/// Bytes Redis holds per SSO session: `MEMORY USAGE` of the session records and of the
/// per-subject indexes, over the number of sessions.
pub(crate) async fn redis_bytes_per_session(port: u16) -> anyhow::Result<f64> {
    let scan = |pattern: &str| {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &port.to_string(), "--scan", "--pattern", pattern]);
        c
    };
    let sessions: Vec<String> = procs::output(scan("caducee:sso:*"), None).await?.lines().map(str::to_owned).collect();
    let subjects: Vec<String> =
        procs::output(scan("caducee:sso-subject:*"), None).await?.lines().map(str::to_owned).collect();
    if sessions.is_empty() {
        bail!("no SSO session in Redis");
    }
    let commands: String =
        sessions.iter().chain(subjects.iter()).map(|k| format!("MEMORY USAGE {k} SAMPLES 0\n")).collect();
    let mut c = Command::new("redis-cli");
    c.args(["-p", &port.to_string()]);
    let out = procs::output(c, Some(&commands)).await?;
    let total: f64 = out.lines().filter_map(|l| l.trim().parse::<f64>().ok()).sum();
    say(format!("Redis: {} sessions, {} subject indexes, {total} bytes", sessions.len(), subjects.len()));
    Ok(total / sessions.len() as f64)
}
