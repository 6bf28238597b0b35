//! The shared behaviour suite against the in-process backend, plus what only it has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use session_store::{MemoryStore, SessionStore, StoreError};

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

/// The memory bound: writes past it are refused (not stored, not a panic), what was stored stays
/// readable, and once entries expire there is room again.
#[tokio::test]
async fn a_bounded_store_refuses_writes_past_its_bound_until_entries_expire() {
    let store = MemoryStore::with_capacity(64 * 1024);
    let value = vec![7u8; 1024];
    let mut stored = 0;
    let mut refused = 0;
    for i in 0..200 {
        match store.put(&format!("ix:{i}"), &value, Duration::from_millis(400)).await {
            Ok(()) => stored += 1,
            Err(StoreError::Full) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!((50..64).contains(&stored), "about 64 KiB worth stored: {stored}");
    assert_eq!(stored + refused, 200);
    assert!(store.used_bytes() <= 64 * 1024, "{}", store.used_bytes());
    assert_eq!(store.get("ix:0").await.unwrap().as_deref(), Some(&value[..]), "stored entries stay");
    // Fill what is left with small entries, then every kind of write is bounded, not only put.
    let mut i = 0;
    while store.put(&format!("s:{i}"), b"", Duration::from_millis(400)).await.is_ok() {
        i += 1;
    }
    assert!(matches!(store.increment("counter:new", Duration::from_secs(60)).await, Err(StoreError::Full)));
    assert!(matches!(store.set_add("set:new", "m", Duration::from_secs(60)).await, Err(StoreError::Full)));
    // Shrinking and removing always work.
    assert!(store.delete("ix:0").await.unwrap());
    // Past the entries' life, and past the spacing of full sweeps (once a second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 0..50 {
        store.put(&format!("after:{i}"), &value, Duration::from_secs(60)).await.expect("room again once expired");
    }
}

/// The count of bytes follows every kind of change exactly (no drift that would one day fill
/// the bound with nothing, or let it be passed).
#[tokio::test]
async fn the_byte_count_follows_every_change() {
    let store = MemoryStore::with_capacity(usize::MAX);
    let ttl = Duration::from_secs(60);
    store.put("a", b"12345", ttl).await.unwrap();
    store.put("a", b"1", ttl).await.unwrap();
    store.put_if_absent("b", b"xyz", ttl).await.unwrap();
    store.swap_existing("b", b"longer value", ttl).await.unwrap();
    store.compare_and_swap("b", b"longer value", b"s", ttl).await.unwrap();
    store.increment("c", ttl).await.unwrap();
    store.increment("c", ttl).await.unwrap();
    store.decrement("c").await.unwrap();
    store.set_add("d", "one", ttl).await.unwrap();
    store.set_add("d", "two", ttl).await.unwrap();
    store.set_remove("d", "one").await.unwrap();
    store.put("e", b"short-lived", Duration::from_millis(50)).await.unwrap();
    let with_all = store.used_bytes();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.get("e").await.unwrap(), None);
    assert!(store.used_bytes() < with_all, "an expired entry touched is no longer counted");
    store.take("a").await.unwrap();
    store.delete("b").await.unwrap();
    store.delete("c").await.unwrap();
    store.set_remove("d", "two").await.unwrap();
    assert_eq!(store.used_bytes(), 0, "everything removed, nothing counted");
}
