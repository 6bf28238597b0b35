//! Caducée under the bench: its clients, users and TOTP apps made with the CLI, the server
//! started pinned (embedded default, then with Redis), and its measures: the protocol ones it
//! shares with the peer, logins, memory and the back-channel fan-out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http::StatusCode;
use tokio::process::Command;

use crate::costs::Stores;
use crate::fanout::Receivers;
use crate::flows::{self, Browser, Rp, User, Users};
use crate::loadgen::{self, Check, Plan, Req, Source};
use crate::procs::{self, Server};
use crate::redis::redis_bytes_per_session;
use crate::run::{Bench, Protocol, futures_lite, say};
use crate::stats::Summary;

const PASSWORD: &str = "une longue phrase de passe";

/// Where Caducée keeps its state in a run.
#[derive(Clone, Debug)]
pub enum Shape {
    /// The embedded default: SQLite, sessions in process.
    Embedded,
    /// The production shape: PostgreSQL and Redis, started for the bench and pinned beside it.
    Production { database_url: String, redis_url: String, master_key: String, stores: Stores },
}

impl Shape {
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Shape::Embedded => Vec::new(),
            Shape::Production { database_url, redis_url, master_key, .. } => vec![
                ("CADUCEE_DATABASE_URL", database_url.clone()),
                ("CADUCEE_REDIS_URL", redis_url.clone()),
                ("CADUCEE_MASTER_KEY", master_key.clone()),
            ],
        }
    }
}

/// A Caducée deployment under the bench: its data folder (keys, and the SQLite file of the
/// embedded shape) and where its state lives.
pub struct Place {
    pub dir: std::path::PathBuf,
    pub shape: Shape,
    /// The public URL, when it is not the node's own address (nodes behind a balancer).
    pub issuer: Option<String>,
}

impl Bench {
    /// A deployment over the bench's PostgreSQL (`database_url`) and Redis (`redis_port`), its
    /// data folder `name` under the run's, reached at `issuer` when nodes are behind a balancer.
    pub fn production_place(
        &self,
        name: &str,
        database_url: String,
        stores: Stores,
        issuer: Option<String>,
    ) -> anyhow::Result<Place> {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir)?;
        let shape = Shape::Production {
            database_url,
            redis_url: format!("redis://127.0.0.1:{}/", stores.redis_port),
            master_key: crate::run::master_key(),
            stores,
        };
        Ok(Place { dir, shape, issuer })
    }
}

impl Bench {
    /// The code exchange measure ([`Bench::code_exchange`]) for `rp` on Caducée at `addr`, its
    /// codes asked for with `browser`'s SSO session.
    pub(crate) async fn session_code_exchange(
        &self,
        what: &str,
        addr: SocketAddr,
        browser: &Browser,
        rp: &Rp,
        latencies: bool,
    ) -> anyhow::Result<crate::run::Exchange> {
        let prepare = |n: usize| -> futures_lite::BoxFuture<'_, anyhow::Result<Vec<String>>> {
            let b = browser.clone();
            Box::pin(async move { self.prepare_codes(addr, &b, rp, n).await })
        };
        self.code_exchange(what, addr, &prepare, rp, latencies).await
    }
}

/// What the CLI registered.
pub struct Setup {
    pub cc: Rp,
    pub rp_rs: Rp,
    pub rp_es: Rp,
    /// The same two with the grants a client gets by default (authorization code and refresh
    /// token), as relying parties written for Pro Santé Connect are registered.
    pub rp_rs_refresh: Rp,
    pub rp_es_refresh: Rp,
    pub rp_sso: Rp,
    pub fan: Vec<Rp>,
    pub users: Arc<Users>,
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
    fn caducee_command(&self, data: &Place, addr: SocketAddr, pinned: bool) -> Command {
        let mut c = if pinned { procs::server_command(&self.s.caducee) } else { Command::new(&self.s.caducee) };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("CADUCEE_DATA_DIR", &data.dir)
            .env("CADUCEE_LISTEN", addr.to_string())
            .env("CADUCEE_ISSUER", data.issuer.clone().unwrap_or_else(|| format!("http://{addr}")))
            // Codes are prepared ahead of the exchange measure: let them live 10 minutes.
            .env("CADUCEE_TOKENS__CODE_TTL", "600")
            // Every measured login comes from one loopback address, hundreds a second: the limits
            // on strangers (logins started, attempts per address) would refuse most of them.
            // The peer has none; what is measured is the login's own cost.
            .env("CADUCEE_SESSION__MAX_INTERACTIONS_PER_ADDRESS", "1000000000")
            .env("CADUCEE_SESSION__MAX_INTERACTIONS_PER_BROWSER", "1000000000")
            .env("CADUCEE_LOGIN__ADDRESS_MAX_ATTEMPTS", "1000000000");
        for (k, v) in data.shape.env() {
            c.env(k, v);
        }
        c
    }

    async fn cli(&self, data: &Place, addr: SocketAddr, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut c = self.caducee_command(data, addr, false);
        c.args(args);
        procs::output(c, stdin).await
    }

    pub(crate) async fn add_client(&self, data: &Place, addr: SocketAddr, args: &[&str]) -> anyhow::Result<Rp> {
        let mut all = vec!["client", "add"];
        all.extend_from_slice(args);
        let out = self.cli(data, addr, &all, None).await?;
        let field = |name: &str| {
            out.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
        };
        Ok(Rp { client_id: field("client_id:"), secret: field("client_secret:") })
    }

    /// Clients, users and TOTP apps, through the CLI, before the server starts.
    pub(crate) async fn setup_caducee(
        &self,
        data: &Place,
        addr: SocketAddr,
        fanout: &[SocketAddr],
    ) -> anyhow::Result<Setup> {
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
        let rp_rs_refresh = self
            .add_client(
                data,
                addr,
                &["--client-id", "rp-rs-refresh", "--name", "RP RS256 refresh", "--redirect-uri", cb],
            )
            .await?;
        let rp_es_refresh = self
            .add_client(
                data,
                addr,
                &[
                    "--client-id",
                    "rp-es-refresh",
                    "--name",
                    "RP ES256 refresh",
                    "--redirect-uri",
                    cb,
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
        let users = self.add_users(data, addr, 0..self.s.users).await?;
        say(format!("Caducée set up ({} users) in {:.1} s", users.len(), t.elapsed().as_secs_f64()));
        Ok(Setup { cc, rp_rs, rp_es, rp_rs_refresh, rp_es_refresh, rp_sso, fan, users: Arc::new(Users::new(users)) })
    }

    /// Professionals `range` (national ids `8997` + the number), each with a TOTP app, through
    /// the CLI (`user import`, then `totp enroll` for each).
    pub(crate) async fn add_users(
        &self,
        data: &Place,
        addr: SocketAddr,
        range: std::ops::Range<usize>,
    ) -> anyhow::Result<Vec<User>> {
        let people: Vec<serde_json::Value> = range
            .clone()
            .map(|i| {
                serde_json::json!({
                    "national_id": format!("8997{i:08}"),
                    "given_name": "Bench",
                    "family_name": format!("User{i}"),
                    "password": PASSWORD,
                })
            })
            .collect();
        let file = self.path(&format!("users-{}.json", range.start));
        std::fs::write(&file, serde_json::to_vec(&people)?)?;
        let file = file.to_string_lossy().into_owned();
        self.cli(data, addr, &["user", "import", &file], None).await?;
        // One CLI process per enrolment, four at a time: thousands of users for a soak would
        // otherwise take minutes of process start-ups one after the other.
        let mut outputs = std::collections::BTreeMap::new();
        let mut running = tokio::task::JoinSet::new();
        for i in range {
            if running.len() >= 4
                && let Some(done) = running.join_next().await
            {
                let (i, out) = done?;
                outputs.insert(i, out?);
            }
            let mut c = self.caducee_command(data, addr, false);
            c.args(["totp", "enroll", "--user", &format!("8997{i:08}")]);
            running.spawn(async move { (i, procs::output(c, None).await) });
        }
        while let Some(done) = running.join_next().await {
            let (i, out) = done?;
            outputs.insert(i, out?);
        }
        let mut users = Vec::new();
        for (i, out) in outputs {
            let id = format!("8997{i:08}");
            let uri = out.lines().find(|l| l.starts_with("otpauth://")).context("no otpauth URI")?;
            let totp = totp_rs::TOTP::from_url_unchecked(uri).map_err(|e| anyhow::anyhow!("otpauth URI: {e}"))?;
            users.push(User {
                national_id: id,
                password: PASSWORD.to_owned(),
                totp,
                last_step: std::sync::atomic::AtomicU64::new(0),
            });
        }
        Ok(users)
    }

    pub(crate) async fn start_caducee(
        &self,
        name: &str,
        data: &Place,
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
    pub(crate) async fn prepare_codes(
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

    /// Refresh tokens to start the refresh measure's chains with: one code per SSO session
    /// (round the sessions when there are fewer), exchanged by `rp`.
    pub(crate) async fn refresh_seeds(
        &self,
        (http, base): (&reqwest::Client, &str),
        browsers: &[Browser],
        rp: &Rp,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut seeds = Vec::with_capacity(n);
        for b in browsers.iter().cycle().take(n) {
            let code = flows::login(http, base, &mut b.clone(), rp, None).await?;
            let json = flows::exchange_json(http, base, rp, &code).await?;
            seeds.push(json["refresh_token"].as_str().context("no refresh_token")?.to_owned());
        }
        Ok(seeds)
    }

    /// The protocol measures on Caducée in one shape.
    pub async fn caducee(
        &self,
        label: &str,
        (data, addr, setup): (&Place, SocketAddr, &Setup),
        receivers: &Receivers,
    ) -> anyhow::Result<(Protocol, Logins)> {
        let stores = match &data.shape {
            Shape::Embedded => None,
            Shape::Production { stores, .. } => Some(*stores),
        };
        let embedded = stores.is_none();
        // `--only refresh`: the measures of relying parties with refresh tokens, nothing else.
        let only_refresh = self.s.only_refresh;
        let mut p = Protocol::default();
        let mut l = Logins::default();
        let server = self.start_caducee(&format!("caducee-{label}"), data, addr, &[]).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        l.rss_idle = Summary::of(&[server.rss()? as f64 / 1_048_576.0]);
        let base = format!("http://{addr}");
        let http = flows::client()?;

        // Discovery and JWKS (they do not touch the store: embedded run only).
        if embedded && !only_refresh {
            (p.discovery, p.jwks) = self.documents("", addr).await?;
        }

        if !only_refresh {
            // Client credentials, ES256 access tokens (the default); latencies on the embedded run.
            let (s, n, at_half) =
                self.client_credentials_load("client_credentials ES256", addr, &setup.cc, embedded).await?;
            p.cc_es = s;
            p.notes.push(("client_credentials ES256".into(), n));
            if let Some(at_half) = at_half {
                (p.cc_es_p50, p.cc_es_p99) = at_half;
            }
        }
        // One login, for a session to prepare codes with and an access token.
        let (user, otp) = setup.users.take_waiting().await?;
        let browser = flows::full_login(&http, &base, &setup.rp_es, user, &otp).await.context("first login")?;
        let code = flows::login(&http, &base, &mut browser.clone(), &setup.rp_es, None).await?;
        let token = flows::exchange(&http, &base, &setup.rp_es, &code).await?;

        if !only_refresh {
            let ((userinfo, n_userinfo), (introspection, n_introspection)) =
                self.resource_endpoints("", addr, ("/userinfo", "/introspect"), &setup.cc, &token).await?;
            (p.userinfo, p.introspection) = (userinfo, introspection);
            p.notes.push(("userinfo".into(), n_userinfo));
            p.notes.push(("introspection".into(), n_introspection));
            // Code exchange: all ES256, then RS256 ID token (+ ES256 access token, the default).
            for (rp, es) in [(&setup.rp_es, true), (&setup.rp_rs, false)] {
                let what = format!("code exchange {}", rp.client_id);
                let x = self.session_code_exchange(&what, addr, &browser, rp, false).await?;
                p.notes.push((what, x.note));
                if es { p.code_es = x.peak } else { p.code_rs = x.peak }
            }
        }
        // The same with a refresh token in each response: RS256 with its latencies, then ES256.
        for (rp, es) in [(&setup.rp_rs_refresh, false), (&setup.rp_es_refresh, true)] {
            let what = format!("code exchange {}", rp.client_id);
            let x = self.session_code_exchange(&what, addr, &browser, rp, !es).await?;
            p.notes.push((what, x.note.clone()));
            if es { p.code_es_refresh = x } else { p.code_rs_refresh = x }
        }
        // Full logins (password + TOTP), then SSO logins to a second client.
        let mut full = Vec::new();
        let sessions = Arc::new(tokio::sync::Mutex::new(Vec::<Browser>::new()));
        for run in 0..if only_refresh { 0 } else { self.s.runs } {
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

        // The refresh grant: a chain per connection, each in an SSO session of its own where
        // there are enough (a relying party refreshes for many professionals at once).
        let pool = if browsers.is_empty() { vec![browser.clone()] } else { browsers.to_vec() };
        let n = self.s.connections + 16;
        let rp = &setup.rp_es_refresh;
        let seeds = self.refresh_seeds((&http, &base), &pool, rp, n).await?;
        let x = self.refresh_grant("refresh grant rp-es-refresh", addr, seeds, rp).await?;
        p.notes.push(("refresh grant".into(), x.note.clone()));
        p.refresh = x;
        let mut sso = Vec::new();
        for _ in 0..if only_refresh { 0 } else { self.s.runs } {
            let o = flows::drive_sso_logins(16, self.s.duration, (&http, &base), &setup.rp_sso, &browsers).await;
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
        if let Some(stores) = stores {
            l.redis_bytes_per_session = Some(redis_bytes_per_session(stores.redis_port).await?);
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
        if embedded && !only_refresh {
            let server = self
                .start_caducee(
                    &format!("caducee-{label}-rs256"),
                    data,
                    addr,
                    &[("CADUCEE_TOKENS__ACCESS_TOKEN_ALG", "RS256")],
                )
                .await?;
            let (s, n, at_half) =
                self.client_credentials_load("client_credentials RS256", addr, &setup.cc, true).await?;
            p.cc_rs = s;
            p.notes.push(("client_credentials RS256".into(), n));
            if let Some(at_half) = at_half {
                (p.cc_rs_p50, p.cc_rs_p99) = at_half;
            }
            server.stop().await?;
        }
        Ok((p, l))
    }
}
