//! Audit log: chain, queries, tamper detection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn event(name: &str, subject: &str, at: i64) -> AuditEvent {
    AuditEvent {
        event: name.into(),
        actor: Some("admin".into()),
        subject: Some(subject.into()),
        client_id: Some("rp-a".into()),
        source_ip: Some("192.0.2.1".into()),
        outcome: "success".into(),
        details: json!({"b": 1, "a": [true, null], "z": "é"}),
        at,
    }
}

pub async fn audit_append_and_query(ctx: &Ctx) {
    let audit = ctx.dir.audit();
    assert_eq!(audit.verify().await.unwrap().records, 0);
    let mut records = Vec::new();
    for (i, (name, sub)) in [
        ("login.password", "sub-1"),
        ("login.totp", "sub-1"),
        ("admin.block", "sub-2"),
        ("login.password", "sub-2"),
        ("login.password", "sub-1"),
    ]
    .into_iter()
    .enumerate()
    {
        records.push(audit.append(event(name, sub, 1000 + i as i64)).await.unwrap());
    }
    assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(records[0].prev_hash, "0".repeat(64));
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(records[0].details, json!({"b": 1, "a": [true, null], "z": "é"}));

    let all = audit.query(AuditQuery::default()).await.unwrap();
    assert_eq!(all, records);

    let sub1 = audit.query(AuditQuery { subject: Some("sub-1".into()), ..Default::default() }).await.unwrap();
    assert_eq!(sub1.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 5]);
    let logins = audit.query(AuditQuery { event: Some("login.password".into()), ..Default::default() }).await.unwrap();
    assert_eq!(logins.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 4, 5]);
    let window = audit.query(AuditQuery { from: Some(1001), to: Some(1003), ..Default::default() }).await.unwrap();
    assert_eq!(window.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3, 4]);

    // Paging with after_id.
    let page1 = audit.query(AuditQuery { limit: Some(2), ..Default::default() }).await.unwrap();
    let page2 =
        audit.query(AuditQuery { limit: Some(2), after_id: Some(page1[1].id), ..Default::default() }).await.unwrap();
    assert_eq!(page1.iter().chain(&page2).map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let latest = audit.query(AuditQuery { limit: Some(2), newest_first: true, ..Default::default() }).await.unwrap();
    assert_eq!(latest.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 4]);

    let v = audit.verify().await.unwrap();
    assert_eq!((v.records, v.first_bad_id), (5, None));
}

async fn five_events(ctx: &Ctx) {
    for i in 0..5 {
        ctx.dir.audit().append(event("login.password", "sub-1", 1000 + i)).await.unwrap();
    }
}

pub async fn audit_detects_edited_record(ctx: &Ctx) {
    five_events(ctx).await;
    let raw = ctx.raw().await;
    assert_eq!(exec(&raw, "UPDATE audit_log SET outcome = 'failure' WHERE id = 3").await, 1);
    let v = ctx.dir.audit().verify().await.unwrap();
    assert_eq!((v.records, v.first_bad_id), (5, Some(3)));
}

pub async fn audit_detects_edited_details(ctx: &Ctx) {
    five_events(ctx).await;
    let raw = ctx.raw().await;
    let sql = r#"UPDATE audit_log SET details = '{"a":[true,null],"b":2,"z":"é"}' WHERE id = 2"#;
    assert_eq!(exec(&raw, sql).await, 1);
    assert_eq!(ctx.dir.audit().verify().await.unwrap().first_bad_id, Some(2));
}

pub async fn audit_detects_deleted_record(ctx: &Ctx) {
    five_events(ctx).await;
    let raw = ctx.raw().await;
    assert_eq!(exec(&raw, "DELETE FROM audit_log WHERE id = 3").await, 1);
    let v = ctx.dir.audit().verify().await.unwrap();
    assert_eq!((v.records, v.first_bad_id), (4, Some(4)));
}

pub async fn audit_concurrent_appends_keep_one_chain(ctx: &Ctx) {
    let node2 = ctx.second_node().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENCY {
        let dir = if i % 2 == 0 { ctx.dir.clone() } else { node2.clone() };
        tasks.spawn(async move { dir.audit().append(event("login.password", "sub-1", i as i64)).await.unwrap().id });
    }
    let mut ids = tasks.join_all().await;
    ids.sort();
    assert_eq!(ids, (1..=CONCURRENCY as i64).collect::<Vec<_>>());
    let v = ctx.dir.audit().verify().await.unwrap();
    assert_eq!((v.records, v.first_bad_id), (CONCURRENCY as u64, None));
}

/// Appends from one process are committed in groups: each caller must get back exactly its own
/// record, as stored, whatever group it went in.
pub async fn audit_group_commit_returns_each_callers_record(ctx: &Ctx) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let dir = ctx.dir.clone();
        tasks.spawn(async move {
            let mut e = event("token.issued", &format!("sub-{i}"), 5000 + i);
            e.details = json!({ "n": i });
            (i, dir.audit().append(e).await.unwrap())
        });
    }
    let returned = tasks.join_all().await;
    let stored = ctx.dir.audit().query(AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(stored.len(), 64);
    for (i, record) in returned {
        assert_eq!(record.subject.as_deref(), Some(format!("sub-{i}").as_str()));
        assert_eq!(record.details, json!({ "n": i }));
        let same = stored.iter().find(|s| s.id == record.id).unwrap();
        assert_eq!(same, &record);
    }
    assert_eq!(ctx.dir.audit().verify().await.unwrap(), AuditVerification { records: 64, first_bad_id: None });
}
