//! What relying parties written for Pro Santé Connect read besides the standard: Keycloak's
//! fields in token responses, the claims of access tokens and introspection answers, and the
//! standard claims that go with `profile` and `email` (issue «Pro Santé Connect drop-in»).

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::testing::TestProvider;

use crate::common::*;

#[tokio::test]
async fn tokens_carry_what_keycloak_based_relying_parties_parse() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    // Keycloak's response fields: one relying party converts refresh_expires_in to an integer.
    assert!(tokens["refresh_expires_in"].as_i64().unwrap() > 0, "{tokens}");
    assert_eq!(tokens["session_state"], id_token["sid"]);
    assert_eq!(tokens["not-before-policy"], 0);

    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["azp"], "rp");
    assert_eq!(access["session_state"], id_token["sid"]);
    assert_eq!(access["sid"], id_token["sid"]);
    assert_eq!(access["preferred_username"], USER);
    assert_eq!(access["authMode"], "OTP", "a password and a one-time code");

    let introspected = introspect(&s, "/introspect", &[("token", tokens["access_token"].as_str().unwrap())]).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["SubjectNameID"], USER);
    assert_eq!(introspected["preferred_username"], USER);
    assert_eq!(introspected["authMode"], "OTP");
    assert_eq!(introspected["session_state"], id_token["sid"]);
    let form = [("token", tokens["refresh_token"].as_str().unwrap()), ("token_type_hint", "refresh_token")];
    let refresh = introspect(&s, "/introspect", &form).await;
    assert_eq!((refresh["active"].clone(), refresh["authMode"].clone()), (json!(true), json!("OTP")));
    assert_eq!(refresh["SubjectNameID"], USER);

    // After a refresh, the same fields.
    let (status, again) = refresh_token_grant(&s, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(again["refresh_expires_in"].as_i64().unwrap() > 0);
    assert_eq!(again["session_state"], id_token["sid"]);
}

/// An introspection by `rp`, at `path`.
async fn introspect(s: &Setup, path: &str, form: &[(&str, &str)]) -> Value {
    let r = reqwest::Client::new().post(s.p.url(path)).basic_auth("rp", Some(&s.secret)).form(form).send().await;
    r.unwrap().json().await.unwrap()
}

async fn refresh_token_grant(s: &Setup, token: &str) -> (StatusCode, Value) {
    refresh(&s.p, "rp", &s.secret, token).await
}

#[tokio::test]
async fn profile_and_email_come_with_name_and_email_verified() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[("scope", "openid profile email")]).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").unwrap();
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token["name"].as_str().is_some_and(|n| !n.is_empty()), "{id_token}");
    assert_eq!(id_token["email_verified"], true);
    assert!(id_token["email"].as_str().is_some());
}

async fn userinfo_json(s: &Setup, access_token: &str) -> Value {
    reqwest::Client::new()
        .get(s.p.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// OIDC Core 5.5: the `claims` parameter asks for individual claims in the ID token and at
/// userinfo, and for `acr`; it never releases what the client's scopes do not allow.
#[tokio::test]
async fn the_claims_parameter_adds_claims_where_asked_and_only_those_the_client_may_have() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let mut narrow = TestProvider::confidential_client("narrow", REDIRECT);
    narrow.scopes = vec!["openid".into(), "profile".into()];
    let (_, narrow_secret) = s.p.add_client(narrow).await.unwrap();
    let asked = json!({
        "id_token": { "given_name": null, "SubjectNameID": { "essential": true }, "acr": { "values": ["eidas1"] } },
        "userinfo": { "email": null, "family_name": { "essential": true } },
    })
    .to_string();

    let b = Browser::new();
    let extra = [("scope", "openid"), ("claims", asked.as_str())];
    let (url, html) = open_login(&b, &s.p, "rp", &extra).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").unwrap();
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token["given_name"].is_string() && id_token["SubjectNameID"] == USER, "{id_token}");
    assert!(id_token.get("email").is_none() && id_token.get("family_name").is_none(), "userinfo's only: {id_token}");
    assert_eq!(id_token["acr"], "eidas1");
    let info = userinfo_json(&s, tokens["access_token"].as_str().unwrap()).await;
    assert!(info["email"].is_string() && info["family_name"].is_string(), "{info}");
    assert!(info.get("given_name").is_none() && info.get("SubjectNameID").is_none(), "ID token's only: {info}");

    // A client without `scope_all` or `email` gets neither through `claims`.
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "narrow", &extra).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").unwrap();
    let (_, tokens) = exchange(&s.p, "narrow", narrow_secret.as_deref().unwrap(), &code).await;
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token["given_name"].is_string(), "profile is allowed: {id_token}");
    assert!(id_token.get("SubjectNameID").is_none(), "scope_all is not: {id_token}");
    let info = userinfo_json(&s, tokens["access_token"].as_str().unwrap()).await;
    assert!(info.get("email").is_none(), "email is not: {info}");

    // A malformed parameter goes back to the client as invalid_request.
    let r = Browser::new().get(&authorize_url(&s.p, "rp", &[("claims", "{\"userinfo\": []}")])).await;
    let to = location(r.headers());
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{to}");
}

/// Keycloak's paths under the issuer answer as the short ones do, and its logout takes a
/// refresh token from a client without any browser: the session ends for every relying party.
#[tokio::test]
async fn keycloak_paths_answer_and_a_refresh_token_logs_the_session_out() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let http = reqwest::Client::new();
    let wallet: Value =
        http.get(s.p.url("/.well-known/wallet-openid-configuration")).send().await.unwrap().json().await.unwrap();
    let standard: Value =
        http.get(s.p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(wallet, standard);
    assert_eq!(standard["claims_parameter_supported"], true);
    let certs: Value = http.get(s.p.url("/protocol/openid-connect/certs")).send().await.unwrap().json().await.unwrap();
    assert!(certs["keys"].as_array().is_some_and(|k| !k.is_empty()));

    // Another relying party, told of logouts, in the same session.
    let (listener, port) = crate::backchannel::listener().await;
    crate::backchannel::register(&s.p, "b", port).await;
    let rp_b = crate::backchannel::serve_rp(&s.p, "b", listener, std::time::Duration::ZERO).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let r = b.get(&authorize_url(&s.p, "b", &[])).await;
    assert!(query_param(&location(r.headers()), "code").is_some(), "SSO into b");

    // The code exchanged at Keycloak's token path; userinfo and introspection there too.
    let tokens: Value = http
        .post(s.p.url("/protocol/openid-connect/token"))
        .basic_auth("rp", Some(&s.secret))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let info = http.get(s.p.url("/protocol/openid-connect/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    let active = introspect(&s, "/protocol/openid-connect/token/introspect", &[("token", access.as_str())]).await;
    assert_eq!(active["active"], true, "{active} {tokens}");

    // Someone else's client cannot end it with this token; the right one can, once.
    let (_, other_secret) = s.p.add_client(TestProvider::confidential_client("other", REDIRECT)).await.unwrap();
    let logout = |id: &'static str, secret: String, token: String| {
        let http = http.clone();
        let url = s.p.url("/protocol/openid-connect/logout");
        async move { http.post(url).basic_auth(id, Some(secret)).form(&[("refresh_token", token)]).send().await.unwrap() }
    };
    let r = logout("other", other_secret.unwrap(), refresh.clone()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let r = logout("rp", s.secret.clone(), refresh.clone()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let told = crate::backchannel::wait_for(&rp_b, 1, std::time::Duration::from_secs(5)).await;
    assert_eq!(told.len(), 1, "the other relying party is told at once");
    assert_eq!(userinfo(&s.p, &access).await, StatusCode::UNAUTHORIZED, "the session's tokens are dead");
    let r = logout("rp", s.secret.clone(), refresh).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "once");
}

/// `session.idle_timeout` (Keycloak's «SSO Session Idle», 30 minutes at Pro Santé Connect): a
/// session nobody uses ends, and a refresh or a single sign-on keeps it going.
#[tokio::test]
async fn an_idle_session_ends_and_activity_keeps_it_going() {
    let p =
        TestProvider::start_with(server::testing::Storage::Embedded, |c| c.session.idle_timeout = 1800).await.unwrap();
    let s = setup(p).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    // A refresh every twenty minutes keeps the session on past the idle timeout.
    for _ in 0..3 {
        s.p.clock.advance(1200);
        let (status, again) = refresh_token_grant(&s, &refresh_token).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        refresh_token = again["refresh_token"].as_str().unwrap().to_owned();
    }
    // So does a single sign-on into the same session.
    s.p.clock.advance(1200);
    let r = b.get(&authorize_url(&s.p, "rp", &[])).await;
    assert!(query_param(&location(r.headers()), "code").is_some(), "single sign-on, and activity");
    s.p.clock.advance(1200);
    let (status, again) = refresh_token_grant(&s, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "forty minutes after the last refresh, twenty after the sign-on: {again}");
    refresh_token = again["refresh_token"].as_str().unwrap().to_owned();
    // Then thirty-one idle minutes: the session is over for the browser and for the tokens.
    s.p.clock.advance(1860);
    let (status, ended) = refresh_token_grant(&s, &refresh_token).await;
    assert_eq!((status, ended["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{ended}");
    let r = b.get(&authorize_url(&s.p, "rp", &[])).await;
    assert!(location(r.headers()).contains("/interaction/"), "a login again");
}

/// As Pro Santé Connect's login page lives on another host than its issuer, `login_origin`
/// sends browsers there: discovery names it for the authorization and end-session endpoints,
/// and a whole login runs on it while tokens stay the issuer's.
#[tokio::test]
async fn browsers_sign_in_at_the_login_origin_and_tokens_stay_the_issuers() {
    let mut c = server::Config { login_origin: "https://wallet.example/auth".into(), ..Default::default() };
    assert!(c.validate().is_err(), "an origin, without a path");
    c.login_origin = "http://wallet.example".into();
    assert!(c.validate().is_err(), "https");

    let p = TestProvider::start_with(server::testing::Storage::Embedded, |c| {
        c.login_origin = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let login_origin = s.p.base_url.replace("127.0.0.1", "localhost");
    let discovery: Value =
        reqwest::get(s.p.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], s.p.base_url.as_str());
    assert_eq!(discovery["authorization_endpoint"], format!("{login_origin}/authorize"));
    assert_eq!(discovery["end_session_endpoint"], format!("{login_origin}/end_session"));
    assert_eq!(discovery["token_endpoint"], s.p.url("/token"));

    // The browser at the login origin, the relying party at the issuer.
    let b = Browser::new();
    let authorize = authorize_url(&s.p, "rp", &[]).replace(&s.p.base_url, &login_origin);
    let r = b.get(&authorize).await;
    let page = format!("{login_origin}{}", location(r.headers()));
    let html = b.get(&page).await.text().await.unwrap();
    let r = submit(&b, &page, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").expect("a code");
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["iss"], s.p.base_url.as_str());
}

/// Pro Santé Connect's issuer is a Keycloak realm's, with a path: every route answers under
/// it (and only there), the pages link and redirect under it, and the cookies carry it.
#[tokio::test]
async fn an_issuer_with_a_realm_path_serves_everything_under_it() {
    let realm = "/auth/realms/esante-wallet";
    let p = TestProvider::start_with(server::testing::Storage::Embedded, |c| {
        c.issuer = format!("{}{realm}", c.issuer);
        c.login_origin = c.issuer.replace("127.0.0.1", "localhost").replace(realm, "");
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let origin = s.p.base_url.replace(realm, "");
    let login_origin = origin.replace("127.0.0.1", "localhost");
    assert!(s.p.base_url.ends_with(realm));

    for path in ["/.well-known/openid-configuration", "/.well-known/wallet-openid-configuration"] {
        let discovery: Value = reqwest::get(s.p.url(path)).await.unwrap().json().await.unwrap();
        assert_eq!(discovery["issuer"], s.p.base_url.as_str());
        assert_eq!(discovery["token_endpoint"], s.p.url("/token"));
        assert_eq!(discovery["jwks_uri"], s.p.url("/jwks"));
        assert_eq!(discovery["authorization_endpoint"], format!("{login_origin}{realm}/authorize"));
    }
    // Nothing at the root but the probes.
    for path in ["/.well-known/openid-configuration", "/authorize", "/jwks", "/assets/caducee.css"] {
        assert_eq!(reqwest::get(format!("{origin}{path}")).await.unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
    for url in [format!("{origin}/healthz"), s.p.url("/healthz"), s.p.url("/assets/caducee.css")] {
        assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK, "{url}");
    }

    // A login at Keycloak's path: the page is under the realm, so are its links and cookies.
    let b = Browser::new();
    let authorize = authorize_url(&s.p, "rp", &[]).replace("/authorize", "/protocol/openid-connect/auth");
    let r = b.get(&authorize).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(r.headers());
    assert!(to.starts_with(&format!("{realm}/interaction/")), "{to}");
    let browser_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(browser_cookie.contains(&format!("Path={realm}")), "{browser_cookie}");
    let page = s.p.resolve(&to);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains(&format!("href=\"{realm}/assets/caducee.css\"")));
    assert!(html.contains(&format!("action=\"{to}\"")), "the form posts back under the realm");
    let r = submit(&b, &page, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session_cookie = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>();
    assert!(session_cookie.iter().any(|c| c.starts_with("caducee_session=") && c.contains(&format!("Path={realm}"))));
    let code = query_param(&location(r.headers()), "code").expect("a code");
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["iss"], s.p.base_url.as_str());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s.p, access).await, StatusCode::OK);

    // The wallet signs in through the realm's own endpoints.
    let r = b.get(&s.p.url("/wallet")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).starts_with(&format!("{realm}/authorize?")), "{}", location(r.headers()));
}

/// A decoupled login (CIBA, at Keycloak's path) opens a session like any other: an
/// administrator sees it among the professional's sessions with the relying party in it, and
/// ending it tells the relying party (back-channel logout) and kills its tokens.
#[tokio::test]
async fn a_decoupled_logins_session_is_listed_and_ends_like_any_other() {
    use crate::backchannel::{listener, serve_rp, wait_for};
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = crate::push::enrolled_phone(&s).await;
    let (l, port) = listener().await;
    let mut add = TestProvider::confidential_client("ciba-rp", REDIRECT);
    add.ciba = Some("poll".into());
    add.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/logout"));
    add.backchannel_logout_session_required = true;
    let (_, secret) = s.p.add_client(add).await.unwrap();
    let rp = serve_rp(&s.p, "ciba-rp", l, std::time::Duration::ZERO).await;

    let http = reqwest::Client::new();
    let form = [("scope", "openid scope_all"), ("login_hint", USER), ("binding_message", "42"), ("channel", "MOBILE")];
    let r = http
        .post(s.p.url("/protocol/openid-connect/ext/ciba/auth"))
        .basic_auth("ciba-rp", secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let started: Value = r.json().await.unwrap();
    let pending = phone.pending(&s.p).await;
    assert_eq!(pending.len(), 1);
    let (status, _) = phone.answer(&s.p, pending[0]["id"].as_str().unwrap(), "approve", "42").await;
    assert_eq!(status, StatusCode::OK);
    let grant = [
        ("grant_type", "urn:openid:params:grant-type:ciba"),
        ("auth_req_id", started["auth_req_id"].as_str().unwrap()),
    ];
    let r = http
        .post(s.p.url("/protocol/openid-connect/token"))
        .basic_auth("ciba-rp", secret.as_deref())
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();
    assert_eq!(tokens["session_state"], sid.as_str());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s.p, access).await, StatusCode::OK);

    let admin = crate::admin::admin_token(&s.p, &["caducee:admin"]).await;
    let path = format!("/admin/v1/professionals/{USER}/sessions");
    let sessions: Value =
        crate::admin::call(&s.p, reqwest::Method::GET, &path, Some(&admin), None).await.json().await.unwrap();
    let listed = sessions.as_array().unwrap().iter().find(|x| x["sid"] == sid.as_str()).expect("the session is listed");
    assert_eq!(listed["clients"], json!(["ciba-rp"]));
    let r = crate::admin::call(&s.p, reqwest::Method::DELETE, &path, Some(&admin), None).await;
    assert!(r.status().is_success(), "{}", r.status());
    let told = wait_for(&rp, 1, std::time::Duration::from_secs(5)).await;
    assert_eq!(told.len(), 1, "the relying party is told");
    assert_eq!(told[0]["sid"], sid.as_str());
    assert_eq!(userinfo(&s.p, access).await, StatusCode::UNAUTHORIZED);
    let (status, _) =
        refresh(&s.p, "ciba-rp", secret.as_deref().unwrap(), tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Refresh tokens read as Keycloak's (a JWT with `typ` `Refresh` and `exp`, MACed by the
/// provider), still single use under the default policy, and rotated per client: `grace`
/// forgives a second use within 30 s, `none` keeps the token, as Keycloak's default does.
#[tokio::test]
async fn refresh_tokens_are_jwts_and_rotate_as_each_client_registered() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    // The clock is the system's (plus the test's offset): a second may turn during the exchange.
    let before = s.p.clock.now();
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let now = s.p.clock.now();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&refresh);
    let header = jsonwebtoken::decode_header(&refresh).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256, "a MAC, not one more signature");
    assert_eq!((claims["typ"].as_str(), claims["azp"].as_str()), (Some("Refresh"), Some("rp")));
    assert_eq!(claims["iss"], s.p.base_url.as_str());
    let issued_at = claims["exp"].as_i64().unwrap() - tokens["refresh_expires_in"].as_i64().unwrap();
    assert!((before..=now).contains(&issued_at), "exp is refresh_expires_in after the exchange");
    assert_eq!(claims["sid"], tokens["session_state"]);

    // A token whose claims were changed is refused, and spends nothing.
    let mut parts: Vec<String> = refresh.split('.').map(str::to_owned).collect();
    let mut forged = claims.clone();
    forged["exp"] = json!(now + 10 * 365 * 86_400);
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    let (status, _) = refresh_with(&s, "rp", &s.secret, &parts.join(".")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = refresh_with(&s, "rp", &s.secret, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // grace: two refreshes at once both succeed; a use later than 30 s is a theft.
    let grace = rotating_client(&s, "rp-grace", "grace").await;
    let first = tokens_of(&s, "rp-grace", &grace, 1).await;
    let (one, _) = refresh_with(&s, "rp-grace", &grace, &first).await;
    let (two, _) = refresh_with(&s, "rp-grace", &grace, &first).await;
    assert_eq!((one, two), (StatusCode::OK, StatusCode::OK));
    s.p.clock.advance(31);
    let (late, _) = refresh_with(&s, "rp-grace", &grace, &first).await;
    assert_eq!(late, StatusCode::BAD_REQUEST);

    // none: the same refresh token comes back and keeps working until it expires.
    let keep = rotating_client(&s, "rp-keep", "none").await;
    // The clock moved a step: one ahead of it is a code not used yet.
    let kept = tokens_of(&s, "rp-keep", &keep, 1).await;
    for _ in 0..3 {
        let (status, body) = refresh_with(&s, "rp-keep", &keep, &kept).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["refresh_token"], kept.as_str());
    }
}

async fn rotating_client(s: &Setup, id: &str, rotation: &str) -> String {
    let mut add = TestProvider::confidential_client(id, REDIRECT);
    add.refresh_rotation = Some(rotation.into());
    s.p.add_client(add).await.unwrap().1.unwrap()
}

/// A login on a browser of its own, and the code exchanged: the refresh token.
async fn tokens_of(s: &Setup, id: &str, secret: &str, step: i64) -> String {
    let code = login(&Browser::new(), &s.p, id, USER, &s.totp, step).await;
    let (status, tokens) = exchange(&s.p, id, secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

async fn refresh_with(s: &Setup, id: &str, secret: &str, token: &str) -> (StatusCode, Value) {
    refresh(&s.p, id, secret, token).await
}
