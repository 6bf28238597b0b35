//! Faults as production meets them, with real processes: `caducee serve` nodes over PostgreSQL
//! and Redis behind a load balancer, killed with SIGKILL or stopped with SIGTERM in the middle
//! of what they do; the database restarted under load; Redis hung. Each test says what the
//! professional and the relying party see: nothing lost, nobody let in, service resumed without
//! a restart.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use directory::{DataKey, DeliveryQuery, DeliveryStatus, Directory};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use server::testing::{Storage, TestProvider};
use session_store::{RedisStore, SessionStore};
use test_support::balancer::Balancer;
use test_support::postgres::PostgresServer;
use test_support::redis::RedisServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_caducee");
/// A starting node on a busy test machine: migrations checked, keys loaded.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// One `caducee serve` process; killed when dropped.
struct Node {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Node {
    fn spawn(port: u16, issuer: &str, env: &[(&str, String)]) -> Node {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .env_remove("CADUCEE_CONFIG")
            .env("CADUCEE_DATA_DIR", data.path())
            .env("CADUCEE_LISTEN", format!("127.0.0.1:{port}"))
            .env("CADUCEE_ISSUER", issuer)
            .current_dir(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        Node { child: command.spawn().unwrap(), port, _data: data }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = reqwest::get(self.url("/readyz")).await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node on port {} not ready", self.port);
    }

    /// SIGKILL: the node dies at once, whatever it was doing.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end by itself; `None` if it did not within `within`.
    async fn exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two nodes over one PostgreSQL and one Redis behind a balancer, as deployed: one issuer (the
/// balancer's address), one master key. `seed` is an in-process provider on the same storage,
/// a third node, used to register the professional and the clients as an operator would.
struct Deployment {
    a: Node,
    _b: Node,
    balancer: Balancer,
    seed: Setup,
    _pg: PostgresServer,
    _redis: RedisServer,
}

impl Deployment {
    async fn start() -> Deployment {
        let pg = PostgresServer::start().unwrap();
        let redis = RedisServer::start().unwrap();
        let key = DataKey::generate().unwrap();
        let (pa, pb) = (test_support::free_port().unwrap(), test_support::free_port().unwrap());
        let balancer = Balancer::start(vec![([127, 0, 0, 1], pa).into(), ([127, 0, 0, 1], pb).into()]).unwrap();
        let directory = Directory::connect(&pg.url(), key.clone()).await.unwrap();
        directory.migrate().await.unwrap();
        let store: Arc<dyn SessionStore> =
            Arc::new(RedisStore::connect(&redis.url()).await.unwrap().with_prefix("caducee:"));
        // A third node of the deployment (same issuer, same storage), outside the balancer.
        // Started first, it makes the signing keys the others then load.
        let issuer = balancer.url();
        let seed = TestProvider::start_with(Storage::Shared { directory, store }, |c| c.issuer = issuer).await.unwrap();
        let seed = setup(seed).await;

        let env = [
            ("CADUCEE_DATABASE_URL", pg.url()),
            ("CADUCEE_REDIS_URL", redis.url()),
            ("CADUCEE_MASTER_KEY", key.to_base64().to_string()),
        ];
        let a = Node::spawn(pa, &balancer.url(), &env);
        let b = Node::spawn(pb, &balancer.url(), &env);
        a.ready().await;
        b.ready().await;
        Deployment { a, _b: b, balancer, seed, _pg: pg, _redis: redis }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.balancer.url())
    }

    fn authorize_url(&self, client_id: &str) -> String {
        let mut url = url::Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile")
            .append_pair("state", "st4te")
            .append_pair("nonce", "n0nce");
        url.to_string()
    }

    fn resolve(&self, location: &str) -> String {
        url::Url::parse(&self.balancer.url()).unwrap().join(location).unwrap().to_string()
    }

    async fn exchange(&self, client_id: &str, secret: &str, code: &str) -> (StatusCode, serde_json::Value) {
        let r = fresh_connections()
            .post(self.url("/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)])
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }
}

/// An HTTP client opening a connection per request, so that the balancer chooses a node for
/// every request (a pooled connection would stay on one node).
fn fresh_connections() -> Client {
    Client::builder().redirect(Policy::none()).pool_max_idle_per_host(0).build().unwrap()
}

/// A browser behind the balancer: a new connection, and so possibly another node, each request.
fn browser() -> Browser {
    let http = Client::builder().cookie_store(true).redirect(Policy::none()).pool_max_idle_per_host(0).build().unwrap();
    Browser { http }
}

#[tokio::test]
async fn a_node_killed_in_the_middle_of_a_login_leaves_the_login_to_the_other() {
    let mut d = Deployment::start().await;
    let b = browser();

    // The balancer sends connections to the nodes in turn: the authorization request (which
    // opens the login) to one, the login page to the other.
    let r = b.get(&d.authorize_url("rp")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login_url = d.resolve(&location(r.headers()));
    let page = b.get(&login_url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();

    // Node A dies before the professional submits the form.
    d.a.kill();
    let accepted_before = d.balancer.accepted();
    let r = submit(&b, &login_url, &html, USER, PASSWORD, &d.seed.p.totp(&d.seed.totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the login goes on, on node B");
    let to = location(r.headers());
    assert!(to.starts_with(REDIRECT), "back to the relying party: {to}");
    let code = query_param(&to, "code").expect("a code");

    // The relying party redeems the code and uses the token: all on node B now.
    let (status, tokens) = d.exchange("rp", &d.seed.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["iss"], d.balancer.url(), "one issuer for both nodes");
    let userinfo = fresh_connections()
        .get(d.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    assert!(d.balancer.accepted() >= accepted_before + 3, "every request went through the balancer");

    // SSO holds too: the session opened through one node serves the next login.
    let r = b.get(&d.authorize_url("rp")).await;
    assert!(query_param(&location(r.headers()), "code").is_some(), "single sign-on on node B");
}

/// A relying party's back-channel logout endpoint whose first request hangs (as a relying party
/// that is slow at the moment the node dies), and which accepts the next ones.
#[derive(Clone, Default)]
struct HangingFirstRp {
    posts: Arc<AtomicUsize>,
    accepted: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    first: Arc<tokio::sync::Notify>,
}

async fn hanging_first(
    axum::extract::State(rp): axum::extract::State<HangingFirstRp>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> axum::http::StatusCode {
    if rp.posts.fetch_add(1, Ordering::SeqCst) == 0 {
        rp.first.notify_one();
        std::future::pending::<()>().await;
    }
    let token = form.get("logout_token").cloned().unwrap_or_default();
    rp.accepted.lock().unwrap().push(jwt_claims(&token));
    axum::http::StatusCode::OK
}

#[tokio::test]
async fn a_logout_delivery_in_flight_on_a_killed_node_is_sent_once_by_the_other() {
    let mut d = Deployment::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp_port = listener.local_addr().unwrap().port();
    let rp = HangingFirstRp::default();
    let app = axum::Router::new().route("/logout", axum::routing::post(hanging_first)).with_state(rp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut add = TestProvider::confidential_client("bcl", REDIRECT);
    add.backchannel_logout_uri = Some(format!("http://127.0.0.1:{rp_port}/logout"));
    add.backchannel_logout_session_required = true;
    let (_, secret) = d.seed.p.add_client(add).await.unwrap();
    let secret = secret.unwrap();

    let b = browser();
    let r = b.get(&d.authorize_url("bcl")).await;
    let login_url = d.resolve(&location(r.headers()));
    let html = b.get(&login_url).await.text().await.unwrap();
    let r = submit(&b, &login_url, &html, USER, PASSWORD, &d.seed.p.totp(&d.seed.totp, 0).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").expect("signed in");
    let (status, tokens) = d.exchange("bcl", &secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = jwt_claims(id_token)["sid"].as_str().unwrap().to_owned();

    // The relying party signs the professional out through node A, which starts the delivery;
    // A dies while the relying party has not answered yet.
    let mut end = url::Url::parse(&d.a.url("/end_session")).unwrap();
    end.query_pairs_mut().append_pair("id_token_hint", id_token).append_pair("client_id", "bcl");
    let r = b.get(end.as_str()).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "logged out: {}", r.status());
    tokio::time::timeout(Duration::from_secs(10), rp.first.notified()).await.expect("node A started the delivery");
    d.a.kill();

    // Another node's retry job (B's, or the third node's) takes the delivery once its first
    // attempts are surely over (13 s with the default timeouts), at its next round (every 10 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while rp.accepted.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = rp.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "delivered by another node");
    assert_eq!(accepted[0]["sid"], sid.as_str());
    assert_eq!(accepted[0]["iss"], d.balancer.url());

    let directory = d.seed.p.directory();
    let query = DeliveryQuery { sid: Some(sid.clone()), ..Default::default() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let records = directory.logout_deliveries().query(&query).await.unwrap();
        if records.iter().all(|r| r.status == DeliveryStatus::Delivered) || tokio::time::Instant::now() >= deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].status, DeliveryStatus::Delivered, "{delivered:?}");
    // Once: neither node (nor the seed provider) sends it again at its next rounds.
    tokio::time::sleep(server::app::LOGOUT_RETRY_INTERVAL + Duration::from_secs(2)).await;
    assert_eq!(rp.posts.load(Ordering::SeqCst), 2, "the hung attempt, then one delivery");
}

/// Sends `head` and the first half of `body` on a new connection to `port`; returns the
/// connection, to finish the request later.
async fn half_sent_request(port: u16, head: &str, body: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..body.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

#[tokio::test]
async fn sigterm_stops_accepting_finishes_what_is_in_flight_then_exits() {
    let port = test_support::free_port().unwrap();
    let mut node = Node::spawn(port, &format!("http://127.0.0.1:{port}"), &[]);
    node.ready().await;

    // Load: clients requesting discovery and keys without pause, a new connection each time.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, url) = (stop.clone(), node.url("/jwks"));
        load.push(tokio::spawn(async move {
            let http = fresh_connections();
            let (mut ok, mut refused, mut bad) = (0usize, 0usize, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match http.get(&url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => match r.bytes().await {
                        Ok(_) => ok += 1,
                        Err(e) => bad.push(format!("body cut: {e}")),
                    },
                    Ok(r) => bad.push(format!("status {}", r.status())),
                    // After the listener closed: nobody is there any more.
                    Err(e) if e.is_connect() => refused += 1,
                    // A connection the kernel had queued when the listener closed: closed
                    // unanswered, nothing was done for it (the client may retry elsewhere).
                    Err(e) if e.is_request() => refused += 1,
                    Err(e) => bad.push(format!("{e:?}")),
                }
            }
            (ok, refused, bad)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A request in flight at SIGTERM: half its body sent.
    let body = "grant_type=client_credentials&client_id=nobody&client_secret=wrong";
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut in_flight = half_sent_request(port, &head, body).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.signal("TERM");

    // It stops accepting new connections...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and still answers the request it was reading.
    in_flight.write_all(&body.as_bytes()[body.len() / 2..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), in_flight.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "the in-flight request is answered: {answer}");
    assert!(answer.contains("invalid_client"), "{answer}");

    let status = node.exit(Duration::from_secs(15)).await.expect("the node exits once its requests are done");
    assert!(status.success(), "a clean exit: {status:?}");
    stop.store(true, Ordering::SeqCst);
    let mut served = 0;
    for task in load {
        let (ok, _refused, bad) = task.await.unwrap();
        assert!(bad.is_empty(), "no answer cut or failed under load: {bad:?}");
        served += ok;
    }
    assert!(served > 0, "the load was served until the signal");
}

/// The number of `token_issued` records for `client_id`.
async fn tokens_audited(directory: &Directory, client_id: &str) -> usize {
    let mut count = 0;
    let mut after = None;
    loop {
        let page = directory
            .audit()
            .query(directory::AuditQuery {
                event: Some("token_issued".into()),
                after_id: after,
                limit: Some(500),
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { return count };
        after = Some(last.id);
        count += page.iter().filter(|r| r.client_id.as_deref() == Some(client_id)).count();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_no_audit_record_of_a_token_handed_out() {
    let pg = PostgresServer::start().unwrap();
    let directory = Directory::connect(&pg.url(), DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(session_store::MemoryStore::new());
    let s =
        Arc::new(setup(TestProvider::start_with(Storage::Shared { directory, store }, |_| {}).await.unwrap()).await);
    let b = Arc::new(Browser::new());
    login(&b, &s.p, "rp", USER, &s.totp, 0).await;

    // Relying parties sign the professional in by SSO and redeem codes, without pause.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refusals = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (s, b, stop, refusals) = (s.clone(), b.clone(), stop.clone(), refusals.clone());
        load.push(tokio::spawn(async move {
            let (mut issued, mut unavailable, mut odd) = (Vec::new(), 0usize, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let r = b.get(&authorize_url(&s.p, "rp", &[])).await;
                match r.status() {
                    StatusCode::SEE_OTHER => {}
                    StatusCode::SERVICE_UNAVAILABLE => {
                        unavailable += 1;
                        refusals.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    other => {
                        odd.push(format!("authorize {other}"));
                        continue;
                    }
                }
                let Some(code) = query_param(&location(r.headers()), "code") else {
                    odd.push(format!("no code: {}", location(r.headers())));
                    continue;
                };
                let (status, body) = exchange(&s.p, "rp", &s.secret, &code).await;
                match status {
                    StatusCode::OK => issued.push(body["access_token"].as_str().unwrap().to_owned()),
                    StatusCode::SERVICE_UNAVAILABLE if body["error"] == "temporarily_unavailable" => {
                        unavailable += 1;
                        refusals.fetch_add(1, Ordering::SeqCst);
                    }
                    other => odd.push(format!("token {other}: {body}")),
                }
            }
            (issued, unavailable, odd)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A clean restart (`pg_ctl stop -m fast`, then start): connections are cut, requests in
    // flight fail, the pool reconnects. Down until the load has met it: on a busy machine a
    // short outage may pass between two requests, or within one's wait for a connection.
    tokio::task::block_in_place(|| pg.stop().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while refusals.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "requests went on without the database");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::block_in_place(|| pg.restart().unwrap());
    // Recovery, then a little more load.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut issued, mut unavailable) = (Vec::new(), 0);
    for task in load {
        let (i, u, odd) = task.await.unwrap();
        assert!(odd.is_empty(), "every answer is a success or a clear 503: {odd:?}");
        issued.extend(i);
        unavailable += u;
    }
    assert!(unavailable > 0, "the restart was felt (503s)");
    assert!(!issued.is_empty(), "tokens were issued");

    // Every token handed out has its record, and the chain holds across the restart.
    let audited = tokens_audited(s.p.directory(), "rp").await;
    assert!(audited >= issued.len(), "{audited} records for {} tokens handed out", issued.len());
    let chain = s.p.directory().audit().verify(None).await.unwrap();
    assert_eq!(chain.first_bad_id, None, "the chain holds across the restart");
    // Monitoring saw the outage.
    let text = reqwest::get(s.p.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("caducee_database_errors_total{kind=\"unavailable\"}")),
        "database errors counted: {text}"
    );
    // And every one of them works.
    for at in issued.iter().rev().take(5) {
        assert_eq!(userinfo(&s.p, at).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn no_token_is_handed_out_nor_refresh_token_spent_when_its_audit_record_cannot_be_written() {
    let pg = PostgresServer::start().unwrap();
    let directory = Directory::connect(&pg.url(), DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(session_store::MemoryStore::new());
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store }, |_| {}).await.unwrap()).await;
    let b = Browser::new();
    let first = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &first).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let code = login(&Browser::new(), &s.p, "rp", USER, &s.totp, 1).await;

    // Only the audit log refuses writes (as a tablespace out of room would): everything else
    // the exchange needs still works.
    psql(
        &pg,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no room'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    let (status, body) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("access_token").is_none());
    // A refresh is refused the same way, and spends nothing: the rotation and its record are
    // one transaction, rolled back together.
    let (status, body) = refresh(&s.p, "rp", &s.secret, &refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")));
    assert!(body.get("access_token").is_none());

    // Refusals are still answered (their record is best effort): a wrong code is invalid_grant.
    let (status, body) = exchange(&s.p, "rp", &s.secret, "not-a-code").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // Once the log takes records again, the refresh token refused meanwhile still works: it was
    // not spent (spent, it would now read as a replay and revoke its grant).
    psql(&pg, "DROP TRIGGER refuse ON audit_log;");
    let (status, body) = refresh(&s.p, "rp", &s.secret, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

/// Runs `sql` in the test database as its superuser, through `psql`.
fn psql(pg: &PostgresServer, sql: &str) {
    let out = Command::new("psql").arg(pg.url()).arg("-v").arg("ON_ERROR_STOP=1").arg("-c").arg(sql).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_hung_redis_refuses_logins_then_honours_the_codes_it_had_issued() {
    let redis = RedisServer::start().unwrap();
    let directory = Directory::connect("sqlite::memory:", DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::connect(&redis.url()).await.unwrap());
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store }, |_| {}).await.unwrap()).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let other = Browser::new();
    let (login_url, html) = open_login(&other, &s.p, "rp", &[]).await;

    redis.pause().unwrap();
    // A professional signing in meanwhile: refused, with no session made.
    let r = submit(&other, &login_url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let cookies: Vec<String> =
        r.headers().get_all(reqwest::header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(
        !cookies.iter().any(|c| c.starts_with("caducee_session=") && !c.contains("Max-Age=0")),
        "no half-made session: {cookies:?}"
    );
    assert!(r.text().await.unwrap().contains("momentanément indisponible"));
    // A relying party starting a login meanwhile: a clear page, no code.
    let r = Browser::new().get(&authorize_url(&s.p, "rp", &[])).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    redis.resume().unwrap();
    let (status, body) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "the code issued before the outage is honoured: {body}");
    // The professional who was refused signs in now, from the same page.
    let (login_url, html) = open_login(&other, &s.p, "rp", &[]).await;
    let r = submit(&other, &login_url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
