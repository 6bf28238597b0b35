//! Real flows against Caducée, as a browser and a relying party would drive them: `/authorize`,
//! the login form (password + TOTP, docs/login-ui.md), the code, `/token`, `/userinfo`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::sync::Mutex;

/// RFC 7636 appendix B: the verifier every bench flow uses, and its S256 challenge.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

/// A relying party registered for the bench.
#[derive(Clone, Debug)]
pub struct Rp {
    pub client_id: String,
    pub secret: String,
}

impl Rp {
    pub fn basic(&self) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.client_id, self.secret))
        )
    }
}

/// A professional with a TOTP app; `last_step` is the last TOTP step used (a code is accepted
/// once, for the previous, current or next step; the bench uses the current and the next).
pub struct User {
    pub national_id: String,
    pub password: String,
    pub totp: totp_rs::TOTP,
    pub last_step: AtomicU64,
}

impl User {
    /// The next code this user may log in with now, or `None` if the steps allowed now are used.
    pub fn next_code(&self) -> Option<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        let current = now / 30;
        loop {
            let last = self.last_step.load(Ordering::SeqCst);
            // Never the previous step: a login that started just before a step ends would
            // present it when it is two steps old, and be refused (a spurious failure).
            let step = last.saturating_add(1).max(current);
            if step > current + 1 {
                return None;
            }
            if self.last_step.compare_exchange(last, step, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return Some(self.totp.generate(step * 30));
            }
        }
    }
}

/// The users of the login measure, handed out round-robin to whoever may log in now.
pub struct Users {
    pub all: Vec<User>,
    next: AtomicU64,
}

impl Users {
    pub fn new(all: Vec<User>) -> Users {
        Users { all, next: AtomicU64::new(0) }
    }

    /// A user and a code, waiting for the next TOTP step if every user has used the steps
    /// allowed now (short runs have few users, and the login measure may have used them all).
    pub async fn take_waiting(&self) -> anyhow::Result<(&User, String)> {
        for _ in 0..3 {
            if let Some(found) = self.take() {
                return Ok(found);
            }
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        }
        anyhow::bail!("no user may log in, even after waiting a TOTP step")
    }

    /// A user and a code usable now, if any.
    pub fn take(&self) -> Option<(&User, String)> {
        for _ in 0..self.all.len() {
            let i = usize::try_from(self.next.fetch_add(1, Ordering::Relaxed)).ok()? % self.all.len().max(1);
            let user = self.all.get(i)?;
            if let Some(code) = user.next_code() {
                return Some((user, code));
            }
        }
        None
    }
}

/// A browser: cookies by name, no redirects followed.
#[derive(Clone, Default, Debug)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(SET_COOKIE) {
            if let Ok(v) = v.to_str()
                && let Some((name, rest)) = v.split_once('=')
            {
                let value = rest.split(';').next().unwrap_or("");
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(256).build()?)
}

pub fn authorize_path(rp: &Rp) -> String {
    format!(
        "/authorize?client_id={}&response_type=code&scope=openid&redirect_uri={}&state=s&nonce=n&code_challenge={}&code_challenge_method=S256",
        rp.client_id,
        url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
        PKCE_CHALLENGE
    )
}

/// The `code` of a redirect to the relying party.
pub fn code_of(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    Ok(resp.headers().get(LOCATION).context("no Location")?.to_str()?.to_owned())
}

/// `/authorize` up to the code: through the login form when the browser has no session.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    browser: &mut Browser,
    rp: &Rp,
    user: Option<(&User, &str)>,
) -> anyhow::Result<String> {
    let resp = http.get(format!("{base}{}", authorize_path(rp))).header(COOKIE, browser.cookie_header()).send().await?;
    browser.keep(&resp);
    if resp.status() != StatusCode::SEE_OTHER {
        bail!("/authorize answered {}", resp.status());
    }
    let loc = location(&resp)?;
    if let Some(code) = code_of(&loc) {
        return Ok(code);
    }
    let (user, otp) = user.context("a login is needed but no user was given")?;
    let form_url = format!("{base}{loc}");
    let resp = http.get(&form_url).header(COOKIE, browser.cookie_header()).send().await?;
    if resp.status() != StatusCode::OK {
        bail!("login form answered {}", resp.status());
    }
    let page = resp.text().await?;
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no csrf_token in the login form")?;
    let resp = http
        .post(&form_url)
        .header(COOKIE, browser.cookie_header())
        .form(&[
            ("username", user.national_id.as_str()),
            ("password", user.password.as_str()),
            ("otp", otp),
            ("csrf_token", csrf),
            ("action", "login"),
        ])
        .send()
        .await?;
    browser.keep(&resp);
    if resp.status() != StatusCode::SEE_OTHER {
        bail!("login answered {}", resp.status());
    }
    code_of(&location(&resp)?).context("no code after login")
}

/// Code -> tokens; returns the access token.
pub async fn exchange(http: &reqwest::Client, base: &str, rp: &Rp, code: &str) -> anyhow::Result<String> {
    let json = exchange_json(http, base, rp, code).await?;
    Ok(json["access_token"].as_str().context("no access_token")?.to_owned())
}

/// Code -> the token response, whole.
pub async fn exchange_json(
    http: &reqwest::Client,
    base: &str,
    rp: &Rp,
    code: &str,
) -> anyhow::Result<serde_json::Value> {
    let resp = http
        .post(format!("{base}/token"))
        .header(reqwest::header::AUTHORIZATION, rp.basic())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", PKCE_VERIFIER),
        ])
        .send()
        .await?;
    if resp.status() != StatusCode::OK {
        bail!("/token answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    Ok(resp.json().await?)
}

pub async fn userinfo(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<()> {
    let resp = http.get(format!("{base}/userinfo")).bearer_auth(token).send().await?;
    if resp.status() != StatusCode::OK {
        bail!("/userinfo answered {}", resp.status());
    }
    let _ = resp.bytes().await?;
    Ok(())
}

/// A whole login: authorize, form with password and TOTP, code, token, userinfo. Returns the
/// browser (holding its new SSO session).
pub async fn full_login(
    http: &reqwest::Client,
    base: &str,
    rp: &Rp,
    user: &User,
    otp: &str,
) -> anyhow::Result<Browser> {
    let mut browser = Browser::default();
    let code = login(http, base, &mut browser, rp, Some((user, otp))).await?;
    let token = exchange(http, base, rp, &code).await?;
    userinfo(http, base, &token).await?;
    Ok(browser)
}

/// The SSO variant: a browser with a session signs in to another client without a password.
pub async fn sso_login(http: &reqwest::Client, base: &str, rp: &Rp, browser: &Browser) -> anyhow::Result<()> {
    let mut b = browser.clone();
    let code = login(http, base, &mut b, rp, None).await?;
    let token = exchange(http, base, rp, &code).await?;
    userinfo(http, base, &token).await
}

/// Result of a flow load: completed flows per second, failures, one failure's text.
pub struct FlowOutcome {
    pub ok: u64,
    pub failed: u64,
    pub secs: f64,
    pub first_failure: Option<String>,
    /// Runs that had to wait for a TOTP step (too few users for the rate).
    pub starved: u64,
}

/// SSO logins to `rp` for `duration` from `workers` at once, each taking the next of
/// `browsers` (signed in already) in turn.
pub async fn drive_sso_logins(
    workers: usize,
    duration: std::time::Duration,
    (http, base): (&reqwest::Client, &str),
    rp: &Rp,
    browsers: &Arc<Vec<Browser>>,
) -> FlowOutcome {
    let (http, base, rp, browsers) = (http.clone(), base.to_owned(), rp.clone(), browsers.clone());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    drive(workers, duration, move || {
        let (http, base, rp, browsers, next) = (http.clone(), base.clone(), rp.clone(), browsers.clone(), next.clone());
        async move {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % browsers.len().max(1);
            let b = browsers.get(i).context("no session")?;
            sso_login(&http, &base, &rp, b).await?;
            Ok(true)
        }
    })
    .await
}

/// Runs `workers` concurrent loops of `flow` for `duration`.
pub async fn drive<F, Fut>(workers: usize, duration: std::time::Duration, flow: F) -> FlowOutcome
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let flow = Arc::new(flow);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let starved = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None));
    let start = std::time::Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (flow, ok, failed, starved, first) =
            (flow.clone(), ok.clone(), failed.clone(), starved.clone(), first.clone());
        tasks.push(tokio::spawn(async move {
            while std::time::Instant::now() < deadline {
                match flow().await {
                    Ok(true) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => {
                        starved.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut f = first.lock().await;
                        if f.is_none() {
                            *f = Some(format!("{e:#}"));
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let first_failure = first.lock().await.clone();
    FlowOutcome {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        secs: start.elapsed().as_secs_f64(),
        first_failure,
        starved: starved.load(Ordering::Relaxed),
    }
}
