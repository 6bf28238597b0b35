//! Refresh tokens: lifecycle and concurrent consumption.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn refresh(token: &str, grant: &str, sid: &str, subject: &str, expires_at: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: sha256_hex(token.as_bytes()),
        grant_id: grant.into(),
        client_id: "rp-a".into(),
        subject: subject.into(),
        sid: sid.into(),
        payload: json!({"scope": "openid scope_all", "auth_time": 900, "acr": "eidas1", "amr": ["pwd", "otp"]}),
        created_at: 1000,
        expires_at,
        consumed_at: None,
        revoked_at: None,
    }
}

pub async fn refresh_tokens_lifecycle(ctx: &Ctx) {
    let rts = ctx.dir.refresh_tokens();
    let t1 = refresh("t1", "g1", "s1", "sub-1", 2000);
    rts.insert(t1.clone()).await.unwrap();
    assert!(matches!(rts.insert(t1.clone()).await, Err(DirectoryError::Conflict(_))));
    assert_eq!(rts.get(&t1.token_hash).await.unwrap().unwrap(), t1);
    assert!(rts.get("unknown").await.unwrap().is_none());

    let expected = RefreshTokenRecord { consumed_at: Some(1500), ..t1.clone() };
    assert_eq!(rts.consume(&t1.token_hash, 1500).await.unwrap(), ConsumeOutcome::Consumed(expected));
    assert!(matches!(
        rts.consume(&t1.token_hash, 1501).await.unwrap(),
        ConsumeOutcome::AlreadyConsumed(r) if r.consumed_at == Some(1500)
    ));
    assert_eq!(rts.consume("unknown", 1500).await.unwrap(), ConsumeOutcome::Unknown);

    let t2 = refresh("t2", "g1", "s1", "sub-1", 2000);
    rts.insert(t2.clone()).await.unwrap();
    assert!(matches!(rts.consume(&t2.token_hash, 2000).await.unwrap(), ConsumeOutcome::Expired(_)));
    assert_eq!(rts.get(&t2.token_hash).await.unwrap().unwrap().consumed_at, None);

    // Reuse of t1 was detected: the caller revokes the family.
    let t3 = refresh("t3", "g1", "s1", "sub-1", 5000);
    rts.insert(t3.clone()).await.unwrap();
    assert_eq!(rts.revoke_grant("g1", 1600).await.unwrap(), 3);
    assert_eq!(rts.revoke_grant("g1", 1700).await.unwrap(), 0, "already revoked rows are kept as is");
    assert!(matches!(
        rts.consume(&t3.token_hash, 1600).await.unwrap(),
        ConsumeOutcome::Revoked(r) if r.revoked_at == Some(1600)
    ));

    for (tok, grant, sid, sub) in
        [("a", "g2", "s2", "sub-2"), ("b", "g3", "s2", "sub-2"), ("c", "g4", "s3", "sub-2"), ("d", "g5", "s4", "sub-3")]
    {
        rts.insert(refresh(tok, grant, sid, sub, 5000)).await.unwrap();
    }
    assert_eq!(rts.revoke_sid("sub-1", "s2", 1800).await.unwrap(), 0, "another professional's session");
    assert_eq!(rts.revoke_sid("sub-2", "s2", 1800).await.unwrap(), 2);
    assert_eq!(rts.revoke_subject("sub-2", 1900).await.unwrap(), 1);
    assert_eq!(rts.revoke_subject("sub-3", 1900).await.unwrap(), 1);
    assert!(matches!(rts.consume(&sha256_hex(b"d"), 1950).await.unwrap(), ConsumeOutcome::Revoked(_)));
    let other_client = RefreshTokenRecord { client_id: "rp-b".into(), ..refresh("e", "g6", "s5", "sub-4", 5000) };
    rts.insert(other_client).await.unwrap();
    assert_eq!(rts.revoke_client("rp-b", 1960).await.unwrap(), 1, "only that client's tokens");
    assert!(matches!(rts.consume(&sha256_hex(b"e"), 1970).await.unwrap(), ConsumeOutcome::Revoked(_)));

    // t1 and t2 expire at 2000; everything else at 5000.
    assert_eq!(rts.purge_expired(2000).await.unwrap(), 2);
    assert!(rts.get(&t1.token_hash).await.unwrap().is_none());
    assert!(rts.get(&t3.token_hash).await.unwrap().is_some());
    assert_eq!(rts.purge_expired(5000).await.unwrap(), 6);
}

pub async fn refresh_consume_concurrent_single_winner(ctx: &Ctx) {
    let t = refresh("hot", "g1", "s1", "sub-1", 10_000);
    ctx.dir.refresh_tokens().insert(t.clone()).await.unwrap();
    let node2 = ctx.second_node().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENCY {
        let dir = if i % 2 == 0 { ctx.dir.clone() } else { node2.clone() };
        let hash = t.token_hash.clone();
        tasks.spawn(async move { dir.refresh_tokens().consume(&hash, 5000).await.unwrap() });
    }
    let outcomes = tasks.join_all().await;
    let consumed = outcomes.iter().filter(|o| matches!(o, ConsumeOutcome::Consumed(_))).count();
    let reused = outcomes.iter().filter(|o| matches!(o, ConsumeOutcome::AlreadyConsumed(_))).count();
    assert_eq!(consumed, 1, "{outcomes:?}");
    assert_eq!(reused, CONCURRENCY - 1);
}

// ---------------------------------------------------------------------------------------------

/// A rotation is one step: among concurrent callers on two nodes, one consumes the token and
/// only its successor is stored, with the consumed token's grant; a token that is not live
/// stores no successor.
pub async fn refresh_rotation_stores_only_the_winners_successor(ctx: &Ctx) {
    let t = refresh("rotated", "g7", "s7", "sub-7", 10_000);
    ctx.dir.refresh_tokens().insert(t.clone()).await.unwrap();
    let node2 = ctx.second_node().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENCY {
        let dir = if i % 2 == 0 { ctx.dir.clone() } else { node2.clone() };
        let hash = t.token_hash.clone();
        let next =
            Successor { token_hash: sha256_hex(format!("next-{i}").as_bytes()), created_at: 5000, expires_at: 9000 };
        tasks.spawn(async move {
            (next.token_hash.clone(), dir.refresh_tokens().rotate(&hash, 5000, Some(next)).await.unwrap())
        });
    }
    let outcomes = tasks.join_all().await;
    let winners: Vec<&String> =
        outcomes.iter().filter(|(_, o)| matches!(o, ConsumeOutcome::Consumed(_))).map(|(h, _)| h).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|(_, o)| matches!(o, ConsumeOutcome::Consumed(_) | ConsumeOutcome::AlreadyConsumed(_)))
    );
    let rts = ctx.dir.refresh_tokens();
    for (hash, _) in &outcomes {
        let stored = rts.get(hash).await.unwrap();
        if hash == winners[0] {
            let expected =
                RefreshTokenRecord { token_hash: hash.clone(), created_at: 5000, expires_at: 9000, ..t.clone() };
            assert_eq!(stored, Some(expected), "the successor carries the consumed token's grant");
        } else {
            assert_eq!(stored, None, "a loser's successor must not be stored");
        }
    }
    assert_eq!(rts.get(&t.token_hash).await.unwrap().unwrap().consumed_at, Some(5000));

    // A revoked or unknown token stores nothing either.
    rts.revoke_grant("g7", 6000).await.unwrap();
    let next = Successor { token_hash: sha256_hex(b"after-revoke"), created_at: 6100, expires_at: 9000 };
    let winner = winners[0].clone();
    assert!(matches!(rts.rotate(&winner, 6100, Some(next.clone())).await.unwrap(), ConsumeOutcome::Revoked(_)));
    assert_eq!(rts.rotate("unknown", 6100, Some(next.clone())).await.unwrap(), ConsumeOutcome::Unknown);
    assert_eq!(rts.get(&next.token_hash).await.unwrap(), None);
    // A successor whose hash is taken fails that rotation whole: the token stays unused.
    let u = refresh("u", "g8", "s8", "sub-8", 10_000);
    rts.insert(u.clone()).await.unwrap();
    let taken = Successor { token_hash: t.token_hash.clone(), created_at: 6200, expires_at: 9000 };
    assert!(matches!(rts.rotate(&u.token_hash, 6200, Some(taken)).await, Err(DirectoryError::Conflict(_))));
    assert_eq!(rts.get(&u.token_hash).await.unwrap().unwrap().consumed_at, None, "rolled back");
}

/// The record of the tokens issued with a refresh-token write is chained in the write's
/// transaction, and only when the write took effect: an insert stored, a rotation that consumed.
/// Among concurrent rotations on two nodes exactly one record is written; a replay, a revoked
/// token or a hash already taken writes none; the chain stays whole.
pub async fn refresh_writes_carry_their_record_only_when_they_take_effect(ctx: &Ctx) {
    let rts = ctx.dir.refresh_tokens();
    let issued = |subject: &str, how: &str| AuditEvent {
        event: "token_issued".into(),
        subject: Some(subject.into()),
        client_id: Some("rp-a".into()),
        outcome: "success".into(),
        details: json!({ "grant_type": how }),
        at: 5000,
        ..AuditEvent::default()
    };
    let records = |subject: &'static str| {
        let dir = ctx.dir.clone();
        async move {
            let q = AuditQuery {
                subject: Some(subject.into()),
                event: Some("token_issued".into()),
                ..AuditQuery::default()
            };
            dir.audit().query(q).await.unwrap()
        }
    };

    let t = refresh("recorded", "g9", "s9", "sub-9", 10_000);
    rts.insert_recorded(t.clone(), Some(issued("sub-9", "authorization_code"))).await.unwrap();
    let first = records("sub-9").await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].details, json!({ "grant_type": "authorization_code" }));

    let node2 = ctx.second_node().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENCY {
        let dir = if i % 2 == 0 { ctx.dir.clone() } else { node2.clone() };
        let hash = t.token_hash.clone();
        let next = Successor {
            token_hash: sha256_hex(format!("rec-next-{i}").as_bytes()),
            created_at: 5000,
            expires_at: 9000,
        };
        let event = issued("sub-9", "refresh_token");
        tasks.spawn(async move { dir.refresh_tokens().rotate_recorded(&hash, 5000, Some(next), Some(event)).await });
    }
    let outcomes: Vec<_> = tasks.join_all().await.into_iter().map(Result::unwrap).collect();
    let winners = outcomes.iter().filter(|o| matches!(o, ConsumeOutcome::Consumed(_))).count();
    assert_eq!(winners, 1, "{outcomes:?}");
    assert_eq!(records("sub-9").await.len(), 2, "one record for the one rotation that consumed");

    // A replay, a revoked token and an unknown one write nothing.
    let again = Successor { token_hash: sha256_hex(b"rec-again"), created_at: 5100, expires_at: 9000 };
    let replay = rts.rotate_recorded(&t.token_hash, 5100, Some(again.clone()), Some(issued("sub-9", "replay")));
    assert!(matches!(replay.await.unwrap(), ConsumeOutcome::AlreadyConsumed(_)));
    rts.revoke_grant("g9", 5200).await.unwrap();
    let live = sha256_hex(b"rec-next-0");
    let revoked = rts.rotate_recorded(&live, 5300, Some(again.clone()), Some(issued("sub-9", "revoked")));
    let unknown = rts.rotate_recorded("unknown", 5300, Some(again), Some(issued("sub-9", "unknown")));
    assert!(matches!(revoked.await.unwrap(), ConsumeOutcome::Revoked(_) | ConsumeOutcome::Unknown));
    assert_eq!(unknown.await.unwrap(), ConsumeOutcome::Unknown);
    // An insert whose hash is taken fails, and its record with it.
    let taken = rts.insert_recorded(t.clone(), Some(issued("sub-9", "conflict"))).await;
    assert!(matches!(taken, Err(DirectoryError::Conflict(_))), "{taken:?}");
    assert_eq!(records("sub-9").await.len(), 2, "no record for a write that did not take effect");

    let chain = ctx.dir.audit().verify(None).await.unwrap();
    assert!(chain.is_intact(), "{chain:?}");
}
