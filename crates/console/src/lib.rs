//! The administrators' console in the browser (`/admin`): find a professional, see their live
//! sessions and the relying parties of each, end them («Déconnecter partout»), block the
//! account, lift a lockout, remove an authenticator, issue an activation code.
//!
//! A crate of its own because it sits between two crates that must not know each other: its
//! pages are the login pages' (their layout and stylesheet, French first, working without
//! JavaScript), while every action goes through the admin service (`admin-api`), so that the
//! console, the REST API and the command line share one rule and one audit trail. `login-ui`
//! must not reach into the directory, which the admin service does; `admin-api` must not
//! depend on `login-ui`. Here neither has to.
//!
//! Administrators are professionals holding the admin role (`caducee account grant-admin`).
//! They sign in through the provider itself, as the wallet does: the console is a public
//! first-party client (`caducee-console`, PKCE) whose code is redeemed in process; its session
//! is server-side, bound to the SSO session's `sid`, ends after 15 minutes without a request,
//! and destructive acts ask for an authentication less than 5 minutes old (a fresh login,
//! `prompt=login`). The role is read from the database on every request.

mod clients;
mod journal;
mod people;
mod signin;
pub mod store_keys;
mod texts;

use std::sync::Arc;

use admin_api::{AdminError, AdminService};
use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use oidc_core::Locale;
use oidc_core::http::security::{PageAllows, page};
use session_store::SessionStore;

pub use signin::{CONSOLE_CLIENT_ID, console_redirect_uri};

use crate::texts::{ConsoleTexts, console_texts};

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    pub admin: AdminService,
    pub store: Arc<dyn SessionStore>,
}

impl ConsoleState {
    fn now(&self) -> i64 {
        (self.admin.clock)()
    }

    /// The absolute path of one of the console's routes, under the issuer's path.
    fn path(&self, route: &str) -> String {
        self.admin.provider.config().path(route)
    }

    fn base(&self) -> &str {
        self.admin.provider.config().base_path()
    }
}

pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/admin", get(people::home))
        .route("/admin/callback", get(signin::callback))
        .route("/admin/reauth", get(signin::reauth))
        .route("/admin/logout", post(signin::logout))
        .route("/admin/professional", get(people::professional))
        .route("/admin/confirm", get(people::confirm))
        .route("/admin/act", post(people::act))
        .route("/admin/clients", get(clients::list).post(clients::register))
        .route("/admin/client", get(clients::show))
        .route("/admin/clients/edit", post(clients::edit))
        .route("/admin/clients/confirm", get(clients::confirm))
        .route("/admin/clients/act", post(clients::act))
        .route("/admin/audit", get(journal::audit))
        .route("/admin/deliveries", get(journal::deliveries))
        .route("/admin/deliveries/retry", post(journal::retry))
        .with_state(state)
}

/// A page of the console: never cached, never framed (`frame-ancestors 'none'`), no script.
fn html(status: StatusCode, body: String) -> Response {
    page(status, body, PageAllows::Nothing)
}

fn see_other(location: &str) -> Response {
    let mut r = Redirect::to(location).into_response();
    oidc_core::http::security::no_store(r.headers_mut());
    r
}

/// The value of the cookie `name`, if the browser sent one.
fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v).flatten())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Day and time in Paris, as French operators read them.
fn when(at: Option<i64>) -> String {
    at.and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|ts| ts.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris").unwrap_or(jiff::tz::TimeZone::UTC)))
        .map(|z| z.strftime("%d/%m/%Y %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

#[derive(Template)]
#[template(path = "console_message.html")]
struct MessagePage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    heading: &'a str,
    message: String,
    link: Option<(String, &'static str)>,
}

/// A page that only says something (refusals, errors, signed out), with a way on if any.
fn message(
    st: &ConsoleState,
    locale: Locale,
    status: StatusCode,
    heading: &str,
    text: String,
    link: Option<(String, &'static str)>,
) -> Response {
    let t = console_texts(locale);
    let body = MessagePage { t, base: st.base(), heading, message: text, link }.render();
    match body {
        Ok(b) => html(status, b),
        Err(e) => {
            tracing::error!(error = %e, "console page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn render(st: &ConsoleState, locale: Locale, page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(b) => html(StatusCode::OK, b),
        Err(e) => {
            tracing::error!(error = %e, "console page rendering failed");
            let t = console_texts(locale);
            message(st, locale, StatusCode::INTERNAL_SERVER_ERROR, t.title, t.internal.into(), None)
        }
    }
}

/// What the admin service's refusals look like in the console.
fn failure(st: &ConsoleState, locale: Locale, e: AdminError) -> Response {
    let t = console_texts(locale);
    let back = Some((st.path("/admin"), t.back_to_search));
    let (status, text) = match &e {
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, t.not_found.to_owned()),
        AdminError::Invalid(m) | AdminError::Conflict(m) => (StatusCode::BAD_REQUEST, format!("{} {m}", t.invalid)),
        AdminError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, t.unavailable.to_owned()),
        AdminError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, t.internal.to_owned()),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, "console action failed");
    }
    message(st, locale, status, t.title, text, back)
}
