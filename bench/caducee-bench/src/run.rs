//! The whole benchmark: raw limits, Caducée (embedded, then Redis), the peer, the report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http::StatusCode;
use tokio::process::Command;

use crate::flows::{self, Browser, Rp, User, Users};
use crate::limits::Rates;
use crate::loadgen::{self, Check, Plan, Req, Source};
use crate::procs::{self, Server};
use crate::report::Row;
use crate::stats::Summary;

pub const CLIENT_SECRET_PEER: &str = "bench-secret-bench-secret-bench-secret";
const PASSWORD: &str = "une longue phrase de passe";

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
}

pub struct Bench {
    pub s: Settings,
    pub rows: Vec<Row>,
    pub limits: Vec<Rates>,
    tmp: tempfile::TempDir,
}

fn say(text: impl AsRef<str>) {
    eprintln!("[bench] {}", text.as_ref());
}

impl Bench {
    pub fn new(s: Settings) -> anyhow::Result<Bench> {
        Ok(Bench { s, rows: Vec::new(), limits: Vec::new(), tmp: tempfile::tempdir()? })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn plan(&self, duration: Duration) -> Plan {
        Plan { connections: self.s.connections, duration, rate: None }
    }

    /// Warm-up, then `runs` closed-loop runs; the rates and the last outcome's failure text.
    async fn peak(
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
    async fn at_rate(
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

    // ---------------------------------------------------------------- Caducée

    fn caducee_command(&self, data: &Path, addr: SocketAddr, pinned: bool) -> Command {
        let mut c = if pinned { procs::server_command(&self.s.caducee) } else { Command::new(&self.s.caducee) };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("CADUCEE_DATA_DIR", data)
            .env("CADUCEE_LISTEN", addr.to_string())
            .env("CADUCEE_ISSUER", format!("http://{addr}"))
            // Codes are prepared ahead of the exchange measure: let them live 10 minutes.
            .env("CADUCEE_TOKENS__CODE_TTL", "600");
        c
    }

    async fn cli(&self, data: &Path, addr: SocketAddr, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut c = self.caducee_command(data, addr, false);
        c.args(args);
        procs::output(c, stdin).await
    }

    async fn add_client(&self, data: &Path, addr: SocketAddr, args: &[&str]) -> anyhow::Result<Rp> {
        let mut all = vec!["client", "add"];
        all.extend_from_slice(args);
        let out = self.cli(data, addr, &all, None).await?;
        let field = |name: &str| {
            out.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
        };
        Ok(Rp { client_id: field("client_id:"), secret: field("client_secret:") })
    }

    /// Clients, users and TOTP apps, through the CLI, before the server starts.
    async fn setup_caducee(&self, data: &Path, addr: SocketAddr, fanout: &[SocketAddr]) -> anyhow::Result<Setup> {
        let t = Instant::now();
        let cb = flows::REDIRECT_URI;
        let cc = self
            .add_client(
                data,
                addr,
                &[
                    "--client-id",
                    "bench-cc",
                    "--name",
                    "Bench API",
                    "--grant-type",
                    "client_credentials",
                    "--scope",
                    "api",
                    "--resource-server",
                ],
            )
            .await?;
        let rp_rs = self
            .add_client(
                data,
                addr,
                &["--client-id", "rp-rs", "--name", "RP RS256", "--redirect-uri", cb, "--no-refresh"],
            )
            .await?;
        let rp_es = self
            .add_client(
                data,
                addr,
                &[
                    "--client-id",
                    "rp-es",
                    "--name",
                    "RP ES256",
                    "--redirect-uri",
                    cb,
                    "--no-refresh",
                    "--id-token-alg",
                    "ES256",
                ],
            )
            .await?;
        let rp_sso = self
            .add_client(
                data,
                addr,
                &[
                    "--client-id",
                    "rp-sso",
                    "--name",
                    "RP SSO",
                    "--redirect-uri",
                    cb,
                    "--no-refresh",
                    "--id-token-alg",
                    "ES256",
                ],
            )
            .await?;
        let mut fan = Vec::new();
        for (i, rp) in fanout.iter().enumerate() {
            let id = format!("rp-bcl-{i:03}");
            let uri = format!("http://{rp}/backchannel");
            fan.push(
                self.add_client(
                    data,
                    addr,
                    &[
                        "--client-id",
                        &id,
                        "--name",
                        &id,
                        "--redirect-uri",
                        cb,
                        "--no-refresh",
                        "--id-token-alg",
                        "ES256",
                        "--backchannel-logout-uri",
                        &uri,
                    ],
                )
                .await?,
            );
        }
        let people: Vec<serde_json::Value> = (0..self.s.users)
            .map(|i| {
                serde_json::json!({
                    "national_id": format!("8997{i:08}"),
                    "given_name": "Bench",
                    "family_name": format!("User{i}"),
                    "password": PASSWORD,
                })
            })
            .collect();
        let file = self.path("users.json");
        std::fs::write(&file, serde_json::to_vec(&people)?)?;
        let file = file.to_string_lossy().into_owned();
        self.cli(data, addr, &["user", "import", &file], None).await?;
        let mut users = Vec::new();
        for i in 0..self.s.users {
            let id = format!("8997{i:08}");
            let out = self.cli(data, addr, &["totp", "enroll", "--user", &id], None).await?;
            let uri = out.lines().find(|l| l.starts_with("otpauth://")).context("no otpauth URI")?;
            let totp = totp_rs::TOTP::from_url_unchecked(uri).map_err(|e| anyhow::anyhow!("otpauth URI: {e}"))?;
            users.push(User {
                national_id: id,
                password: PASSWORD.to_owned(),
                totp,
                last_step: std::sync::atomic::AtomicU64::new(0),
            });
        }
        say(format!("Caducée set up ({} users) in {:.1} s", users.len(), t.elapsed().as_secs_f64()));
        Ok(Setup { cc, rp_rs, rp_es, rp_sso, fan, users: Arc::new(Users::new(users)) })
    }

    async fn start_caducee(
        &self,
        name: &str,
        data: &Path,
        addr: SocketAddr,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut c = self.caducee_command(data, addr, true);
        c.arg("serve");
        for (k, v) in extra {
            c.env(k, v);
        }
        Server::spawn(name, c, addr, "/readyz", &self.path(&format!("{name}.log"))).await
    }

    /// Codes for `rp`, through `/authorize` with the browser's SSO session, `n` of them.
    async fn prepare_codes(
        &self,
        addr: SocketAddr,
        browser: &Browser,
        rp: &Rp,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let cookie = browser.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let req = Req::get(flows::authorize_path(rp)).header(http::header::COOKIE, &cookie)?;
        let codes = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
        let left = Arc::new(std::sync::atomic::AtomicI64::new(i64::try_from(n)?));
        let l2 = left.clone();
        let source: Source =
            Arc::new(move || (l2.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) > 0).then(|| req.clone()));
        let c2 = codes.clone();
        let check: Check = Arc::new(move |status, headers, _| {
            let code = headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok()).and_then(flows::code_of);
            match (status, code) {
                (StatusCode::SEE_OTHER, Some(code)) => {
                    if let Ok(mut v) = c2.lock() {
                        v.push(code);
                    }
                    true
                }
                _ => false,
            }
        });
        let o =
            loadgen::run(addr, Plan { connections: 16, duration: Duration::from_secs(600), rate: None }, source, check)
                .await?;
        let codes = std::mem::take(&mut *codes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        if codes.len() < n {
            bail!("prepared only {} codes of {n}: {:?}", codes.len(), o.first_failure);
        }
        Ok(codes)
    }

    /// Code exchange: codes prepared in advance (per run), then exchanged as fast as possible.
    async fn code_exchange<'p>(
        &self,
        what: &str,
        addr: SocketAddr,
        prepare: &(dyn Fn(usize) -> futures_lite::BoxFuture<'p, anyhow::Result<Vec<String>>> + Sync),
        rp: &Rp,
    ) -> anyhow::Result<(Summary, String)> {
        let basic = rp.basic();
        let make = move |code: &String| -> Req {
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
        };
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
        let s = Summary::of(&rates);
        say(format!("{what}: {:.0}/s (runs {rates:.0?})", s.median));
        Ok((s, note))
    }
}

/// What the CLI registered.
pub struct Setup {
    pub cc: Rp,
    pub rp_rs: Rp,
    pub rp_es: Rp,
    pub rp_sso: Rp,
    pub fan: Vec<Rp>,
    pub users: Arc<Users>,
}

pub mod futures_lite {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

fn bearer(path: &str, token: &str) -> anyhow::Result<Req> {
    Req::get(path).header(http::header::AUTHORIZATION, &format!("Bearer {token}"))
}

fn introspect(path: &str, rp: &Rp, token: &str) -> anyhow::Result<Req> {
    Req::post_form(path, format!("token={token}")).header(http::header::AUTHORIZATION, &rp.basic())
}

fn client_credentials(rp: &Rp) -> anyhow::Result<Req> {
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
    pub userinfo: Summary,
    pub introspection: Summary,
    pub notes: Vec<(String, String)>,
}

/// Caducée's own figures beyond the protocol measures.
#[derive(Default, Clone)]
pub struct Logins {
    pub full: Summary,
    pub sso: Summary,
    pub rss_idle: Summary,
    pub rss_sessions: Summary,
    pub sessions: u64,
    pub redis_bytes_per_session: Option<f64>,
    /// Back-channel fan-out: ms until every healthy relying party was notified.
    pub fanout: Summary,
    pub notes: Vec<(String, String)>,
}

impl Bench {
    /// The protocol measures on Caducée, with `extra` settings (e.g. Redis).
    pub async fn caducee(
        &self,
        label: &str,
        redis: Option<(&str, u16)>,
        (data, addr, setup): (&Path, SocketAddr, &Setup),
        receivers: &Receivers,
    ) -> anyhow::Result<(Protocol, Logins)> {
        let embedded = redis.is_none();
        let mut extra = Vec::new();
        if let Some((url, _)) = redis {
            extra.push(("CADUCEE_REDIS_URL", url));
        }
        let mut p = Protocol::default();
        let mut l = Logins::default();
        let server = self.start_caducee(&format!("caducee-{label}"), data, addr, &extra).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        l.rss_idle = Summary::of(&[server.rss()? as f64 / 1_048_576.0]);
        let base = format!("http://{addr}");
        let http = flows::client()?;

        // Discovery and JWKS (they do not touch the store: embedded run only).
        if embedded {
            let (s, _) = self
                .peak(
                    "discovery",
                    addr,
                    loadgen::repeat(Req::get("/.well-known/openid-configuration")),
                    loadgen::status_and(StatusCode::OK, "issuer"),
                )
                .await?;
            p.discovery = s;
            let (s, _) = self
                .peak("jwks", addr, loadgen::repeat(Req::get("/jwks")), loadgen::status_and(StatusCode::OK, "keys"))
                .await?;
            p.jwks = s;
        }

        // Client credentials, ES256 access tokens (the default).
        let (s, n) = self
            .peak(
                "client_credentials ES256",
                addr,
                loadgen::repeat(client_credentials(&setup.cc)?),
                loadgen::status_and(StatusCode::OK, "access_token"),
            )
            .await?;
        p.cc_es = s;
        p.notes.push(("client_credentials ES256".into(), n));
        if embedded {
            let (a, b) = self
                .at_rate(
                    "client_credentials ES256",
                    addr,
                    p.cc_es.median / 2.0,
                    loadgen::repeat(client_credentials(&setup.cc)?),
                    loadgen::status_and(StatusCode::OK, "access_token"),
                )
                .await?;
            (p.cc_es_p50, p.cc_es_p99) = (a, b);
        }

        // One login, for a session to prepare codes with and an access token.
        let (user, otp) = setup.users.take().context("no user available")?;
        let browser = flows::full_login(&http, &base, &setup.rp_es, user, &otp).await.context("first login")?;
        let code = flows::login(&http, &base, &mut browser.clone(), &setup.rp_es, None).await?;
        let token = flows::exchange(&http, &base, &setup.rp_es, &code).await?;

        let (s, n) = self
            .peak(
                "userinfo",
                addr,
                loadgen::repeat(bearer("/userinfo", &token)?),
                loadgen::status_and(StatusCode::OK, "\"sub\""),
            )
            .await?;
        p.userinfo = s;
        p.notes.push(("userinfo".into(), n));
        let (s, n) = self
            .peak(
                "introspection",
                addr,
                loadgen::repeat(introspect("/introspect", &setup.cc, &token)?),
                loadgen::status_and(StatusCode::OK, "\"active\":true"),
            )
            .await?;
        p.introspection = s;
        p.notes.push(("introspection".into(), n));

        // Code exchange: all ES256, then RS256 ID token (+ ES256 access token, the default).
        for (rp, es) in [(&setup.rp_es, true), (&setup.rp_rs, false)] {
            let b = browser.clone();
            let prepare = |n: usize| -> futures_lite::BoxFuture<'_, anyhow::Result<Vec<String>>> {
                let b = b.clone();
                Box::pin(async move { self.prepare_codes(addr, &b, rp, n).await })
            };
            let what = format!("code exchange {}", rp.client_id);
            let (s, n) = self.code_exchange(&what, addr, &prepare, rp).await?;
            p.notes.push((what, n));
            if es { p.code_es = s } else { p.code_rs = s }
        }

        // Full logins (password + TOTP), then SSO logins to a second client.
        let mut full = Vec::new();
        let sessions = Arc::new(tokio::sync::Mutex::new(Vec::<Browser>::new()));
        for run in 0..self.s.runs {
            let (users, http2, base2, rp, sess) =
                (setup.users.clone(), http.clone(), base.clone(), setup.rp_es.clone(), sessions.clone());
            let o = flows::drive(4, self.s.duration, move || {
                let (users, http, base, rp, sess) =
                    (users.clone(), http2.clone(), base2.clone(), rp.clone(), sess.clone());
                async move {
                    let Some((user, otp)) = users.take() else { return Ok(false) };
                    let b = flows::full_login(&http, &base, &rp, user, &otp).await?;
                    sess.lock().await.push(b);
                    Ok(true)
                }
            })
            .await;
            let rate = o.ok as f64 / o.secs;
            say(format!(
                "full logins run {run}: {rate:.1}/s ({} failed, {} waits for a TOTP step)",
                o.failed, o.starved
            ));
            if o.failed > 0 || o.starved > 0 {
                l.notes.push((
                    "full login".into(),
                    format!(
                        "{} failed, {} waits for a TOTP step; {}",
                        o.failed,
                        o.starved,
                        o.first_failure.as_deref().unwrap_or("")
                    ),
                ));
            }
            full.push(rate);
        }
        l.full = Summary::of(&full);
        let browsers: Arc<Vec<Browser>> = Arc::new(sessions.lock().await.clone());
        l.sessions = browsers.len() as u64 + 1;
        l.rss_sessions = Summary::of(&[server.rss()? as f64 / 1_048_576.0]);
        let mut sso = Vec::new();
        for _ in 0..self.s.runs {
            let (http2, base2, rp, browsers) = (http.clone(), base.clone(), setup.rp_sso.clone(), browsers.clone());
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let o = flows::drive(16, self.s.duration, move || {
                let (http, base, rp, browsers, next) =
                    (http2.clone(), base2.clone(), rp.clone(), browsers.clone(), next.clone());
                async move {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % browsers.len().max(1);
                    let b = browsers.get(i).context("no session")?;
                    flows::sso_login(&http, &base, &rp, b).await?;
                    Ok(true)
                }
            })
            .await;
            if o.failed > 0 {
                l.notes.push((
                    "SSO login".into(),
                    format!("{} failed: {}", o.failed, o.first_failure.as_deref().unwrap_or("")),
                ));
            }
            sso.push(o.ok as f64 / o.secs);
        }
        l.sso = Summary::of(&sso);
        say(format!("full logins {:.1}/s, SSO logins {:.0}/s", l.full.median, l.sso.median));
        if let Some((_, port)) = redis {
            l.redis_bytes_per_session = Some(redis_bytes_per_session(port).await?);
        }
        if embedded && !receivers.addrs.is_empty() {
            let mut times = Vec::new();
            for b in browsers.iter().take(self.s.runs) {
                let t = self.fanout(&http, &base, &setup.fan, b, receivers).await?;
                say(format!("back-channel fan-out: {t:.1} ms"));
                times.push(t);
            }
            l.fanout = Summary::of(&times);
        }
        server.stop().await?;

        // Client credentials with RS256 access tokens: the same data, restarted.
        if redis.is_none() {
            let server = self
                .start_caducee(
                    &format!("caducee-{label}-rs256"),
                    data,
                    addr,
                    &[("CADUCEE_TOKENS__ACCESS_TOKEN_ALG", "RS256")],
                )
                .await?;
            let (s, n) = self
                .peak(
                    "client_credentials RS256",
                    addr,
                    loadgen::repeat(client_credentials(&setup.cc)?),
                    loadgen::status_and(StatusCode::OK, "access_token"),
                )
                .await?;
            p.cc_rs = s;
            p.notes.push(("client_credentials RS256".into(), n));
            let (a, b) = self
                .at_rate(
                    "client_credentials RS256",
                    addr,
                    p.cc_rs.median / 2.0,
                    loadgen::repeat(client_credentials(&setup.cc)?),
                    loadgen::status_and(StatusCode::OK, "access_token"),
                )
                .await?;
            (p.cc_rs_p50, p.cc_rs_p99) = (a, b);
            server.stop().await?;
        }
        Ok((p, l))
    }

    // ---------------------------------------------------------------- peer

    async fn start_peer(&self, alg: &str) -> anyhow::Result<Server> {
        let addr = procs::free_addr()?;
        let node = PathBuf::from("node");
        let mut c = if procs::pinning() {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(procs::SERVER_CORE.to_string()).arg(&node);
            c
        } else {
            Command::new(&node)
        };
        c.arg(self.s.peer_dir.join("oidc-provider.mjs"))
            .current_dir(&self.s.peer_dir)
            .env("NODE_ENV", "production")
            .env("PORT", addr.port().to_string())
            .env("PEER_ALG", alg)
            .env("CLIENT_SECRET", CLIENT_SECRET_PEER);
        Server::spawn(
            &format!("oidc-provider-{alg}"),
            c,
            addr,
            "/.well-known/openid-configuration",
            &self.path(&format!("peer-{alg}.log")),
        )
        .await
    }

    pub async fn peer(&self) -> anyhow::Result<Protocol> {
        let mut p = Protocol::default();
        let cc = Rp { client_id: "bench-cc".into(), secret: CLIENT_SECRET_PEER.into() };
        let server = self.start_peer("ES256").await?;
        let addr = server.addr;
        let base = format!("http://{addr}");
        let http = flows::client()?;
        let (s, _) = self
            .peak(
                "peer discovery",
                addr,
                loadgen::repeat(Req::get("/.well-known/openid-configuration")),
                loadgen::status_and(StatusCode::OK, "issuer"),
            )
            .await?;
        p.discovery = s;
        let (s, _) = self
            .peak("peer jwks", addr, loadgen::repeat(Req::get("/jwks")), loadgen::status_and(StatusCode::OK, "keys"))
            .await?;
        p.jwks = s;
        let (s, _) = self
            .peak(
                "peer client_credentials ES256",
                addr,
                loadgen::repeat(client_credentials(&cc)?),
                loadgen::status_and(StatusCode::OK, "access_token"),
            )
            .await?;
        p.cc_es = s;
        let (a, b) = self
            .at_rate(
                "peer client_credentials ES256",
                addr,
                p.cc_es.median / 2.0,
                loadgen::repeat(client_credentials(&cc)?),
                loadgen::status_and(StatusCode::OK, "access_token"),
            )
            .await?;
        (p.cc_es_p50, p.cc_es_p99) = (a, b);
        let token: serde_json::Value = http.get(format!("{base}/__bench/token")).send().await?.json().await?;
        let token = token["access_token"].as_str().context("peer token")?.to_owned();
        let (s, _) = self
            .peak(
                "peer userinfo",
                addr,
                loadgen::repeat(bearer("/me", &token)?),
                loadgen::status_and(StatusCode::OK, "\"sub\""),
            )
            .await?;
        p.userinfo = s;
        let (s, _) = self
            .peak(
                "peer introspection",
                addr,
                loadgen::repeat(introspect("/token/introspection", &cc, &token)?),
                loadgen::status_and(StatusCode::OK, "\"active\":true"),
            )
            .await?;
        p.introspection = s;
        for (id, es) in [("rp-es", true), ("rp-rs", false)] {
            let rp = Rp { client_id: id.into(), secret: CLIENT_SECRET_PEER.into() };
            let (http, base) = (&http, &base);
            let prepare = |n: usize| -> futures_lite::BoxFuture<'_, anyhow::Result<Vec<String>>> {
                Box::pin(async move {
                    let mut codes = Vec::with_capacity(n);
                    while codes.len() < n {
                        let batch = (n - codes.len()).min(20_000);
                        let v: Vec<String> = http
                            .get(format!("{base}/__bench/codes?client={id}&n={batch}"))
                            .send()
                            .await?
                            .json()
                            .await?;
                        codes.extend(v);
                    }
                    Ok(codes)
                })
            };
            let (s, n) = self.code_exchange(&format!("peer code exchange {id}"), addr, &prepare, &rp).await?;
            p.notes.push((format!("code exchange {id}"), n));
            if es { p.code_es = s } else { p.code_rs = s }
        }
        server.stop().await?;

        let server = self.start_peer("RS256").await?;
        let addr = server.addr;
        let (s, _) = self
            .peak(
                "peer client_credentials RS256",
                addr,
                loadgen::repeat(client_credentials(&cc)?),
                loadgen::status_and(StatusCode::OK, "access_token"),
            )
            .await?;
        p.cc_rs = s;
        let (a, b) = self
            .at_rate(
                "peer client_credentials RS256",
                addr,
                p.cc_rs.median / 2.0,
                loadgen::repeat(client_credentials(&cc)?),
                loadgen::status_and(StatusCode::OK, "access_token"),
            )
            .await?;
        (p.cc_rs_p50, p.cc_rs_p99) = (a, b);
        server.stop().await?;
        Ok(p)
    }

    // ---------------------------------------------------------------- orchestration

    pub async fn all(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        self.measure_limits().await?;
        let hello = self.measure_hello().await?;
        let receivers = Receivers::start(100).await?;
        let data = self.path("data");
        std::fs::create_dir_all(&data)?;
        let addr = procs::free_addr()?;
        let setup = self.setup_caducee(&data, addr, &receivers.addrs).await?;
        let (ours, logins) = self.caducee("embedded", None, (&data, addr, &setup), &receivers).await?;
        let redis = self.start_redis().await?;
        let url = format!("redis://127.0.0.1:{}/", redis.addr.port());
        let (ours_redis, logins_redis) =
            self.caducee("redis", Some((&url, redis.addr.port())), (&data, addr, &setup), &receivers).await?;
        redis.stop().await?;
        let peer = self.peer().await?;
        self.build_rows(&hello, &ours, &logins, &peer, &ours_redis, &logins_redis);
        let measured = started.elapsed();
        crate::doc::write(self, measured)?;
        Ok(())
    }
}

/// The relying parties of the fan-out measure: loopback servers in this process; the first one
/// hangs (accepts, never answers), the others answer 200 and note when the logout token came.
pub struct Receivers {
    pub addrs: Vec<SocketAddr>,
    hits: Arc<std::sync::Mutex<Vec<(usize, Instant)>>>,
}

impl Receivers {
    pub async fn start(n: usize) -> anyhow::Result<Receivers> {
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut addrs = Vec::new();
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addrs.push(listener.local_addr()?);
            let hits = hits.clone();
            let app = if i == 0 {
                axum::Router::new().route(
                    "/backchannel",
                    axum::routing::post(|| async {
                        std::future::pending::<()>().await;
                        StatusCode::OK
                    }),
                )
            } else {
                axum::Router::new().route(
                    "/backchannel",
                    axum::routing::post(move || {
                        let hits = hits.clone();
                        async move {
                            if let Ok(mut h) = hits.lock() {
                                h.push((i, Instant::now()));
                            }
                            StatusCode::OK
                        }
                    }),
                )
            };
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        Ok(Receivers { addrs, hits })
    }

    fn reset(&self) {
        if let Ok(mut h) = self.hits.lock() {
            h.clear();
        }
    }

    fn healthy_notified(&self) -> (usize, Option<Instant>) {
        match self.hits.lock() {
            Ok(h) => {
                let mut seen: Vec<usize> = h.iter().map(|(i, _)| *i).collect();
                seen.sort_unstable();
                seen.dedup();
                (seen.len(), h.iter().map(|(_, t)| *t).max())
            }
            Err(_) => (0, None),
        }
    }
}

impl Bench {
    /// One session signs in to every fan-out client, then its relying party logs it out
    /// (`/end_session` with an `id_token_hint`): ms until all healthy ones have their token.
    async fn fanout(
        &self,
        http: &reqwest::Client,
        base: &str,
        rps: &[Rp],
        browser: &Browser,
        receivers: &Receivers,
    ) -> anyhow::Result<f64> {
        let mut b = browser.clone();
        let mut first_code = None;
        for rp in rps {
            let code = flows::login(http, base, &mut b, rp, None).await?;
            first_code.get_or_insert((rp.clone(), code));
        }
        let (rp, code) = first_code.context("no fan-out client")?;
        let resp = http
            .post(format!("{base}/token"))
            .header(http::header::AUTHORIZATION, rp.basic())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", flows::REDIRECT_URI),
                ("code_verifier", flows::PKCE_VERIFIER),
            ])
            .send()
            .await?;
        let json: serde_json::Value = resp.json().await?;
        let id_token = json["id_token"].as_str().context("no id_token")?.to_owned();
        let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        receivers.reset();
        let healthy = rps.len().saturating_sub(1);
        let t0 = Instant::now();
        let resp = http
            .get(format!("{base}/end_session?id_token_hint={id_token}"))
            .header(http::header::COOKIE, cookie)
            .send()
            .await?;
        if !resp.status().is_success() && !resp.status().is_redirection() {
            bail!("/end_session answered {}", resp.status());
        }
        loop {
            let (n, last) = receivers.healthy_notified();
            if n >= healthy {
                let last = last.context("no arrival")?;
                return Ok(last.duration_since(t0).as_secs_f64() * 1000.0);
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("only {n} of {healthy} healthy relying parties notified after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn start_redis(&self) -> anyhow::Result<Server> {
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
async fn redis_bytes_per_session(port: u16) -> anyhow::Result<f64> {
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
