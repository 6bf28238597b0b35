//! `caducee-bench`: what `make bench` runs. It owns the benchmark harness and nothing else: a
//! load generator (hyper, keep-alive connections, HDR latencies), the raw limits (aws-lc-rs
//! signatures, argon2id, an axum hello-world), the orchestration of Caducée and of the peer
//! provider (panva's oidc-provider, `bench/peers/`) as pinned child processes, and the report
//! `docs/benchmarks.md`. No production crate depends on it.

mod caducee;
mod costs;
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
mod scale;
mod soak;
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
        /// Run one part only, printed, the report left as it is: `production` is the
        /// production shape's nodes measure (two nodes behind one address beside one) and the
        /// stores' costs; `refresh` the measures of relying parties with refresh tokens (code
        /// exchanges and the refresh grant) on both storage shapes, to compare binaries.
        #[arg(long, value_parser = ["all", "production", "refresh"], default_value = "all")]
        only: String,
    },
    /// The soak (make soak): two nodes over PostgreSQL + Redis behind one address, complete
    /// flows at half of their measured capacity for SOAK_MINUTES, a line per minute; writes its
    /// section of the report and fails if any request failed.
    Soak {
        /// How long the soak runs, in minutes.
        #[arg(long, env = "SOAK_MINUTES", default_value_t = 30.0)]
        minutes: f64,
        /// How long the closed-loop calibration runs, in seconds.
        #[arg(long, default_value_t = 20.0)]
        calibration: f64,
        /// Professionals made before the calibration (more are made for the soak's rate).
        #[arg(long, default_value_t = 400)]
        users: usize,
        /// The caducee binary (a release build).
        #[arg(long, default_value = "target/release/caducee")]
        caducee: PathBuf,
        /// The report whose soak section is replaced.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// A line for the report about the run's conditions (e.g. "busy machine: ...").
        #[arg(long, env = "SOAK_NOTE")]
        note: Option<String>,
    },
    /// Print the raw limits on this core as JSON (used by `run`, pinned to the server core).
    Limits {
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// Drive one request at a running server and print its rate and latencies (for profiling
    /// one endpoint by hand, e.g. under `perf record`).
    Load {
        /// The server's address, e.g. 127.0.0.1:8080.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// GET this path, or POST `--form` to it.
        #[arg(long)]
        path: String,
        /// An urlencoded form body: the request becomes a POST.
        #[arg(long)]
        form: Option<String>,
        /// `user:password` for HTTP Basic authentication.
        #[arg(long)]
        basic: Option<String>,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Requests per second to send on schedule (open loop, latencies counted from when each
        /// request was due), instead of as fast as the server answers.
        #[arg(long)]
        rate: Option<f64>,
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
        Cmd::Load { addr, path, form, basic, seconds, connections, rate } => {
            let mut req = match form {
                Some(body) => loadgen::Req::post_form(path, body),
                None => loadgen::Req::get(path),
            };
            if let Some(userpass) = basic {
                use base64::Engine as _;
                let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(userpass));
                req = req.header(http::header::AUTHORIZATION, &value)?;
            }
            let plan = loadgen::Plan { connections, duration: Duration::from_secs_f64(seconds), rate };
            let check: loadgen::Check = std::sync::Arc::new(|status, _, _| status.is_success());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let out = rt.block_on(loadgen::run(addr, plan, loadgen::repeat(req), check))?;
            println!(
                "{:.0}/s ok={} failed={} p50={:.2} ms p99={:.2} ms{}",
                out.rate(),
                out.ok,
                out.failed,
                out.p(0.5),
                out.p(0.99),
                out.first_failure.map(|f| format!(" first failure: {f}")).unwrap_or_default()
            );
            Ok(())
        }
        Cmd::Soak { minutes, calibration, users, caducee, out, note } => {
            procs::pin_self()?;
            let caducee = std::fs::canonicalize(&caducee)
                .map_err(|e| anyhow::anyhow!("{}: {e} (build it with `cargo build --release`)", caducee.display()))?;
            let settings = run::Settings {
                quick: false,
                duration: Duration::from_secs(3),
                warmup: Duration::from_secs(1),
                runs: 1,
                connections: 64,
                users,
                bench: std::env::current_exe()?,
                caducee,
                peer_dir: PathBuf::from("bench/peers"),
                out: out.clone(),
                command: String::new(),
                only_refresh: false,
            };
            let soak = soak::SoakSettings {
                minutes,
                calibration: Duration::from_secs_f64(calibration),
                users,
                out,
                note,
                command: if std::env::var_os("SOAK_MINUTES").is_some() {
                    format!("SOAK_MINUTES={minutes} make soak")
                } else {
                    "make soak".into()
                },
            };
            // Like the bench's load generator: one core, a single-threaded runtime.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let mut bench = run::Bench::new(settings)?;
                bench.soak(soak).await
            })
        }
        Cmd::Run { quick, caducee, peers, out, users, only } => {
            procs::pin_self()?;
            let settings = run::Settings {
                quick,
                duration: Duration::from_secs_f64(if quick { 1.0 } else { 3.0 }),
                warmup: Duration::from_secs_f64(if quick { 0.3 } else { 1.0 }),
                runs: 3,
                connections: 64,
                // A user logs in at most twice in a TOTP step (the current and the next code): quick
                // runs need 80 for their full-login runs not to wait for a step.
                users: users.unwrap_or(if quick { 80 } else { 300 }),
                bench: std::env::current_exe()?,
                caducee: std::fs::canonicalize(&caducee).map_err(|e| {
                    anyhow::anyhow!("{}: {e} (build it with `cargo build --release`)", caducee.display())
                })?,
                // The peer is not needed for the production part alone.
                peer_dir: std::fs::canonicalize(&peers).unwrap_or(peers),
                out,
                command: if quick { "BENCH_QUICK=1 make bench".into() } else { "make bench".into() },
                only_refresh: only == "refresh",
            };
            // The load generator runs on one core: a single-threaded runtime.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let mut bench = run::Bench::new(settings)?;
                match only.as_str() {
                    "production" => bench.only_production().await,
                    "refresh" => bench.only_refresh().await,
                    _ => bench.all().await,
                }
            })
        }
    }
}

/// Built like `caducee serve` builds its runtime (`#[tokio::main]`: multi-threaded, default settings).
#[tokio::main]
async fn hello(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    limits::hello(listen).await
}
