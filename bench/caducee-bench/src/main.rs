//! `caducee-bench`: what `make bench` runs. It owns the benchmark harness and nothing else: a
//! load generator (hyper, keep-alive connections, HDR latencies), the raw limits (aws-lc-rs
//! signatures, argon2id, an axum hello-world), the orchestration of Caducée and of the peer
//! provider (panva's oidc-provider, `bench/peers/`) as pinned child processes, and the report
//! `docs/benchmarks.md`. No production crate depends on it.

mod caducee;
mod doc;
mod fanout;
mod flows;
mod limits;
mod loadgen;
mod peer;
mod procs;
mod redis;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Caducée benchmarks (make bench)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every measure and write the report.
    Run {
        /// Short runs (also BENCH_QUICK=1), to try the harness.
        #[arg(long, env = "BENCH_QUICK", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
        quick: bool,
        /// The caducee binary (a release build).
        #[arg(long, default_value = "target/release/caducee")]
        caducee: PathBuf,
        /// Where bench/peers/ is (package.json, node_modules, oidc-provider.mjs).
        #[arg(long, default_value = "bench/peers")]
        peers: PathBuf,
        /// The report to write.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// Login users to create (each can log in about once per 30 s TOTP step).
        #[arg(long)]
        users: Option<usize>,
    },
    /// Print the raw limits on this core as JSON (used by `run`, pinned to the server core).
    Limits {
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// Serve an axum hello-world (used by `run`).
    Hello {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Limits { seconds } => {
            println!("{}", serde_json::to_string(&limits::measure(seconds)?)?);
            Ok(())
        }
        Cmd::Hello { listen } => hello(listen),
        Cmd::Run { quick, caducee, peers, out, users } => {
            procs::pin_self()?;
            let settings = run::Settings {
                quick,
                duration: Duration::from_secs_f64(if quick { 1.0 } else { 3.0 }),
                warmup: Duration::from_secs_f64(if quick { 0.3 } else { 1.0 }),
                runs: 3,
                connections: 64,
                users: users.unwrap_or(if quick { 40 } else { 300 }),
                bench: std::env::current_exe()?,
                caducee: std::fs::canonicalize(&caducee).map_err(|e| {
                    anyhow::anyhow!("{}: {e} (build it with `cargo build --release`)", caducee.display())
                })?,
                peer_dir: std::fs::canonicalize(&peers)?,
                out,
                command: if quick { "BENCH_QUICK=1 make bench".into() } else { "make bench".into() },
            };
            // The load generator runs on one core: a single-threaded runtime.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let mut bench = run::Bench::new(settings)?;
                bench.all().await
            })
        }
    }
}

/// Built like `caducee serve` builds its runtime (`#[tokio::main]`: multi-threaded, default settings).
#[tokio::main]
async fn hello(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    limits::hello(listen).await
}
