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
    assert_eq!(audit.verify(None).await.unwrap().records, 0);
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

    let v = audit.verify(None).await.unwrap();
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
    let v = ctx.dir.audit().verify(None).await.unwrap();
    assert_eq!((v.records, v.first_bad_id), (5, Some(3)));
}

pub async fn audit_detects_edited_details(ctx: &Ctx) {
    five_events(ctx).await;
    let raw = ctx.raw().await;
    let sql = r#"UPDATE audit_log SET details = '{"a":[true,null],"b":2,"z":"é"}' WHERE id = 2"#;
    assert_eq!(exec(&raw, sql).await, 1);
    assert_eq!(ctx.dir.audit().verify(None).await.unwrap().first_bad_id, Some(2));
}

pub async fn audit_detects_deleted_record(ctx: &Ctx) {
    five_events(ctx).await;
    let raw = ctx.raw().await;
    assert_eq!(exec(&raw, "DELETE FROM audit_log WHERE id = 3").await, 1);
    let v = ctx.dir.audit().verify(None).await.unwrap();
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
    let v = ctx.dir.audit().verify(None).await.unwrap();
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
    assert_intact(&ctx.dir.audit().verify(None).await.unwrap(), 64);
}

// ---------------------------------------------------------------------------------------------
// Issue 13, item 13: a keyed chain, and a head kept outside the database.

/// The stored rows, as someone with the database (and without the master key) reads them.
async fn raw_rows(db: &DatabaseConnection) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT * FROM audit_log ORDER BY id"))
        .await
        .unwrap()
}

/// The hash the chain had before it was keyed: bare SHA-256 over the fields, which anyone can
/// compute.
fn unkeyed_hash(row: &sea_orm::QueryResult, prev_hash: &str) -> String {
    let text = |c: &str| row.try_get::<String>("", c).unwrap();
    let opt = |c: &str| row.try_get::<Option<String>>("", c).unwrap();
    let fields = json!([
        "caducee-audit-v1",
        row.try_get::<i64>("", "id").unwrap(),
        prev_hash,
        row.try_get::<i64>("", "at").unwrap(),
        text("event"),
        opt("actor"),
        opt("subject"),
        opt("client_id"),
        opt("source_ip"),
        text("outcome"),
        text("details"),
    ]);
    sha256_hex(fields.to_string().as_bytes())
}

/// What whoever can write the database does to hide an edit: recompute the hashes of the records
/// `ids`, the only way they can (without the key).
async fn rechain_without_the_key(db: &DatabaseConnection, ids: std::ops::RangeInclusive<i64>) {
    let mut prev = String::new();
    for row in raw_rows(db).await {
        let id = row.try_get::<i64>("", "id").unwrap();
        if id > *ids.end() {
            break;
        }
        if id < *ids.start() {
            prev = row.try_get::<String>("", "hash").unwrap();
            continue;
        }
        if prev.is_empty() {
            prev = "0".repeat(64);
        }
        let hash = unkeyed_hash(&row, &prev);
        let sql = format!("UPDATE audit_log SET prev_hash = '{prev}', hash = '{hash}' WHERE id = {id}");
        assert_eq!(exec(db, &sql).await, 1);
        prev = hash;
    }
}

/// An edit hidden by recomputing the rest of the chain, the attack a bare SHA-256 chain cannot
/// see, is caught: without the master key the new hashes cannot be keyed ones.
pub async fn item_13_a_chain_rewritten_without_the_key_is_caught(ctx: &Ctx) {
    five_events(ctx).await;
    let raw = ctx.raw().await;
    assert_eq!(exec(&raw, "UPDATE audit_log SET outcome = 'failure' WHERE id = 3").await, 1);
    rechain_without_the_key(&raw, 3..=i64::MAX).await;
    let v = ctx.dir.audit().verify(None).await.unwrap();
    assert_eq!((v.records, v.first_bad_id), (5, Some(3)), "{v:?}");
    assert!(!v.is_intact());
}

/// `head` gives the newest record's id and hash; verifying against it catches what the chain
/// alone cannot: records removed from the end, or a chain rebuilt with the key.
pub async fn item_13_an_exported_head_catches_truncation_and_rebuilt_chains(ctx: &Ctx) {
    five_events(ctx).await;
    let audit = ctx.dir.audit();
    let head = audit.head().await.unwrap().unwrap();
    assert_eq!(head.id, 5);
    let text = head.to_string();
    assert_eq!(text.parse::<AuditHead>().unwrap(), head, "printed in the form it is read back");
    let v = audit.verify(Some(&head)).await.unwrap();
    assert_eq!((v.first_bad_id, v.head_check, v.unkeyed_records), (None, Some(HeadCheck::Matches), 0));
    assert_eq!(v.head.as_ref(), Some(&head));
    assert!(v.is_intact());

    // The newest records removed: the chain that is left holds, the head does not.
    let raw = ctx.raw().await;
    assert_eq!(exec(&raw, "DELETE FROM audit_log WHERE id >= 4").await, 2);
    assert_eq!(audit.verify(None).await.unwrap().first_bad_id, None);
    let v = audit.verify(Some(&head)).await.unwrap();
    assert_eq!((v.records, v.head_check), (3, Some(HeadCheck::Missing)));
    assert!(!v.is_intact());

    // Other records appended in their place, properly keyed (as someone holding the key would):
    // the chain holds, the record at the head's id is not the one exported.
    for i in 0..2 {
        audit.append(event("login.password", "sub-2", 2000 + i)).await.unwrap();
    }
    let v = audit.verify(Some(&head)).await.unwrap();
    assert_eq!((v.records, v.first_bad_id, v.head_check), (5, None, Some(HeadCheck::Differs)));
    assert!(!v.is_intact());

    for bad in ["5".to_owned(), "5:xyz".to_owned(), format!("x:{}", "a".repeat(64)), format!("0:{}", "a".repeat(64))] {
        assert!(bad.parse::<AuditHead>().is_err(), "{bad}");
    }
}

/// A database chained before the key existed: its records stay acceptable as a prefix, counted
/// apart, and keyed records follow them; an unkeyed record after a keyed one is refused (no
/// downgrade), and a whole chain rewritten unkeyed is caught by a head exported since.
pub async fn item_13_unkeyed_records_are_only_accepted_before_the_first_keyed_one(ctx: &Ctx) {
    let raw = ctx.raw().await;
    // Three records as the previous version wrote them.
    for id in 1..=3 {
        let sql = format!(
            "INSERT INTO audit_log (id, at, event, actor, subject, client_id, source_ip, outcome, details, prev_hash, hash) \
             VALUES ({id}, {}, 'login.password', NULL, 'sub-1', NULL, NULL, 'success', '{{}}', '', '')",
            1000 + id
        );
        assert_eq!(exec(&raw, &sql).await, 1);
    }
    rechain_without_the_key(&raw, 1..=3).await;
    let audit = ctx.dir.audit();
    let v = audit.verify(None).await.unwrap();
    assert_eq!((v.records, v.first_bad_id, v.unkeyed_records), (3, None, 3));
    // This version appends keyed records after them.
    for i in 0..2 {
        audit.append(event("login.totp", "sub-1", 3000 + i)).await.unwrap();
    }
    let head = audit.head().await.unwrap().unwrap();
    let v = audit.verify(Some(&head)).await.unwrap();
    assert_eq!((v.records, v.first_bad_id, v.unkeyed_records), (5, None, 3));
    assert!(v.is_intact());

    // The newest record rewritten the only way possible without the key: refused.
    assert_eq!(exec(&raw, "UPDATE audit_log SET outcome = 'failure' WHERE id = 5").await, 1);
    rechain_without_the_key(&raw, 5..=5).await;
    assert_eq!(audit.verify(None).await.unwrap().first_bad_id, Some(5));
    // An edit inside the unkeyed prefix, rechained up to the first keyed record: that record's
    // link to its predecessor breaks.
    assert_eq!(exec(&raw, "UPDATE audit_log SET outcome = 'failure' WHERE id = 2").await, 1);
    rechain_without_the_key(&raw, 2..=3).await;
    assert_eq!(audit.verify(None).await.unwrap().first_bad_id, Some(4));
    // Rewritten unkeyed from the start to the end, the chain alone cannot tell (every record is
    // reported unkeyed); the head exported earlier can.
    rechain_without_the_key(&raw, 1..=i64::MAX).await;
    let v = audit.verify(None).await.unwrap();
    assert_eq!((v.first_bad_id, v.unkeyed_records, v.records), (None, 5, 5));
    let v = audit.verify(Some(&head)).await.unwrap();
    assert_eq!(v.head_check, Some(HeadCheck::Differs));
    assert!(!v.is_intact());
}
