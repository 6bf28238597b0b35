//! The professionals' pages: search, one professional's page (sessions and their relying
//! parties, logout notices as they complete, account, push block, authenticators, recent
//! events), and the acts on them, each behind a confirmation page and a recent login.

use admin_api::service::{AccountView, AuthenticatorView, DeliveryView, SessionView};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use oidc_core::Locale;
use serde::Deserialize;

use crate::signin::{ConsoleSession, NoSession, acting, current, sign_in};
use crate::texts::{ConsoleTexts, console_texts};
use crate::{ConsoleState, failure, render, see_other, when};

/// The professional's page reloads itself this long (seconds) after a logout notice was sent,
/// while it is pending.
const REFRESH_WHILE: i64 = 120;

#[derive(Deserialize, Default)]
pub(crate) struct HomeQuery {
    q: Option<String>,
    lang: Option<String>,
}

/// The session of a page request, or the sign-in (coming back to `then`) or refusal instead.
pub(crate) async fn signed_in(
    st: &ConsoleState,
    headers: &HeaderMap,
    lang: Option<&str>,
    then: Option<&str>,
) -> Result<ConsoleSession, Response> {
    match current(st, headers).await {
        Ok((_, session)) => Ok(session),
        Err(NoSession::Answer(r)) => Err(r),
        Err(NoSession::SignIn) => {
            let locale = lang.and_then(Locale::from_tag).unwrap_or_default();
            Err(sign_in(st, locale, false, then).await)
        }
    }
}

#[derive(Template)]
#[template(path = "console_home.html")]
struct HomePage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    q: String,
    results: Option<Vec<AccountRow>>,
}

struct AccountRow {
    link: String,
    national_id: String,
    name: String,
    status: &'static str,
}

fn status_label(t: &ConsoleTexts, status: &str) -> &'static str {
    if status == "blocked" { t.blocked } else { t.active }
}

fn professional_link(st: &ConsoleState, national_id: &str, done: Option<&str>) -> String {
    let mut params = vec![("nid", national_id)];
    if let Some(d) = done {
        params.push(("done", d));
    }
    format!("{}?{}", st.path("/admin/professional"), serde_urlencoded::to_string(params).unwrap_or_default())
}

/// The console's home: who is signed in, and the search.
pub(crate) async fn home(State(st): State<ConsoleState>, Query(q): Query<HomeQuery>, headers: HeaderMap) -> Response {
    let session = match signed_in(&st, &headers, q.lang.as_deref(), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let session = match q.lang.as_deref().and_then(Locale::from_tag) {
        Some(locale) if locale != session.locale => crate::signin::switch_locale(&st, &headers, session, locale).await,
        _ => session,
    };
    let t = console_texts(session.locale);
    let query = q.q.unwrap_or_default().trim().chars().take(128).collect::<String>();
    let results = if query.is_empty() {
        None
    } else {
        match st.admin.search_accounts(&query).await {
            Ok(found) => Some(
                found
                    .iter()
                    .map(|a| AccountRow {
                        link: professional_link(&st, &a.national_id, None),
                        national_id: a.national_id.clone(),
                        name: format!("{} {}", a.given_name, a.family_name),
                        status: status_label(t, &a.status),
                    })
                    .collect(),
            ),
            Err(e) => return failure(&st, session.locale, e),
        }
    };
    let page = HomePage { t, base: st.base(), session: &session, q: query, results };
    render(&st, session.locale, page.render())
}

#[derive(Deserialize, Default)]
pub(crate) struct ProfessionalQuery {
    #[serde(default)]
    nid: String,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "console_professional.html")]
struct ProfessionalPage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    account: AccountView,
    notice: Option<&'static str>,
    sessions: Vec<SessionRow>,
    deliveries: Vec<DeliveryRow>,
    /// Some notice is still on its way: the page reloads itself to show how it ends.
    refresh: bool,
    push_blocked: bool,
    lockout: admin_api::lockout::LockoutView,
    lockout_until: String,
    authenticators: Vec<AuthenticatorRow>,
    events: Vec<EventRow>,
    confirm: String,
}

struct SessionRow {
    sid: String,
    started: String,
    methods: String,
    address: String,
    services: String,
}

struct DeliveryRow {
    service: String,
    status: &'static str,
    failed: bool,
    attempts: i64,
    at: String,
    error: String,
}

struct AuthenticatorRow {
    id: String,
    kind: String,
    label: String,
    created: String,
    last_used: String,
}

struct EventRow {
    at: String,
    event: String,
    actor: String,
    outcome: String,
}

fn done_text(t: &ConsoleTexts, done: &str) -> Option<&'static str> {
    Some(match Act::parse(done)? {
        Act::EndAll => t.done_end_all,
        Act::EndSession => t.done_end_session,
        Act::Block => t.done_block,
        Act::Unblock => t.done_unblock,
        Act::ResetLockout => t.done_reset_lockout,
        Act::RemoveAuthenticator => t.done_remove_authenticator,
        Act::BlockPushes => t.done_block_pushes,
        Act::UnblockPushes => t.done_unblock_pushes,
        Act::WithdrawCode => t.done_withdraw_code,
        Act::ActivationCode => return None,
    })
}

async fn service_names(st: &ConsoleState, clients: &[String]) -> String {
    let mut names = Vec::new();
    for c in clients.iter().filter(|c| c.as_str() != crate::CONSOLE_CLIENT_ID) {
        names.push(st.admin.provider.client_display_name(c).await.unwrap_or_else(|| c.clone()));
    }
    if names.is_empty() { "—".into() } else { names.join(", ") }
}

async fn session_rows(st: &ConsoleState, list: Vec<SessionView>) -> Vec<SessionRow> {
    let mut rows = Vec::with_capacity(list.len());
    for s in list {
        rows.push(SessionRow {
            started: when(Some(s.created_at)),
            methods: s.methods.join(" + "),
            address: s.source_ip.clone().unwrap_or_else(|| "—".into()),
            services: service_names(st, &s.clients).await,
            sid: s.sid,
        });
    }
    rows
}

async fn delivery_rows(st: &ConsoleState, t: &ConsoleTexts, list: Vec<DeliveryView>) -> Vec<DeliveryRow> {
    let mut rows = Vec::with_capacity(list.len());
    for d in list {
        let status = match d.status.as_str() {
            "delivered" => t.delivery_delivered,
            "failed" => t.delivery_failed,
            _ => t.delivery_pending,
        };
        rows.push(DeliveryRow {
            service: st.admin.provider.client_display_name(&d.client_id).await.unwrap_or(d.client_id),
            failed: d.status == "failed",
            status,
            attempts: d.attempts,
            at: when(Some(d.updated_at)),
            error: d.last_error.unwrap_or_default(),
        });
    }
    rows
}

fn authenticator_rows(list: Vec<AuthenticatorView>) -> Vec<AuthenticatorRow> {
    list.into_iter()
        .map(|a| AuthenticatorRow {
            kind: a.kind,
            label: match a.serial {
                Some(serial) if !serial.starts_with("webauthn:") => format!("{} ({serial})", a.label),
                _ => a.label,
            },
            created: when(Some(a.created_at)),
            last_used: when(a.last_used_at),
            id: a.id,
        })
        .collect()
}

/// One professional's page.
pub(crate) async fn professional(
    State(st): State<ConsoleState>,
    Query(q): Query<ProfessionalQuery>,
    headers: HeaderMap,
) -> Response {
    let here = professional_link(&st, &q.nid, None);
    let session = match signed_in(&st, &headers, None, Some(&here)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let nid = q.nid.as_str();
    let data = async {
        let account = st.admin.account(nid).await?;
        let sessions = st.admin.sessions(nid).await?;
        let deliveries = st.admin.deliveries_for(nid, 20).await?;
        let push = st.admin.push_block(nid).await?;
        let lockout = st.admin.lockout_status(nid).await?;
        let authenticators = st.admin.authenticators(nid).await?;
        let events = st.admin.recent_audit(nid, 20).await?;
        Ok::<_, admin_api::AdminError>((account, sessions, deliveries, push, lockout, authenticators, events))
    };
    let (account, sessions, deliveries, push, lockout, authenticators, events) = match data.await {
        Ok(v) => v,
        Err(e) => return failure(&st, session.locale, e),
    };
    // Only while a notice just sent is on its way: one that waits for its back-off retry
    // would keep the page reloading for hours.
    let now = st.now();
    let refresh = deliveries.iter().any(|d| d.status == "pending" && now - d.created_at < REFRESH_WHILE);
    let page = ProfessionalPage {
        t,
        base: st.base(),
        session: &session,
        notice: q.done.as_deref().and_then(|d| done_text(t, d)),
        sessions: session_rows(&st, sessions).await,
        deliveries: delivery_rows(&st, t, deliveries).await,
        refresh,
        push_blocked: push.blocked,
        lockout_until: when(lockout.until),
        lockout,
        authenticators: authenticator_rows(authenticators),
        events: events
            .into_iter()
            .map(|e| EventRow {
                at: when(Some(e.at)),
                event: e.event,
                actor: e.actor.unwrap_or_else(|| "—".into()),
                outcome: e.outcome,
            })
            .collect(),
        confirm: st.path("/admin/confirm"),
        account,
    };
    render(&st, session.locale, page.render())
}

/// What an administrator may do to a professional, each confirmed first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    EndAll,
    EndSession,
    Block,
    Unblock,
    ResetLockout,
    RemoveAuthenticator,
    BlockPushes,
    UnblockPushes,
    WithdrawCode,
    ActivationCode,
}

impl Act {
    fn parse(s: &str) -> Option<Act> {
        Some(match s {
            "end-all" => Act::EndAll,
            "end-session" => Act::EndSession,
            "block" => Act::Block,
            "unblock" => Act::Unblock,
            "reset-lockout" => Act::ResetLockout,
            "remove-authenticator" => Act::RemoveAuthenticator,
            "block-pushes" => Act::BlockPushes,
            "unblock-pushes" => Act::UnblockPushes,
            "withdraw-code" => Act::WithdrawCode,
            "activation-code" => Act::ActivationCode,
            _ => return None,
        })
    }

    fn question(self, t: &ConsoleTexts) -> &'static str {
        match self {
            Act::EndAll => t.confirm_end_all,
            Act::EndSession => t.confirm_end_session,
            Act::Block => t.confirm_block,
            Act::Unblock => t.confirm_unblock,
            Act::ResetLockout => t.confirm_reset_lockout,
            Act::RemoveAuthenticator => t.confirm_remove_authenticator,
            Act::BlockPushes => t.confirm_block_pushes,
            Act::UnblockPushes => t.confirm_unblock_pushes,
            Act::WithdrawCode => t.confirm_withdraw_code,
            Act::ActivationCode => t.confirm_activation_code,
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ActForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    nid: String,
    #[serde(default)]
    act: String,
    /// The session (`sid`) or the authenticator (`id`) the act is about, if any.
    #[serde(default)]
    target: String,
}

#[derive(Template)]
#[template(path = "console_confirm.html")]
pub(crate) struct ConfirmPage<'a> {
    pub(crate) t: &'static ConsoleTexts,
    pub(crate) base: &'a str,
    pub(crate) session: &'a ConsoleSession,
    /// Who or what the act is about, as the administrator reads it.
    pub(crate) about: String,
    pub(crate) question: &'static str,
    /// Where the form posts, and what it carries besides the anti-forgery token.
    pub(crate) action: String,
    pub(crate) fields: Vec<(&'static str, String)>,
    pub(crate) cancel: String,
}

fn confirm_link(st: &ConsoleState, form: &ActForm) -> String {
    let params = [("nid", form.nid.as_str()), ("act", form.act.as_str()), ("target", form.target.as_str())];
    format!("{}?{}", st.path("/admin/confirm"), serde_urlencoded::to_string(params).unwrap_or_default())
}

/// A fresh login first, coming back to the confirmation of the act.
fn reauthenticate(st: &ConsoleState, form: &ActForm) -> Response {
    crate::signin::reauthenticate(st, &confirm_link(st, form))
}

/// «Êtes-vous sûr ?»: what will happen, and the one button that does it.
pub(crate) async fn confirm(
    State(st): State<ConsoleState>,
    Query(form): Query<ActForm>,
    headers: HeaderMap,
) -> Response {
    let here = confirm_link(&st, &form);
    let session = match signed_in(&st, &headers, None, Some(&here)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let Some(act) = Act::parse(&form.act) else {
        return failure(&st, session.locale, admin_api::AdminError::Invalid(form.act.clone()));
    };
    if !session.recently_authenticated(st.now()) {
        return reauthenticate(&st, &form);
    }
    let account = match st.admin.account(&form.nid).await {
        Ok(a) => a,
        Err(e) => return failure(&st, session.locale, e),
    };
    let page = ConfirmPage {
        t,
        base: st.base(),
        session: &session,
        about: format!("{} {} ({} {})", account.given_name, account.family_name, t.national_id, account.national_id),
        question: act.question(t),
        action: st.path("/admin/act"),
        fields: vec![("nid", account.national_id.clone()), ("act", form.act.clone()), ("target", form.target.clone())],
        cancel: professional_link(&st, &account.national_id, None),
    };
    render(&st, session.locale, page.render())
}

#[derive(Template)]
#[template(path = "console_code.html")]
struct CodePage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    code: &'a str,
    valid_until: String,
    back: String,
}

/// Does a confirmed act, as the administrator signed in, through the admin service.
pub(crate) async fn act(
    State(st): State<ConsoleState>,
    origin: oidc_core::RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActForm>,
) -> Response {
    let session = match acting(&st, &headers, origin, &form.csrf_token, "/admin").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(act) = Act::parse(&form.act) else {
        return failure(&st, session.locale, admin_api::AdminError::Invalid(form.act.clone()));
    };
    if !session.recently_authenticated(st.now()) {
        return reauthenticate(&st, &form);
    }
    let (admin, actor, nid) = (&st.admin, session.actor(), form.nid.as_str());
    let outcome = match act {
        Act::EndAll => admin.revoke_all(&actor, nid).await.map(|_| ()),
        Act::EndSession => end_session(&st, &session, nid, &form.target).await,
        Act::Block => admin.block(&actor, nid).await.map(|_| ()),
        Act::Unblock => admin.unblock(&actor, nid).await.map(|_| ()),
        Act::ResetLockout => admin.reset_lockout(&actor, nid).await,
        Act::RemoveAuthenticator => admin.remove_authenticator(&actor, nid, &form.target).await,
        Act::BlockPushes => admin.block_pushes(&actor, nid).await.map(|_| ()),
        Act::UnblockPushes => admin.unblock_pushes(&actor, nid).await.map(|_| ()),
        Act::WithdrawCode => admin.revoke_activation_code(&actor, nid).await,
        Act::ActivationCode => {
            return match admin.issue_activation_code(&actor, nid).await {
                Ok(issued) => {
                    let page = CodePage {
                        t: console_texts(session.locale),
                        base: st.base(),
                        session: &session,
                        code: oidc_core::secret::ExposeSecret::expose_secret(&issued.code),
                        valid_until: when(Some(issued.expires_at)),
                        back: professional_link(&st, nid, None),
                    };
                    render(&st, session.locale, page.render())
                }
                Err(e) => failure(&st, session.locale, e),
            };
        }
    };
    match outcome {
        Ok(()) => see_other(&professional_link(&st, nid, Some(&form.act))),
        Err(e) => failure(&st, session.locale, e),
    }
}

/// Ends one session, if it is this professional's (a `sid` of someone else's is not found).
async fn end_session(
    st: &ConsoleState,
    session: &ConsoleSession,
    nid: &str,
    sid: &str,
) -> Result<(), admin_api::AdminError> {
    let theirs = st.admin.sessions(nid).await?.iter().any(|s| s.sid == sid);
    if !theirs {
        return Err(admin_api::AdminError::NotFound("session"));
    }
    st.admin.revoke_session(&session.actor(), sid).await
}
