//! The real `caducee` binary, as an operator uses it: CLI commands on a data folder, then
//! `serve` on the embedded default, keys kept across restarts.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_caducee");

fn caducee(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("CADUCEE_DATA_DIR", data)
        .env_remove("CADUCEE_CONFIG")
        .current_dir(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(data: &std::path::Path, port: u16) -> Serving {
    let child = Command::new(BIN)
        .arg("serve")
        .env("CADUCEE_DATA_DIR", data)
        .env("CADUCEE_LISTEN", format!("127.0.0.1:{port}"))
        .env("CADUCEE_ISSUER", format!("http://127.0.0.1:{port}"))
        .current_dir(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serving = Serving(child);
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
            && r.status() == StatusCode::OK
        {
            return serving;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("caducee serve did not start");
}

#[tokio::test]
async fn operator_commands_and_serve_on_the_embedded_default() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();

    let (ok, out, err) = caducee(
        dir,
        &["client", "add", "--name", "Démo", "--client-id", "demo", "--redirect-uri", "https://rp.example/cb"],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("client_id: demo") && out.contains("client_secret: "), "{out}");
    let (ok, _, err) = caducee(dir, &["client", "add", "--name", "x", "--redirect-uri", "http://rp.example/cb"], None);
    assert!(!ok && err.contains("https"), "http redirect URIs are refused: {err}");

    let (ok, out, err) = caducee(
        dir,
        &[
            "user",
            "add",
            "--national-id",
            "899700000001",
            "--given-name",
            "Jeanne",
            "--family-name",
            "Martin",
            "--profession",
            "60",
            "--password-stdin",
        ],
        Some("une phrase de passe longue\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("subject: f:"), "{out}");
    let (ok, out, _) = caducee(dir, &["user", "list"], None);
    assert!(ok && out.contains("899700000001"));

    let (ok, out, err) = caducee(dir, &["totp", "enroll", "--user", "899700000001"], None);
    assert!(ok, "{err}");
    assert!(out.trim().starts_with("otpauth://totp/Caduc%C3%A9e:899700000001?secret="), "{out}");
    assert!(out.contains("issuer=Caduc%C3%A9e"));

    let (ok, out, _) = caducee(dir, &["client", "list"], None);
    assert!(ok && out.contains("demo"));

    // Secrets at rest: the master key file is private.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("master.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "master.key readable by its owner only");

    // serve: discovery answers, and the keys generated on first start are kept on restart.
    let port = test_support::free_port().unwrap();
    let jwks_first = {
        let _s = serve(dir, port).await;
        let d: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["issuer"], format!("http://127.0.0.1:{port}"));
        reqwest::get(format!("http://127.0.0.1:{port}/jwks")).await.unwrap().text().await.unwrap()
    };
    let _s = serve(dir, port).await;
    let jwks_again = reqwest::get(format!("http://127.0.0.1:{port}/jwks")).await.unwrap().text().await.unwrap();
    let kids = |jwks: &str| {
        let v: serde_json::Value = serde_json::from_str(jwks).unwrap();
        let mut k: Vec<String> =
            v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        k.sort();
        k
    };
    assert_eq!(kids(&jwks_first), kids(&jwks_again), "signing keys survive a restart");
    assert_eq!(kids(&jwks_first).len(), 2);

    // keys rotate: new keys added, previous ones retired but still listed.
    let (ok, out, err) = caducee(dir, &["keys", "rotate"], None);
    assert!(ok, "{err}");
    assert_eq!(out.matches("new signing key").count(), 2);
    let (_, out, _) = caducee(dir, &["keys", "list"], None);
    assert_eq!(out.matches("active").count(), 2, "{out}");
    assert_eq!(out.matches("retired").count(), 2, "{out}");

    // Every change above left an audit record naming the operator, and the chain holds.
    let (ok, out, err) = caducee(dir, &["audit", "list"], None);
    assert!(ok, "{err}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let events: Vec<&str> = records
        .iter()
        .filter(|r| r["actor"].as_str().is_some_and(|a| a.starts_with("operator:")))
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    for e in ["admin.client.create", "admin.account.create", "admin.authenticator.enrol", "admin.keys.rotate"] {
        assert!(events.contains(&e), "{e} in {events:?}");
    }
    let (ok, out, _) = caducee(dir, &["audit", "verify"], None);
    assert!(ok && out.contains("chain verified"), "{out}");

    // Sessions and lockouts of the embedded default live in the server process: the commands
    // that need them say so instead of acting on an empty store.
    for args in [
        &["session", "list", "--user", "899700000001"][..],
        &["account", "block", "--user", "899700000001"][..],
        &["account", "reset-lockout", "--user", "899700000001"][..],
    ] {
        let (ok, _, err) = caducee(dir, args, None);
        assert!(!ok && err.contains("shared session store (redis_url)"), "{args:?}: {err}");
    }
    let (_, out, _) = caducee(dir, &["user", "list"], None);
    assert!(out.contains("active"), "nothing was blocked: {out}");
}

#[tokio::test]
async fn token_commands_import_assign_and_list() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../authn-methods/tests/pskc");
    let (ok, _, err) = caducee(dir, &["token", "import", &format!("{fixtures}/rfc6030-figure7.xml")], None);
    assert!(!ok && err.contains("encrypted"), "an encrypted container needs its passphrase: {err}");
    let (ok, out, err) = caducee(
        dir,
        &["token", "import", &format!("{fixtures}/rfc6030-figure7.xml"), "--passphrase-stdin"],
        Some("qwerty\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "imported 987654321\thotp");
    let psk = dir.join("psk.hex");
    std::fs::write(&psk, "12345678901234567890123456789012\n").unwrap();
    let (ok, _, err) = caducee(
        dir,
        &["token", "import", &format!("{fixtures}/rfc6030-figure6.xml"), "--preshared-key-file", psk.to_str().unwrap()],
        None,
    );
    assert!(!ok && err.contains("already exists"), "same serial twice: {err}");

    caducee(dir, &["user", "add", "--national-id", "899700000001", "--given-name", "A", "--family-name", "B"], None);
    let (ok, out, err) = caducee(dir, &["token", "assign", "--serial", "987654321", "--user", "899700000001"], None);
    assert!(ok, "{err}");
    assert!(out.contains("assigned"));
    let (_, out, _) = caducee(dir, &["token", "list"], None);
    assert_eq!(out.trim(), "987654321\thotp\t899700000001\tactive");
    let (ok, _, _) = caducee(dir, &["token", "unassign", "--serial", "987654321"], None);
    assert!(ok);
    let (_, out, _) = caducee(dir, &["token", "list"], None);
    assert_eq!(out.trim(), "987654321\thotp\t-\tinactive");
}

/// Issue 13, item 15: with the request log on (`RUST_LOG=tower_http=debug`), a request's line
/// says its path and the names of its query parameters, never their values: codes,
/// `id_token_hint`s and `login_hint`s stay out of the logs.
#[tokio::test]
async fn item_15_the_request_log_has_paths_and_parameter_names_only() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log_path = data.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(BIN)
        .arg("serve")
        .env("CADUCEE_DATA_DIR", data.path())
        .env("CADUCEE_LISTEN", format!("127.0.0.1:{port}"))
        .env("CADUCEE_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("CADUCEE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,tower_http=debug")
        .current_dir(data.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let serving = Serving(child);
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status() == StatusCode::OK) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "caducee serve did not start");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let secrets = ["SECRET-CODE-0451", "SECRET-ID-TOKEN-0452", "899700000453"];
    for url in [
        format!(
            "{base}/authorize?client_id=rp&response_type=code&login_hint={}&id_token_hint={}",
            secrets[2], secrets[1]
        ),
        format!("{base}/end_session?id_token_hint={}&state=s", secrets[1]),
        format!("{base}/wallet/callback?code={}&state=s", secrets[0]),
    ] {
        http.get(url).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(serving);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.contains("/authorize") && logged.contains("/end_session"), "the requests are logged: {logged}");
    for secret in secrets {
        assert!(!logged.contains(secret), "{secret} is in the log:\n{logged}");
    }
    assert!(logged.contains("login_hint&id_token_hint"), "with their parameters' names: {logged}");
}
