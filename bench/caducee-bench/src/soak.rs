//! `caducee-bench soak` (`make soak`): the production shape as it is deployed — two
//! `caducee serve` nodes over one PostgreSQL and one Redis, behind one address — driven for a
//! long time by complete flows, to see what only time shows: errors that come once in
//! thousands, latencies that creep, memory that grows.
//!
//! A flow is what a professional and two relying parties do in a day: a full login (password and
//! TOTP) to the first relying party, its code exchange (with a refresh token) and userinfo; an SSO
//! login to the second one, its exchange and userinfo; a refresh of the first one's token and
//! userinfo with the new access token; then the first relying party logs the session out through
//! `/end_session` with its ID token as `id_token_hint`, which sends a back-channel logout token
//! to both. A short closed-loop calibration finds how many flows per second the machine
//! completes; the soak then starts flows on a fixed schedule (open loop) at half of that, minute
//! after minute, and writes its section of docs/benchmarks.md.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION};

use crate::flows::{self, Browser, Rp, User, Users};
use crate::procs;
use crate::run::{Bench, say};

/// The markers around the soak's section of docs/benchmarks.md: a soak run replaces what is
/// between them, and `make bench`, which writes the rest of the file, keeps it.
pub const BEGIN: &str = "<!-- soak:begin -->";
pub const END: &str = "<!-- soak:end -->";

/// Memory is "flat" when the last minute's resident memory is within this share of the
/// resident memory at the end of the warm-up.
const FLAT: f64 = 0.05;

/// The request kinds of a flow, in the order a flow sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Authorize,
    LoginForm,
    LoginSubmit,
    TokenCode,
    Userinfo,
    AuthorizeSso,
    TokenRefresh,
    EndSession,
}

const KINDS: [Kind; 8] = [
    Kind::Authorize,
    Kind::LoginForm,
    Kind::LoginSubmit,
    Kind::TokenCode,
    Kind::Userinfo,
    Kind::AuthorizeSso,
    Kind::TokenRefresh,
    Kind::EndSession,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Authorize => "authorize",
            Kind::LoginForm => "login form",
            Kind::LoginSubmit => "login (password + TOTP)",
            Kind::TokenCode => "token (code)",
            Kind::Userinfo => "userinfo",
            Kind::AuthorizeSso => "authorize (SSO)",
            Kind::TokenRefresh => "token (refresh)",
            Kind::EndSession => "end_session",
        }
    }

    fn index(self) -> usize {
        KINDS.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// What the command line chose.
pub struct SoakSettings {
    pub minutes: f64,
    pub calibration: Duration,
    pub users: usize,
    pub out: PathBuf,
    pub command: String,
    /// Said in the report under the command: what else the machine was doing, e.g.
    pub note: Option<String>,
}

/// One minute of the soak.
struct Minute {
    flows: u64,
    errors: u64,
    logouts_received: u64,
    latency: Vec<Histogram<u64>>,
    /// Resident memory of each node at the end of the minute, bytes: all of it, and its
    /// anonymous part (the rest is the binary's and libraries' pages).
    rss: Vec<u64>,
    anon: Vec<u64>,
    /// The argon2 working areas each node holds (`caducee_password_working_areas`), 19 MiB
    /// each: the steps its memory takes under logins.
    areas: Vec<Option<f64>>,
    /// Requests each node had answered by the end of the minute (`caducee_http_requests_total`
    /// summed): the share of the load each one took during the minute.
    requests: Vec<Option<f64>>,
}

impl Minute {
    fn new() -> anyhow::Result<Minute> {
        let mut latency = Vec::new();
        for _ in KINDS {
            // 1 µs to 60 s, 3 significant digits.
            latency.push(Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")?);
        }
        Ok(Minute {
            flows: 0,
            errors: 0,
            logouts_received: 0,
            latency,
            rss: Vec::new(),
            anon: Vec::new(),
            areas: Vec::new(),
            requests: Vec::new(),
        })
    }
}

/// A refused or failed request, kept whole for the report.
struct Failure {
    at: Duration,
    kind: Kind,
    request: String,
    status: String,
}

#[derive(Default)]
struct State {
    minutes: Vec<Minute>,
    failures: Vec<Failure>,
}

/// What the flows of a phase (calibration or soak) recorded, by minute since its start.
struct Recorder {
    start: Instant,
    state: std::sync::Mutex<State>,
    flows: AtomicU64,
    /// Flows that found no user allowed to log in now (too few users for the rate): a fault of
    /// the harness, not of the provider, reported apart.
    starved: AtomicU64,
    /// Logouts answered, each of which should bring two logout tokens.
    logouts: AtomicU64,
    /// The last minute of the phase: answers that come after its end count in it.
    last_minute: usize,
}

impl Recorder {
    fn new(last_minute: usize) -> Recorder {
        Recorder {
            last_minute,
            start: Instant::now(),
            state: std::sync::Mutex::new(State::default()),
            flows: AtomicU64::new(0),
            starved: AtomicU64::new(0),
            logouts: AtomicU64::new(0),
        }
    }

    fn with_minute(&self, f: impl FnOnce(&mut Minute)) {
        let i = ((self.start.elapsed().as_secs() / 60) as usize).min(self.last_minute);
        if let Ok(mut s) = self.state.lock() {
            while s.minutes.len() <= i {
                match Minute::new() {
                    Ok(m) => s.minutes.push(m),
                    Err(_) => return,
                }
            }
            if let Some(m) = s.minutes.get_mut(i) {
                f(m);
            }
        }
    }

    fn latency(&self, kind: Kind, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.with_minute(|m| {
            if let Some(h) = m.latency.get_mut(kind.index()) {
                h.saturating_record(micros);
            }
        });
    }

    fn failure(&self, kind: Kind, request: String, status: String) {
        let at = self.start.elapsed();
        say(format!("error at {:.0} s: {} {request}: {status}", at.as_secs_f64(), kind.name()));
        self.with_minute(|m| m.errors += 1);
        if let Ok(mut s) = self.state.lock() {
            s.failures.push(Failure { at, kind, request, status });
        }
    }

    fn flow_done(&self) {
        self.flows.fetch_add(1, Ordering::Relaxed);
        self.with_minute(|m| m.flows += 1);
    }

    fn logout_received(&self) {
        self.with_minute(|m| m.logouts_received += 1);
    }

    fn errors(&self) -> usize {
        self.state.lock().map(|s| s.failures.len()).unwrap_or(0)
    }
}

/// The relying parties' back-channel logout endpoint: counts the logout tokens it receives.
struct Receiver {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    /// Where the current phase records what arrives.
    phase: Arc<std::sync::Mutex<Option<Arc<Recorder>>>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let phase: Arc<std::sync::Mutex<Option<Arc<Recorder>>>> = Arc::new(std::sync::Mutex::new(None));
        let (r, p) = (received.clone(), phase.clone());
        let handler = move |body: bytes::Bytes| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                // Back-Channel Logout 1.0: a form with the logout token.
                if !body.starts_with(b"logout_token=") {
                    return http::StatusCode::BAD_REQUEST;
                }
                r.fetch_add(1, Ordering::Relaxed);
                if let Ok(p) = p.lock()
                    && let Some(rec) = p.as_ref()
                {
                    rec.logout_received();
                }
                http::StatusCode::OK
            }
        };
        // A path per relying party, so that each gets its own token whatever the provider
        // does with two clients at one address.
        let app = axum::Router::new()
            .route("/backchannel/first", axum::routing::post(handler.clone()))
            .route("/backchannel/second", axum::routing::post(handler));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, received, phase })
    }

    fn record_into(&self, rec: &Arc<Recorder>) {
        if let Ok(mut p) = self.phase.lock() {
            *p = Some(rec.clone());
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Everything a flow needs.
struct Ctx {
    http: reqwest::Client,
    base: String,
    first: Rp,
    second: Rp,
    users: Users,
}

/// An answer read whole.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Ctx {
    /// Sends `req`, times it, and records it as `kind`: its latency when the status is
    /// `expected`, a failure (with the request and what came back) otherwise.
    async fn call(
        &self,
        rec: &Recorder,
        kind: Kind,
        req: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Option<Answer> {
        let Some(built) = req.build().ok() else {
            rec.failure(kind, "(unbuildable request)".into(), String::new());
            return None;
        };
        let described = format!("{} {}", built.method(), path_of(built.url()));
        let t = Instant::now();
        let answer = async {
            let resp = self.http.execute(built).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.text().await?;
            anyhow::Ok(Answer { status, headers, body })
        }
        .await;
        let took = t.elapsed();
        match answer {
            Ok(a) if a.status == expected => {
                rec.latency(kind, took);
                Some(a)
            }
            Ok(a) => {
                rec.failure(kind, described, format!("{} {}", a.status, excerpt(&a.body)));
                None
            }
            Err(e) => {
                rec.failure(kind, described, format!("transport: {e:#}"));
                None
            }
        }
    }

    fn token_request(&self, rp: &Rp, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http.post(format!("{}/token", self.base)).header(AUTHORIZATION, rp.basic()).form(form)
    }

    /// `/authorize` for `rp` with `browser`'s cookies: the redirect's location.
    async fn authorize(&self, rec: &Recorder, kind: Kind, rp: &Rp, browser: &mut Browser) -> Option<String> {
        let req = self
            .http
            .get(format!("{}{}", self.base, flows::authorize_path(rp)))
            .header(COOKIE, browser.cookie_header());
        let a = self.call(rec, kind, req, StatusCode::SEE_OTHER).await?;
        keep_cookies(browser, &a.headers);
        let loc = a.headers.get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if loc.is_none() {
            rec.failure(kind, "GET /authorize".into(), "303 without a Location".into());
        }
        loc
    }

    /// The code exchange: the token response.
    async fn exchange(&self, rec: &Recorder, rp: &Rp, code: &str) -> Option<serde_json::Value> {
        let req = self.token_request(
            rp,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", flows::REDIRECT_URI),
                ("code_verifier", flows::PKCE_VERIFIER),
            ],
        );
        let a = self.call(rec, Kind::TokenCode, req, StatusCode::OK).await?;
        json_with(rec, Kind::TokenCode, &a.body, &["access_token", "id_token", "refresh_token"])
    }

    async fn userinfo(&self, rec: &Recorder, access_token: &str) -> Option<()> {
        let req = self.http.get(format!("{}/userinfo", self.base)).bearer_auth(access_token);
        let a = self.call(rec, Kind::Userinfo, req, StatusCode::OK).await?;
        if !a.body.contains("\"sub\"") {
            rec.failure(Kind::Userinfo, "GET /userinfo".into(), format!("200 without sub: {}", a.body));
            return None;
        }
        Some(())
    }

    /// One whole flow for `user` (see the module's documentation). Every failure is recorded
    /// where it happens; `None` ends the flow there.
    async fn flow(&self, rec: &Recorder, user: &User, otp: &str) -> Option<()> {
        let mut browser = Browser::default();
        // Full login to the first relying party.
        let form_path = self.authorize(rec, Kind::Authorize, &self.first, &mut browser).await?;
        let form_url = format!("{}{form_path}", self.base);
        let req = self.http.get(&form_url).header(COOKIE, browser.cookie_header());
        let a = self.call(rec, Kind::LoginForm, req, StatusCode::OK).await?;
        let Some(csrf) = a.body.split("name=\"csrf_token\" value=\"").nth(1).and_then(|rest| rest.split('"').next())
        else {
            rec.failure(Kind::LoginForm, format!("GET {form_path}"), "200 without a csrf_token".into());
            return None;
        };
        let req = self.http.post(&form_url).header(COOKIE, browser.cookie_header()).form(&[
            ("username", user.national_id.as_str()),
            ("password", user.password.as_str()),
            ("otp", otp),
            ("csrf_token", csrf),
            ("action", "login"),
        ]);
        let a = self.call(rec, Kind::LoginSubmit, req, StatusCode::SEE_OTHER).await?;
        keep_cookies(&mut browser, &a.headers);
        let Some(code) = a.headers.get(LOCATION).and_then(|v| v.to_str().ok()).and_then(flows::code_of) else {
            rec.failure(Kind::LoginSubmit, format!("POST {form_path}"), "303 without a code".into());
            return None;
        };
        let first = self.exchange(rec, &self.first, &code).await?;
        self.userinfo(rec, str_of(&first, "access_token")).await?;

        // SSO login to the second relying party: no form, the session cookie is enough.
        let loc = self.authorize(rec, Kind::AuthorizeSso, &self.second, &mut browser).await?;
        let Some(code) = flows::code_of(&loc) else {
            rec.failure(Kind::AuthorizeSso, "GET /authorize".into(), format!("303 to {loc}, without a code"));
            return None;
        };
        let second = self.exchange(rec, &self.second, &code).await?;
        self.userinfo(rec, str_of(&second, "access_token")).await?;

        // The first relying party refreshes, and uses the new access token.
        let req = self.token_request(
            &self.first,
            &[("grant_type", "refresh_token"), ("refresh_token", str_of(&first, "refresh_token"))],
        );
        let a = self.call(rec, Kind::TokenRefresh, req, StatusCode::OK).await?;
        let refreshed = json_with(rec, Kind::TokenRefresh, &a.body, &["access_token", "refresh_token"])?;
        self.userinfo(rec, str_of(&refreshed, "access_token")).await?;

        // RP-initiated logout, which ends the session at both relying parties.
        let req = self
            .http
            .get(format!("{}/end_session", self.base))
            .query(&[("id_token_hint", str_of(&first, "id_token"))])
            .header(COOKIE, browser.cookie_header());
        self.call(rec, Kind::EndSession, req, StatusCode::OK).await?;
        rec.logouts.fetch_add(1, Ordering::Relaxed);
        rec.flow_done();
        Some(())
    }

    /// A flow for the next user allowed to log in now, if any.
    async fn next_flow(&self, rec: &Recorder) {
        match self.users.take() {
            Some((user, otp)) => {
                let _ = self.flow(rec, user, &otp).await;
            }
            None => {
                rec.starved.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn path_of(url: &url::Url) -> String {
    let mut p = url.path().to_owned();
    if let Some(q) = url.query() {
        p.push('?');
        p.push_str(q);
    }
    // Tokens and codes in a query are long: the start says enough.
    if p.len() > 160 {
        let cut = p.char_indices().nth(160).map(|(i, _)| i).unwrap_or(p.len());
        p.truncate(cut);
        p.push('…');
    }
    p
}

/// What a refused answer says: a page's alert (the login form's error message) when there is
/// one, else the start of the body.
fn excerpt(body: &str) -> String {
    let alert = body.split("role=\"alert\"").nth(1).map(|rest| {
        let text = rest.split("</div>").next().unwrap_or("");
        // The tags out, the words kept; `rest` starts inside the alert's opening tag.
        let mut out = String::new();
        let mut in_tag = true;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        format!("(alert:{})", out.split_whitespace().collect::<Vec<_>>().join(" "))
    });
    alert.unwrap_or_else(|| body.chars().take(300).collect())
}

fn keep_cookies(browser: &mut Browser, headers: &http::HeaderMap) {
    for v in headers.get_all(reqwest::header::SET_COOKIE) {
        if let Ok(v) = v.to_str()
            && let Some((name, rest)) = v.split_once('=')
        {
            let value = rest.split(';').next().unwrap_or("");
            browser.cookies.insert(name.trim().to_owned(), value.to_owned());
        }
    }
}

fn str_of<'a>(v: &'a serde_json::Value, field: &str) -> &'a str {
    v.get(field).and_then(|t| t.as_str()).unwrap_or("")
}

/// The body as JSON with each of `fields` a string, or a recorded failure.
fn json_with(rec: &Recorder, kind: Kind, body: &str, fields: &[&str]) -> Option<serde_json::Value> {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match v {
        Some(v) if fields.iter().all(|f| v.get(*f).and_then(|t| t.as_str()).is_some()) => Some(v),
        _ => {
            let excerpt: String = body.chars().take(300).collect();
            rec.failure(kind, "POST /token".into(), format!("200 without {}: {excerpt}", fields.join(", ")));
            None
        }
    }
}

/// What the soak found, for the report.
struct Outcome {
    calibration_rate: f64,
    rate: f64,
    rec: Arc<Recorder>,
    cal: Arc<Recorder>,
    logouts_expected: u64,
    logouts_received: u64,
    users: usize,
    warmup_minutes: usize,
    /// Each node's requests answered when the soak began (the calibration's among them).
    requests_before: Vec<Option<f64>>,
    took: Duration,
}

impl Bench {
    /// The whole soak; an error when any request failed (after writing the report).
    pub async fn soak(&mut self, s: SoakSettings) -> anyhow::Result<()> {
        let started = Instant::now();
        let receiver = Receiver::start().await?;
        let redis = self.start_redis().await?;
        let pg = self.start_postgres()?;
        let (a, b) = (procs::free_addr()?, procs::free_addr()?);
        let balancer = test_support::balancer::Balancer::start(vec![a, b])?;
        let stores = crate::costs::Stores { pg_port: pg.port(), redis_port: redis.addr.port() };
        let place = self.production_place("data-soak", pg.url(), stores, Some(balancer.url()))?;
        let t = Instant::now();
        let mut users = self.add_users(&place, a, 0..s.users).await?;
        let mut rps = Vec::new();
        for (id, path) in [("soak-first", "first"), ("soak-second", "second")] {
            let uri = format!("http://{}/backchannel/{path}", receiver.addr);
            // Registered with the default grants (code and refresh token), ES256 ID tokens.
            let rp = self
                .add_client(
                    &place,
                    a,
                    &[
                        "--client-id",
                        id,
                        "--name",
                        id,
                        "--redirect-uri",
                        flows::REDIRECT_URI,
                        "--id-token-alg",
                        "ES256",
                        "--backchannel-logout-uri",
                        &uri,
                    ],
                )
                .await?;
            rps.push(rp);
        }
        say(format!("set up ({} users) in {:.0} s", users.len(), t.elapsed().as_secs_f64()));
        // The first node alone makes the signing keys of the empty database; then the second.
        let node_a = self.start_caducee("soak-node-a", &place, a, &[]).await?;
        let node_b = self.start_caducee("soak-node-b", &place, b, &[]).await?;
        let nodes = [&node_a, &node_b];
        let [first, second]: [Rp; 2] = rps.try_into().map_err(|_| anyhow::anyhow!("two clients"))?;

        // Calibration: closed loop, as many flows as the nodes complete.
        let ctx = Arc::new(Ctx {
            // A connection per request. The balancer hands out connections in turn, not
            // requests (the HAProxy of deploy/ hands out requests); a client that kept its
            // connections reused the most recent ones, and the load drifted from one node to
            // the other for minutes at a time (one node answering four requests in five, then
            // the other), each node's memory following its share.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()?,
            base: balancer.url(),
            first,
            second,
            users: Users::new(std::mem::take(&mut users)),
        });
        let cal = Arc::new(Recorder::new(usize::MAX));
        receiver.record_into(&cal);
        let workers = 16;
        let deadline = Instant::now() + s.calibration;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (ctx, cal) = (ctx.clone(), cal.clone());
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    let before = cal.starved.load(Ordering::Relaxed);
                    ctx.next_flow(&cal).await;
                    if cal.starved.load(Ordering::Relaxed) > before {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let calibration_rate = cal.flows.load(Ordering::Relaxed) as f64 / cal.start.elapsed().as_secs_f64();
        let rate = calibration_rate / 2.0;
        say(format!(
            "calibration: {calibration_rate:.1} flows/s over {:.0} s ({} errors, {} waits for a TOTP step); soak at {rate:.1} flows/s",
            s.calibration.as_secs_f64(),
            cal.errors(),
            cal.starved.load(Ordering::Relaxed)
        ));
        if calibration_rate <= 0.0 {
            bail!("no flow completed during the calibration ({} errors)", cal.errors());
        }

        // A user logs in at most once per 30 s TOTP step: enough users for the rate, with room.
        let Some(ctx) = Arc::into_inner(ctx) else { bail!("calibration tasks still hold the context") };
        let needed = (rate * 30.0 * 1.3).ceil() as usize;
        let mut all = ctx.users.all;
        if needed > all.len() {
            let t = Instant::now();
            let more = self.add_users(&place, a, all.len()..needed).await?;
            say(format!("{} more users for the rate, in {:.0} s", more.len(), t.elapsed().as_secs_f64()));
            all.extend(more);
        }
        let user_count = all.len();
        let ctx = Arc::new(Ctx { users: Users::new(all), ..ctx });

        // The soak: open loop, flows started on schedule whatever the answers.
        // Late back-channel deliveries of the calibration's logouts land before the soak counts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rec = Arc::new(Recorder::new((s.minutes.ceil() as usize).max(1) - 1));
        receiver.record_into(&rec);
        let logouts_before = receiver.received();
        let end = rec.start + Duration::from_secs_f64(s.minutes * 60.0);
        let period = Duration::from_secs_f64(1.0 / rate);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut next = Instant::now();
        let mut next_sample = rec.start + Duration::from_secs(60);
        let pids: Vec<u32> = nodes.iter().filter_map(|n| n.pid()).collect();
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let requests_before = read_metrics(&ctx.http, &addrs).await.requests;
        while next < end {
            if Instant::now() >= next_sample {
                let read = read_metrics(&ctx.http, &addrs).await;
                sample(&rec, &pids, read, next_sample - Duration::from_secs(1));
                next_sample += Duration::from_secs(60);
            }
            tokio::time::sleep_until(next.into()).await;
            next += period;
            let (ctx, rec, flying) = (ctx.clone(), rec.clone(), in_flight.clone());
            flying.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                ctx.next_flow(&rec).await;
                flying.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // The last flows' answers, then the last minute's memory and logout tokens.
        let wait = Instant::now();
        while in_flight.load(Ordering::SeqCst) > 0 && wait.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if Instant::now() < next_sample {
            tokio::time::sleep_until(next_sample.into()).await;
        }
        let read = read_metrics(&ctx.http, &addrs).await;
        sample(&rec, &pids, read, next_sample - Duration::from_secs(1));
        let logouts_expected = 2 * rec.logouts.load(Ordering::Relaxed);
        let wait = Instant::now();
        while receiver.received() - logouts_before < logouts_expected && wait.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let logouts_received = receiver.received() - logouts_before;
        if logouts_received < logouts_expected {
            rec.failure(
                Kind::EndSession,
                "back-channel logout tokens".into(),
                format!("{logouts_received} received of {logouts_expected} expected, 30 s after the last logout"),
            );
        }
        let flying = in_flight.load(Ordering::SeqCst);
        if flying > 0 {
            rec.failure(Kind::EndSession, "flows in flight".into(), format!("{flying} unfinished 60 s after the end"));
        }
        node_b.stop().await?;
        node_a.stop().await?;
        redis.stop().await?;
        drop(pg);
        drop(balancer);

        let minutes = rec.state.lock().map(|st| st.minutes.len()).unwrap_or(0);
        let outcome = Outcome {
            calibration_rate,
            rate,
            rec: rec.clone(),
            cal: cal.clone(),
            logouts_expected,
            logouts_received,
            users: user_count,
            warmup_minutes: (minutes / 6).max(1),
            requests_before,
            took: started.elapsed(),
        };
        let section = section(&s, &outcome);
        println!("\n{section}");
        write_block(&s.out, &section)?;
        say(format!("wrote {}", s.out.display()));
        let errors = rec.errors() + cal.errors();
        if errors > 0 {
            bail!("{errors} errors during the soak (listed in {})", s.out.display());
        }
        Ok(())
    }
}

/// What the soak reads from each node's `/metrics` (`None` where it did not say).
struct NodeMetrics {
    areas: Vec<Option<f64>>,
    requests: Vec<Option<f64>>,
}

async fn read_metrics(http: &reqwest::Client, addrs: &[SocketAddr]) -> NodeMetrics {
    let mut read = NodeMetrics { areas: Vec::with_capacity(addrs.len()), requests: Vec::with_capacity(addrs.len()) };
    for addr in addrs {
        let text = match http.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        read.areas.push(
            text.lines()
                .find_map(|l| l.strip_prefix("caducee_password_working_areas "))
                .and_then(|v| v.trim().parse().ok()),
        );
        // One series per route and status: `name{labels} value`.
        let counts: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("caducee_http_requests_total{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.trim().parse().ok()))
            .collect();
        read.requests.push((!counts.is_empty()).then(|| counts.iter().sum()));
    }
    read
}

/// Each node's resident memory and what its `/metrics` said, into the minute that `at` falls in.
fn sample(rec: &Recorder, pids: &[u32], read: NodeMetrics, at: Instant) {
    let rss: Vec<u64> = pids.iter().map(|p| procs::rss_of(*p).unwrap_or(0)).collect();
    let anon: Vec<u64> = pids.iter().map(|p| procs::status_kib(*p, "RssAnon:").unwrap_or(0) * 1024).collect();
    let i = ((at.saturating_duration_since(rec.start).as_secs() / 60) as usize).min(rec.last_minute);
    if let Ok(mut s) = rec.state.lock() {
        while s.minutes.len() <= i {
            match Minute::new() {
                Ok(m) => s.minutes.push(m),
                Err(_) => return,
            }
        }
        if let Some(m) = s.minutes.get_mut(i) {
            m.rss = rss;
            m.anon = anon;
            m.areas = read.areas;
            m.requests = read.requests;
        }
    }
}

/// The first node's share of the requests both answered between two readings of their counts.
fn share_of_first(before: &[Option<f64>], after: &[Option<f64>]) -> Option<f64> {
    let answered = |n: usize| Some(after.get(n).copied().flatten()? - before.get(n).copied().flatten()?);
    let (a, b) = (answered(0)?, answered(1)?);
    (a + b > 0.0).then(|| a / (a + b))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The soak's section of docs/benchmarks.md, markers included.
fn section(s: &SoakSettings, o: &Outcome) -> String {
    let calibration_errors = o.cal.errors();
    let mut d = String::new();
    let _ = writeln!(d, "{BEGIN}\n## Soak: two nodes over PostgreSQL + Redis\n");
    let _ = writeln!(
        d,
        "Written by `make soak` (`caducee-bench soak`, bench/caducee-bench/src/soak.rs), {}. Do not edit by hand: run it again.\n",
        crate::doc::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(d, "- Command: `{}`; the whole run took {:.0} s.", s.command, o.took.as_secs_f64());
    let _ = writeln!(d, "- Machine: {}.", crate::doc::machine());
    if let Some(note) = &s.note {
        let _ = writeln!(d, "- Note: {note}");
    }
    let _ = writeln!(
        d,
        "- {}",
        if procs::pinning() {
            "Pinning: both `caducee serve` nodes (release build), PostgreSQL and Redis on core 0; the flows, the balancer and the back-channel receiver on core 1."
        } else {
            "Pinning: not available on this machine; everything shares the cores."
        }
    );
    let _ = writeln!(
        d,
        "- Shape: two nodes sharing the issuer (the balancer's address) and `CADUCEE_MASTER_KEY`, over one PostgreSQL (files on disk, every commit synced) and one Redis (no persistence), behind a round-robin TCP balancer (`test_support::balancer`) to which the flows open a connection per request, so that requests alternate between the nodes as behind the HTTP load balancer of `deploy/`; clients and {} professionals with TOTP made with the CLI.",
        o.users
    );
    let _ = writeln!(
        d,
        "- A flow: full login (authorize, login form, password + TOTP) to a first relying party, its code exchange (refresh token included) and userinfo; SSO login to a second relying party, its code exchange and userinfo; a refresh by the first and userinfo with the new token; `/end_session` with the first's ID token as `id_token_hint`, which sends a back-channel logout token to both (counted by a receiver in the bench)."
    );
    let _ = writeln!(
        d,
        "- Calibration: {:.0} s closed loop (16 flows at a time): {:.1} flows/s{}. Soak: flows started on schedule (open loop) at half of that, {:.1} flows/s, for {} minute(s).",
        s.calibration.as_secs_f64(),
        o.calibration_rate,
        if calibration_errors > 0 { format!(", {calibration_errors} errors") } else { String::new() },
        o.rate,
        s.minutes
    );
    let _ = writeln!(
        d,
        "- Latencies are per request, from sending to the whole answer read, p99 over the minute, in ms; memory is each node's resident set (`VmRSS`) at the minute's end, its anonymous part (`RssAnon`) in brackets, and beside it the argon2 working areas the node holds (19 MiB each); the last column is node A's share of the requests the two nodes answered during the minute (their `/metrics` counts).\n"
    );
    let mut header = String::from("| minute | flows | errors | logout tokens |");
    let mut rule = String::from("|---:|---:|---:|---:|");
    for k in KINDS {
        let _ = write!(header, " {} p99 |", k.name());
        rule.push_str("---:|");
    }
    header.push_str(" node A RSS MiB | node A areas | node B RSS MiB | node B areas | node A's share of requests |");
    rule.push_str("---:|---:|---:|---:|---:|");
    let _ = writeln!(d, "{header}\n{rule}");
    let mut first_rss: Option<Vec<u64>> = None;
    let mut last_rss: Option<Vec<u64>> = None;
    let mut requests_before = o.requests_before.clone();
    if let Ok(st) = o.rec.state.lock() {
        for (i, m) in st.minutes.iter().enumerate() {
            let mut line = format!("| {} | {} | {} | {} |", i + 1, m.flows, m.errors, m.logouts_received);
            for h in &m.latency {
                if h.is_empty() {
                    line.push_str(" – |");
                } else {
                    let _ = write!(line, " {:.1} |", h.value_at_quantile(0.99) as f64 / 1000.0);
                }
            }
            for n in 0..2 {
                match (m.rss.get(n), m.anon.get(n)) {
                    (Some(r), Some(a)) => {
                        let _ = write!(line, " {:.1} ({:.1}) |", mib(*r), mib(*a));
                    }
                    (Some(r), None) => {
                        let _ = write!(line, " {:.1} |", mib(*r));
                    }
                    _ => line.push_str(" – |"),
                }
                match m.areas.get(n).copied().flatten() {
                    Some(a) => {
                        let _ = write!(line, " {a:.0} |");
                    }
                    None => line.push_str(" – |"),
                }
            }
            match share_of_first(&requests_before, &m.requests) {
                Some(share) => {
                    let _ = write!(line, " {:.0} % |", share * 100.0);
                }
                None => line.push_str(" – |"),
            }
            requests_before.clone_from(&m.requests);
            let _ = writeln!(d, "{line}");
            if m.rss.len() == 2 {
                if i + 1 == o.warmup_minutes {
                    first_rss = Some(m.rss.clone());
                }
                last_rss = Some(m.rss.clone());
            }
        }
    }
    d.push('\n');
    let flows = o.rec.flows.load(Ordering::Relaxed);
    let _ = writeln!(
        d,
        "- Flows completed: {flows}; back-channel logout tokens received: {} of {} expected.",
        o.logouts_received, o.logouts_expected
    );
    let starved = o.rec.starved.load(Ordering::Relaxed);
    if starved > 0 {
        let _ = writeln!(
            d,
            "- {starved} scheduled flows found no professional allowed to log in at that moment (too few users for the rate: a limit of the harness, not an error of the provider)."
        );
    }
    match (first_rss, last_rss) {
        (Some(w), Some(l)) => {
            let growth: Vec<f64> =
                w.iter().zip(&l).map(|(a, b)| if *a > 0 { (*b as f64 - *a as f64) / *a as f64 } else { 0.0 }).collect();
            let flat = growth.iter().all(|g| g.abs() <= FLAT);
            let _ = writeln!(
                d,
                "- Memory after the warm-up (minute {} to the last): node A {:+.1} %, node B {:+.1} %: {}.",
                o.warmup_minutes,
                growth.first().copied().unwrap_or(0.0) * 100.0,
                growth.get(1).copied().unwrap_or(0.0) * 100.0,
                if flat {
                    format!("flat (within {:.0} %)", FLAT * 100.0)
                } else if growth.iter().any(|g| *g > FLAT) {
                    format!("**not flat: grew** by more than {:.0} %", FLAT * 100.0)
                } else {
                    // Freed memory handed back to the system: not a leak, but not flat either.
                    format!("not flat, but no growth: fell by more than {:.0} %", FLAT * 100.0)
                }
            );
        }
        _ => {
            let _ = writeln!(d, "- Memory: too few minutes to judge.");
        }
    }
    for (what, rec) in [("Errors during the soak", &o.rec), ("Errors during the calibration", &o.cal)] {
        let failures: Vec<String> = rec
            .state
            .lock()
            .map(|st| {
                st.failures
                    .iter()
                    .map(|f| {
                        format!(
                            "  - at {:.0} s, {}: `{}` → {}",
                            f.at.as_secs_f64(),
                            f.kind.name(),
                            f.request,
                            f.status.replace('\n', " ")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if failures.is_empty() {
            let _ = writeln!(d, "- {what}: none.");
        } else {
            let _ = writeln!(d, "- {what}: {}.", failures.len());
            for f in failures.iter().take(50) {
                let _ = writeln!(d, "{f}");
            }
            if failures.len() > 50 {
                let _ = writeln!(d, "  - … and {} more", failures.len() - 50);
            }
        }
    }
    let _ = writeln!(d, "{END}");
    d
}

/// Puts `section` in place of the marked block of `path` (or at its end when there is none).
fn write_block(path: &std::path::Path, section: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let after = old.get(e + END.len()..).unwrap_or("").trim_start_matches('\n');
            format!("{}{}{after}", old.get(..b).unwrap_or(""), section)
        }
        _ => {
            let mut s = old.trim_end().to_owned();
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(section);
            s
        }
    };
    std::fs::write(path, new)?;
    Ok(())
}

/// The marked block of an existing report, to carry over when `make bench` rewrites the rest.
pub fn existing_block(path: &std::path::Path) -> Option<String> {
    let old = std::fs::read_to_string(path).ok()?;
    let (b, e) = (old.find(BEGIN)?, old.find(END)?);
    (e > b).then(|| format!("{}\n", old.get(b..e + END.len()).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        std::fs::write(&path, "# Benchmarks\n\ntext\n").unwrap();
        write_block(&path, &format!("{BEGIN}\none\n{END}\n")).unwrap();
        write_block(&path, &format!("{BEGIN}\ntwo\n{END}\n")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("# Benchmarks\n\ntext\n\n{BEGIN}\ntwo\n{END}\n"));
        assert_eq!(existing_block(&path), Some(format!("{BEGIN}\ntwo\n{END}\n")));
    }

    #[test]
    fn a_node_share_is_of_the_requests_answered_between_two_readings() {
        let before = [Some(1000.0), Some(400.0)];
        assert_eq!(share_of_first(&before, &[Some(1300.0), Some(500.0)]), Some(0.75));
        // A node that did not say, or no request at all: no share rather than a made-up one.
        assert_eq!(share_of_first(&before, &[Some(1300.0), None]), None);
        assert_eq!(share_of_first(&before, &before), None);
    }
}
