//! The wallet's TOTP app enrolment: «Ajouter une application» shows the QR code and the secret,
//! and the app is active once its first code is typed.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::i18n::texts;
use crate::pages::render_or_fallback;
use crate::wallet::{WalletSession, checked, qr_svg, render_home};
use crate::wallet_texts::{WalletTexts, wallet_texts};
use crate::{LoginState, page};

#[derive(Template)]
#[template(path = "wallet_totp.html")]
struct TotpPage<'a> {
    t: &'static crate::i18n::Texts,
    base: &'a str,
    w: &'static WalletTexts,
    session: &'a WalletSession,
    id: &'a str,
    qr_svg: String,
    secret: &'a str,
    error: Option<String>,
}

pub(crate) async fn start(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = (st.clock)();
    let pending = match st.enrolment.start_totp(&session.subject, &session.national_id, now).await {
        Ok(p) => p,
        Err(_) => return st.unavailable(session.locale),
    };
    render(&st, &session, &pending.id, &pending.otpauth_uri, &pending.secret_base32, None)
}

fn render(
    st: &LoginState,
    session: &WalletSession,
    id: &str,
    uri: &str,
    secret: &str,
    error: Option<String>,
) -> Response {
    let w = wallet_texts(session.locale);
    let html = render_or_fallback(
        TotpPage {
            t: texts(session.locale),
            base: st.provider.config().base_path(),
            w,
            session,
            id,
            qr_svg: qr_svg(uri),
            secret,
            error,
        }
        .render(),
    );
    page(StatusCode::OK, html)
}

pub(crate) async fn activate(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, session, form) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let w = wallet_texts(session.locale);
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    match st.enrolment.activate_totp(&session.subject, &id, &code, (st.clock)()).await {
        Ok(true) => render_home(&st, &session, Some(w.totp_activated.to_owned()), None).await,
        Ok(false) => render_home(&st, &session, None, Some(w.totp_wrong_code.to_owned())).await,
        Err(_) => st.unavailable(session.locale),
    }
}
