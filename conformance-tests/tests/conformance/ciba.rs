//! OpenID Connect Client-Initiated Backchannel Authentication Flow – Core 1.0 (CIBA), as a
//! relying party reads it: discovery (§4), the authentication request and its errors (§7,
//! §13), the token request in poll mode and its errors (§10.1, §11), the ping (§10.2). The
//! professional's phone is a real device key signing the device API's requests
//! ([`conformance_tests::phone::Phone`]); the provider's clock is moved instead of waiting.

use std::time::Duration;

use conformance_tests::phone::Phone;
use conformance_tests::rp::{REDIRECT, USER, World};
use reqwest::StatusCode;
use serde_json::Value;
use server::testing::TestProvider;

const GRANT: &str = "urn:openid:params:grant-type:ciba";

/// A relying party registered for CIBA, talking to the provider's endpoints from discovery.
struct CibaClient {
    client_id: String,
    secret: String,
    authentication_endpoint: String,
    token_endpoint: String,
    http: reqwest::Client,
}

impl CibaClient {
    async fn register(w: &World, client_id: &str, mode: &str, notify: Option<String>) -> CibaClient {
        let mut add = TestProvider::confidential_client(client_id, REDIRECT);
        add.ciba = Some(mode.to_owned());
        add.ciba_notification_endpoint = notify;
        let (_, secret) = w.provider.add_client(add).await.unwrap();
        let discovery: Value =
            w.http.get(w.provider.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        CibaClient {
            client_id: client_id.to_owned(),
            secret: secret.unwrap(),
            authentication_endpoint: discovery["backchannel_authentication_endpoint"].as_str().unwrap().to_owned(),
            token_endpoint: discovery["token_endpoint"].as_str().unwrap().to_owned(),
            http: w.http.clone(),
        }
    }

    /// §7.1: an authentication request, the client authenticated as at the token endpoint.
    async fn authenticate(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(&self.authentication_endpoint)
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    /// The usual request: the professional named by their national identifier, the number
    /// the relying party shows, PSC's scope and level.
    async fn ask(&self, binding_message: &str) -> (StatusCode, Value) {
        self.authenticate(&[
            ("scope", "openid scope_all"),
            ("login_hint", USER),
            ("binding_message", binding_message),
            ("acr_values", "eidas1"),
        ])
        .await
    }

    /// §10.1: the token request with the CIBA grant.
    async fn token(&self, auth_req_id: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&[("grant_type", GRANT), ("auth_req_id", auth_req_id)])
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }
}

async fn world_with_phone() -> (World, Phone) {
    let w = World::start().await.unwrap();
    let phone = Phone::enrol(&w.provider, USER).await.unwrap();
    (w, phone)
}

fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn poll_mode_pending_slow_down_approval_and_single_use() {
    let (w, phone) = world_with_phone().await;
    let rp = CibaClient::register(&w, "ciba-poll", "poll", None).await;

    // §4: discovery names the endpoint, the modes, the grant; no user code.
    let d: Value =
        w.http.get(w.provider.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["backchannel_authentication_endpoint"], w.provider.url("/bc-authorize"));
    assert_eq!(d["backchannel_token_delivery_modes_supported"], serde_json::json!(["poll", "ping"]));
    assert_eq!(d["backchannel_user_code_parameter_supported"], false);
    assert!(d["grant_types_supported"].as_array().unwrap().iter().any(|g| g == GRANT));

    // §7.3: auth_req_id, expires_in and interval.
    let (status, started) = rp.ask("42").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let auth_req_id = started["auth_req_id"].as_str().unwrap().to_owned();
    assert!(auth_req_id.len() >= 22, "§7.3: at least 128 bits of entropy");
    let expires_in = started["expires_in"].as_i64().unwrap();
    assert!((1..=60).contains(&expires_in), "{started}");
    let interval = started["interval"].as_i64().unwrap();
    assert_eq!(interval, 5);

    // §11: not answered yet.
    let (status, body) = rp.token(&auth_req_id).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "authorization_pending"));
    // §11: polled again before the interval: slow down.
    let (status, body) = rp.token(&auth_req_id).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "slow_down"));
    // §11: the interval grew by 5 seconds: one poll after the first interval is still too fast.
    w.provider.clock.advance(interval);
    let (_, body) = rp.token(&auth_req_id).await;
    assert_eq!(error(&body), "slow_down", "the interval is now {} s", interval + 5);

    // The phone shows who asks, never the number: the professional types the one the relying
    // party shows.
    let pending = phone.pending(&w.provider).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["client_name"], "ciba-poll");
    assert!(!pending[0].to_string().contains("\"42\""), "{}", pending[0]);
    let (status, answer) = phone.answer(&w.provider, "approve", "42").await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");

    w.provider.clock.advance(interval + 10);
    let (status, tokens) = rp.token(&auth_req_id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // §10.1.1: a token response as in OIDC Core 3.1.3.3; the ID token for this client.
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["aud"], "ciba-poll");
    assert_eq!(id_token["iss"], w.provider.base_url.as_str());
    assert_eq!(id_token["acr"], "eidas1");
    assert!(id_token["sub"].as_str().unwrap().ends_with(USER));
    assert!(tokens["refresh_token"].is_string());
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["authMode"], "MOBILE");
    let userinfo = w
        .http
        .get(w.provider.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(userinfo["SubjectNameID"], USER);

    // §10.1: the auth_req_id is spent.
    w.provider.clock.advance(interval + 10);
    let (status, body) = rp.token(&auth_req_id).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn denial_a_wrong_number_expiry_and_another_clients_id() {
    let (w, phone) = world_with_phone().await;
    let rp = CibaClient::register(&w, "ciba-poll", "poll", None).await;
    let other = CibaClient::register(&w, "ciba-other", "poll", None).await;

    // §11 access_denied: the professional refused.
    let (_, started) = rp.ask("17").await;
    let denied = started["auth_req_id"].as_str().unwrap().to_owned();
    // §10.1: an auth_req_id is only the client's it was issued to.
    let (status, body) = other.token(&denied).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
    phone.answer(&w.provider, "deny", "").await.unwrap();
    let (status, body) = rp.token(&denied).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "access_denied"));

    // A wrong number typed on the phone spends the request: refused too.
    w.provider.clock.advance(30);
    let (_, started) = rp.ask("58").await;
    let mistyped = started["auth_req_id"].as_str().unwrap().to_owned();
    phone.answer(&w.provider, "approve", "85").await.unwrap();
    let (_, body) = rp.token(&mistyped).await;
    assert_eq!(error(&body), "access_denied");

    // §11 expired_token: nobody answered in time.
    w.provider.clock.advance(30);
    let (_, started) = rp.ask("33").await;
    let late = started["auth_req_id"].as_str().unwrap().to_owned();
    w.provider.clock.advance(started["expires_in"].as_i64().unwrap() + 1);
    let (status, body) = rp.token(&late).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "expired_token"));
}

#[tokio::test]
async fn authentication_request_errors() {
    let (w, _phone) = world_with_phone().await;
    let rp = CibaClient::register(&w, "ciba-poll", "poll", None).await;
    let ask = |hint: &'static str, message: &'static str| {
        [("scope", "openid"), ("login_hint", hint), ("binding_message", message)]
    };

    // §13 unknown_user_id.
    let (status, body) = rp.authenticate(&ask("899700000999", "42")).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "unknown_user_id"));
    // §13 invalid_binding_message: the phone checks a number the professional types.
    let (status, body) = rp.authenticate(&ask(USER, "bonjour")).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "invalid_binding_message"));
    let (_, body) = rp.authenticate(&[("scope", "openid"), ("login_hint", USER)]).await;
    assert_eq!(error(&body), "invalid_binding_message");
    // §7.1: exactly one hint; §13 invalid_request.
    let (status, body) = rp.authenticate(&[("scope", "openid"), ("binding_message", "42")]).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let two = [("scope", "openid"), ("login_hint", USER), ("id_token_hint", "x.y.z"), ("binding_message", "42")];
    assert_eq!(error(&rp.authenticate(&two).await.1), "invalid_request");
    // §13 invalid_scope: `openid` is required.
    let (status, body) =
        rp.authenticate(&[("scope", "profile"), ("login_hint", USER), ("binding_message", "42")]).await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "invalid_scope"));
    // §13 invalid_client (401): a wrong secret.
    let r = w
        .http
        .post(&rp.authentication_endpoint)
        .basic_auth(&rp.client_id, Some("not-the-secret"))
        .form(&ask(USER, "42"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // §13 unauthorized_client: a client not registered for CIBA.
    let (_, secret) = w.provider.add_client(TestProvider::confidential_client("plain", REDIRECT)).await.unwrap();
    let r = w
        .http
        .post(&rp.authentication_endpoint)
        .basic_auth("plain", secret.as_deref())
        .form(&ask(USER, "42"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error(&r.json().await.unwrap()), "unauthorized_client");
    // ... nor may it use the grant at the token endpoint (RFC 6749 5.2).
    let r = w
        .http
        .post(&rp.token_endpoint)
        .basic_auth("plain", secret.as_deref())
        .form(&[("grant_type", GRANT), ("auth_req_id", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(error(&r.json().await.unwrap()), "unauthorized_client");
}

/// A relying party holding its credentials and a national identifier gets no more pushes
/// through than a login page would: the account's limit, then «ce n'était pas moi» blocks.
#[tokio::test]
async fn throttled_and_blocked_accounts_get_no_push() {
    let (w, _phone) = world_with_phone().await;
    let rp = CibaClient::register(&w, "ciba-poll", "poll", None).await;
    // §13 access_denied (403) once the account's pushes for the quarter hour are spent.
    let mut refused = None;
    for n in 0..10 {
        let (status, body) = rp.ask(&format!("{}", 10 + n)).await;
        if status != StatusCode::OK {
            refused = Some((n, status, body));
            break;
        }
    }
    let (n, status, body) = refused.expect("the account's limit stops the requests");
    assert_eq!((status, error(&body)), (StatusCode::FORBIDDEN, "access_denied"), "{body}");
    assert_eq!(n, 5, "push.max_per_account, as at the login page");

    // On an account with pushes left, the professional answers «ce n'était pas moi».
    let (w, phone) = world_with_phone().await;
    let rp = CibaClient::register(&w, "ciba-poll", "poll", None).await;
    let (status, started) = rp.ask("64").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (status, answer) = phone.answer(&w.provider, "not_me", "").await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, body) = rp.token(started["auth_req_id"].as_str().unwrap()).await;
    assert_eq!(error(&body), "access_denied");
    // Blocked: no push at all, whoever asks.
    let (status, body) = rp.ask("65").await;
    assert_eq!((status, error(&body)), (StatusCode::FORBIDDEN, "access_denied"));
    assert!(phone.pending(&w.provider).await.unwrap().is_empty());
}

/// §10.2: in ping mode, the provider POSTs `{"auth_req_id": …}` to the client's notification
/// endpoint with its `client_notification_token` as a bearer token, then the client asks.
#[tokio::test]
async fn ping_mode_tells_the_client_then_it_takes_its_tokens() {
    let (w, phone) = world_with_phone().await;
    let (endpoint, mut pings) = notification_endpoint().await;
    let rp = CibaClient::register(&w, "ciba-ping", "ping", Some(endpoint)).await;

    // §7.1: ping mode needs a client_notification_token.
    let (status, body) = rp.ask("42").await;
    assert_eq!((status, error(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let form = [
        ("scope", "openid"),
        ("login_hint", USER),
        ("binding_message", "42"),
        ("client_notification_token", "jeton-de-notification-8f3a"),
    ];
    let (status, started) = rp.authenticate(&form).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let auth_req_id = started["auth_req_id"].as_str().unwrap().to_owned();

    phone.answer(&w.provider, "approve", "42").await.unwrap();
    let (authorization, body) =
        tokio::time::timeout(Duration::from_secs(10), pings.recv()).await.expect("a ping").unwrap();
    assert_eq!(authorization, "Bearer jeton-de-notification-8f3a");
    assert_eq!(body["auth_req_id"], auth_req_id.as_str());
    let (status, tokens) = rp.token(&auth_req_id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["aud"], "ciba-ping");

    // A denial is pinged too; the client then hears access_denied.
    w.provider.clock.advance(30);
    let (_, started) = rp.authenticate(&form).await;
    let denied = started["auth_req_id"].as_str().unwrap().to_owned();
    phone.answer(&w.provider, "deny", "").await.unwrap();
    let (_, body) = tokio::time::timeout(Duration::from_secs(10), pings.recv()).await.expect("a ping").unwrap();
    assert_eq!(body["auth_req_id"], denied.as_str());
    assert_eq!(error(&rp.token(&denied).await.1), "access_denied");
}

/// The relying party's notification endpoint: each POST is handed over as
/// `(Authorization, JSON body)`.
async fn notification_endpoint() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Value)>) {
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/ciba/notify",
        axum::routing::post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let authorization =
                    headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let _ = tx.send((authorization, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ciba/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}
