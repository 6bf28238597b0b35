//! The shared behaviour suite against the in-process backend, plus what only it has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_store::{MemoryStore, SessionStore};

async fn memory_store() -> (Arc<dyn SessionStore>, ()) {
    (Arc::new(MemoryStore::new()), ())
}

session_store_suite!(memory_store);

#[tokio::test]
async fn clones_share_their_data() {
    let a = MemoryStore::new();
    let b = a.clone();
    a.put("k", b"v", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.take("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(a.get("k").await.unwrap(), None);
}

/// The in-process store is the production default for one node: it must not be the bottleneck.
/// Meaningful in release mode only:
/// `cargo test --release -p session-store --test memory -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput measurement; run in release mode"]
async fn throughput_of_simple_operations() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let tasks = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_task = 500_000;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let ttl = Duration::from_secs(60);
                for i in 0..per_task / 2 {
                    let key = format!("code:{t}:{}", i % 10_000);
                    store.put(&key, b"0123456789abcdef0123456789abcdef", ttl).await.unwrap();
                    store.get(&key).await.unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    let ops = (tasks * per_task) as f64;
    let rate = ops / started.elapsed().as_secs_f64();
    println!("{tasks} tasks: {rate:.0} operations/s");
}
