//! Front-Channel Logout 1.0: the logged-out page loads the logout page of each relying party of
//! the ended session in an iframe (with `iss` and `sid` for those that asked), allows exactly
//! those origins in its frames, and then goes on to the client's post-logout redirect.
//! (The same page in a real browser: `browser::front_channel_logout_reaches_the_relying_party`.)

use reqwest::StatusCode;
use server::testing::TestProvider;

use crate::common::*;

fn unescape(html: &str) -> String {
    html.replace("&#38;", "&").replace("&amp;", "&")
}

fn iframe_sources(html: &str) -> Vec<String> {
    html.split("<iframe").skip(1).filter_map(|f| f.split("src=\"").nth(1)?.split('"').next()).map(unescape).collect()
}

#[tokio::test]
async fn end_session_loads_each_relying_partys_logout_page_then_redirects() {
    let p = TestProvider::start().await.unwrap();
    let (_, totp) = p.add_professional(USER, PASSWORD).await.unwrap();
    let mut a = TestProvider::confidential_client("rp-a", REDIRECT);
    a.frontchannel_logout_uri = Some("http://127.0.0.1:9/fc?app=a".into());
    a.frontchannel_logout_session_required = true;
    a.post_logout_redirect_uris = vec!["http://127.0.0.1:9/bye".into()];
    let (_, secret_a) = p.add_client(a).await.unwrap();
    let mut b_client = TestProvider::confidential_client("rp-b", REDIRECT);
    b_client.frontchannel_logout_uri = Some("http://127.0.0.1:9/fc-b".into());
    let (_, secret_b) = p.add_client(b_client).await.unwrap();
    // A third one signed in without asking for front-channel logout.
    let (_, secret_c) = p.add_client(TestProvider::confidential_client("rp-c", REDIRECT)).await.unwrap();

    let disco: serde_json::Value =
        reqwest::get(p.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(disco["frontchannel_logout_supported"], true);
    assert_eq!(disco["frontchannel_logout_session_supported"], true);

    let b = Browser::new();
    let code = login(&b, &p, "rp-a", USER, &totp, 0).await;
    let (_, tokens_a) = exchange(&p, "rp-a", secret_a.as_deref().unwrap(), &code).await;
    for (id, secret) in [("rp-b", &secret_b), ("rp-c", &secret_c)] {
        let r = b.get(&authorize_url(&p, id, &[])).await;
        let code = query_param(&location(r.headers()), "code").expect("SSO gives a code");
        assert_eq!(exchange(&p, id, secret.as_deref().unwrap(), &code).await.0, StatusCode::OK);
    }
    let id_token = tokens_a["id_token"].as_str().unwrap();
    let sid = {
        let payload = id_token.split('.').nth(1).unwrap();
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["sid"].as_str().unwrap().to_owned()
    };

    let mut url = url::Url::parse(&p.url("/end_session")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/bye")
        .append_pair("state", "s t&x");
    let r = b.get(url.as_str()).await;
    assert_eq!(r.status(), StatusCode::OK, "a page, not a redirect: the frames must load first");
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-src http://127.0.0.1:9;"), "only the relying parties' origin in frames: {csp}");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    let html = r.text().await.unwrap();
    let mut frames = iframe_sources(&html);
    frames.sort();
    let issuer = url::form_urlencoded::byte_serialize(p.base_url.as_bytes()).collect::<String>();
    assert_eq!(
        frames,
        vec!["http://127.0.0.1:9/fc-b".to_owned(), format!("http://127.0.0.1:9/fc?app=a&iss={issuer}&sid={sid}")],
        "rp-a asked for iss and sid, rp-b did not, rp-c has no front-channel page"
    );
    // Then on to the client, without JavaScript.
    let then = format!("http://127.0.0.1:9/bye?state=s+t%26x&iss={issuer}\"");
    let plain = unescape(&html);
    assert!(plain.contains(&format!("<meta http-equiv=\"refresh\" content=\"2;url={then}")), "{html}");
    assert!(plain.contains(&format!("<a href=\"{then}")), "a link for browsers that do not refresh");
    // The session is over.
    assert_eq!(userinfo(&p, tokens_a["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
    let r = b.get(&authorize_url(&p, "rp-b", &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn without_front_channel_clients_logout_redirects_at_once() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let r = b.get(&s.p.url(&format!("/end_session?id_token_hint={}", tokens["id_token"].as_str().unwrap()))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<iframe"), "no frames when nobody asked for them");
}

#[tokio::test]
async fn a_front_channel_page_must_live_with_the_redirect_uris() {
    let p = TestProvider::start().await.unwrap();
    let mut c = TestProvider::confidential_client("rp-x", REDIRECT);
    c.frontchannel_logout_uri = Some("https://elsewhere.example/logout".into());
    let err = p.add_client(c).await.unwrap_err().to_string();
    assert!(err.contains("front-channel logout URI"), "{err}");
}

#[tokio::test]
async fn signing_out_from_the_wallet_loads_this_browsers_front_channel_pages() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let mut fc = TestProvider::confidential_client("rp-fc", REDIRECT);
    fc.frontchannel_logout_uri = Some("http://127.0.0.1:9/fc".into());
    fc.frontchannel_logout_session_required = true;
    s.p.add_client(fc).await.unwrap();
    let b = Browser::new();
    let wallet = crate::wallet::open_wallet(&b, &s, 0).await;
    // The same browser session signs into the relying party.
    let r = b.get(&authorize_url(&s.p, "rp-fc", &[])).await;
    assert!(query_param(&location(r.headers()), "code").is_some(), "SSO");

    let r = b.post_form(&s.p.url("/wallet/logout"), &[("csrf_token", &csrf(&wallet))]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-src http://127.0.0.1:9;"), "{csp}");
    let frames = iframe_sources(&r.text().await.unwrap());
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].starts_with("http://127.0.0.1:9/fc?iss=") && frames[0].contains("&sid="), "{frames:?}");
    let r = b.get(&authorize_url(&s.p, "rp-fc", &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("login_required"));
}
