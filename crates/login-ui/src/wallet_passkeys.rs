//! The wallet's passkeys panel: enrol a passkey or security key (only right after a strong
//! sign-in: a stolen, older session cannot add its own key), rename one; removal is the
//! authenticators table's. The enrolment page runs the passkey script (`assets/webauthn.js`).

use askama::Template;
use authn_methods::webauthn::{self, Actor, EnrolError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use oidc_core::RequestOrigin;
use oidc_core::http::security::{PageAllows, page as secured_page};

use crate::LoginState;
use crate::i18n::texts;
use crate::pages::render_or_fallback;
use crate::passkey_texts::{PasskeyTexts, passkey_texts};
use crate::wallet::{WalletSession, checked, render_home};
use crate::wallet_sessions::when;

/// A key can be added this many seconds after the sign-in at most.
pub(crate) const ENROL_WITHIN: i64 = 300;

/// What the wallet shows of passkeys (none when no WebAuthn method is on).
pub(crate) struct PasskeyPanel {
    pub keys: Vec<KeyRow>,
    /// The sign-in is recent and strong enough to add a key.
    pub can_add: bool,
}

pub(crate) struct KeyRow {
    pub id: String,
    pub label: String,
    pub created: String,
}

/// Whether this wallet session may add a key: signed in a moment ago, at a level of assurance.
fn fresh(st: &LoginState, session: &WalletSession) -> bool {
    let recent = (st.clock)().saturating_sub(session.auth_time) <= ENROL_WITHIN;
    recent && authn_methods::policy::level_named(&session.acr).is_some()
}

pub(crate) async fn panel(st: &LoginState, session: &WalletSession) -> Result<Option<PasskeyPanel>, ()> {
    if st.passkeys.is_none() {
        return Ok(None);
    }
    let list = st.enrolment.list(&session.subject).await.map_err(|_| ())?;
    let keys = list
        .into_iter()
        .filter(|a| a.kind == webauthn::KIND)
        .map(|a| KeyRow { id: a.id, label: a.label, created: when(Some(a.created_at)) })
        .collect();
    Ok(Some(PasskeyPanel { keys, can_add: fresh(st, session) }))
}

#[derive(Template)]
#[template(path = "wallet_passkey.html")]
struct EnrolPage<'a> {
    t: &'static crate::i18n::Texts,
    pk: &'static PasskeyTexts,
    base: &'a str,
    session: &'a WalletSession,
    ceremony: &'a str,
    options: &'a str,
    name: &'a str,
}

/// «Ajouter une clé d'accès»: opens an enrolment and shows the page that runs it.
pub(crate) async fn start(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, session, form) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let pk = passkey_texts(session.locale);
    let Some(passkeys) = &st.passkeys else {
        return render_home(
            &st,
            &session,
            None,
            Some(crate::wallet_texts::wallet_texts(session.locale).not_found.to_owned()),
        )
        .await;
    };
    if !fresh(&st, &session) {
        return render_home(&st, &session, None, Some(pk.reauth.to_owned())).await;
    }
    let display = format!("{} {}", session.given_name, session.family_name);
    let display = if display.trim().is_empty() { session.national_id.clone() } else { display };
    let user_name = if session.national_id.is_empty() { session.subject.clone() } else { session.national_id.clone() };
    let started = match passkeys.start_enrolment(&session.subject, &user_name, display.trim()).await {
        Ok(s) => s,
        Err(_) => return st.unavailable(session.locale),
    };
    let name = webauthn::clean_name(&form.name);
    let html = EnrolPage {
        t: texts(session.locale),
        pk,
        base: st.provider.config().base_path(),
        session: &session,
        ceremony: &started.ceremony,
        options: &started.options,
        name: &name,
    }
    .render();
    secured_page(StatusCode::OK, render_or_fallback(html), PageAllows::OwnScript)
}

/// The browser's answer: the key is kept, and the professional told by mail.
pub(crate) async fn finish(
    State(st): State<LoginState>,
    origin: RequestOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, session, form) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let pk = passkey_texts(session.locale);
    let Some(passkeys) = &st.passkeys else {
        return st.wallet_home();
    };
    if !fresh(&st, &session) {
        return render_home(&st, &session, None, Some(pk.reauth.to_owned())).await;
    }
    let actor = Actor { subject: &session.subject, source_ip: origin.source_ip.as_deref(), now: (st.clock)() };
    let outcome = passkeys.finish_enrolment(&actor, &form.ceremony, &form.webauthn_response, &form.name).await;
    let error = match outcome {
        Ok(_) => return render_home(&st, &session, Some(pk.added.to_owned()), None).await,
        Err(EnrolError::Auth(e)) => {
            tracing::error!(error = %e, "a passkey enrolment failed to run");
            return st.unavailable(session.locale);
        }
        Err(EnrolError::Expired) => pk.enrol_expired,
        Err(EnrolError::Malformed | EnrolError::Refused(_)) => pk.enrol_refused,
        Err(EnrolError::NotAllowed) => pk.enrol_not_allowed,
        Err(EnrolError::AlreadyEnrolled) => pk.enrol_already,
    };
    render_home(&st, &session, None, Some(error.to_owned())).await
}

/// «Renommer»: one of the professional's own keys.
pub(crate) async fn rename(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, session, form) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = webauthn::clean_name(&form.name);
    match st.enrolment.rename(&session.subject, &id, &name).await {
        Ok(true) => render_home(&st, &session, Some(passkey_texts(session.locale).renamed.to_owned()), None).await,
        Ok(false) => {
            let w = crate::wallet_texts::wallet_texts(session.locale);
            render_home(&st, &session, None, Some(w.not_found.to_owned())).await
        }
        Err(_) => st.unavailable(session.locale),
    }
}
