//! The provider over Redis as deployed for real: a Redis Cluster, and a primary with its replica
//! under Redis Sentinel. A login and a code exchange go through each; with Sentinel, the primary
//! dies between the two, and the code (which had reached the replica) is still exchanged once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use directory::{DataKey, Directory};
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use session_store::{RedisStore, RedisTopology, SessionStore};
use test_support::redis_cluster::RedisCluster;
use test_support::redis_sentinel::{RedisSentinelGroup, SentinelOptions};

use crate::common::*;

const RECOVER_WITHIN: Duration = Duration::from_secs(60);

async fn ready_within(p: &TestProvider, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if reqwest::get(p.url("/readyz")).await.unwrap().status() == StatusCode::OK {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_and_a_code_exchange_over_a_redis_cluster() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start).await.unwrap().unwrap();
    let directory = Directory::connect("sqlite::memory:", DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(
        RedisStore::connect_to(&RedisTopology::Cluster(cluster.urls()), None).await.unwrap().with_prefix("caducee:"),
    );
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store }, |_| {}).await.unwrap()).await;

    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s.p, at).await, StatusCode::OK);
    // Single sign-on: the session (on whichever node its key hashes to) is found again.
    let r = b.get(&authorize_url(&s.p, "rp", &[("prompt", "none")])).await;
    let to = location(r.headers());
    let again = query_param(&to, "code").unwrap_or_else(|| panic!("signed in silently: {to}"));
    assert_eq!(exchange(&s.p, "rp", &s.secret, &again).await.0, StatusCode::OK);
    // The code is single use across the cluster too (and its replay revokes what it gave).
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(userinfo(&s.p, at).await, StatusCode::UNAUTHORIZED);
}

/// Configured as an operator would (`[redis_sentinel]`, the store opened by the server itself):
/// a login, then the primary dies; once the sentinels have promoted the replica, the code issued
/// before is exchanged, once, without restarting the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_over_redis_sentinel_survives_a_failover_before_the_code_exchange() {
    let group = tokio::task::spawn_blocking(|| RedisSentinelGroup::start_with(SentinelOptions::quick_failover()))
        .await
        .unwrap()
        .unwrap();
    let service = group.service().to_owned();
    let sentinels = group.sentinel_urls();
    let p = TestProvider::start_with(Storage::Embedded, move |c| {
        c.redis_sentinel.master_name = service;
        c.redis_sentinel.sentinels = sentinels;
    })
    .await
    .unwrap();
    assert!(p.app.config.shared_store());
    let s = setup(p).await;

    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let group = tokio::task::spawn_blocking(move || {
        let mut group = group;
        // The code reached the replica (Redis replicates asynchronously; the test makes sure).
        group.sync_replica().unwrap();
        let old = group.kill_primary().unwrap();
        group.wait_for_failover(old).unwrap_or_else(|e| panic!("{e}\n{}", group.logs()));
        group
    })
    .await
    .unwrap();

    assert!(ready_within(&s.p, RECOVER_WITHIN).await, "ready again after the failover\n{}", group.logs());
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(userinfo(&s.p, tokens["access_token"].as_str().unwrap()).await, StatusCode::OK);
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::BAD_REQUEST, "still single use");
    let fresh = Browser::new();
    let code = login(&fresh, &s.p, "rp", USER, &s.totp, 1).await;
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::OK);
}
