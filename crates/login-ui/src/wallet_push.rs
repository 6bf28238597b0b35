//! The wallet's push approval panel: enrol the phone (QR code for the Caducée app), and the
//! switch that blocks or unblocks pushes. «Ce n'était pas moi» on the phone sets the same
//! block; the professional lifts it here (after changing their password), or an administrator.

use askama::Template;
use authn_methods::push::EnrolmentStart;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::i18n::texts;
use crate::pages::render_or_fallback;
use crate::wallet::{WalletSession, checked, qr_svg, render_home};
use crate::wallet_sessions::when;
use crate::wallet_texts::{WalletTexts, wallet_texts};
use crate::{LoginState, page};

/// What the wallet shows about pushes (none when push approval is not enabled).
pub(crate) struct PushPanel {
    /// «Bloquées depuis le … (raison)», when blocked.
    pub blocked: Option<String>,
}

pub(crate) async fn panel(
    st: &LoginState,
    session: &WalletSession,
    w: &'static WalletTexts,
) -> Result<Option<PushPanel>, ()> {
    let Some(push) = &st.push else {
        return Ok(None);
    };
    let block = push.block_of(&session.subject).await.map_err(|_| ())?;
    let blocked = block.map(|b| {
        let why = match b.reason.as_str() {
            "not_me" => w.push_blocked_not_me,
            "admin" => w.push_blocked_admin,
            _ => w.push_blocked_self,
        };
        format!("{} {} {why}", w.push_blocked_since, when(Some(b.blocked_at)))
    });
    Ok(Some(PushPanel { blocked }))
}

#[derive(Template)]
#[template(path = "wallet_push.html")]
struct EnrolPage<'a> {
    t: &'static crate::i18n::Texts,
    base: &'a str,
    w: &'static WalletTexts,
    qr_svg: String,
    endpoint: &'a str,
    code: &'a str,
    valid_until: String,
}

/// «Ajouter mon téléphone d'approbation»: an enrolment code, as a QR code and as text.
pub(crate) async fn start(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let w = wallet_texts(session.locale);
    let Some(push) = &st.push else {
        return render_home(&st, &session, None, Some(w.not_found.to_owned())).await;
    };
    let label = format!("Caducée ({})", session.national_id);
    let enrolment = match push.start_enrolment(&session.subject, &label, (st.clock)()).await {
        Ok(EnrolmentStart::Started(e)) => e,
        Ok(EnrolmentStart::AlreadyEnrolled) => {
            return render_home(&st, &session, None, Some(w.push_already.to_owned())).await;
        }
        Ok(EnrolmentStart::Frozen { until }) => {
            let (time, date) = authn_methods::mail_otp::expiry_parts(until, "Europe/Paris");
            let message = format!("{} {time} {} {date}.", w.push_frozen_prefix, w.push_frozen_joiner);
            return render_home(&st, &session, None, Some(message)).await;
        }
        Err(_) => return st.unavailable(session.locale),
    };
    let (time, _) = authn_methods::mail_otp::expiry_parts(enrolment.expires_at, "Europe/Paris");
    let html = EnrolPage {
        t: texts(session.locale),
        base: st.provider.config().base_path(),
        w,
        qr_svg: qr_svg(&enrolment.uri),
        endpoint: push.endpoint(),
        code: enrolment.code.as_str(),
        valid_until: time,
    }
    .render();
    page(StatusCode::OK, render_or_fallback(html))
}

/// The switch, off: no more pushes to this account.
pub(crate) async fn block(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    switch(st, headers, body, true).await
}

/// The switch, on again.
pub(crate) async fn unblock(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    switch(st, headers, body, false).await
}

async fn switch(st: LoginState, headers: HeaderMap, body: Bytes, blocked: bool) -> Response {
    let (_, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let w = wallet_texts(session.locale);
    let Some(push) = &st.push else {
        return render_home(&st, &session, None, Some(w.not_found.to_owned())).await;
    };
    let now = (st.clock)();
    let subject = session.subject.as_str();
    let done = if blocked {
        push.block(subject, "wallet", Some(subject), now).await.map(|_| w.push_blocked_done)
    } else {
        push.unblock(subject, Some(subject), now).await.map(|_| w.push_unblocked_done)
    };
    match done {
        Ok(notice) => render_home(&st, &session, Some(notice.to_owned()), None).await,
        Err(_) => st.unavailable(session.locale),
    }
}
