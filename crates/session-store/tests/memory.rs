//! The shared behaviour suite against the in-process backend, plus what only it has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

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
