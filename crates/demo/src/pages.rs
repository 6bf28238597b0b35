//! The demo's page and its front channel: sign in (code flow, PKCE, nonce, state bound to the
//! browser by a cookie), the claims and userinfo shown, sign out through `end_session`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, Scope, TokenResponse as _,
};
use serde::Deserialize;

use crate::{DemoRp, Pending, Received, Session};

const SESSION_COOKIE: &str = "demo_rp";
const LOGIN_COOKIE: &str = "demo_rp_login";

#[derive(Template)]
#[template(path = "rp.html")]
struct HomePage<'a> {
    session: Option<&'a Session>,
    received: &'a [Received],
    error: Option<&'a str>,
    issuer: &'a str,
}

fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v).flatten())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// `SameSite=Lax`: the callback is a top-level navigation back from the provider, and a
/// cross-site POST (a forged «Se déconnecter») carries no cookie, so it signs no one out.
fn set_cookie(r: &mut Response, name: &'static str, value: &str, remove: bool) {
    let mut c = Cookie::build((name, value.to_owned())).path("/").http_only(true).same_site(SameSite::Lax).build();
    if remove {
        c.make_removal();
    }
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn random() -> String {
    CsrfToken::new_random().secret().clone()
}

fn page(rp: &DemoRp, headers: &HeaderMap, error: Option<&str>) -> Response {
    let session = cookie_named(headers, SESSION_COOKIE).and_then(|h| rp.inner.sessions.lock().ok()?.get(&h).cloned());
    let received = rp.inner.received.lock().map(|r| r.clone()).unwrap_or_default();
    let body =
        HomePage { session: session.as_ref(), received: &received, error, issuer: &rp.inner.settings.issuer }.render();
    let mut r = match body {
        Ok(b) => (if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, Html(b)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action *",
        ),
    );
    r
}

pub(crate) async fn home(State(rp): State<DemoRp>, headers: HeaderMap) -> Response {
    page(&rp, &headers, None)
}

/// «Se connecter avec Caducée»: off to the provider with a fresh state, nonce and PKCE verifier.
pub(crate) async fn login(State(rp): State<DemoRp>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .inner
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("scope_all".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = random();
    if let Ok(mut pending) = rp.inner.pending.lock() {
        pending.insert(state.secret().clone(), Pending { nonce, verifier, browser: browser.clone() });
    }
    let mut r = Redirect::to(url.as_str()).into_response();
    set_cookie(&mut r, LOGIN_COOKIE, &browser, false);
    r
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(crate) async fn callback(State(rp): State<DemoRp>, Query(q): Query<Callback>, headers: HeaderMap) -> Response {
    let mut r = match finish(&rp, q, &headers).await {
        Ok(handle) => {
            let mut r = Redirect::to("/").into_response();
            set_cookie(&mut r, SESSION_COOKIE, &handle, false);
            r
        }
        Err(why) => page(&rp, &headers, Some(&why)),
    };
    set_cookie(&mut r, LOGIN_COOKIE, "", true);
    r
}

async fn finish(rp: &DemoRp, q: Callback, headers: &HeaderMap) -> Result<String, String> {
    if let Some(error) = q.error {
        return Err(format!("{error}: {}", q.error_description.unwrap_or_default()));
    }
    let state = q.state.ok_or("no state")?;
    let pending = rp.inner.pending.lock().ok().and_then(|mut p| p.remove(&state)).ok_or("unknown or spent state")?;
    // The code came back to the browser that asked for it, or it is not redeemed.
    if cookie_named(headers, LOGIN_COOKIE).as_deref() != Some(pending.browser.as_str()) {
        return Err("this sign-in was started in another browser".into());
    }
    let code = q.code.ok_or("no code")?;
    let tokens = rp
        .inner
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(pending.verifier)
        .request_async(&rp.inner.http)
        .await
        .map_err(|e| format!("token request: {e}"))?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let claims =
        id_token.claims(&rp.inner.client.id_token_verifier(), &pending.nonce).map_err(|e| format!("ID token: {e}"))?;
    let sid = claims.additional_claims().0.get("sid").and_then(|v| v.as_str()).map(str::to_owned);
    let name = claims
        .given_name()
        .and_then(|n| n.get(None))
        .map(|g| g.as_str().to_owned())
        .unwrap_or_else(|| claims.subject().as_str().to_owned());
    let claims_json = serde_json::to_string_pretty(claims).map_err(|e| e.to_string())?;
    let userinfo = rp
        .inner
        .http
        .get(&rp.inner.userinfo_endpoint)
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .map_err(|e| format!("userinfo: {e}"))?;
    let userinfo = match userinfo.json::<serde_json::Value>().await {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(e) => format!("userinfo: {e}"),
    };
    let handle = random();
    let session = Session { id_token: id_token.to_string(), claims: claims_json, userinfo, sid, name };
    if let Ok(mut sessions) = rp.inner.sessions.lock() {
        sessions.insert(handle.clone(), session);
    }
    Ok(handle)
}

/// «Se déconnecter»: the demo forgets the browser, and the provider ends the SSO session
/// (which tells every relying party of it on the back channel, this one included).
pub(crate) async fn logout(State(rp): State<DemoRp>, headers: HeaderMap) -> Response {
    let session = cookie_named(&headers, SESSION_COOKIE)
        .and_then(|h| rp.inner.sessions.lock().ok().and_then(|mut s| s.remove(&h)));
    let location = match (&rp.inner.end_session_endpoint, session) {
        (Some(end), Some(s)) => {
            let query = [
                ("id_token_hint", s.id_token.as_str()),
                ("post_logout_redirect_uri", &rp.inner.settings.post_logout_redirect_uri()),
                ("client_id", &rp.inner.settings.client_id),
            ];
            let mut url = match url::Url::parse(end) {
                Ok(u) => u,
                Err(_) => return Redirect::to("/").into_response(),
            };
            url.query_pairs_mut().extend_pairs(query);
            url.to_string()
        }
        _ => "/".to_owned(),
    };
    let mut r = Redirect::to(&location).into_response();
    set_cookie(&mut r, SESSION_COOKIE, "", true);
    r
}
