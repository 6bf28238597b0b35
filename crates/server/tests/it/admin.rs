//! The admin API: only admin clients get in, on any route; sessions revoked through it are dead
//! on every node; clients and audit are managed through it; and the CLI does the same.

use std::sync::Arc;

use directory::{DataKey, Directory};
use reqwest::{Method, StatusCode};
use server::testing::{Storage, TestProvider};
use session_store::{RedisStore, SessionStore};
use test_support::postgres::PostgresServer;
use test_support::redis::RedisServer;

use crate::common::*;

/// Registers a service client for the admin API and gets a token for it.
pub(crate) async fn admin_token(p: &TestProvider, scopes: &[&str]) -> String {
    let mut add = TestProvider::confidential_client(&format!("svc-{}", scopes.join("-").replace(':', "_")), REDIRECT);
    add.redirect_uris.clear();
    add.grant_types = vec!["client_credentials".into()];
    add.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    let id = add.client_id.clone().unwrap();
    let (_, secret) = p.add_client(add).await.unwrap();
    let r = reqwest::Client::new()
        .post(p.url("/token"))
        .basic_auth(&id, secret)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    body["access_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn call(
    p: &TestProvider,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, p.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn no_unauthenticated_or_non_admin_caller_reaches_any_admin_route() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let doc: serde_json::Value = reqwest::get(s.p.url("/admin/v1/openapi.json")).await.unwrap().json().await.unwrap();
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let user_token = tokens["access_token"].as_str().unwrap().to_owned();
    let other_service = admin_token(&s.p, &["caducee:reports"]).await;

    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "the document describes the routes");
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = path
            .replace("{national_id}", USER)
            .replace("{sid}", "some-sid")
            .replace("{client_id}", "rp")
            .replace("{id}", "some-id");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(m, Method::POST | Method::PUT).then(|| serde_json::json!({ "metadata": {} }));
            for (token, expected) in [
                (None, StatusCode::UNAUTHORIZED),
                (Some("garbage"), StatusCode::UNAUTHORIZED),
                (Some(user_token.as_str()), StatusCode::FORBIDDEN),
                (Some(other_service.as_str()), StatusCode::FORBIDDEN),
            ] {
                let r = call(&s.p, m.clone(), &concrete, token, body.clone()).await;
                assert_eq!(r.status(), expected, "{method} {path} with {:?}", token.map(|t| &t[..t.len().min(8)]));
                let err: serde_json::Value = r.json().await.unwrap();
                assert!(err["error"].is_string() && err["message"].is_string(), "JSON error with a stable code");
                checked += 1;
            }
        }
    }
    assert!(checked >= 60);
    // Unknown paths say nothing more to strangers.
    let r = call(&s.p, Method::GET, "/admin/v1/no-such-route", None, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = call(&s.p, Method::GET, "/admin/v1/no-such-route", Some(&other_service), None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The user is still there: nothing above changed anything.
    assert_eq!(userinfo(&s.p, &user_token).await, StatusCode::OK);
}

#[tokio::test]
async fn clients_accounts_and_audit_through_the_api() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let admin = admin_token(&s.p, &["caducee:admin"]).await;

    let created = call(&s.p, Method::POST, "/admin/v1/clients", Some(&admin), Some(serde_json::json!({
        "client_id": "nouveau", "metadata": { "client_name": "Nouveau", "redirect_uris": ["https://nouveau.example/cb"] }
    }))).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = created.json().await.unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["client"]["metadata"]["token_endpoint_auth_method"], "client_secret_basic");
    let bad = call(
        &s.p,
        Method::POST,
        "/admin/v1/clients",
        Some(&admin),
        Some(serde_json::json!({
            "metadata": { "redirect_uris": ["http://not-loopback.example/cb"] }
        })),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    let dup = call(
        &s.p,
        Method::POST,
        "/admin/v1/clients",
        Some(&admin),
        Some(serde_json::json!({
            "client_id": "nouveau", "metadata": { "redirect_uris": ["https://nouveau.example/cb"] }
        })),
    )
    .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);

    let rotated: serde_json::Value =
        call(&s.p, Method::POST, "/admin/v1/clients/nouveau/secret", Some(&admin), None).await.json().await.unwrap();
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    let updated = call(
        &s.p,
        Method::PUT,
        "/admin/v1/clients/nouveau",
        Some(&admin),
        Some(serde_json::json!({
            "metadata": { "client_name": "Renommé", "redirect_uris": ["https://nouveau.example/cb2"] }
        })),
    )
    .await;
    assert_eq!(updated.json::<serde_json::Value>().await.unwrap()["metadata"]["client_name"], "Renommé");
    assert_eq!(
        call(&s.p, Method::DELETE, "/admin/v1/clients/nouveau", Some(&admin), None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&s.p, Method::GET, "/admin/v1/clients/nouveau", Some(&admin), None).await.status(),
        StatusCode::NOT_FOUND
    );

    // Block: the professional's sessions end and sign-in is refused; unblock lets them back.
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let blocked: serde_json::Value =
        call(&s.p, Method::POST, &format!("/admin/v1/professionals/{USER}/block"), Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(blocked["status"], "blocked");
    assert_eq!(userinfo(&s.p, tokens["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
    call(&s.p, Method::POST, &format!("/admin/v1/professionals/{USER}/unblock"), Some(&admin), None).await;
    assert_eq!(
        exchange(&s.p, "rp", &s.secret, &login(&Browser::new(), &s.p, "rp", USER, &s.totp, 1).await).await.0,
        StatusCode::OK
    );

    // Authenticators: list and remove.
    let list: serde_json::Value =
        call(&s.p, Method::GET, &format!("/admin/v1/professionals/{USER}/authenticators"), Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    let path = format!("/admin/v1/professionals/{USER}/authenticators/{id}");
    assert_eq!(call(&s.p, Method::DELETE, &path, Some(&admin), None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(call(&s.p, Method::DELETE, &path, Some(&admin), None).await.status(), StatusCode::NOT_FOUND);

    // Every call above is audited with the admin's identity; the chain holds; pages follow each other.
    let page1: serde_json::Value =
        call(&s.p, Method::GET, "/admin/v1/audit?event=admin.client.create&limit=5", Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(page1.as_array().unwrap().len(), 1);
    assert_eq!(page1[0]["actor"], "client:svc-caducee_admin");
    let all: serde_json::Value =
        call(&s.p, Method::GET, "/admin/v1/audit?limit=3", Some(&admin), None).await.json().await.unwrap();
    let last = all[2]["id"].as_i64().unwrap();
    let next: serde_json::Value =
        call(&s.p, Method::GET, &format!("/admin/v1/audit?limit=3&after_id={last}"), Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(next[0]["id"].as_i64().unwrap(), last + 1);
    let check: serde_json::Value =
        call(&s.p, Method::GET, "/admin/v1/audit/verify", Some(&admin), None).await.json().await.unwrap();
    assert_eq!(check["first_bad_id"], serde_json::Value::Null);
    let by_user: serde_json::Value = call(
        &s.p,
        Method::GET,
        &format!("/admin/v1/audit?national_id={USER}&event=admin.account.block"),
        Some(&admin),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(by_user.as_array().unwrap().len(), 1);
}

pub(crate) struct Cluster {
    pub(crate) a: TestProvider,
    pub(crate) b: TestProvider,
    pub(crate) pg: PostgresServer,
    pub(crate) redis: RedisServer,
    pub(crate) key: DataKey,
}

pub(crate) async fn cluster() -> Cluster {
    cluster_with(|_| {}).await
}

/// Two nodes sharing PostgreSQL and Redis, each configured by `tune`.
pub(crate) async fn cluster_with(tune: impl Fn(&mut server::Config)) -> Cluster {
    let pg = PostgresServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let key = DataKey::generate().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let directory = Directory::connect(&pg.url(), key.clone()).await.unwrap();
        directory.migrate().await.unwrap();
        let store: Arc<dyn SessionStore> =
            Arc::new(RedisStore::connect(&redis.url()).await.unwrap().with_prefix("caducee:"));
        nodes.push(TestProvider::start_with(Storage::Shared { directory, store }, &tune).await.unwrap());
    }
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    Cluster { a, b, pg, redis, key }
}

#[tokio::test]
async fn a_session_revoked_through_the_api_on_one_node_is_dead_on_the_other() {
    let c = cluster().await;
    let (_, totp) = c.b.add_professional(USER, PASSWORD).await.unwrap();
    let (_, secret) = c.b.add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();
    let secret = secret.unwrap();
    let browser = Browser::new();
    let code = login(&browser, &c.b, "rp", USER, &totp, 0).await;
    let (_, tokens) = exchange(&c.b, "rp", &secret, &code).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();

    let admin = admin_token(&c.a, &["caducee:admin"]).await;
    let sessions: serde_json::Value =
        call(&c.a, Method::GET, &format!("/admin/v1/professionals/{USER}/sessions"), Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "node A sees the session opened on node B");
    assert_eq!(sessions[0]["clients"], serde_json::json!(["rp"]));
    let revoked: serde_json::Value =
        call(&c.a, Method::DELETE, &format!("/admin/v1/professionals/{USER}/sessions"), Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(revoked["sessions"], 1);

    assert_eq!(userinfo(&c.b, at).await, StatusCode::UNAUTHORIZED, "userinfo on node B refuses at once");
    let introspected: serde_json::Value = reqwest::Client::new()
        .post(c.b.url("/introspect"))
        .basic_auth("rp", Some(&secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected, serde_json::json!({ "active": false }));
    assert_eq!(refresh(&c.b, "rp", &secret, rt).await.1["error"], "invalid_grant");
    let r = browser.get(&authorize_url(&c.b, "rp", &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn the_cli_revokes_sessions_and_verifies_the_audit_chain() {
    let c = cluster().await;
    let (pro, totp) = c.a.add_professional(USER, PASSWORD).await.unwrap();
    let (_, secret) = c.a.add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();
    let code = login(&Browser::new(), &c.a, "rp", USER, &totp, 0).await;
    let (_, tokens) = exchange(&c.a, "rp", &secret.unwrap(), &code).await;

    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_caducee"))
            .args(args)
            .env("CADUCEE_DATA_DIR", data.path())
            .env("CADUCEE_DATABASE_URL", c.pg.url())
            .env("CADUCEE_REDIS_URL", c.redis.url())
            .env("CADUCEE_MASTER_KEY", c.key.to_base64().as_str())
            .env("CADUCEE_ISSUER", &c.a.base_url)
            .output()
            .unwrap()
    };
    let out = run(&["session", "revoke-all", "--user", USER]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s)"));
    assert_eq!(userinfo(&c.a, tokens["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo(&c.b, tokens["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);

    // Push blocks, set and lifted from the command line, hold for every node.
    let out = run(&["account", "block-pushes", "--user", USER]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((state["blocked"].as_bool(), state["reason"].as_str()), (Some(true), Some("admin")));
    assert!(c.b.directory().push_blocks().get(&pro.subject).await.unwrap().is_some());
    let out = run(&["account", "unblock-pushes", "--user", USER]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["blocked"], false);
    assert!(c.b.directory().push_blocks().get(&pro.subject).await.unwrap().is_none());

    let out = run(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
    let out = run(&["audit", "list", "--event", "admin.session.revoke_all"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed[0]["actor"].as_str().unwrap().starts_with("operator:"));

    // Someone edits a record behind the log's back: verify says so.
    let raw = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("psql '{}' -c \"UPDATE audit_log SET outcome = 'failure' WHERE id = 2\"", c.pg.url()))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    let out = run(&["audit", "verify"]);
    assert!(!out.status.success(), "a tampered log fails verification");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tampered: record 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The served OpenAPI document is checked against the running server by schemathesis (from
/// PyPI): every documented route, with generated valid and invalid inputs, answers only the
/// statuses and bodies the document declares, refuses malformed input, and enforces its auth.
#[tokio::test]
async fn the_openapi_document_holds_against_the_running_server() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let admin = admin_token(&s.p, &["caducee:admin"]).await;
    // Real records for the path parameters, so that the operations reach their logic, not a 404.
    let b = Browser::new();
    login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let sessions =
        call(&s.p, Method::GET, &format!("/admin/v1/professionals/{USER}/sessions"), Some(&admin), None).await;
    let sid = sessions.json::<serde_json::Value>().await.unwrap()[0]["sid"].as_str().unwrap().to_owned();
    let auths =
        call(&s.p, Method::GET, &format!("/admin/v1/professionals/{USER}/authenticators"), Some(&admin), None).await;
    let auth_id = auths.json::<serde_json::Value>().await.unwrap()[0]["id"].as_str().unwrap().to_owned();
    let config = format!(
        "[parameters]\n\"path.national_id\" = \"{USER}\"\n\"path.client_id\" = \"rp\"\n\"path.sid\" = \"{sid}\"\n\"path.id\" = \"{auth_id}\"\n"
    );
    let workspace = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let schema = s.p.url("/admin/v1/openapi.json");
    let doc: serde_json::Value = reqwest::get(&schema).await.unwrap().json().await.unwrap();
    let report = tokio::task::spawn_blocking(move || {
        let header = format!("Authorization: Bearer {admin}");
        test_support::schemathesis::run(
            &workspace,
            &config,
            &schema,
            &[
                "--header",
                &header,
                "--checks",
                "all",
                // Well-formed requests that break a business rule (a redirect URI without https,
                // a public client with a secret) are rightly refused: that check would call them bugs.
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "15",
                "--seed",
                "20261125",
                "--workers",
                "2",
            ],
        )
    })
    .await
    .unwrap()
    .expect("schemathesis (run `make test-assets`)");
    assert!(report.passed, "schemathesis found problems:\n{}", report.output);
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|ops| ops.as_object().unwrap().len()).sum();
    let every = format!("{operations} selected / {operations} total");
    assert!(report.output.contains(&every), "it exercised every operation ({every}):\n{}", report.output);
}

pub(crate) const CONSOLE_PEM: &str = include_str!("../fixtures/admin-console.pem");
pub(crate) const STRANGER_PEM: &str = include_str!("../fixtures/stranger.pem");
/// `openssl x509 -in admin-console.pem -outform DER | openssl dgst -sha256 -binary | basenc --base64url`
pub(crate) const CONSOLE_THUMBPRINT: &str = "65FzY1vtF8jqzqEzAldyni0OwBOkWPrJcMiEFqi5_qI";

pub(crate) fn escaped(pem: &str) -> String {
    // As nginx's `$ssl_client_escaped_cert`.
    url::form_urlencoded::byte_serialize(pem.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Mutual TLS, terminated by a proxy: a certificate it verified and passes on administers when
/// its thumbprint is registered; from anyone but a trusted proxy the header counts for nothing.
/// A provider behind a trusted proxy on loopback, where the console's certificate administers.
pub(crate) async fn behind_proxy_with_console_certificate() -> Setup {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.admin.client_certificates = vec![CONSOLE_THUMBPRINT.into()];
    })
    .await
    .unwrap();
    setup(p).await
}

#[tokio::test]
async fn a_registered_client_certificate_from_the_trusted_proxy_administers() {
    let s = behind_proxy_with_console_certificate().await;
    let get = |cert: Option<String>, token: Option<String>| {
        let mut req = reqwest::Client::new().get(s.p.url("/admin/v1/clients"));
        if let Some(c) = cert {
            req = req.header("x-client-cert", c);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = get(Some(escaped(CONSOLE_PEM)), None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("\"rp\""));
    // HAProxy's form: base64 DER.
    let der_b64: String = CONSOLE_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(get(Some(der_b64), None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(Some(escaped(STRANGER_PEM)), None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(get(Some("garbage".into()), None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // A bearer token, when present, is what is judged.
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let user_token = exchange(&s.p, "rp", &s.secret, &code).await.1["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(Some(escaped(CONSOLE_PEM)), Some(user_token)).await.unwrap().status(), StatusCode::FORBIDDEN);

    // The action is audited with the certificate as the actor.
    let r = reqwest::Client::new()
        .post(s.p.url(&format!("/admin/v1/professionals/{USER}/block")))
        .header("x-client-cert", escaped(CONSOLE_PEM))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let records =
        s.p.directory()
            .audit()
            .query(directory::AuditQuery { event: Some("admin.account.block".into()), ..Default::default() })
            .await
            .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].actor.as_deref(), Some(format!("cert:{CONSOLE_THUMBPRINT}").as_str()));

    // Without the proxy in trusted_proxies, the same header is nobody.
    let direct = setup(TestProvider::start().await.unwrap()).await;
    let r = reqwest::Client::new()
        .get(direct.p.url("/admin/v1/clients"))
        .header("x-client-cert", escaped(CONSOLE_PEM))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn client_certificates_need_a_trusted_proxy_and_real_thumbprints() {
    let mut c = server::Config::default();
    c.admin.client_certificates = vec![CONSOLE_THUMBPRINT.into()];
    assert!(c.validate().unwrap_err().to_string().contains("trusted_proxies"));
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    assert!(c.validate().is_ok());
    c.admin.client_certificates = vec!["AB:CD:EF".into()];
    assert!(c.validate().unwrap_err().to_string().contains("thumbprint"));
}

/// A professional who lost their phone: the admin removes the app and issues an activation code,
/// which signs them in once (with the password) so that they can enrol a new app; the code is
/// never written to the audit log, and a second use fails.
#[tokio::test]
async fn an_activation_code_lets_a_professional_back_in_once() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let admin = admin_token(&s.p, &["caducee:admin"]).await;
    let auths =
        call(&s.p, Method::GET, &format!("/admin/v1/professionals/{USER}/authenticators"), Some(&admin), None).await;
    let app_id = auths.json::<serde_json::Value>().await.unwrap()[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/professionals/{USER}/authenticators/{app_id}");
    assert_eq!(call(&s.p, Method::DELETE, &path, Some(&admin), None).await.status(), StatusCode::NO_CONTENT);

    let r =
        call(&s.p, Method::POST, &format!("/admin/v1/professionals/{USER}/activation-code"), Some(&admin), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let issued: serde_json::Value = r.json().await.unwrap();
    let code = issued["code"].as_str().unwrap().to_owned();
    assert_eq!(code.chars().filter(char::is_ascii_digit).count(), 12, "{code}");
    assert!(issued["expires_at"].as_i64().unwrap() > s.p.clock.now());

    // Wrong code: refused like any wrong code.
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert_eq!(submit(&b, &url, &html, USER, PASSWORD, "000000000000").await.status(), StatusCode::OK);
    // The right one, as typed from a letter (with its spaces).
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in with the activation code");
    let back = location(r.headers());
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &query_param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(userinfo(&s.p, tokens["access_token"].as_str().unwrap()).await, StatusCode::OK);

    // Once only.
    let other = Browser::new();
    let (url, html) = open_login(&other, &s.p, "rp", &[]).await;
    assert_eq!(submit(&other, &url, &html, USER, PASSWORD, &code).await.status(), StatusCode::OK, "spent");

    // Audited, without the code.
    let r =
        call(&s.p, Method::GET, "/admin/v1/audit?event=admin.authenticator.activation_code", Some(&admin), None).await;
    let text = r.text().await.unwrap();
    assert!(text.contains("admin.authenticator.activation_code"), "{text}");
    assert!(!text.contains(&code.replace(' ', "")) && !text.contains(&code), "the code is not in the audit log");

    // A withdrawn code no longer works.
    let r =
        call(&s.p, Method::POST, &format!("/admin/v1/professionals/{USER}/activation-code"), Some(&admin), None).await;
    let code = r.json::<serde_json::Value>().await.unwrap()["code"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/professionals/{USER}/activation-code");
    assert_eq!(call(&s.p, Method::DELETE, &path, Some(&admin), None).await.status(), StatusCode::NO_CONTENT);
    let (url, html) = open_login(&other, &s.p, "rp", &[]).await;
    assert_eq!(submit(&other, &url, &html, USER, PASSWORD, &code).await.status(), StatusCode::OK, "withdrawn");
}

/// Clients are cached per node: a change made through this node must still count from the very
/// next request (the cache is dropped when the directory changes), not after the cache's age.
#[tokio::test]
async fn client_changes_count_from_the_next_request() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let admin = admin_token(&s.p, &["caducee:admin"]).await;
    let introspect = |secret: String| {
        let url = s.p.url("/introspect");
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth("rp", Some(secret))
                .form(&[("token", "unknown")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Warm the cache with the current secret.
    assert_eq!(introspect(s.secret.clone()).await, StatusCode::OK);
    assert_eq!(introspect(s.secret.clone()).await, StatusCode::OK);

    let rotated: serde_json::Value =
        call(&s.p, Method::POST, "/admin/v1/clients/rp/secret", Some(&admin), None).await.json().await.unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(introspect(s.secret.clone()).await, StatusCode::UNAUTHORIZED, "old secret refused at once");
    assert_eq!(introspect(new_secret.clone()).await, StatusCode::OK);

    assert_eq!(
        call(&s.p, Method::DELETE, "/admin/v1/clients/rp", Some(&admin), None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(introspect(new_secret).await, StatusCode::UNAUTHORIZED, "deleted client refused at once");
}

#[tokio::test]
async fn a_lockout_is_seen_through_the_api_then_lifted() {
    let s = setup(
        TestProvider::start_with(server::testing::Storage::Embedded, |c| {
            c.login.max_failures = 2;
            c.login.base_lock = 600;
        })
        .await
        .unwrap(),
    )
    .await;
    let admin = admin_token(&s.p, &["caducee:admin"]).await;
    let status = |body: serde_json::Value| {
        (body["locked"].as_bool(), body["locked_sources"].as_u64(), body["recent_failures"].as_u64())
    };
    let path = format!("/admin/v1/professionals/{USER}/lockout");
    let r = call(&s.p, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status(body.clone()), (Some(false), Some(0), Some(0)));
    assert!(body["until"].is_null());

    // Wrong codes from one address until that address is locked out of the identifier.
    let b = Browser::at("127.0.0.7");
    for _ in 0..3 {
        let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
        submit(&b, &url, &html, USER, PASSWORD, "000000").await;
    }
    let before = s.p.clock.now();
    let body: serde_json::Value = call(&s.p, Method::GET, &path, Some(&admin), None).await.json().await.unwrap();
    assert_eq!(status(body.clone()), (Some(true), Some(1), Some(2)), "{body}");
    let until = body["until"].as_i64().unwrap();
    assert!(until > before && until <= before + 600 + 1, "{body}");

    let r = call(&s.p, Method::POST, &format!("{path}/reset"), Some(&admin), None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let body: serde_json::Value = call(&s.p, Method::GET, &path, Some(&admin), None).await.json().await.unwrap();
    assert_eq!(body["locked"], false, "{body}");
    // Not an identifier at all: a clear refusal.
    let r = call(&s.p, Method::GET, "/admin/v1/professionals/x%20y/lockout", Some(&admin), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
