//! Fail closed: when Redis or the database is down, nobody logs in and tokens are refused with a
//! 503; the provider recovers by itself when they come back.

use std::sync::Arc;

use directory::{DataKey, Directory};
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use session_store::{RedisStore, SessionStore};
use test_support::postgres::PostgresServer;
use test_support::redis::RedisServer;

use crate::common::*;

#[tokio::test]
async fn redis_down_means_503_and_recovery_is_automatic() {
    let mut redis = RedisServer::start().unwrap();
    let directory = Directory::connect("sqlite::memory:", DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::connect(&redis.url()).await.unwrap());
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store }, |_| {}).await.unwrap()).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();

    redis.stop();
    let r = b.get(&authorize_url(&s.p, "rp", &[])).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "no login without the session store");
    assert!(r.text().await.unwrap().contains("momentanément indisponible"));
    assert_eq!(userinfo(&s.p, &at).await, StatusCode::SERVICE_UNAVAILABLE);
    let ready = reqwest::get(s.p.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    redis.restart().unwrap();
    // The connection manager reconnects on the next commands.
    let mut ok = false;
    for _ in 0..50 {
        if reqwest::get(s.p.url("/readyz")).await.unwrap().status() == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "ready again once Redis is back");
    // Redis lost its data (no persistence in tests): the old session is gone, a new login works.
    assert_eq!(userinfo(&s.p, &at).await, StatusCode::UNAUTHORIZED);
    let fresh = Browser::new();
    let code = login(&fresh, &s.p, "rp", USER, &s.totp, 1).await;
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::OK);
}

#[tokio::test]
async fn database_down_means_503_and_recovery_is_automatic() {
    let pg = PostgresServer::start().unwrap();
    let directory = Directory::connect(&pg.url(), DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(session_store::MemoryStore::new());
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store }, |_| {}).await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;

    pg.stop().unwrap();
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "no login without the database");
    let token = reqwest::Client::new()
        .post(s.p.url("/token"))
        .basic_auth("rp", Some(&s.secret))
        .form(&[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    pg.restart().unwrap();
    let r = submit(&b, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "logins work again");
}
