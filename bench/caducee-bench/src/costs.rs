//! What one response costs the stores of the production shape, counted by the stores
//! themselves: PostgreSQL's `pg_stat_statements` (statements run, each a round trip, and those
//! that write) and Redis's `total_commands_processed`, read before and after a fixed number of
//! requests.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::process::Command;

use crate::loadgen::{self, Check, Plan, Source};
use crate::procs;
use crate::run::{Bench, say};

/// Per response, averaged over a counted run.
#[derive(Clone, Debug, Default)]
pub struct Costs {
    /// Statements PostgreSQL ran (`BEGIN` and `COMMIT` included): its round trips.
    pub pg_statements: f64,
    /// Those of them that write (insert, update or delete, one or several rows).
    pub pg_writes: f64,
    pub redis_commands: f64,
}

impl Costs {
    pub fn text(&self) -> String {
        format!(
            "{:.2} PostgreSQL statements ({:.2} of them writes), {:.2} Redis commands",
            self.pg_statements, self.pg_writes, self.redis_commands
        )
    }
}

/// The stores to ask.
#[derive(Clone, Copy, Debug)]
pub struct Stores {
    pub pg_port: u16,
    pub redis_port: u16,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    statements: f64,
    writes: f64,
    redis: f64,
}

impl Stores {
    /// Loads `pg_stat_statements` in the provider's database (the server preloads it).
    pub async fn prepare(&self) -> anyhow::Result<()> {
        self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").await.map(drop)
    }

    async fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let mut c = Command::new("psql");
        c.args(["-h", "127.0.0.1", "-p", &self.pg_port.to_string(), "-U", "caducee", "-d", "postgres", "-Atc", sql]);
        procs::output(c, None).await
    }

    async fn read(&self) -> anyhow::Result<Counters> {
        // Its own statements excepted (this one, and the extension's upkeep).
        let out = self
            .psql(
                "SELECT COALESCE(SUM(calls), 0), \
                 COALESCE(SUM(calls) FILTER (WHERE query ~* '\\m(insert|update|delete)\\M'), 0) \
                 FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'",
            )
            .await?;
        let mut parts = out.trim().split('|');
        let statements: f64 = parts.next().context("calls")?.parse()?;
        let writes: f64 = parts.next().context("writes")?.parse()?;
        let mut c = Command::new("redis-cli");
        c.args(["-p", &self.redis_port.to_string(), "INFO", "stats"]);
        let info = procs::output(c, None).await?;
        let redis = info
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .context("no total_commands_processed")?
            .trim()
            .parse()?;
        Ok(Counters { statements, writes, redis })
    }
}

impl Bench {
    /// Sends what `source` gives (8 connections, until it is dry or 3 s passed) and divides what
    /// the stores counted meanwhile by the answers `check` accepted.
    pub(crate) async fn costs(
        &self,
        what: &str,
        addr: SocketAddr,
        stores: Stores,
        source: Source,
        check: Check,
    ) -> anyhow::Result<Costs> {
        let before = stores.read().await?;
        let plan = Plan { connections: 8, duration: std::time::Duration::from_secs(3), rate: None };
        let o = loadgen::run(addr, plan, source, check).await?;
        let after = stores.read().await?;
        let n = o.ok.max(1) as f64;
        let costs = Costs {
            pg_statements: (after.statements - before.statements) / n,
            pg_writes: (after.writes - before.writes) / n,
            // The INFO command of the first reading is counted in the second.
            redis_commands: (after.redis - before.redis - 1.0) / n,
        };
        say(format!("{what}: per response {}", costs.text()));
        Ok(costs)
    }
}
