//! The shared behaviour suite against a three-node Redis Cluster (each test on its own cluster),
//! plus what only a cluster has: reads spread over every node, and a node lost and back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_store::{RedisStore, RedisTopology, SessionStore, StoreError};
use test_support::redis::redis_cli;
use test_support::redis_cluster::RedisCluster;

const TTL: Duration = Duration::from_secs(60);
const FAIL_WITHIN: Duration = Duration::from_secs(5);
const RECOVER_WITHIN: Duration = Duration::from_secs(30);

async fn start_cluster() -> RedisCluster {
    tokio::task::spawn_blocking(RedisCluster::start).await.unwrap().unwrap()
}

async fn cluster_store() -> (Arc<dyn SessionStore>, RedisCluster) {
    let cluster = start_cluster().await;
    let store =
        RedisStore::connect_to(&RedisTopology::Cluster(cluster.urls()), None).await.unwrap().with_prefix("suite:");
    (Arc::new(store), cluster)
}

session_store_suite!(cluster_store);

/// `get_many` over keys of every node: one answer per key, in order, whatever node holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_reads_keys_of_every_node_in_order() {
    let cluster = start_cluster().await;
    let store = RedisStore::connect_to(&RedisTopology::Cluster(cluster.urls()), None).await.unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("spread:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        if !i.is_multiple_of(3) {
            store.put(key, key.as_bytes(), TTL).await.unwrap();
        }
    }
    // The keys really are on every node.
    for node in cluster.nodes() {
        let count = redis_cli(node.port(), &["DBSIZE"], None).unwrap();
        assert!(count.trim().parse::<u32>().unwrap() > 20, "node {} holds {count}", node.port());
    }
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.reverse();
    asked.push("spread:1");
    let values = store.get_many(&asked).await.unwrap();
    assert_eq!(values.len(), asked.len());
    for (key, value) in asked.iter().zip(values) {
        let i: usize = key.trim_start_matches("spread:").parse().unwrap();
        let expected = (!i.is_multiple_of(3)).then(|| key.as_bytes().to_vec());
        assert_eq!(value, expected, "{key}");
    }
}

/// With a node gone, what needs it fails closed, promptly; once it is back the store works again
/// by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_fails_closed_and_the_cluster_recovers() {
    let mut cluster = start_cluster().await;
    let store = RedisStore::connect_to(&RedisTopology::Cluster(cluster.urls()), None).await.unwrap();
    // Keys on every node, so that some live on the node that goes.
    let keys: Vec<String> = (0..30).map(|i| format!("lost:{i}")).collect();
    for key in &keys {
        store.put(key, b"v", TTL).await.unwrap();
    }
    let port = cluster.nodes()[1].port();
    cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_node(port);
        cluster
    })
    .await
    .unwrap();
    let mut refused = 0;
    for key in &keys {
        let started = Instant::now();
        match tokio::time::timeout(FAIL_WITHIN, store.take(key)).await {
            Ok(Ok(Some(v))) => assert_eq!(v, b"v"),
            Ok(Err(StoreError::Unavailable(_))) => refused += 1,
            other => panic!("{key}: expected the value or Unavailable, got {other:?} after {:?}", started.elapsed()),
        }
    }
    assert!(refused > 0, "some keys were on the lost node");

    cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_node(port).unwrap();
        cluster
    })
    .await
    .unwrap();
    let started = Instant::now();
    loop {
        let all = futures::future::join_all(keys.iter().map(|k| store.put(k, b"w", TTL))).await;
        if all.iter().all(Result::is_ok) {
            break;
        }
        assert!(started.elapsed() < RECOVER_WITHIN, "no recovery within {RECOVER_WITHIN:?}: {all:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.take("lost:0").await.unwrap().as_deref(), Some(&b"w"[..]));
    drop(cluster);
}

/// The server's way (a node may start while Redis is down): a lazy store connects at its first
/// operation, and refuses while the seed nodes do not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_store_connects_at_its_first_operation() {
    let cluster = start_cluster().await;
    let store = RedisStore::connect_lazy_to(&RedisTopology::Cluster(cluster.urls()), None).unwrap();
    store.put("lazy:k", b"v", TTL).await.unwrap();
    assert_eq!(store.get_many(&["lazy:k", "lazy:none"]).await.unwrap(), vec![Some(b"v".to_vec()), None]);

    let urls = cluster.urls();
    drop(cluster);
    let nowhere = RedisStore::connect_lazy_to(&RedisTopology::Cluster(urls), None).unwrap();
    let started = Instant::now();
    let outcome = tokio::time::timeout(FAIL_WITHIN, nowhere.get("k")).await;
    assert!(matches!(outcome, Ok(Err(StoreError::Unavailable(_)))), "{outcome:?} after {:?}", started.elapsed());
}

/// A cluster as it is run in production: TLS everywhere (clients and the cluster bus) with a CA
/// of the operator's, an ACL user with a password. The store works there, across the nodes; a
/// CA that did not sign the nodes' certificates, or a wrong password, fail closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_an_acl_user_as_deployed() {
    use test_support::redis::RedisOptions;
    let dir = tempfile::tempdir().unwrap();
    // The nodes name each other by address in the slot map: the certificate names 127.0.0.1.
    let (tls, ca_pem) = test_support::redis::loopback_tls(dir.path()).unwrap();
    let options = RedisOptions {
        tls: Some(tls),
        users: vec![("caducee".into(), "mot-de-passe-du-cluster".into())],
        ..RedisOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || RedisCluster::start_with(options)).await.unwrap().unwrap();

    let nodes = cluster.tls_urls("caducee", "mot-de-passe-du-cluster").unwrap();
    let store = RedisStore::connect_to(&RedisTopology::Cluster(nodes.clone()), Some(&ca_pem)).await.expect("TLS");
    let keys: Vec<String> = (0..30).map(|i| format!("tls:{i}")).collect();
    for key in &keys {
        store.put(key, key.as_bytes(), TTL).await.unwrap();
    }
    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = store.get_many(&asked).await.unwrap();
    assert!(values.iter().zip(&keys).all(|(v, k)| v.as_deref() == Some(k.as_bytes())), "{values:?}");
    assert_eq!(store.take("tls:0").await.unwrap().as_deref(), Some(&b"tls:0"[..]));

    let wrong = cluster.tls_urls("caducee", "pas-le-bon").unwrap();
    let refused =
        tokio::time::timeout(FAIL_WITHIN * 2, RedisStore::connect_to(&RedisTopology::Cluster(wrong), Some(&ca_pem)))
            .await;
    assert!(!matches!(refused, Ok(Ok(_))), "a wrong password");
    let other_ca = test_support::redis::unrelated_ca_pem().unwrap();
    let refused =
        tokio::time::timeout(FAIL_WITHIN * 2, RedisStore::connect_to(&RedisTopology::Cluster(nodes), Some(&other_ca)))
            .await;
    assert!(!matches!(refused, Ok(Ok(_))), "nodes the CA did not sign");
}
