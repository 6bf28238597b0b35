//! What one response costs the stores of the production shape, counted by the stores
//! themselves: PostgreSQL's `pg_stat_statements` (statements run, each a round trip, and those
//! that write) and Redis's `INFO stats` and `INFO commandstats` (commands, the read events that
//! are its round trips, and which commands), read before and after a fixed number of requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::process::Command;

use crate::loadgen::{self, Check, Plan, Source};
use crate::procs;
use crate::run::{Bench, say};

/// Per response, averaged over a counted run.
#[derive(Clone, Debug, Default)]
pub struct Costs {
    /// Statements PostgreSQL ran (`BEGIN` and `COMMIT` included): its round trips, with 8
    /// requests in flight (the group commits share their `BEGIN` and `COMMIT`).
    pub pg_statements: f64,
    /// Those of them that write (insert, update or delete, one or several rows).
    pub pg_writes: f64,
    /// The statements with one request at a time: nothing to share a commit with.
    pub pg_statements_alone: f64,
    /// Commands Redis ran (`total_commands_processed`), one request at a time.
    pub redis_commands: f64,
    /// Read events Redis processed (`total_reads_processed`), one request at a time: one per
    /// round trip, whatever a pipeline or a script carries in it.
    pub redis_round_trips: f64,
    /// Calls per command (`INFO commandstats`, commands run by scripts included), per response.
    pub redis_by_command: Vec<(String, f64)>,
}

impl Costs {
    pub fn text(&self) -> String {
        let by: Vec<String> = self.redis_by_command.iter().map(|(c, n)| format!("{c} {n:.2}")).collect();
        format!(
            "{:.2} PostgreSQL statements ({:.2} of them writes; {:.2} one request at a time), {:.2} Redis commands in {:.2} round trips{}",
            self.pg_statements,
            self.pg_writes,
            self.pg_statements_alone,
            self.redis_commands,
            self.redis_round_trips,
            if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) }
        )
    }
}

/// The stores to ask.
#[derive(Clone, Copy, Debug)]
pub struct Stores {
    pub pg_port: u16,
    pub redis_port: u16,
}

#[derive(Clone, Debug, Default)]
struct Counters {
    statements: f64,
    writes: f64,
    redis: f64,
    reads: f64,
    by_command: BTreeMap<String, f64>,
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
        // One INFO for both sections (Redis 7 takes several), so that a reading costs one
        // command and one round trip.
        let mut c = Command::new("redis-cli");
        c.args(["-p", &self.redis_port.to_string(), "INFO", "stats", "commandstats"]);
        let info = procs::output(c, None).await?;
        let field = |name: &str| -> anyhow::Result<f64> {
            Ok(info
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                .with_context(|| format!("no {name} in INFO"))?
                .trim()
                .parse()?)
        };
        let mut by_command = BTreeMap::new();
        for line in info.lines() {
            if let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':'))
                && let Some(calls) = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))
                && name != "info"
            {
                by_command.insert(name.to_owned(), calls.trim().parse::<f64>().unwrap_or(0.0));
            }
        }
        Ok(Counters {
            statements,
            writes,
            redis: field("total_commands_processed")?,
            reads: field("total_reads_processed")?,
            by_command,
        })
    }
}

impl Bench {
    /// Sends what `source` gives, first one request at a time for a second (Redis's figures,
    /// and PostgreSQL's statements alone), then with 8 connections until it is dry or 3 s
    /// passed (PostgreSQL's figures as under load), and divides what the stores counted
    /// meanwhile by the answers `check` accepted. A source of prepared items (codes) needs
    /// enough for both runs.
    pub(crate) async fn costs(
        &self,
        what: &str,
        addr: SocketAddr,
        stores: Stores,
        source: Source,
        check: Check,
    ) -> anyhow::Result<Costs> {
        let before = stores.read().await?;
        let plan = Plan { connections: 1, duration: std::time::Duration::from_secs(1), rate: None };
        let alone = loadgen::run(addr, plan, source.clone(), check.clone()).await?;
        let middle = stores.read().await?;
        let plan = Plan { connections: 8, duration: std::time::Duration::from_secs(3), rate: None };
        let o = loadgen::run(addr, plan, source, check).await?;
        let after = stores.read().await?;
        let costs = Costs::between(&before, &middle, &after, alone.ok, o.ok);
        say(format!("{what}: per response {}", costs.text()));
        Ok(costs)
    }

    /// The same for `n` runs of `flow` one after the other (a flow of several requests, e.g. a
    /// full login): per flow, everything counted one at a time; with what the flows returned.
    pub(crate) async fn costs_of<T, F, Fut>(
        &self,
        what: &str,
        stores: Stores,
        n: usize,
        flow: F,
    ) -> anyhow::Result<(Costs, Vec<T>)>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let before = stores.read().await?;
        let mut results = Vec::with_capacity(n);
        for i in 0..n {
            results.push(flow(i).await?);
        }
        let after = stores.read().await?;
        let mut costs = Costs::between(&before, &after, &after, n as u64, 0);
        costs.pg_statements = costs.pg_statements_alone;
        costs.pg_writes = (after.writes - before.writes) / n.max(1) as f64;
        say(format!("{what}: per flow {}", costs.text()));
        Ok((costs, results))
    }
}

impl Costs {
    /// From three readings: `alone` answers between the first two, `loaded` between the last two.
    fn between(before: &Counters, middle: &Counters, after: &Counters, alone: u64, loaded: u64) -> Costs {
        let n1 = alone.max(1) as f64;
        let n2 = loaded.max(1) as f64;
        // A reading's INFO is one command and one read, counted by the next reading; its
        // connection's close is a read event too.
        let by_command = middle
            .by_command
            .iter()
            .map(|(name, calls)| (name.clone(), (calls - before.by_command.get(name).copied().unwrap_or(0.0)) / n1))
            .filter(|(_, per)| *per >= 0.005)
            .collect();
        Costs {
            pg_statements: (after.statements - middle.statements) / n2,
            pg_writes: (after.writes - middle.writes) / n2,
            pg_statements_alone: (middle.statements - before.statements) / n1,
            redis_commands: (middle.redis - before.redis - 1.0).max(0.0) / n1,
            redis_round_trips: (middle.reads - before.reads - 2.0).max(0.0) / n1,
            redis_by_command: by_command,
        }
    }
}
