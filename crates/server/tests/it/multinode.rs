//! Two provider nodes sharing PostgreSQL and Redis, as in production: whatever happens on one
//! node is seen by the other at the next request.

use std::sync::Arc;

use directory::{DataKey, Directory};
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use session_store::{RedisStore, SessionStore};
use test_support::postgres::PostgresServer;
use test_support::redis::RedisServer;

use crate::common::*;

struct Cluster {
    a: TestProvider,
    b: TestProvider,
    _pg: PostgresServer,
    _redis: RedisServer,
}

async fn node(pg: &PostgresServer, redis: &RedisServer, key: &DataKey) -> TestProvider {
    let directory = Directory::connect(&pg.url(), key.clone()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> =
        Arc::new(RedisStore::connect(&redis.url()).await.unwrap().with_prefix("caducee:"));
    TestProvider::start_with(Storage::Shared { directory, store }, |c| c.login.base_lock = 60).await.unwrap()
}

async fn cluster() -> Cluster {
    let pg = PostgresServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let key = DataKey::generate().unwrap();
    let a = node(&pg, &redis, &key).await;
    let b = node(&pg, &redis, &key).await;
    Cluster { a, b, _pg: pg, _redis: redis }
}

/// The nodes have different issuers in these tests (one port each), so tokens are always
/// checked by the node that issued them; what crosses nodes is the state: sessions, codes,
/// revocations, lockouts.
#[tokio::test]
async fn a_session_ended_on_one_node_kills_the_tokens_on_the_other() {
    let c = cluster().await;
    let (_, totp) = c.a.add_professional(USER, PASSWORD).await.unwrap();
    let (_, secret) = c.a.add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();
    let secret = secret.unwrap();

    let browser = Browser::new();
    let code = login(&browser, &c.a, "rp", USER, &totp, 0).await;
    let (status, tokens) = exchange(&c.a, "rp", &secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&c.a, at).await, StatusCode::OK);

    // Node B sees the session node A opened (same Redis) and ends it.
    let sessions = c.b.app.provider.sessions();
    let subject = c.a.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let live = sessions.list_for_subject(&subject, c.b.clock.now()).await.unwrap();
    assert_eq!(live.len(), 1);
    c.b.app.provider.end_session(&live[0].sid, "test", c.b.clock.now()).await.unwrap();

    // Node A refuses everything issued under it, at once.
    assert_eq!(userinfo(&c.a, at).await, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&c.a, "rp", &secret, rt).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn a_code_is_single_use_across_nodes_and_a_lockout_holds_on_both() {
    let c = cluster().await;
    let (_, totp) = c.a.add_professional(USER, PASSWORD).await.unwrap();
    let (_, secret) = c.a.add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();
    let secret = secret.unwrap();
    let browser = Browser::new();
    let code = login(&browser, &c.a, "rp", USER, &totp, 0).await;

    // Both nodes race to redeem the same code: exactly one wins. (Codes are bound to the
    // issuer's redirect and client, which both nodes share.)
    let (ra, rb) = tokio::join!(exchange(&c.a, "rp", &secret, &code), exchange(&c.b, "rp", &secret, &code));
    let wins = [ra.0, rb.0].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "one redemption only: {ra:?} {rb:?}");

    // Five failures through node A lock the identifier on node B too.
    let attacker = Browser::new();
    for _ in 0..5 {
        let (url, html) = open_login(&attacker, &c.a, "rp", &[]).await;
        submit(&attacker, &url, &html, USER, "wrong password!", "000000").await;
    }
    let other = Browser::new();
    let (url, html) = open_login(&other, &c.b, "rp", &[]).await;
    let r = submit(&other, &url, &html, USER, PASSWORD, &c.b.totp(&totp, 1).unwrap()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_key_rotation_on_one_node_reaches_the_other_at_its_next_reload() {
    let c = cluster().await;
    let before = c.b.app.keys.jwks_json().to_string();
    let new_kids = c.a.app.keys.rotate(c.a.clock.now(), 600).await.unwrap();
    c.b.app.keys.reload(c.b.clock.now()).await.unwrap();
    let after = c.b.app.keys.jwks_json().to_string();
    for kid in &new_kids {
        assert!(after.contains(kid.as_str()), "node B publishes the new key {kid}");
        assert_eq!(c.b.app.keys.active(oidc_core::keys::SigningAlg::RS256).unwrap().kid().len(), kid.len());
    }
    let old: serde_json::Value = serde_json::from_str(&before).unwrap();
    for k in old["keys"].as_array().unwrap() {
        assert!(after.contains(k["kid"].as_str().unwrap()), "old keys stay published");
    }
}

/// Issue 13, item 5: every limit on strangers is one rate limiter over the shared store, so a
/// stranger spreading requests over the nodes meets the same limit as on one node.
#[tokio::test]
async fn item_5_limits_on_strangers_hold_across_nodes() {
    let cluster = crate::admin::cluster_with(|c| {
        c.session.max_interactions_per_address = 6;
        c.login.address_max_attempts = 3;
    })
    .await;
    let nodes = [&cluster.a, &cluster.b];
    nodes[0].add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();

    // Logins started from one address, alternately on each node: the sixth is the last.
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    for i in 0..6 {
        let status = stranger.get(authorize_url(nodes[i % 2], "rp", &[])).send().await.unwrap().status();
        assert_eq!(status, StatusCode::SEE_OTHER, "request {i}");
    }
    for node in nodes {
        let status = stranger.get(authorize_url(node, "rp", &[])).send().await.unwrap().status();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "refused on every node");
    }

    // Password spraying from one address, alternately on each node: stopped after 3 failures.
    let mut refused_at = None;
    for i in 0..8 {
        let b = Browser::at("127.0.0.3");
        let (url, html) = open_login(&b, nodes[i % 2], "rp", &[]).await;
        let r = submit(&b, &url, &html, &format!("8997000002{i:02}"), "Printemps2026!", "000000").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused_at = Some(i);
            break;
        }
    }
    assert_eq!(refused_at, Some(3), "the address's budget is shared by the nodes");
}
