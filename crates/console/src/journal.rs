//! The audit log (filter by professional, event and dates; verify the keyed chain) and the
//! back-channel logout deliveries that are pending or failed, each sent again in one click.

use admin_api::audit::AuditFilter;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use crate::people::signed_in;
use crate::signin::{ConsoleSession, acting};
use crate::texts::{ConsoleTexts, console_texts};
use crate::{ConsoleState, failure, render, see_other, when};

/// Records a page of the audit log shows, oldest first.
const PAGE: u32 = 200;

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    nid: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Set by «Vérifier la chaîne».
    verify: Option<String>,
    /// The last id of the previous page.
    after: Option<i64>,
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct AuditPage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    q: &'a AuditQuery,
    rows: Vec<AuditRow>,
    /// The chain's check, when asked: (intact, text).
    check: Option<(bool, String)>,
    /// The next page, when this one is full.
    next: Option<String>,
}

struct AuditRow {
    at: String,
    event: String,
    actor: String,
    subject: String,
    outcome: String,
    details: String,
}

/// A day in Paris (`YYYY-MM-DD`) as Unix seconds: its first second, or its last with `end`.
fn day(text: &str, end: bool) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| text.to_owned())?;
    let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap_or(jiff::tz::TimeZone::UTC);
    let start = date.to_zoned_datetime(tz).map_err(|_| text.to_owned())?.timestamp().as_second();
    Ok(Some(if end { start + 86_399 } else { start }))
}

pub(crate) async fn audit(State(st): State<ConsoleState>, Query(q): Query<AuditQuery>, headers: HeaderMap) -> Response {
    let session = match signed_in(&st, &headers, None, Some(&st.path("/admin/audit"))).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let (from, to) = match (day(&q.from, false), day(&q.to, true)) {
        (Ok(f), Ok(to)) => (f, to),
        (Err(bad), _) | (_, Err(bad)) => {
            return failure(&st, session.locale, admin_api::AdminError::Invalid(format!("{} {bad}", t.bad_date)));
        }
    };
    let filter = AuditFilter {
        national_id: Some(q.nid.trim().to_owned()).filter(|n| !n.is_empty()),
        event: Some(q.event.trim().to_owned()).filter(|e| !e.is_empty()),
        from,
        to,
        after_id: q.after,
        limit: Some(PAGE),
    };
    let records = match st.admin.audit_query(filter).await {
        Ok(r) => r,
        Err(e) => return failure(&st, session.locale, e),
    };
    let check = match q.verify {
        None => None,
        Some(_) => match st.admin.audit_verify(None).await {
            Ok(c) if c.intact => Some((
                true,
                format!("{} ({} {}) {} {}", t.chain_intact, c.records, t.records, t.head, c.head.unwrap_or_default()),
            )),
            Ok(c) => Some((false, format!("{} {}", t.chain_broken, c.first_bad_id.unwrap_or_default()))),
            Err(e) => return failure(&st, session.locale, e),
        },
    };
    let next = (records.len() == PAGE as usize).then(|| records.last().map(|r| r.id)).flatten().map(|last| {
        let params = [
            ("nid", q.nid.clone()),
            ("event", q.event.clone()),
            ("from", q.from.clone()),
            ("to", q.to.clone()),
            ("after", last.to_string()),
        ];
        format!("{}?{}", st.path("/admin/audit"), serde_urlencoded::to_string(params).unwrap_or_default())
    });
    let rows = records
        .into_iter()
        .map(|r| AuditRow {
            at: when(Some(r.at)),
            event: r.event,
            actor: r.actor.unwrap_or_else(|| "—".into()),
            subject: r.subject.unwrap_or_else(|| "—".into()),
            outcome: r.outcome,
            details: if r.details.is_null() { String::new() } else { r.details.to_string() },
        })
        .collect();
    let page = AuditPage { t, base: st.base(), session: &session, q: &q, rows, check, next };
    render(&st, session.locale, page.render())
}

#[derive(Deserialize, Default)]
pub(crate) struct DeliveriesQuery {
    /// `failed` (default: `pending`).
    status: Option<String>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "console_deliveries.html")]
struct DeliveriesPage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    failed: bool,
    rows: Vec<DeliveryRow>,
    notice: Option<&'static str>,
}

struct DeliveryRow {
    id: String,
    client_id: String,
    uri: String,
    attempts: i64,
    last_error: String,
    next_attempt: String,
    created: String,
}

pub(crate) async fn deliveries(
    State(st): State<ConsoleState>,
    Query(q): Query<DeliveriesQuery>,
    headers: HeaderMap,
) -> Response {
    let session = match signed_in(&st, &headers, None, Some(&st.path("/admin/deliveries"))).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let failed = q.status.as_deref() == Some("failed");
    let status = if failed { "failed" } else { "pending" };
    let list = match st.admin.deliveries(None, None, Some(status.into())).await {
        Ok(l) => l,
        Err(e) => return failure(&st, session.locale, e),
    };
    let rows = list
        .into_iter()
        .map(|d| DeliveryRow {
            id: d.id,
            client_id: d.client_id,
            uri: d.uri,
            attempts: d.attempts,
            last_error: d.last_error.unwrap_or_default(),
            next_attempt: when(d.next_attempt_at),
            created: when(Some(d.created_at)),
        })
        .collect();
    let notice = q.done.as_deref().filter(|d| *d == "retry").map(|_| t.done_retry);
    let page = DeliveriesPage { t, base: st.base(), session: &session, failed, rows, notice };
    render(&st, session.locale, page.render())
}

#[derive(Deserialize, Default)]
pub(crate) struct RetryForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    id: String,
}

/// «Renvoyer»: the notice goes back in the queue, due now (nothing is destroyed: one click).
pub(crate) async fn retry(
    State(st): State<ConsoleState>,
    origin: oidc_core::RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RetryForm>,
) -> Response {
    let session = match acting(&st, &headers, origin, &form.csrf_token, "/admin/deliveries").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match st.admin.retry_delivery(&session.actor(), &form.id).await {
        Ok(_) => see_other(&format!("{}?done=retry", st.path("/admin/deliveries"))),
        Err(e) => failure(&st, session.locale, e),
    }
}
