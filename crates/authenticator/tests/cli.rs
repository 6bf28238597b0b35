//! The binary's own contract before any server is involved: what it says, in which form, and
//! with which exit code, when it cannot start; and the QR-code verbs against a stand-in for
//! the device API that answers as docs/authentication.md says (`FakeProvider`), for what the
//! app decides on its own: which QR codes it refuses, that `offline-code` computes RFC 6287's
//! response and sends nothing. (Its flows against a real provider are in the server's tests,
//! `crates/server/tests/it/authenticator.rs`, which run this same binary.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caducee-authenticator"))
        .args(args)
        .env_remove("CADUCEE_AUTHENTICATOR_PIN")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_a_state_every_verb_but_enrol_says_to_enrol_first() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let qr = "caducee-auth://login?server=https%3A%2F%2Fidp.example%2Fpush%2Fv1&challenge=00112233445566778899aabbccddeeff&client=RP&expires_at=4000000000";
    for verb in [
        &["pushes"][..],
        &["approve", "abc", "--number", "42"],
        &["deny", "abc"],
        &["unblock"],
        &["scan", qr, "--approve"],
        &["offline-code", qr],
    ] {
        let mut args = vec!["--state", state];
        args.extend_from_slice(verb);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{verb:?}: {stderr}");
        assert!(stderr.contains("enrôlez d'abord"), "{verb:?}: {stderr}");
    }
    let (code, stdout, _) = run(&["--json", "--state", state, "pushes"]);
    assert_eq!(code, 2);
    let error: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(error["error"], "state");
}

#[test]
fn an_enrolment_payload_must_name_its_server() {
    let (code, stdout, _) = run(&["--json", "enrol", "caducee-push://enrol?code=ABCD"]);
    assert_eq!(code, 2);
    let error: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(error["error"], "usage");
    let (code, _, stderr) = run(&["enrol", "ABCD"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--server"), "{stderr}");
}

/// A stand-in for the provider's device API on loopback: answers each `POST` with what
/// `respond(path, claims)` gives, and keeps the paths and claims it was sent. Just enough HTTP
/// for one request per connection.
struct FakeProvider {
    endpoint: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

type Respond = fn(&str, &serde_json::Value) -> (u16, serde_json::Value);

impl FakeProvider {
    fn start(respond: Respond) -> FakeProvider {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/push/v1", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let path = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let jws = String::from_utf8(body).unwrap();
                let claims = jws.split('.').nth(1).map(|p| {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap();
                    serde_json::from_slice(&bytes).unwrap()
                });
                let claims = claims.unwrap_or(serde_json::Value::Null);
                let path = path.strip_prefix("/push/v1").unwrap_or(&path).to_owned();
                let (status, answer) = respond(&path, &claims);
                log.lock().unwrap().push((path, claims));
                let answer = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        FakeProvider { endpoint, seen }
    }

    fn requests(&self) -> Vec<(String, serde_json::Value)> {
        self.seen.lock().unwrap().clone()
    }
}

const PIN: &str = "2468";
const OFFLINE_SECRET: [u8; 32] = *b"an offline secret, 32 bytes long";

fn run_with_pin(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caducee-authenticator"))
        .args(args)
        .env("CADUCEE_AUTHENTICATOR_PIN", PIN)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn enrolment_with_offline(path: &str, _: &serde_json::Value) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    match path {
        "/devices" => (
            201,
            serde_json::json!({
                "device_id": "dev-offline",
                "offline_id": "0123456789",
                "offline_secret": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(OFFLINE_SECRET),
                "offline_suite": "OCRA-1:HOTP-SHA256-8:QH32",
            }),
        ),
        "/qr" => (200, serde_json::json!({ "error": "unexpected" })),
        _ => (404, serde_json::json!({ "error": "not_found" })),
    }
}

fn older_provider(path: &str, claims: &serde_json::Value) -> (u16, serde_json::Value) {
    match (path, claims["action"].as_str()) {
        ("/devices", _) => (201, serde_json::json!({ "device_id": "dev-old" })),
        ("/qr", Some("lookup")) => (
            200,
            serde_json::json!({
                "challenge": claims["challenge"], "client_name": "Messagerie sécurisée",
                "source_ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "browser": "Firefox (Linux)",
                "created_at": 1_800_000_000, "expires_at": 4_000_000_000_i64, "warning": "Nous ne vous demanderons jamais ce code.",
            }),
        ),
        ("/qr", Some("answer")) if claims["decision"] == "approve" => {
            (200, serde_json::json!({ "outcome": "approved" }))
        }
        ("/qr", Some("answer")) => (200, serde_json::json!({ "outcome": "denied" })),
        _ => (400, serde_json::json!({ "error": "invalid_request" })),
    }
}

fn login_payload(endpoint: &str, challenge: &str, expires_at: i64) -> String {
    let server: String = url::form_urlencoded::byte_serialize(endpoint.as_bytes()).collect();
    format!(
        "caducee-auth://login?server={server}&challenge={challenge}&client=Messagerie%20s%C3%A9curis%C3%A9e&expires_at={expires_at}"
    )
}

const CHALLENGE: &str = "00112233445566778899aabbccddeeff";
const LATER: i64 = 4_000_000_000;

#[test]
fn offline_code_without_offline_data_from_enrolment_exits_2() {
    let provider = FakeProvider::start(older_provider);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let (code, enrolled, stderr) =
        run_with_pin(&["--json", "--state", state, "enrol", "ABCD", "--server", &provider.endpoint]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(enrolled["offline_codes"], false);
    let payload = login_payload(&provider.endpoint, CHALLENGE, LATER);
    let (code, error, stderr) = run_with_pin(&["--json", "--state", state, "offline-code", &payload]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(error["error"], "offline_unavailable");
    assert!(stderr.contains("n'est pas disponible"), "{stderr}");
    assert_eq!(provider.requests().len(), 1, "offline-code sends nothing");
}

#[test]
fn offline_code_computes_the_ocra_response_without_network() {
    let provider = FakeProvider::start(enrolment_with_offline);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let (code, enrolled, stderr) =
        run_with_pin(&["--json", "--state", state, "enrol", "ABCD", "--server", &provider.endpoint]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (&enrolled["offline_codes"], &enrolled["offline_id"]),
        (&serde_json::json!(true), &serde_json::json!("0123456789"))
    );
    let text = std::fs::read_to_string(state).unwrap();
    assert!(!text.contains("0123456789") && !text.contains("OCRA"), "sealed: {text}");

    let expected = ocra::Suite::parse("OCRA-1:HOTP-SHA256-8:QH32")
        .unwrap()
        .compute(&OFFLINE_SECRET, &ocra::DataInput { question: CHALLENGE, ..ocra::DataInput::default() })
        .unwrap();
    let payload = login_payload(&provider.endpoint, CHALLENGE, LATER);
    let (code, answer, stderr) = run_with_pin(&["--json", "--state", state, "offline-code", &payload]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(answer, serde_json::json!({ "id": "0123456789", "code": expected, "expires_at": LATER }));
    let human = Command::new(env!("CARGO_BIN_EXE_caducee-authenticator"))
        .args(["--state", state, "offline-code", &payload])
        .env("CADUCEE_AUTHENTICATOR_PIN", PIN)
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains(&format!("Identifiant (ID) : 0123456789 — Mot de passe : {expected}")), "{human}");
    assert_eq!(provider.requests().len(), 1, "offline-code sends nothing");

    // Another site's QR code, or an expired one: refused, before the PIN.
    let other = login_payload("https://evil.example/push/v1", CHALLENGE, LATER);
    let (code, error, stderr) = run_with_pin(&["--json", "--state", state, "offline-code", &other]);
    assert_eq!((code, &error["error"]), (2, &serde_json::json!("other_server")), "{stderr}");
    assert!(stderr.contains("autre serveur"), "{stderr}");
    let expired = login_payload(&provider.endpoint, CHALLENGE, 1_000_000_000);
    let (code, error, _) = run_with_pin(&["--json", "--state", state, "offline-code", &expired]);
    assert_eq!((code, &error["error"]), (2, &serde_json::json!("expired")));
}

#[test]
fn scan_shows_the_providers_context_then_answers() {
    let provider = FakeProvider::start(older_provider);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let (code, _, stderr) = run_with_pin(&["--state", state, "enrol", "ABCD", "--server", &provider.endpoint]);
    assert_eq!(code, 0, "{stderr}");
    let payload = login_payload(&provider.endpoint, CHALLENGE, LATER);

    // No terminal to ask on and no flag: nothing is sent.
    let (code, error, stderr) = run_with_pin(&["--json", "--state", state, "scan", &payload]);
    assert_eq!((code, &error["error"]), (2, &serde_json::json!("usage")), "{stderr}");
    assert!(stderr.contains("--approve ou --deny"), "{stderr}");
    // Another site's QR code: refused, nothing sent.
    let other = login_payload("https://evil.example/push/v1", CHALLENGE, LATER);
    let (code, error, _) = run_with_pin(&["--json", "--state", state, "scan", &other, "--approve"]);
    assert_eq!((code, &error["error"]), (2, &serde_json::json!("other_server")));
    assert_eq!(provider.requests().len(), 1);

    let (code, answer, stderr) = run_with_pin(&["--json", "--state", state, "scan", &payload, "--approve"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(answer["outcome"], "approved");
    assert_eq!(answer["decision"], "approve");
    assert_eq!(answer["context"]["source_ip"], "203.0.113.7");
    let requests = provider.requests();
    let (lookup, approve) = (&requests[1], &requests[2]);
    assert_eq!(lookup.0, "/qr");
    assert_eq!(
        (&lookup.1["action"], &lookup.1["challenge"]),
        (&serde_json::json!("lookup"), &serde_json::json!(CHALLENGE))
    );
    assert_eq!(lookup.1["aud"], provider.endpoint.as_str());
    assert_eq!(
        (&approve.1["action"], &approve.1["decision"]),
        (&serde_json::json!("answer"), &serde_json::json!("approve"))
    );

    let out = Command::new(env!("CARGO_BIN_EXE_caducee-authenticator"))
        .args(["--state", state, "scan", &payload, "--deny"])
        .env("CADUCEE_AUTHENTICATOR_PIN", PIN)
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for part in [
        "Messagerie sécurisée",
        "203.0.113.7",
        "Firefox (Linux)",
        "Nous ne vous demanderons jamais",
        "Connexion refusée.",
    ] {
        assert!(human.contains(part), "{part}: {human}");
    }
}
