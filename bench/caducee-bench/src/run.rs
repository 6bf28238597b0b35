//! The whole benchmark: its settings, the measures both providers go through (peak rates,
//! latencies at a given rate, documents, client credentials, resource endpoints, code
//! exchange), the raw limits, and the order of it all: limits, Caducée (embedded, then Redis,
//! `caducee.rs`), the peer (`peer.rs`), the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::StatusCode;

use crate::caducee::{Place, Shape};
use crate::costs::Stores;
use crate::fanout::Receivers;
use crate::flows::{self, Rp};
use crate::limits::Rates;
use crate::loadgen::{self, Check, Plan, Req, Source};
use crate::procs::{self, Server};
use crate::report::Row;
use crate::stats::Summary;

pub const CLIENT_SECRET_PEER: &str = "bench-secret-bench-secret-bench-secret";

/// What the command line chose.
#[derive(Clone, Debug)]
pub struct Settings {
    pub quick: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub runs: usize,
    pub connections: usize,
    pub users: usize,
    pub caducee: PathBuf,
    pub bench: PathBuf,
    pub peer_dir: PathBuf,
    pub out: PathBuf,
    pub command: String,
    /// Only the measures of relying parties with refresh tokens (`--only refresh`).
    pub only_refresh: bool,
}

pub struct Bench {
    pub s: Settings,
    pub rows: Vec<Row>,
    pub limits: Vec<Rates>,
    /// What a response costs the stores of the production shape.
    pub costs: Vec<(String, crate::costs::Costs)>,
    tmp: tempfile::TempDir,
}

pub(crate) fn say(text: impl AsRef<str>) {
    eprintln!("[bench] {}", text.as_ref());
}

impl Bench {
    pub fn new(s: Settings) -> anyhow::Result<Bench> {
        let mut tmp = tempfile::tempdir()?;
        // BENCH_KEEP=1 keeps the servers' logs and data after the run, to look into a failure.
        if std::env::var_os("BENCH_KEEP").is_some() {
            tmp.disable_cleanup(true);
            say(format!("logs and data kept in {}", tmp.path().display()));
        }
        Ok(Bench { s, rows: Vec::new(), limits: Vec::new(), costs: Vec::new(), tmp })
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn plan(&self, duration: Duration) -> Plan {
        Plan { connections: self.s.connections, duration, rate: None }
    }

    /// Warm-up, then `runs` closed-loop runs; the rates and the last outcome's failure text.
    pub(crate) async fn peak(
        &self,
        what: &str,
        addr: SocketAddr,
        source: Source,
        check: Check,
    ) -> anyhow::Result<(Summary, String)> {
        let warm = loadgen::run(addr, self.plan(self.s.warmup), source.clone(), check.clone()).await?;
        let mut rates = Vec::new();
        let mut note = String::new();
        if let Some(f) = &warm.first_failure {
            note = format!("refused answers seen: {f}");
        }
        for _ in 0..self.s.runs {
            let o = loadgen::run(addr, self.plan(self.s.duration), source.clone(), check.clone()).await?;
            if o.failed > 0 {
                note =
                    format!("{} refused answers in a run, e.g. {}", o.failed, o.first_failure.as_deref().unwrap_or(""));
            }
            rates.push(o.rate());
        }
        let s = Summary::of(&rates);
        say(format!("{what}: {:.0}/s (runs {rates:.0?})", s.median));
        Ok((s, note))
    }

    /// Open-loop runs at `rate`: (p50 ms, p99 ms) summaries.
    pub(crate) async fn at_rate(
        &self,
        what: &str,
        addr: SocketAddr,
        rate: f64,
        source: Source,
        check: Check,
    ) -> anyhow::Result<(Summary, Summary)> {
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        for _ in 0..self.s.runs {
            let plan = Plan { connections: self.s.connections, duration: self.s.duration, rate: Some(rate) };
            let o = loadgen::run(addr, plan, source.clone(), check.clone()).await?;
            p50.push(o.p(0.5));
            p99.push(o.p(0.99));
        }
        let (a, b) = (Summary::of(&p50), Summary::of(&p99));
        say(format!("{what} at {rate:.0}/s: p50 {:.2} ms, p99 {:.2} ms", a.median, b.median));
        Ok((a, b))
    }

    /// Discovery and JWKS GET rates (`prefix` names the provider in the progress lines).
    pub(crate) async fn documents(&self, prefix: &str, addr: SocketAddr) -> anyhow::Result<(Summary, Summary)> {
        let (discovery, _) = self
            .peak(
                &format!("{prefix}discovery"),
                addr,
                loadgen::repeat(Req::get("/.well-known/openid-configuration")),
                loadgen::status_and(StatusCode::OK, "issuer"),
            )
            .await?;
        let (jwks, _) = self
            .peak(
                &format!("{prefix}jwks"),
                addr,
                loadgen::repeat(Req::get("/jwks")),
                loadgen::status_and(StatusCode::OK, "keys"),
            )
            .await?;
        Ok((discovery, jwks))
    }

    /// Client-credentials responses: the peak rate with its note, and, when `latencies`, the
    /// p50 and p99 at half of that peak.
    pub(crate) async fn client_credentials_load(
        &self,
        what: &str,
        addr: SocketAddr,
        cc: &Rp,
        latencies: bool,
    ) -> anyhow::Result<(Summary, String, Option<(Summary, Summary)>)> {
        let check = loadgen::status_and(StatusCode::OK, "access_token");
        let (peak, note) = self.peak(what, addr, loadgen::repeat(client_credentials(cc)?), check.clone()).await?;
        let at_half = if latencies {
            let source = loadgen::repeat(client_credentials(cc)?);
            Some(self.at_rate(what, addr, peak.median / 2.0, source, check).await?)
        } else {
            None
        };
        Ok((peak, note, at_half))
    }

    /// Userinfo and introspection rates with one access token, each with its note; `paths` are
    /// the provider's (userinfo, introspection) endpoints.
    pub(crate) async fn resource_endpoints(
        &self,
        prefix: &str,
        addr: SocketAddr,
        paths: (&str, &str),
        introspecting: &Rp,
        token: &str,
    ) -> anyhow::Result<((Summary, String), (Summary, String))> {
        let userinfo = self
            .peak(
                &format!("{prefix}userinfo"),
                addr,
                loadgen::repeat(bearer(paths.0, token)?),
                loadgen::status_and(StatusCode::OK, "\"sub\""),
            )
            .await?;
        let introspection = self
            .peak(
                &format!("{prefix}introspection"),
                addr,
                loadgen::repeat(introspect(paths.1, introspecting, token)?),
                loadgen::status_and(StatusCode::OK, "\"active\":true"),
            )
            .await?;
        Ok((userinfo, introspection))
    }

    // ---------------------------------------------------------------- raw limits

    async fn measure_limits(&mut self) -> anyhow::Result<()> {
        let seconds = if self.s.quick { 0.5 } else { 2.0 };
        for _ in 0..self.s.runs {
            let mut cmd = procs::server_command(&self.s.bench);
            cmd.arg("limits").arg("--seconds").arg(seconds.to_string());
            let out = procs::output(cmd, None).await?;
            let rates: Rates = serde_json::from_str(out.trim()).context("limits output")?;
            say(format!("limits: {rates:?}"));
            self.limits.push(rates);
        }
        Ok(())
    }

    pub fn limit(&self, f: impl Fn(&Rates) -> f64) -> Summary {
        Summary::of(&self.limits.iter().map(f).collect::<Vec<_>>())
    }

    async fn measure_hello(&mut self) -> anyhow::Result<Summary> {
        let addr = procs::free_addr()?;
        let mut cmd = procs::server_command(&self.s.bench);
        cmd.arg("hello").arg("--listen").arg(addr.to_string());
        let server = Server::spawn("hello", cmd, addr, "/", &self.path("hello.log")).await?;
        let (s, _) = self
            .peak("hello-world", addr, loadgen::repeat(Req::get("/")), loadgen::status_and(StatusCode::OK, "Hello"))
            .await?;
        server.stop().await?;
        Ok(s)
    }

    /// Code exchange: codes prepared in advance (per run), then exchanged as fast as possible;
    /// with `latencies`, then exchanged at half of that peak (p50, p99).
    pub(crate) async fn code_exchange<'p>(
        &self,
        what: &str,
        addr: SocketAddr,
        prepare: &(dyn Fn(usize) -> futures_lite::BoxFuture<'p, anyhow::Result<Vec<String>>> + Sync),
        rp: &Rp,
        latencies: bool,
    ) -> anyhow::Result<Exchange> {
        let make = exchange_request(rp);
        let check = loadgen::status_and(StatusCode::OK, "id_token");
        // Warm-up with a small batch, which also tells how many codes a run needs.
        let warm_codes = prepare(if self.s.quick { 500 } else { 2000 }).await?;
        let warm = loadgen::run(
            addr,
            self.plan(Duration::from_secs(60)),
            loadgen::each(warm_codes, make.clone()),
            check.clone(),
        )
        .await?;
        let per_run = ((warm.rate() * self.s.duration.as_secs_f64() * 1.2) as usize).clamp(500, 200_000);
        let mut rates = Vec::new();
        let mut note = format!("{per_run} codes prepared per run");
        for _ in 0..self.s.runs {
            let codes = prepare(per_run).await?;
            let o = loadgen::run(
                addr,
                self.plan(Duration::from_secs(120)),
                loadgen::each(codes, make.clone()),
                check.clone(),
            )
            .await?;
            if o.failed > 0 {
                note = format!("{note}; {} refused, e.g. {}", o.failed, o.first_failure.as_deref().unwrap_or(""));
            }
            rates.push(o.rate());
        }
        let peak = Summary::of(&rates);
        say(format!("{what}: {:.0}/s (runs {rates:.0?})", peak.median));
        let mut at_half = None;
        if latencies {
            let rate = peak.median / 2.0;
            let (mut p50, mut p99) = (Vec::new(), Vec::new());
            for _ in 0..self.s.runs {
                let codes = prepare(((rate * self.s.duration.as_secs_f64() * 1.1) as usize).max(100)).await?;
                let plan = Plan { connections: self.s.connections, duration: self.s.duration, rate: Some(rate) };
                let o = loadgen::run(addr, plan, loadgen::each(codes, make.clone()), check.clone()).await?;
                p50.push(o.p(0.5));
                p99.push(o.p(0.99));
            }
            let (a, b) = (Summary::of(&p50), Summary::of(&p99));
            say(format!("{what} at {rate:.0}/s: p50 {:.2} ms, p99 {:.2} ms", a.median, b.median));
            at_half = Some((a, b));
        }
        Ok(Exchange { peak, note, at_half })
    }

    /// The refresh grant with rotation, as relying parties use it: each connection refreshes
    /// with the token its previous answer gave (`seeds`: one chain per connection, a few spare);
    /// the peak, then p50 and p99 at half of it. The chains go on from run to run.
    pub(crate) async fn refresh_grant(
        &self,
        what: &str,
        addr: SocketAddr,
        seeds: Vec<String>,
        rp: &Rp,
    ) -> anyhow::Result<Exchange> {
        let (source, check) = loadgen::refresh_chain(seeds, refresh_request(rp));
        let (peak, note) = self.peak(what, addr, source.clone(), check.clone()).await?;
        let at_half = self.at_rate(what, addr, peak.median / 2.0, source, check).await?;
        Ok(Exchange { peak, note, at_half: Some(at_half) })
    }
}

/// Caducée's figures on one storage shape.
type ShapeFigures = (Protocol, crate::caducee::Logins);

/// A token-endpoint measure: the peak rate, its note, and the latencies at half of it.
#[derive(Default, Clone)]
pub struct Exchange {
    pub peak: Summary,
    pub note: String,
    pub at_half: Option<(Summary, Summary)>,
}

impl Exchange {
    pub fn p50(&self) -> Summary {
        self.at_half.as_ref().map(|(a, _)| a.clone()).unwrap_or_default()
    }

    pub fn p99(&self) -> Summary {
        self.at_half.as_ref().map(|(_, b)| b.clone()).unwrap_or_default()
    }
}

/// A fresh master key (base64 of 32 random bytes), which the production shape requires.
pub(crate) fn master_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

pub mod futures_lite {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// The token request that exchanges a code for `rp` (PKCE, Basic authentication).
pub(crate) fn exchange_request(rp: &Rp) -> impl Fn(&String) -> Req + Clone + Send + Sync + 'static {
    let basic = rp.basic();
    move |code: &String| {
        let body = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={}",
            url::form_urlencoded::byte_serialize(flows::REDIRECT_URI.as_bytes()).collect::<String>(),
            flows::PKCE_VERIFIER
        );
        let mut r = Req::post_form("/token", body);
        if let Ok(v) = http::HeaderValue::from_str(&basic) {
            r.headers.push((http::header::AUTHORIZATION, v));
        }
        r
    }
}

/// The token request that refreshes `rp`'s refresh token.
pub(crate) fn refresh_request(rp: &Rp) -> impl Fn(&str) -> Req + Send + Sync + 'static {
    let basic = rp.basic();
    move |token: &str| {
        let mut r = Req::post_form("/token", format!("grant_type=refresh_token&refresh_token={token}"));
        if let Ok(v) = http::HeaderValue::from_str(&basic) {
            r.headers.push((http::header::AUTHORIZATION, v));
        }
        r
    }
}

pub(crate) fn bearer(path: &str, token: &str) -> anyhow::Result<Req> {
    Req::get(path).header(http::header::AUTHORIZATION, &format!("Bearer {token}"))
}

pub(crate) fn introspect(path: &str, rp: &Rp, token: &str) -> anyhow::Result<Req> {
    Req::post_form(path, format!("token={token}")).header(http::header::AUTHORIZATION, &rp.basic())
}

pub(crate) fn client_credentials(rp: &Rp) -> anyhow::Result<Req> {
    Req::post_form("/token", "grant_type=client_credentials&scope=api".to_owned())
        .header(http::header::AUTHORIZATION, &rp.basic())
}

/// Figures of one provider (Caducée or the peer) on the shared protocol measures.
#[derive(Default, Clone)]
pub struct Protocol {
    pub discovery: Summary,
    pub jwks: Summary,
    pub cc_es: Summary,
    pub cc_es_p50: Summary,
    pub cc_es_p99: Summary,
    pub cc_rs: Summary,
    pub cc_rs_p50: Summary,
    pub cc_rs_p99: Summary,
    pub code_es: Summary,
    pub code_rs: Summary,
    /// The code exchange for clients with the refresh-token grant (the default), RS256 ID
    /// token with its latencies, then all ES256.
    pub code_rs_refresh: Exchange,
    pub code_es_refresh: Exchange,
    /// The refresh grant (rotation), all ES256.
    pub refresh: Exchange,
    pub userinfo: Summary,
    pub introspection: Summary,
    pub notes: Vec<(String, String)>,
}

impl Bench {
    // ---------------------------------------------------------------- orchestration

    /// Only the production shape's nodes measure and the stores' costs (`--only production`):
    /// printed, the report left as it is (its other rows would be lost).
    pub async fn only_production(&mut self) -> anyhow::Result<()> {
        let scale = self.production_nodes().await?;
        println!("\n{}", crate::report::table(&crate::scale::rows(&scale)));
        for (what, c) in &scale.costs {
            println!("- {what}: {}", c.text());
        }
        Ok(())
    }

    /// Caducée's measures on the embedded default, then in the production shape (its own data
    /// folder, clients and users made again in PostgreSQL, Redis beside it).
    async fn both_shapes(&mut self, receivers: &Receivers) -> anyhow::Result<(ShapeFigures, ShapeFigures)> {
        let data = self.path("data");
        std::fs::create_dir_all(&data)?;
        let addr = procs::free_addr()?;
        let embedded = Place { dir: data, shape: Shape::Embedded, issuer: None };
        let setup = self.setup_caducee(&embedded, addr, &receivers.addrs).await?;
        let ours = self.caducee("embedded", (&embedded, addr, &setup), receivers).await?;
        let redis = self.start_redis().await?;
        let pg = self.start_postgres()?;
        let stores = Stores { pg_port: pg.port(), redis_port: redis.addr.port() };
        stores.prepare().await?;
        let production = self.production_place("data-production", pg.url(), stores, None)?;
        let setup = self.setup_caducee(&production, addr, &[]).await?;
        let ours_redis = self.caducee("production", (&production, addr, &setup), receivers).await?;
        redis.stop().await?;
        drop(pg);
        Ok((ours, ours_redis))
    }

    /// Only the measures of relying parties with refresh tokens, on the embedded default then
    /// on PostgreSQL + Redis (`--only refresh`): printed, the report left as it is.
    pub async fn only_refresh(&mut self) -> anyhow::Result<()> {
        let receivers = Receivers::start(0).await?;
        let ((ours, _), (ours_redis, _)) = self.both_shapes(&receivers).await?;
        for (shape, p) in [("embedded", &ours), ("PostgreSQL + Redis", &ours_redis)] {
            for (what, x) in [
                ("code exchange + refresh, RS256 ID token", &p.code_rs_refresh),
                ("code exchange + refresh, all ES256", &p.code_es_refresh),
                ("refresh grant, all ES256", &p.refresh),
            ] {
                println!(
                    "{shape} | {what}: {:.0}/s ({:.0}–{:.0}); at half: p50 {:.2} ms, p99 {:.2} ms",
                    x.peak.median,
                    x.peak.min,
                    x.peak.max,
                    x.p50().median,
                    x.p99().median
                );
            }
        }
        Ok(())
    }

    pub async fn all(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        self.measure_limits().await?;
        let hello = self.measure_hello().await?;
        let receivers = Receivers::start(100).await?;
        let ((ours, logins), (ours_redis, logins_redis)) = self.both_shapes(&receivers).await?;
        let scale = self.production_nodes().await?;
        let peer = self.peer().await?;
        self.build_rows(&hello, &ours, &logins, &peer, &ours_redis, &logins_redis);
        self.add_scale(&scale);
        let measured = started.elapsed();
        crate::doc::write(self, measured)?;
        Ok(())
    }
}
