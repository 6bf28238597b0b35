//! The shared behaviour suite against a primary and its replica under Redis Sentinel (each test
//! on its own deployment), plus what only Sentinel brings: a failover in the middle of a flow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod suite;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_store::{RedisStore, RedisTopology, SentinelSettings, SessionStore, StoreError};
use test_support::redis_sentinel::{RedisSentinelGroup, SentinelOptions};

const TTL: Duration = Duration::from_secs(300);
/// [`RedisStore`]'s bound on an operation, with a margin for a busy machine.
const FAIL_WITHIN: Duration = Duration::from_secs(5);
const RECOVER_WITHIN: Duration = Duration::from_secs(60);

async fn start_group(options: SentinelOptions) -> RedisSentinelGroup {
    tokio::task::spawn_blocking(move || RedisSentinelGroup::start_with(options)).await.unwrap().unwrap()
}

fn topology(group: &RedisSentinelGroup) -> RedisTopology {
    RedisTopology::Sentinel(SentinelSettings {
        service: group.service().to_owned(),
        sentinels: group.sentinel_urls(),
        ..SentinelSettings::default()
    })
}

async fn sentinel_store() -> (Arc<dyn SessionStore>, RedisSentinelGroup) {
    let group = start_group(SentinelOptions::default()).await;
    let store = RedisStore::connect_to(&topology(&group), None).await.unwrap().with_prefix("suite:");
    (Arc::new(store), group)
}

session_store_suite!(sentinel_store);

/// One read during the failover: the right answer or `Unavailable`, promptly; never a wrong one.
async fn read_or_refused(store: &RedisStore, key: &str, expected: &[u8]) -> bool {
    let started = Instant::now();
    match tokio::time::timeout(FAIL_WITHIN, store.get(key)).await {
        Ok(Ok(Some(v))) if v == expected => true,
        Ok(Err(StoreError::Unavailable(_))) => false,
        other => panic!("{key}: expected {expected:?} or Unavailable, got {other:?} after {:?}", started.elapsed()),
    }
}

/// The primary dies in the middle of a login: what was acknowledged and reached the replica is
/// there after the failover; while no primary is known every operation is refused (never a
/// wrong answer); once the sentinels have promoted the replica the same store works again,
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_what_reached_the_replica_and_fails_closed_meanwhile() {
    let options = SentinelOptions {
        data_user: Some(("caducee".into(), "mot-de-passe-des-noeuds".into())),
        sentinel_password: Some("mot-de-passe-des-sentinelles".into()),
        ..SentinelOptions::quick_failover()
    };
    let group = start_group(options).await;
    let settings = SentinelSettings {
        service: group.service().to_owned(),
        sentinels: group.sentinel_urls(),
        username: Some("caducee".into()),
        password: Some("mot-de-passe-des-noeuds".into()),
        tls: false,
    };
    let store = RedisStore::connect_to(&RedisTopology::Sentinel(settings), None).await.unwrap().with_prefix("flow:");

    // A login half done: a session, a code to exchange, a failure counted, the session's clients.
    store.put("sso:s1", b"session", TTL).await.unwrap();
    store.put("code:c1", b"grant", TTL).await.unwrap();
    assert_eq!(store.increment("attempts:alice", TTL).await.unwrap().value, 1);
    store.set_add("rps:s1", "client-a", TTL).await.unwrap();
    let group = tokio::task::spawn_blocking(move || {
        group.sync_replica().unwrap();
        group
    })
    .await
    .unwrap();

    let (group, old) = tokio::task::spawn_blocking(move || {
        let mut group = group;
        let old = group.kill_primary().unwrap();
        (group, old)
    })
    .await
    .unwrap();

    // At once: the store's connection leads to the dead primary, so the exchange of the code is
    // refused, promptly (and the code is not lost).
    let started = Instant::now();
    let outcome = tokio::time::timeout(FAIL_WITHIN, store.take("code:c1")).await;
    assert!(matches!(outcome, Ok(Err(StoreError::Unavailable(_)))), "{outcome:?} after {:?}", started.elapsed());

    // Until the sentinels agree on the new primary, reads are right or refused.
    let failover = tokio::task::spawn_blocking(move || {
        let new = group.wait_for_failover(old);
        (group, new)
    });
    // And a failure counted meanwhile is counted, or refused: never lost. (A count whose answer
    // was lost on the way may be made twice: that only locks out sooner.)
    let mut counted = 1;
    while !failover.is_finished() {
        read_or_refused(&store, "sso:s1", b"session").await;
        match tokio::time::timeout(FAIL_WITHIN, store.increment("attempts:alice", TTL)).await {
            Ok(Ok(counter)) => {
                assert!(counter.value > counted, "{} after {counted}: a failure lost", counter.value);
                counted = counter.value;
            }
            Ok(Err(StoreError::Unavailable(_))) => {}
            other => panic!("increment: expected a count or Unavailable, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (group, new) = failover.await.unwrap();
    let new = new.unwrap_or_else(|e| panic!("{e}\n{}", group.logs()));
    assert_ne!(new, old);

    // After it: the same store, by itself.
    let started = Instant::now();
    while !read_or_refused(&store, "sso:s1", b"session").await {
        assert!(started.elapsed() < RECOVER_WITHIN, "no recovery within {RECOVER_WITHIN:?}\n{}", group.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.take("code:c1").await.unwrap().as_deref(), Some(&b"grant"[..]), "the code survived");
    assert_eq!(store.take("code:c1").await.unwrap(), None, "and is still single use");
    assert_eq!(store.increment("attempts:alice", TTL).await.unwrap().value, counted + 1, "the failures still count");
    let members: HashSet<String> = store.set_members("rps:s1").await.unwrap().into_iter().collect();
    assert_eq!(members, HashSet::from(["client-a".to_owned()]));
    store.put("code:c3", b"grant", TTL).await.unwrap();
    assert_eq!(store.take("code:c3").await.unwrap().as_deref(), Some(&b"grant"[..]));
}

/// A planned switchover (`SENTINEL FAILOVER`): the old primary stays up, as a replica. It drops
/// its clients as it is demoted (a connection left to it would answer `READONLY`): either way the
/// store asks the sentinels again and goes on with the new primary, by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_to_the_replica_is_followed() {
    let group = start_group(SentinelOptions::quick_failover()).await;
    let store = RedisStore::connect_to(&topology(&group), None).await.unwrap();
    store.put("code:before", b"grant", TTL).await.unwrap();
    let group = tokio::task::spawn_blocking(move || {
        group.sync_replica().unwrap();
        let old = group.primary_port().unwrap();
        group.switchover().unwrap();
        let new = group.wait_for_failover(old).unwrap_or_else(|e| panic!("{e}\n{}", group.logs()));
        group.wait_for_replica_of(old, new).unwrap_or_else(|e| panic!("{e}\n{}", group.logs()));
        group
    })
    .await
    .unwrap();

    let started = Instant::now();
    loop {
        match tokio::time::timeout(FAIL_WITHIN, store.put("code:after", b"grant", TTL)).await {
            Ok(Ok(())) => break,
            Ok(Err(StoreError::Unavailable(_))) => {}
            other => panic!("expected success or Unavailable, got {other:?}"),
        }
        assert!(started.elapsed() < RECOVER_WITHIN, "no recovery\n{}", group.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.take("code:before").await.unwrap().as_deref(), Some(&b"grant"[..]));
    assert_eq!(store.take("code:after").await.unwrap().as_deref(), Some(&b"grant"[..]));
}

/// Sentinels that know no such service, or that cannot be reached, leave the store refusing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_primary_known_is_unavailable_promptly() {
    let group = start_group(SentinelOptions::default()).await;
    let wrong = RedisTopology::Sentinel(SentinelSettings {
        service: "no-such-service".into(),
        sentinels: group.sentinel_urls(),
        ..SentinelSettings::default()
    });
    let started = Instant::now();
    let outcome = RedisStore::connect_to(&wrong, None).await;
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
    assert!(started.elapsed() < FAIL_WITHIN, "took {:?}", started.elapsed());

    let lazy = RedisStore::connect_lazy_to(&wrong, None).unwrap();
    let outcome = tokio::time::timeout(FAIL_WITHIN, lazy.get("k")).await;
    assert!(matches!(outcome, Ok(Err(StoreError::Unavailable(_)))), "{outcome:?}");

    let urls = group.sentinel_urls();
    drop(group);
    let gone = RedisTopology::Sentinel(SentinelSettings {
        service: "caducee".into(),
        sentinels: urls,
        ..SentinelSettings::default()
    });
    let lazy = RedisStore::connect_lazy_to(&gone, None).unwrap();
    let outcome = tokio::time::timeout(FAIL_WITHIN, lazy.put("k", b"v", TTL)).await;
    assert!(matches!(outcome, Ok(Err(StoreError::Unavailable(_)))), "{outcome:?}");
}

/// Sentinel as it is run in production: TLS everywhere (the sentinels, the data nodes, the links
/// between them) with a CA of the operator's, a password on the sentinels, an ACL user on the data
/// nodes. The store finds the primary and works; a CA that did not sign the certificates fails
/// closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_passwords_as_deployed() {
    let dir = tempfile::tempdir().unwrap();
    // The sentinels name the primary by address: the certificate names 127.0.0.1.
    let (tls, ca_pem) = test_support::redis::loopback_tls(dir.path()).unwrap();
    let options = SentinelOptions {
        tls: Some(tls),
        data_user: Some(("caducee".into(), "mot-de-passe-des-noeuds".into())),
        sentinel_password: Some("mot-de-passe-des-sentinelles".into()),
        ..SentinelOptions::default()
    };
    let group = start_group(options).await;
    let settings = SentinelSettings {
        service: group.service().to_owned(),
        sentinels: group.sentinel_urls(),
        username: Some("caducee".into()),
        password: Some("mot-de-passe-des-noeuds".into()),
        tls: true,
    };
    assert!(settings.sentinels.iter().all(|s| s.starts_with("rediss://")), "{settings:?}");
    let store = RedisStore::connect_to(&RedisTopology::Sentinel(settings.clone()), Some(&ca_pem)).await.expect("TLS");
    store.put("code:tls", b"grant", TTL).await.unwrap();
    assert_eq!(store.take("code:tls").await.unwrap().as_deref(), Some(&b"grant"[..]));

    let other_ca = test_support::redis::unrelated_ca_pem().unwrap();
    let refused = tokio::time::timeout(
        FAIL_WITHIN * 2,
        RedisStore::connect_to(&RedisTopology::Sentinel(settings.clone()), Some(&other_ca)),
    )
    .await;
    assert!(!matches!(refused, Ok(Ok(_))), "a CA that signed nothing here");
    let wrong = SentinelSettings { password: Some("pas-le-bon".into()), ..settings };
    let refused =
        tokio::time::timeout(FAIL_WITHIN * 2, RedisStore::connect_to(&RedisTopology::Sentinel(wrong), Some(&ca_pem)))
            .await;
    assert!(!matches!(refused, Ok(Ok(_))), "a wrong password on the data nodes");
}
