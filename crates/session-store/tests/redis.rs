//! The shared behaviour suite against the Redis backend, each test on its own Redis server, plus
//! what only Redis can do: share a server between prefixes, lose it, and get it back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};
use session_store::{RedisStore, SessionStore, StoreError};
use test_support::redis::RedisServer;

/// Long enough for a reconnection attempt and a command timeout, short enough to mean "fails
/// closed promptly" rather than "hangs".
const FAIL_WITHIN: Duration = Duration::from_secs(5);
const RECOVER_WITHIN: Duration = Duration::from_secs(15);
const TTL: Duration = Duration::from_secs(60);

async fn start_server() -> RedisServer {
    tokio::task::spawn_blocking(RedisServer::start).await.unwrap().unwrap()
}

async fn redis_store() -> (Arc<dyn SessionStore>, RedisServer) {
    let server = start_server().await;
    // A prefix in every suite test, so that the prefixing path is the one exercised.
    let store = RedisStore::connect(&server.url()).await.unwrap().with_prefix("suite:");
    (Arc::new(store), server)
}

session_store_suite!(redis_store);

/// Runs `server_op` (stop, restart, pause, resume: blocking) off the async workers.
async fn on_server(mut server: RedisServer, server_op: fn(&mut RedisServer)) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        server_op(&mut server);
        server
    })
    .await
    .unwrap()
}

/// Every kind of operation fails with `Unavailable`, each within [`FAIL_WITHIN`]. They run at
/// once, as requests would, so that queued requests are seen to fail too.
async fn assert_fails_closed(store: &RedisStore) {
    let checks: Vec<(&str, BoxFuture<'_, Result<(), StoreError>>)> = vec![
        ("ping", Box::pin(store.ping())),
        ("get", Box::pin(async { store.get("k").await.map(drop) })),
        ("get_many", Box::pin(async { store.get_many(&["k", "l"]).await.map(drop) })),
        ("put", Box::pin(store.put("k", b"v", TTL))),
        ("take", Box::pin(async { store.take("k").await.map(drop) })),
        ("swap_existing", Box::pin(async { store.swap_existing("k", b"v", TTL).await.map(drop) })),
        ("increment", Box::pin(async { store.increment("n", TTL).await.map(drop) })),
        ("compare_and_swap", Box::pin(async { store.compare_and_swap("k", b"a", b"b", TTL).await.map(drop) })),
        ("set_add", Box::pin(store.set_add("s", "m", TTL))),
        ("set_members", Box::pin(async { store.set_members("s").await.map(drop) })),
    ];
    let timed = checks.into_iter().map(|(name, check)| async move {
        let started = Instant::now();
        let outcome = tokio::time::timeout(FAIL_WITHIN, check).await;
        (name, outcome, started.elapsed())
    });
    for (name, outcome, elapsed) in join_all(timed).await {
        assert!(
            matches!(outcome, Ok(Err(StoreError::Unavailable(_)))),
            "{name}: expected Unavailable within {FAIL_WITHIN:?}, got {outcome:?} after {elapsed:?}"
        );
    }
}

/// Polls until the store answers again; the store must get there by itself.
async fn assert_recovers(store: &RedisStore) {
    let started = Instant::now();
    while store.ping().await.is_err() {
        assert!(started.elapsed() < RECOVER_WITHIN, "no recovery within {RECOVER_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.put("after", b"v", TTL).await.unwrap();
    assert_eq!(store.take("after").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.increment("n:after", TTL).await.unwrap().value, 1);
    assert!(store.compare_and_swap("after:cas", b"x", b"y", TTL).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_closed_while_redis_is_down_and_recovers_by_itself() {
    let server = start_server().await;
    let store = RedisStore::connect(&server.url()).await.unwrap();
    store.put("before", b"v", TTL).await.unwrap();
    // Load the scripts before the restart, which forgets them: the store must cope.
    store.increment("n:before", TTL).await.unwrap();

    let server = on_server(server, RedisServer::stop).await;
    assert_fails_closed(&store).await;
    // Still refused a while later, after the reconnection attempts gave up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_fails_closed(&store).await;

    let _server = on_server(server, |s| s.restart().unwrap()).await;
    assert_recovers(&store).await;
    // This server keeps nothing across a restart.
    assert_eq!(store.get("before").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_closed_while_redis_is_hung_and_recovers_by_itself() {
    let server = start_server().await;
    let store = RedisStore::connect(&server.url()).await.unwrap();
    store.put("before", b"v", TTL).await.unwrap();

    let server = on_server(server, |s| s.pause().unwrap()).await;
    assert_fails_closed(&store).await;

    let _server = on_server(server, |s| s.resume().unwrap()).await;
    assert_recovers(&store).await;
    assert_eq!(store.get("before").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn connecting_to_nothing_is_unavailable_promptly() {
    let mut server = start_server().await;
    let url = server.url();
    server.stop();
    let started = Instant::now();
    let outcome = RedisStore::connect(&url).await;
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
    assert!(started.elapsed() < FAIL_WITHIN, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_store_starts_without_redis_and_works_once_it_is_there() {
    let server = start_server().await;
    let server = on_server(server, RedisServer::stop).await;
    let store = RedisStore::connect_lazy(&server.url()).unwrap();
    assert_fails_closed(&store).await;
    let _server = on_server(server, |s| s.restart().unwrap()).await;
    assert_recovers(&store).await;
}

#[tokio::test]
async fn a_malformed_url_is_invalid_and_not_echoed() {
    let outcome = RedisStore::connect("redis://user:s3cret@[not-a-host/").await;
    assert!(matches!(outcome, Err(StoreError::Invalid(_))), "{outcome:?}");
    assert!(!format!("{outcome:?}").contains("s3cret"));
}

#[tokio::test]
async fn prefixes_keep_stores_sharing_a_server_apart() {
    let server = start_server().await;
    let a = RedisStore::connect(&server.url()).await.unwrap().with_prefix("a:");
    let b = RedisStore::connect(&server.url()).await.unwrap().with_prefix("b:");
    let bare = RedisStore::connect(&server.url()).await.unwrap();

    a.put("code:1", b"from a", TTL).await.unwrap();
    assert_eq!(b.get("code:1").await.unwrap(), None);
    assert!(b.put_if_absent("code:1", b"from b", TTL).await.unwrap());
    assert_eq!(a.take("code:1").await.unwrap().as_deref(), Some(&b"from a"[..]));
    assert_eq!(b.get("code:1").await.unwrap().as_deref(), Some(&b"from b"[..]));
    // The prefix is really in Redis' key, and nowhere else.
    assert_eq!(bare.get("b:code:1").await.unwrap().as_deref(), Some(&b"from b"[..]));

    a.set_add("rps", "client", TTL).await.unwrap();
    assert!(b.set_members("rps").await.unwrap().is_empty());
    assert_eq!(bare.set_members("a:rps").await.unwrap(), vec!["client".to_owned()]);
    assert_eq!(a.increment("n", TTL).await.unwrap().value, 1);
    assert_eq!(b.increment("n", TTL).await.unwrap().value, 1);
    assert_eq!(a.get_many(&["n", "code:1"]).await.unwrap(), vec![Some(b"1".to_vec()), None]);
}

/// Redis as it is run in production: TLS (`rediss://`) with a CA of the operator's, and an ACL
/// user with a password. The store works there; the wrong password, no TLS or a CA that did not
/// sign the server's certificate fail closed.
#[tokio::test]
async fn tls_and_an_acl_user_as_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca_pem) = test_support::redis::loopback_tls(dir.path()).unwrap();
    let options = test_support::redis::RedisOptions {
        tls: Some(tls),
        users: vec![("caducee".into(), "mot-de-passe-du-noeud".into())],
        ..Default::default()
    };
    let server = tokio::task::spawn_blocking(move || RedisServer::start_with(options)).await.unwrap().unwrap();

    let url = server.tls_url("caducee", "mot-de-passe-du-noeud").unwrap();
    let store = RedisStore::connect_with_ca(&url, Some(&ca_pem)).await.expect("TLS and the ACL user");
    store.put("k", b"v", TTL).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(b"v".as_slice()));

    let wrong = server.tls_url("caducee", "pas-le-bon").unwrap();
    assert!(RedisStore::connect_with_ca(&wrong, Some(&ca_pem)).await.is_err(), "a wrong password");
    let other_ca = test_support::redis::unrelated_ca_pem().unwrap();
    assert!(RedisStore::connect_with_ca(&url, Some(&other_ca)).await.is_err(), "a server the CA did not sign");
    let plain = url.replacen("rediss://", "redis://", 1);
    let refused = tokio::time::timeout(FAIL_WITHIN * 2, RedisStore::connect(&plain)).await;
    assert!(!matches!(refused, Ok(Ok(_))), "no TLS on the TLS port");
}
