//! The behaviour every [`SessionStore`] backend must have, written once and run against each
//! backend by `tests/memory.rs` and `tests/redis.rs` through [`session_store_suite!`], so that a
//! failure is named after both the behaviour and the backend.
//!
//! Timings use time to live of a few hundred milliseconds and sleep well past them: the test
//! machines are small and shared, and a late wake-up must not turn into a false failure.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use session_store::{KeyPrefix, Rate, RateLimiter, SessionStore, StoreError, Verdict};
use tokio::sync::Barrier;

/// Generates one `#[tokio::test]` per behaviour below, each with a fresh store from `$make`, an
/// async function returning `(Arc<dyn SessionStore>, guard)` where the guard keeps the backend
/// alive for the test.
macro_rules! session_store_suite {
    ($make:path) => {
        session_store_suite!(@tests $make;
            put_get_and_overwrite,
            values_are_opaque_bytes,
            values_expire,
            put_if_absent_only_writes_once,
            get_many_keeps_order_and_reports_misses,
            take_is_single_use,
            swap_existing_returns_the_previous_value,
            compare_and_swap_replaces_only_the_expected_value,
            delete_reports_what_it_removed,
            increment_counts_from_one,
            increment_does_not_extend_the_window,
            increment_reports_the_time_left_in_its_window,
            decrement_takes_back_one_and_creates_nothing,
            rate_limiter_allows_the_rate_then_says_when_to_return,
            rate_limiter_forgives_and_clears,
            sets_add_remove_and_list_members,
            sets_expire,
            zero_or_absurd_time_to_live_is_refused,
            kinds_do_not_mix,
            ping_answers,
            concurrent_takes_have_one_winner,
            concurrent_swaps_see_the_original_once,
            concurrent_increments_are_all_counted,
            concurrent_put_if_absent_has_one_winner,
            concurrent_compare_and_swap_has_one_winner,
        );
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, _guard) = $make().await;
                suite::$name(store).await;
            }
        )*
    };
}

type Store = Arc<dyn SessionStore>;

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(300);
/// Comfortably past [`SHORT`].
const AFTER_SHORT: Duration = Duration::from_millis(700);
const TASKS: usize = 50;
/// Each race is run several times: a race that is lost only now and then must still show up.
const ROUNDS: usize = 10;

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::Invalid(_))), "expected Invalid, got {result:?}");
}

pub async fn put_get_and_overwrite(store: Store) {
    assert_eq!(store.get("session:none").await.unwrap(), None);
    store.put("session:a", b"first", LONG).await.unwrap();
    assert_eq!(store.get("session:a").await.unwrap().as_deref(), Some(&b"first"[..]));
    store.put("session:a", b"second", LONG).await.unwrap();
    assert_eq!(store.get("session:a").await.unwrap().as_deref(), Some(&b"second"[..]));
    // Reading does not consume.
    assert_eq!(store.get("session:a").await.unwrap().as_deref(), Some(&b"second"[..]));
}

pub async fn values_are_opaque_bytes(store: Store) {
    let binary: Vec<u8> = (0..=255).collect();
    store.put("blob:binary", &binary, LONG).await.unwrap();
    assert_eq!(store.get("blob:binary").await.unwrap(), Some(binary));
    store.put("blob:empty", b"", LONG).await.unwrap();
    assert_eq!(store.get("blob:empty").await.unwrap(), Some(Vec::new()));
    let unicode_key = "blob:clé-\u{1F511}";
    store.put(unicode_key, b"v", LONG).await.unwrap();
    assert_eq!(store.get(unicode_key).await.unwrap().as_deref(), Some(&b"v"[..]));
}

pub async fn values_expire(store: Store) {
    store.put("code:short", b"v", SHORT).await.unwrap();
    store.put("code:long", b"v", LONG).await.unwrap();
    assert!(store.get("code:short").await.unwrap().is_some());
    tokio::time::sleep(AFTER_SHORT).await;

    assert_eq!(store.get("code:short").await.unwrap(), None);
    assert_eq!(store.get_many(&["code:short", "code:long"]).await.unwrap(), vec![None, Some(b"v".to_vec())]);
    assert_eq!(store.take("code:short").await.unwrap(), None);
    assert!(!store.delete("code:short").await.unwrap());
    assert_eq!(store.swap_existing("code:short", b"x", LONG).await.unwrap(), None);
    assert!(!store.compare_and_swap("code:short", b"v", b"x", LONG).await.unwrap());
    // An expired key counts as absent for writes too.
    assert!(store.put_if_absent("code:short", b"again", LONG).await.unwrap());
    assert_eq!(store.get("code:short").await.unwrap().as_deref(), Some(&b"again"[..]));
    assert_eq!(store.get("code:long").await.unwrap().as_deref(), Some(&b"v"[..]));
}

pub async fn put_if_absent_only_writes_once(store: Store) {
    assert!(store.put_if_absent("nonce:a", b"first", LONG).await.unwrap());
    assert!(!store.put_if_absent("nonce:a", b"second", LONG).await.unwrap());
    assert_eq!(store.get("nonce:a").await.unwrap().as_deref(), Some(&b"first"[..]));

    // Its time to live applies.
    assert!(store.put_if_absent("nonce:b", b"v", SHORT).await.unwrap());
    tokio::time::sleep(AFTER_SHORT).await;
    assert_eq!(store.get("nonce:b").await.unwrap(), None);
}

pub async fn get_many_keeps_order_and_reports_misses(store: Store) {
    store.put("k:1", b"one", LONG).await.unwrap();
    store.put("k:3", b"three", LONG).await.unwrap();
    let values = store.get_many(&["k:3", "k:missing", "k:1", "k:3"]).await.unwrap();
    assert_eq!(values, vec![Some(b"three".to_vec()), None, Some(b"one".to_vec()), Some(b"three".to_vec())]);
    assert_eq!(store.get_many(&[]).await.unwrap(), Vec::<Option<Vec<u8>>>::new());
    assert_eq!(store.get_many(&["k:missing"]).await.unwrap(), vec![None]);
}

pub async fn take_is_single_use(store: Store) {
    store.put("code:x", b"grant", LONG).await.unwrap();
    assert_eq!(store.take("code:x").await.unwrap().as_deref(), Some(&b"grant"[..]));
    assert_eq!(store.take("code:x").await.unwrap(), None);
    assert_eq!(store.get("code:x").await.unwrap(), None);
    assert_eq!(store.take("code:never").await.unwrap(), None);
}

pub async fn swap_existing_returns_the_previous_value(store: Store) {
    // Nothing there: nothing written either.
    assert_eq!(store.swap_existing("code:none", b"used", LONG).await.unwrap(), None);
    assert_eq!(store.get("code:none").await.unwrap(), None);

    store.put("code:y", b"grant", LONG).await.unwrap();
    assert_eq!(store.swap_existing("code:y", b"used", LONG).await.unwrap().as_deref(), Some(&b"grant"[..]));
    assert_eq!(store.get("code:y").await.unwrap().as_deref(), Some(&b"used"[..]));
    // A replay sees the marker, not the grant.
    assert_eq!(store.swap_existing("code:y", b"used", LONG).await.unwrap().as_deref(), Some(&b"used"[..]));

    // The new time to live replaces the old one.
    store.put("code:z", b"grant", LONG).await.unwrap();
    store.swap_existing("code:z", b"used", SHORT).await.unwrap();
    tokio::time::sleep(AFTER_SHORT).await;
    assert_eq!(store.get("code:z").await.unwrap(), None);
}

pub async fn compare_and_swap_replaces_only_the_expected_value(store: Store) {
    store.put("session:s", b"v1", LONG).await.unwrap();
    assert!(!store.compare_and_swap("session:s", b"other", b"v2", LONG).await.unwrap());
    assert_eq!(store.get("session:s").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(store.compare_and_swap("session:s", b"v1", b"v2", LONG).await.unwrap());
    assert_eq!(store.get("session:s").await.unwrap().as_deref(), Some(&b"v2"[..]));
    // The old value is no longer the expected one.
    assert!(!store.compare_and_swap("session:s", b"v1", b"v3", LONG).await.unwrap());

    // A missing key equals nothing, not even the empty value; and is not created.
    assert!(!store.compare_and_swap("session:none", b"", b"v", LONG).await.unwrap());
    assert_eq!(store.get("session:none").await.unwrap(), None);

    store.put("session:t", b"v1", LONG).await.unwrap();
    assert!(store.compare_and_swap("session:t", b"v1", b"v2", SHORT).await.unwrap());
    tokio::time::sleep(AFTER_SHORT).await;
    assert_eq!(store.get("session:t").await.unwrap(), None);
}

pub async fn delete_reports_what_it_removed(store: Store) {
    store.put("session:d", b"v", LONG).await.unwrap();
    assert!(store.delete("session:d").await.unwrap());
    assert_eq!(store.get("session:d").await.unwrap(), None);
    assert!(!store.delete("session:d").await.unwrap());

    store.set_add("sessions:of:alice", "sid1", LONG).await.unwrap();
    assert!(store.delete("sessions:of:alice").await.unwrap());
    assert!(store.set_members("sessions:of:alice").await.unwrap().is_empty());
}

pub async fn increment_counts_from_one(store: Store) {
    assert_eq!(store.increment("attempts:a", LONG).await.unwrap().value, 1);
    assert_eq!(store.increment("attempts:a", LONG).await.unwrap().value, 2);
    assert_eq!(store.increment("attempts:a", LONG).await.unwrap().value, 3);
    // A counter reads as its decimal text, on every backend.
    assert_eq!(store.get("attempts:a").await.unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(store.increment("attempts:b", LONG).await.unwrap().value, 1);
    // Once deleted, it starts again.
    assert!(store.delete("attempts:a").await.unwrap());
    assert_eq!(store.increment("attempts:a", LONG).await.unwrap().value, 1);
}

pub async fn increment_does_not_extend_the_window(store: Store) {
    let window = Duration::from_millis(600);
    assert_eq!(store.increment("pushes:w", window).await.unwrap().value, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.increment("pushes:w", window).await.unwrap().value, 2);
    // 700 ms after the window opened: past its end, though only 400 ms after the last increment.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get("pushes:w").await.unwrap(), None);
    assert_eq!(store.increment("pushes:w", window).await.unwrap().value, 1);
}

pub async fn increment_reports_the_time_left_in_its_window(store: Store) {
    let first = store.increment("window:left", LONG).await.unwrap();
    assert_eq!(first.value, 1);
    assert!(first.resets_in <= LONG && first.resets_in > LONG - Duration::from_secs(5), "{first:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = store.increment("window:left", LONG).await.unwrap();
    assert_eq!(second.value, 2);
    assert!(second.resets_in < first.resets_in - Duration::from_millis(900), "the window runs: {second:?}");
}

pub async fn decrement_takes_back_one_and_creates_nothing(store: Store) {
    store.decrement("dec:none").await.unwrap();
    assert_eq!(store.get("dec:none").await.unwrap(), None, "nothing created");
    store.increment("dec:a", LONG).await.unwrap();
    store.increment("dec:a", LONG).await.unwrap();
    store.decrement("dec:a").await.unwrap();
    assert_eq!(store.get("dec:a").await.unwrap().as_deref(), Some(&b"1"[..]));
    store.decrement("dec:a").await.unwrap();
    store.decrement("dec:a").await.unwrap();
    assert_eq!(store.get("dec:a").await.unwrap().as_deref(), Some(&b"0"[..]), "never below zero");
    assert_eq!(store.increment("dec:a", LONG).await.unwrap().value, 1);
    store.set_add("dec:set", "m", LONG).await.unwrap();
    assert_invalid(store.decrement("dec:set").await);
}

pub async fn rate_limiter_allows_the_rate_then_says_when_to_return(store: Store) {
    let limiter = RateLimiter::new(store.clone(), KeyPrefix::new("test"), Rate::new(3, LONG));
    for _ in 0..3 {
        assert_eq!(limiter.hit("198.51.100.7").await.unwrap(), Verdict::Allowed);
    }
    let refused = limiter.hit("198.51.100.7").await.unwrap();
    let retry = refused.retry_after_secs().expect("the fourth is over the rate");
    assert!((55..=60).contains(&retry), "{refused:?}");
    assert_eq!(limiter.hit("198.51.100.8").await.unwrap(), Verdict::Allowed, "subjects count apart");
    assert!(matches!(refused, Verdict::Limited { first: true, .. }), "the first refusal is marked");
    assert!(matches!(limiter.hit("198.51.100.7").await.unwrap(), Verdict::Limited { first: false, .. }));
    let window = RateLimiter::new(store.clone(), KeyPrefix::new("short"), Rate::new(1, SHORT));
    assert!(window.hit("x").await.unwrap().is_allowed());
    assert!(!window.hit("x").await.unwrap().is_allowed());
    tokio::time::sleep(AFTER_SHORT).await;
    assert!(window.hit("x").await.unwrap().is_allowed(), "the window closes on time");
    assert_invalid(limiter.hit(&"x".repeat(300)).await.map(|_| ()));
}

pub async fn rate_limiter_forgives_and_clears(store: Store) {
    let limiter = RateLimiter::new(store, KeyPrefix::new("forgive"), Rate::new(2, LONG));
    for _ in 0..10 {
        assert!(limiter.hit("a").await.unwrap().is_allowed());
        limiter.forgive("a").await.unwrap();
    }
    assert!(limiter.hit("a").await.unwrap().is_allowed());
    assert!(limiter.hit("a").await.unwrap().is_allowed());
    assert!(!limiter.hit("a").await.unwrap().is_allowed());
    limiter.clear("a").await.unwrap();
    assert!(limiter.hit("a").await.unwrap().is_allowed());
}

pub async fn sets_add_remove_and_list_members(store: Store) {
    assert!(store.set_members("rps:of:sid").await.unwrap().is_empty());
    store.set_add("rps:of:sid", "client-a", LONG).await.unwrap();
    store.set_add("rps:of:sid", "client-b", LONG).await.unwrap();
    store.set_add("rps:of:sid", "client-a", LONG).await.unwrap();
    let members: HashSet<String> = store.set_members("rps:of:sid").await.unwrap().into_iter().collect();
    assert_eq!(members, HashSet::from(["client-a".to_owned(), "client-b".to_owned()]));

    store.set_remove("rps:of:sid", "client-a").await.unwrap();
    store.set_remove("rps:of:sid", "client-never").await.unwrap();
    store.set_remove("rps:of:nothing", "client-a").await.unwrap();
    assert_eq!(store.set_members("rps:of:sid").await.unwrap(), vec!["client-b".to_owned()]);

    // Removing the last member leaves no set behind.
    store.set_remove("rps:of:sid", "client-b").await.unwrap();
    assert!(store.set_members("rps:of:sid").await.unwrap().is_empty());
    assert!(!store.delete("rps:of:sid").await.unwrap());
}

pub async fn sets_expire(store: Store) {
    store.set_add("rps:of:e", "client-a", SHORT).await.unwrap();
    tokio::time::sleep(AFTER_SHORT).await;
    assert!(store.set_members("rps:of:e").await.unwrap().is_empty());

    // Each addition sets the whole set's time to live.
    store.set_add("rps:of:f", "client-a", SHORT).await.unwrap();
    store.set_add("rps:of:f", "client-b", LONG).await.unwrap();
    tokio::time::sleep(AFTER_SHORT).await;
    assert_eq!(store.set_members("rps:of:f").await.unwrap().len(), 2);
    store.set_add("rps:of:f", "client-c", SHORT).await.unwrap();
    tokio::time::sleep(AFTER_SHORT).await;
    assert!(store.set_members("rps:of:f").await.unwrap().is_empty());
}

pub async fn zero_or_absurd_time_to_live_is_refused(store: Store) {
    store.put("ttl:existing", b"v", LONG).await.unwrap();
    for ttl in [Duration::ZERO, Duration::from_micros(999), Duration::MAX] {
        assert_invalid(store.put("ttl:k", b"v", ttl).await);
        assert_invalid(store.put_if_absent("ttl:k", b"v", ttl).await);
        assert_invalid(store.swap_existing("ttl:existing", b"x", ttl).await);
        assert_invalid(store.compare_and_swap("ttl:existing", b"v", b"x", ttl).await);
        assert_invalid(store.increment("ttl:k", ttl).await);
        assert_invalid(store.set_add("ttl:k", "m", ttl).await);
    }
    // Refused means untouched.
    assert_eq!(store.get("ttl:k").await.unwrap(), None);
    assert_eq!(store.get("ttl:existing").await.unwrap().as_deref(), Some(&b"v"[..]));
    // One millisecond is the shortest accepted.
    store.put("ttl:ms", b"v", Duration::from_millis(1)).await.unwrap();
}

pub async fn kinds_do_not_mix(store: Store) {
    store.put("kind:value", b"v", LONG).await.unwrap();
    store.set_add("kind:set", "m", LONG).await.unwrap();

    assert_invalid(store.set_add("kind:value", "m", LONG).await);
    assert_invalid(store.set_remove("kind:value", "m").await);
    assert_invalid(store.set_members("kind:value").await);
    assert_invalid(store.get("kind:set").await);
    assert_invalid(store.take("kind:set").await);
    assert_invalid(store.swap_existing("kind:set", b"x", LONG).await);
    assert_invalid(store.compare_and_swap("kind:set", b"v", b"x", LONG).await);
    assert_invalid(store.increment("kind:set", LONG).await);
    assert_invalid(store.increment("kind:value", LONG).await);
    // As Redis' MGET: a set is simply not a value.
    assert_eq!(store.get_many(&["kind:set", "kind:value"]).await.unwrap(), vec![None, Some(b"v".to_vec())]);
    assert!(!store.put_if_absent("kind:set", b"v", LONG).await.unwrap());

    // Failed operations changed nothing.
    assert_eq!(store.get("kind:value").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.set_members("kind:set").await.unwrap(), vec!["m".to_owned()]);

    // A value that reads as a number can be counted on.
    store.put("kind:number", b"41", LONG).await.unwrap();
    assert_eq!(store.increment("kind:number", LONG).await.unwrap().value, 42);

    // `put` replaces whatever was there.
    store.put("kind:set", b"now a value", LONG).await.unwrap();
    assert_eq!(store.get("kind:set").await.unwrap().as_deref(), Some(&b"now a value"[..]));
}

pub async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}

/// Runs `TASKS` copies of `op` at once (released together by a barrier) and returns their results.
async fn race<T, F, Fut>(store: &Store, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Store, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks = (0..TASKS).map(|i| {
        let barrier = barrier.clone();
        let attempt = op(store.clone(), i);
        tokio::spawn(async move {
            barrier.wait().await;
            attempt.await
        })
    });
    join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect()
}

pub async fn concurrent_takes_have_one_winner(store: Store) {
    for round in 0..ROUNDS {
        let key = format!("code:race:{round}");
        store.put(&key, b"grant", LONG).await.unwrap();
        let results = race(&store, |s, _| {
            let key = key.clone();
            async move { s.take(&key).await.unwrap() }
        })
        .await;
        let winners: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(winners, vec![b"grant".to_vec()], "round {round}");
    }
}

pub async fn concurrent_swaps_see_the_original_once(store: Store) {
    for round in 0..ROUNDS {
        let key = format!("code:swap:{round}");
        store.put(&key, b"grant", LONG).await.unwrap();
        let results = race(&store, |s, _| {
            let key = key.clone();
            async move { s.swap_existing(&key, b"used", LONG).await.unwrap() }
        })
        .await;
        let originals = results.iter().filter(|r| r.as_deref() == Some(&b"grant"[..])).count();
        let markers = results.iter().filter(|r| r.as_deref() == Some(&b"used"[..])).count();
        assert_eq!((originals, markers), (1, TASKS - 1), "round {round}");
    }
}

pub async fn concurrent_increments_are_all_counted(store: Store) {
    for round in 0..ROUNDS {
        let key = format!("attempts:race:{round}");
        let results = race(&store, |s, _| {
            let key = key.clone();
            async move { s.increment(&key, LONG).await.unwrap().value }
        })
        .await;
        let distinct: HashSet<u64> = results.iter().copied().collect();
        let expected: HashSet<u64> = (1..=TASKS as u64).collect();
        assert_eq!(distinct, expected, "round {round}");
        assert_eq!(store.get(&key).await.unwrap(), Some(TASKS.to_string().into_bytes()));
    }
}

pub async fn concurrent_put_if_absent_has_one_winner(store: Store) {
    for round in 0..ROUNDS {
        let key = format!("nonce:race:{round}");
        let results = race(&store, |s, i| {
            let key = key.clone();
            async move { s.put_if_absent(&key, i.to_string().as_bytes(), LONG).await.unwrap() }
        })
        .await;
        let winners: Vec<usize> = (0..TASKS).filter(|i| results[*i]).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        let stored = store.get(&key).await.unwrap().unwrap();
        assert_eq!(stored, winners[0].to_string().into_bytes(), "round {round}");
    }
}

pub async fn concurrent_compare_and_swap_has_one_winner(store: Store) {
    for round in 0..ROUNDS {
        let key = format!("session:cas:{round}");
        store.put(&key, b"v0", LONG).await.unwrap();
        let results = race(&store, |s, i| {
            let key = key.clone();
            async move { s.compare_and_swap(&key, b"v0", format!("v{}", i + 1).as_bytes(), LONG).await.unwrap() }
        })
        .await;
        let winners: Vec<usize> = (0..TASKS).filter(|i| results[*i]).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        let stored = store.get(&key).await.unwrap().unwrap();
        assert_eq!(stored, format!("v{}", winners[0] + 1).into_bytes(), "round {round}");
    }
}
