//! The reference phone app, `caducee-authenticator`, the real binary driven against the real
//! provider on loopback: enrolled from the wallet's QR payload (or its code and address),
//! approving a sign-in with the number the login page shows, refusing a wrong number, denying,
//! «ce n'était pas moi» then lifting the block from the app, waiting for a push, and its PIN
//! counting down to a wiped state. Only the documented device API lies between the two; a
//! recording proxy shows that a request it sent cannot be sent again.
//!
//! The binary is built by `cargo nextest run --workspace` (or `-p server -p authenticator`).

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use reqwest::StatusCode;
use serde_json::Value;
use server::testing::TestProvider;
use tokio::io::AsyncWriteExt as _;

use crate::common::*;
use crate::push::{ask_push, between, check, plain, waiting};
use crate::wallet::open_wallet;

const PIN: &str = "4821";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The binary, beside this test's own (`target/debug/deps/it-…` → `target/debug/`).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(|deps| deps.parent()).unwrap().join("caducee-authenticator");
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo nextest run --workspace`, or `cargo build -p authenticator`)",
        path.display()
    );
    path
}

/// One phone: its own state file in a temporary directory.
pub(crate) struct App {
    dir: tempfile::TempDir,
    /// Requests go through this HTTP proxy when set.
    proxy: Option<String>,
}

/// What a run of the binary gave: its exit code and its `--json` object.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) json: Value,
    pub(crate) stderr: String,
}

impl App {
    pub(crate) fn new() -> App {
        App { dir: tempfile::tempdir().unwrap(), proxy: None }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("phone").join("state.json")
    }

    fn command(&self, pin: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(binary());
        cmd.arg("--state").arg(self.state()).args(args);
        cmd.env("CADUCEE_AUTHENTICATOR_PIN", pin).kill_on_drop(true);
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env_remove(var);
        }
        if let Some(proxy) = &self.proxy {
            cmd.env("HTTP_PROXY", proxy);
        }
        cmd
    }

    async fn output(&self, pin: &str, args: &[&str]) -> Output {
        self.command(pin, args).output().await.unwrap()
    }

    /// Runs with `--json` and the given PIN.
    pub(crate) async fn run_with(&self, pin: &str, args: &[&str]) -> Run {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.output(pin, &all).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let json = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {stdout:?}, stderr {stderr:?}"));
        Run { code: out.status.code().unwrap(), json, stderr }
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Run {
        self.run_with(PIN, args).await
    }

    /// The pending requests, which must succeed.
    pub(crate) async fn pushes(&self) -> Vec<Value> {
        let r = self.run(&["pushes"]).await;
        assert_eq!(r.code, 0, "{r:?}");
        r.json["challenges"].as_array().unwrap().clone()
    }
}

/// The wallet's QR payload for the setup's professional (what the wallet draws as a QR code).
async fn qr_payload(s: &Setup) -> String {
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let started = s.p.app.push.start_enrolment(&subject, "Téléphone", s.p.clock.now()).await.unwrap();
    started.started().expect("an enrolment code").uri
}

/// An app enrolled from the QR payload.
pub(crate) async fn enrolled(s: &Setup) -> (App, String) {
    let app = App::new();
    let payload = qr_payload(s).await;
    assert!(payload.starts_with("caducee-push://enrol?server="), "{payload}");
    let r = app.run(&["enrol", &payload, "--label", "Terminal de Jeanne"]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (0, Some("enrolled")), "{r:?}");
    assert_eq!(r.json["server"], s.p.url("/push/v1"));
    let device = r.json["device_id"].as_str().unwrap().to_owned();
    (app, device)
}

/// Asks for a push from a new login page; returns the browser, the login URL, the waiting
/// page and the number it shows.
pub(crate) async fn push_login(s: &Setup, b: &Browser) -> (String, String, String) {
    let (login_url, html) = open_login(b, &s.p, "rp", &[]).await;
    let r = ask_push(b, &login_url, &html, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    (login_url, page, number)
}

async fn audit(s: &Setup) -> Vec<directory::AuditRecord> {
    s.p.directory().audit().query(directory::AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap()
}

#[tokio::test]
async fn the_authenticator_enrolled_from_the_qr_payload_approves_a_sign_in_with_the_number_shown() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, device) = enrolled(&s).await;
    let text = std::fs::read_to_string(app.state()).unwrap();
    let state: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((state["device_id"].as_str(), state["wrong_pins"].as_u64()), (Some(device.as_str()), Some(0)));
    assert!(!text.contains("PRIVATE") && !text.contains("\"d\""), "the key is sealed: {text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(app.state()).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // A second enrolment over the same state is refused before anything is sent.
    let again = app.run(&["enrol", "abc", "--server", &s.p.url("/push/v1")]).await;
    assert_eq!(again.code, 2, "{again:?}");
    assert!(app.pushes().await.is_empty());

    let b = Browser::at_as("127.0.0.1", Some(FIREFOX));
    let (login_url, page, number) = push_login(&s, &b).await;
    let pending = app.pushes().await;
    assert_eq!(pending.len(), 1);
    let c = &pending[0];
    assert_eq!(c["client_name"], "rp");
    assert_eq!(c["source_ip"], "127.0.0.1");
    assert_eq!(c["user_agent"], FIREFOX);
    assert_eq!(c["browser"], "Firefox (Linux)");
    assert!(c["expires_at"].as_i64().unwrap() > c["created_at"].as_i64().unwrap());
    assert!(c["warning"].as_str().unwrap().contains("Nous ne vous demanderons jamais ce code"));
    assert!(c.get("number").is_none(), "the phone never learns the number");
    let id = c["id"].as_str().unwrap().to_owned();

    // The same, for a person: every field, in French.
    let human = app.output(PIN, &["pushes"]).await;
    assert!(human.status.success());
    let human = String::from_utf8(human.stdout).unwrap();
    for shown in [&id[..], "Service : rp", "127.0.0.1", "Firefox (Linux)", FIREFOX, "Nous ne vous demanderons"] {
        assert!(human.contains(shown), "{shown:?} in {human}");
    }

    let r = app.run(&["approve", &id, "--number", &number]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (0, Some("approved")), "{r:?}");
    let done = check(&b, &login_url, &page).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let to = location(done.headers());
    assert!(to.starts_with(REDIRECT), "back to the relying party: {to}");
    let code = query_param(&to, "code").unwrap();
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert!(tokens["id_token"].is_string());

    // Used once: approving again is the server's refusal, said as such.
    let r = app.run(&["approve", &id, "--number", &number]).await;
    assert_eq!((r.code, r.json["error"].as_str(), r.json["status"].as_u64()), (1, Some("not_found"), Some(404)));
    let events: Vec<_> = audit(&s).await.into_iter().map(|r| r.event).collect();
    for e in ["push_device_enrolled", "push_sent", "push_approved"] {
        assert!(events.iter().any(|x| x == e), "{e} audited: {events:?}");
    }
}

#[tokio::test]
async fn enrolled_with_the_wallets_code_a_wrong_number_is_refused_and_deny_refuses() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    // The code and address shown under the QR code, typed by hand.
    let wallet = Browser::new();
    let home = plain(open_wallet(&wallet, &s, 0).await);
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let page =
        wallet.post_form(&s.p.url("/wallet/push"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    let code = between(&page, "<code class=\"secret\">", "</code>").to_owned();
    let app = App::new();
    let r = app.run(&["enrol", &code, "--server", &s.p.url("/push/v1")]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let home = wallet.get(&s.p.url("/wallet")).await.text().await.map(plain).unwrap();
    assert!(home.contains("Téléphone d'approbation"), "listed in the wallet");
    // The code is spent.
    let other = App::new().run(&["enrol", &code, "--server", &s.p.url("/push/v1")]).await;
    assert_eq!((other.code, other.json["error"].as_str()), (1, Some("not_found")), "{other:?}");
    assert!(!App::new().state().exists());

    let b = Browser::new();
    let (login_url, page, number) = push_login(&s, &b).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    let wrong = if number == "10" { "11" } else { "10" };
    let r = app.run(&["approve", &id, "--number", wrong]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (1, Some("wrong_number")), "{r:?}");
    assert!(check(&b, &login_url, &page).await.text().await.map(plain).unwrap().contains("refusée sur le téléphone"));
    let r = app.run(&["approve", &id, "--number", &number]).await;
    assert_eq!((r.code, r.json["error"].as_str()), (1, Some("not_found")), "the push is spent");
    let usage = app.run(&["approve", &id, "--number", "douze"]).await;
    assert_eq!(usage.code, 2);

    let (login_url, page, _) = push_login(&s, &b).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    let r = app.run(&["deny", &id]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (0, Some("denied")), "{r:?}");
    let answer = check(&b, &login_url, &page).await;
    assert_eq!(answer.status(), StatusCode::OK, "no redirect to the relying party");
    assert!(answer.text().await.map(plain).unwrap().contains("refusée sur le téléphone"));
    assert!(audit(&s).await.iter().any(|r| r.event == "push_denied" && r.outcome == "denied"));
}

#[tokio::test]
async fn not_me_blocks_and_ends_sessions_and_the_authenticator_lifts_the_block() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, device) = enrolled(&s).await;
    // The professional's own session, with tokens.
    let own = Browser::new();
    let code = login(&own, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&s.p, &access).await, StatusCode::OK);
    // Nothing to lift yet.
    let r = app.run(&["unblock"]).await;
    assert_eq!((r.code, r.json["outcome"].as_str(), r.json["lifted"].as_bool()), (0, Some("unblocked"), Some(false)));

    let impostor = Browser::new();
    let (login_url, page, _) = push_login(&s, &impostor).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    let r = app.run(&["deny", &id, "--not-me"]).await;
    assert_eq!((r.code, r.json["outcome"].as_str(), r.json["sessions_ended"].as_u64()), (0, Some("blocked"), Some(1)));
    assert_eq!(userinfo(&s.p, &access).await, StatusCode::UNAUTHORIZED, "the session's tokens are dead");
    assert!(check(&impostor, &login_url, &page).await.text().await.map(plain).unwrap().contains("refusée"));
    let (login_url, html) = open_login(&impostor, &s.p, "rp", &[]).await;
    let blocked = ask_push(&impostor, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    assert!(blocked.contains("sont bloquées pour votre compte"));
    assert!(app.pushes().await.is_empty());

    // Lifted from the app: audited with the phone named, and a push works again.
    let out = app.output(PIN, &["unblock"]).await;
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("débloquées"));
    let lifted = audit(&s).await.into_iter().find(|r| r.event == "push_unblocked").expect("push_unblocked audited");
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    assert_eq!((lifted.actor.as_deref(), lifted.outcome.as_str()), (Some(subject.as_str()), "unblocked"));
    assert_eq!(lifted.details["device"], device);
    let b = Browser::new();
    let (login_url, page, number) = push_login(&s, &b).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.run(&["approve", &id, "--number", &number]).await.json["outcome"], "approved");
    let done = check(&b, &login_url, &page).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(location(done.headers()).starts_with(REDIRECT));
}

#[tokio::test]
async fn pushes_wait_receives_a_push_asked_while_it_waits() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, _) = enrolled(&s).await;
    // Nothing comes: the wait ends empty when its time is up.
    let started = Instant::now();
    let r = app.run(&["pushes", "--wait", "2"]).await;
    assert_eq!((r.code, r.json["challenges"].as_array().map(Vec::len)), (0, Some(0)), "{r:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));

    // A push asked while the app waits reaches it at once.
    let started = Instant::now();
    let waiting_app = app.command(PIN, &["--json", "pushes", "--wait", "20"]).output();
    let asking = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        push_login(&s, &Browser::new()).await
    };
    let (out, _) = tokio::join!(waiting_app, asking);
    let out = out.unwrap();
    assert!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["challenges"].as_array().unwrap().len(), 1, "{json}");
    assert!(started.elapsed() < Duration::from_secs(15), "answered when the push came: {:?}", started.elapsed());
}

#[tokio::test]
async fn wrong_pins_count_down_a_right_one_resets_and_the_fifth_wipes_the_state() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, _) = enrolled(&s).await;
    let r = app.run_with("0000", &["pushes"]).await;
    assert_eq!((r.code, r.json["error"].as_str(), r.json["tries_left"].as_u64()), (3, Some("wrong_pin"), Some(4)));
    assert!(r.stderr.contains("4 essai"), "{}", r.stderr);
    assert!(app.pushes().await.is_empty(), "the right PIN still opens it");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(app.state()).unwrap()).unwrap();
    assert_eq!(state["wrong_pins"], 0, "and resets the count");
    // The PIN on standard input, for scripts that keep it out of the environment.
    let mut cmd = app.command(PIN, &["--json", "--pin-stdin", "pushes"]);
    cmd.env_remove("CADUCEE_AUTHENTICATOR_PIN").stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PIN}\n").as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["challenges"], serde_json::json!([]));

    for left in (1..5).rev() {
        let r = app.run_with("9999", &["pushes"]).await;
        assert_eq!((r.code, r.json["tries_left"].as_u64()), (3, Some(left)), "{r:?}");
    }
    let r = app.run_with("9999", &["unblock"]).await;
    assert_eq!((r.code, r.json["error"].as_str()), (4, Some("wiped")), "{r:?}");
    assert!(!app.state().exists(), "the state file is gone");
    let r = app.run(&["pushes"]).await;
    assert_eq!(r.code, 2, "nothing left to open: {r:?}");
}

/// What went through the recording proxy: each request's path and body.
type Recorded = Arc<Mutex<Vec<(String, String)>>>;

/// A forward HTTP proxy on loopback that records the bodies and passes them on.
async fn recording_proxy() -> (String, Recorded) {
    let recorded: Recorded = Arc::default();
    let seen = recorded.clone();
    let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((uri.path().to_owned(), String::from_utf8_lossy(&body).into_owned()));
            let mut request = reqwest::Client::new().request(method, uri.to_string()).body(body);
            if let Some(ct) = headers.get("content-type") {
                request = request.header("content-type", ct.as_bytes());
            }
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let body = answer.bytes().await.unwrap();
            (axum::http::StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(forward)).await });
    (format!("http://{address}"), recorded)
}

#[tokio::test]
async fn a_request_the_authenticator_sent_is_refused_when_sent_again() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (mut app, _) = enrolled(&s).await;
    let (proxy, recorded) = recording_proxy().await;
    app.proxy = Some(proxy);
    assert!(app.pushes().await.is_empty(), "through the proxy");
    let b = Browser::new();
    let (_, _, number) = push_login(&s, &b).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    let wrong = if number == "10" { "11" } else { "10" };
    assert_eq!(app.run(&["approve", &id, "--number", wrong]).await.code, 1);
    let captured = recorded.lock().unwrap().clone();
    let paths: Vec<_> = captured.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/push/v1/challenges", "/push/v1/challenges", "/push/v1/answers"]);

    // Each captured request, sent again by hand: refused (its jti was used).
    for (path, jws) in captured {
        assert_eq!(jws.split('.').count(), 3, "a compact JWS: {jws}");
        let r = reqwest::Client::new()
            .post(s.p.url(&path))
            .header("content-type", "application/jose")
            .body(jws)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(body["error_description"].as_str().unwrap().contains("jti"), "{body}");
    }
}
