//! What binds a login, a session and a code to the person and the client they belong to
//! (issue 13, items 7 to 10): an `id_token_hint` must be an ID token of the session it speaks
//! for, a login must be by the person the request is bound to, a re-authentication changes the
//! session cookie, and only the code's own client can end a session by replaying it.

use oidc_core::keys::{SigningAlg, TokenKind};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use server::testing::TestProvider;

use crate::common::*;

const OTHER_USER: &str = "899700000002";

/// The value of the `caducee_session` cookie a response sets, if any.
fn session_cookie_set(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("caducee_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

/// A full login for `user` at `rp` in `b`; returns the token response.
async fn sign_in(b: &Browser, s: &Setup, user: &str, totp: &[u8], step: i64) -> serde_json::Value {
    let code = login(b, &s.p, "rp", user, totp, step).await;
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// `prompt=none` at `rp` in `b`: the code, or the error.
async fn silent(b: &Browser, s: &Setup) -> Result<String, String> {
    let r = b.get(&authorize_url(&s.p, "rp", &[("prompt", "none")])).await;
    let to = location(r.headers());
    query_param(&to, "code").ok_or_else(|| query_param(&to, "error").unwrap_or(to))
}

fn end_session_url(s: &Setup, hint: &str) -> String {
    let mut url = url::Url::parse(&s.p.url("/end_session")).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", hint);
    url.to_string()
}

#[tokio::test]
async fn item_7_a_signed_userinfo_answer_is_not_an_id_token_hint() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let mut signed = TestProvider::confidential_client("signed", REDIRECT);
    signed.userinfo_alg = Some("RS256".into());
    let (_, signed_secret) = s.p.add_client(signed).await.unwrap();
    let b = Browser::new();
    let code = login(&b, &s.p, "signed", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "signed", &signed_secret.unwrap(), &code).await;
    let at = tokens["access_token"].as_str().unwrap();
    let r = Client::new().get(s.p.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/jwt");
    let userinfo_jwt = r.text().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    for claim in ["iss", "sub", "aud"] {
        assert_eq!(
            jwt_claims(&userinfo_jwt)[claim],
            jwt_claims(id_token)[claim],
            "the userinfo JWT looks like the ID token"
        );
    }

    // At /end_session, in the browser of that very session: refused, the session goes on.
    let r = b.get(&end_session_url(&s, &userinfo_jwt)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "not an ID token");
    assert_eq!(userinfo(&s.p, at).await, StatusCode::OK, "the session is alive");
    assert!(silent(&b, &s).await.is_ok(), "the browser is still signed in");

    // At /authorize too.
    let r = b.get(&authorize_url(&s.p, "signed", &[("id_token_hint", &userinfo_jwt)])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("invalid_request"));

    // The ID token itself still ends the session at once.
    let r = b.get(&end_session_url(&s, id_token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("déconnecté"));
    assert_eq!(userinfo(&s.p, at).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn item_7_a_hint_of_another_session_asks_and_one_without_sid_is_refused() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let elsewhere = Browser::new();
    let old = sign_in(&elsewhere, &s, USER, &s.totp, 0).await;
    let b = Browser::new();
    let mine = sign_in(&b, &s, USER, &s.totp, 1).await;
    let at = mine["access_token"].as_str().unwrap();

    // The same person's ID token from another session: the person is asked.
    let r = b.get(&end_session_url(&s, old["id_token"].as_str().unwrap())).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("name=\"confirmation\""), "a confirmation form");
    assert_eq!(userinfo(&s.p, at).await, StatusCode::OK, "not logged out without confirming");

    // A token signed by the provider as an ID token, with the right iss, sub and aud, but no
    // sid: no ID token of this provider lacks one, so it is not taken as a hint at all.
    let theirs = jwt_claims(mine["id_token"].as_str().unwrap());
    let now = s.p.clock.now();
    let forged = serde_json::json!({
        "iss": theirs["iss"], "sub": theirs["sub"], "aud": theirs["aud"], "azp": theirs["aud"],
        "iat": now, "exp": now + 300, "auth_time": theirs["auth_time"],
    });
    let without_sid = s.p.app.provider.keys().sign(SigningAlg::RS256, TokenKind::IdToken, &forged).unwrap();
    let r = b.get(&end_session_url(&s, &without_sid)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a hint without sid is refused");
    assert_eq!(userinfo(&s.p, at).await, StatusCode::OK, "and ends nothing");
    assert!(silent(&b, &s).await.is_ok());
}

#[tokio::test]
async fn item_8_login_by_another_person_than_hinted_is_login_required() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (_, other_totp) = s.p.add_professional(OTHER_USER, PASSWORD).await.unwrap();
    let a = sign_in(&Browser::new(), &s, USER, &s.totp, 0).await;

    // A request naming A, completed by B in a browser without a session.
    let b = Browser::new();
    let hint = a["id_token"].as_str().unwrap();
    let (url, html) = open_login(&b, &s.p, "rp", &[("id_token_hint", hint)]).await;
    let r = submit(&b, &url, &html, OTHER_USER, PASSWORD, &s.p.totp(&other_totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(session_cookie_set(&r), None, "no session for B");
    let to = location(r.headers());
    assert!(to.starts_with(REDIRECT), "back to the client: {to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("st4te"));
    assert_eq!(query_param(&to, "code"), None, "no code for B on a request bound to A");
    assert_eq!(silent(&b, &s).await, Err("login_required".into()), "B is signed in nowhere");

    // A, the person named, completes such a request.
    let (url, html) = open_login(&b, &s.p, "rp", &[("id_token_hint", hint)]).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").expect("a code for A");
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"], jwt_claims(hint)["sub"]);
}

#[tokio::test]
async fn item_8_reauthentication_by_another_person_is_login_required_and_keeps_the_session() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (_, other_totp) = s.p.add_professional(OTHER_USER, PASSWORD).await.unwrap();
    let b = Browser::new();
    let a = sign_in(&b, &s, USER, &s.totp, 0).await;
    let a_sub = jwt_claims(a["id_token"].as_str().unwrap())["sub"].clone();

    // The relying party asks A's session for a fresh login; B logs in at that browser.
    let (url, html) = open_login(&b, &s.p, "rp", &[("prompt", "login")]).await;
    let r = submit(&b, &url, &html, OTHER_USER, PASSWORD, &s.p.totp(&other_totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(session_cookie_set(&r), None, "the browser's session is not replaced");
    let to = location(r.headers());
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"), "{to}");
    assert_eq!(query_param(&to, "code"), None);

    // A's session is as it was: alive, A's, and its tokens work.
    assert_eq!(userinfo(&s.p, a["access_token"].as_str().unwrap()).await, StatusCode::OK);
    let code = silent(&b, &s).await.expect("A's session answers");
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let again = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(again["sub"], a_sub, "the session is still A's");
    assert_eq!(again["sid"], jwt_claims(a["id_token"].as_str().unwrap())["sid"]);
}

#[tokio::test]
async fn item_9_reauthentication_issues_a_new_session_cookie() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    let old = session_cookie_set(&r).expect("a session cookie");
    let sid = old.split('.').next().unwrap().to_owned();

    s.p.clock.advance(60);
    let (url, html) = open_login(&b, &s.p, "rp", &[("prompt", "login")]).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    assert!(query_param(&location(r.headers()), "code").is_some());
    let new = session_cookie_set(&r).expect("a re-authentication sets a new session cookie");
    assert_ne!(new, old);
    assert_eq!(new.split('.').next(), Some(sid.as_str()), "the sid stays (relying parties hold it)");

    // Presented alone, each cookie: the old one no longer designates the session.
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let with_cookie = |cookie: String| {
        let req = http
            .get(authorize_url(&s.p, "rp", &[("prompt", "none")]))
            .header("cookie", format!("caducee_session={cookie}"));
        async move { location(req.send().await.unwrap().headers()) }
    };
    assert_eq!(query_param(&with_cookie(old).await, "error").as_deref(), Some("login_required"));
    assert!(query_param(&with_cookie(new).await, "code").is_some());
}

#[tokio::test]
async fn item_10_code_replay_by_another_client_keeps_the_session() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (_, other) = s.p.add_client(TestProvider::confidential_client("other", REDIRECT)).await.unwrap();
    let other = other.unwrap();
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;

    // Before its redemption, another client's attempt fails and does not burn the code.
    assert_eq!(exchange(&s.p, "other", &other, &code).await.0, StatusCode::BAD_REQUEST);
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);

    // Spent, then presented by another client: refused, what it gave is revoked, the session
    // goes on.
    let (status, body) = exchange(&s.p, "other", &other, &code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s.p, at).await, StatusCode::UNAUTHORIZED, "the grant is revoked");
    assert!(silent(&b, &s).await.is_ok(), "the session is not ended by another client");

    // Replayed by its own client: the session ends (a sign of theft).
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(silent(&b, &s).await, Err("login_required".into()));
}

#[tokio::test]
async fn item_10_a_public_clients_code_replayed_without_its_verifier_keeps_the_session() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let mut public = TestProvider::confidential_client("pub", REDIRECT);
    public.auth_method = "none".into();
    s.p.add_client(public).await.unwrap();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let b = Browser::new();
    let pkce = [("code_challenge", challenge), ("code_challenge_method", "S256")];
    let (url, html) = open_login(&b, &s.p, "pub", &pkce).await;
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    let code = query_param(&location(r.headers()), "code").unwrap();
    let redeem = |verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "pub"),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        let req = Client::new().post(s.p.url("/token")).form(&form);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(redeem(Some(verifier)).await, StatusCode::OK);

    // Anyone can name a public client: without the verifier, the replay ends no session.
    assert_eq!(redeem(None).await, StatusCode::BAD_REQUEST);
    assert!(silent(&b, &s).await.is_ok(), "the session goes on");
    // With it, the replay is the client's own: the session ends.
    assert_eq!(redeem(Some(verifier)).await, StatusCode::BAD_REQUEST);
    assert_eq!(silent(&b, &s).await, Err("login_required".into()));
}
