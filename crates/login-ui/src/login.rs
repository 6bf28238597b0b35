//! The login page and its one route for every method: `GET /interaction/{id}` draws where the
//! login stands (the ways to sign in, a method's form, a prompt), `POST` takes one step of the
//! method the form names (`method`, `step` = `begin` | `submit` | `poll`, `then`), and
//! `GET /interaction/{id}/state` tells a waiting page's script whether the other device answered.
//! The documented one-form contract (docs/login-ui.md: `action=login` with identifier,
//! password and code) is kept as a table of steps ([`ACTIONS`]).

use authn_methods::{AuthContext, Input, Prompt, Refusal, Shown, StepOp, StepOutcome, StepRequest, Then, Unusable};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oidc_core::flow::{INTERACTION_PATH, Interaction};
use oidc_core::http::cookies::CookieJar;
use oidc_core::{Locale, RequestOrigin};
use serde::Deserialize;

use crate::i18n::{Texts, texts};
use crate::method_pages::{self, MethodCard};
use crate::pages::{LoginPage, PromptView, View};
use crate::{
    LoginState, client_name, complete_login, device_cookie, failure_status, interaction_error, locale_for,
    locked_message, page, redirect, with_retry_after,
};

/// The cookie that remembers the way this browser signed in last (a method id, nothing else).
const METHOD_COOKIE: &str = "caducee_method";
const METHOD_COOKIE_MAX_AGE_SECS: i64 = 180 * 24 * 3600;

/// A documented one-form `action` (docs/login-ui.md) as a step: the method, the step, and the
/// method opened in the same request (with whether it must finish there).
struct Action {
    name: &'static str,
    method: &'static str,
    op: StepOp,
    then: Option<Then<'static>>,
}

const ACTIONS: &[Action] = &[
    Action { name: "login", method: "pwd", op: StepOp::Submit, then: Some(Then { method: "otp", in_one_go: true }) },
    Action {
        name: "send_mail_otp",
        method: "pwd",
        op: StepOp::Submit,
        then: Some(Then { method: "mail", in_one_go: false }),
    },
    Action {
        name: "send_push",
        method: "pwd",
        op: StepOp::Submit,
        then: Some(Then { method: "push", in_one_go: false }),
    },
    Action { name: "check_push", method: "push", op: StepOp::Poll, then: None },
];

#[derive(Debug, Deserialize, Default)]
pub(crate) struct PageQuery {
    lang: Option<String>,
    /// The way to sign in the person chose in the list.
    method: Option<String>,
    /// Show the list of ways to sign in.
    choose: Option<String>,
    /// Show the QR code's offline form.
    offline: Option<String>,
}

/// The login form's fields (docs/login-ui.md).
#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    otp: String,
    qr_id: Option<String>,
    qr_code: Option<String>,
    /// The authenticator's answer, as the passkey page's script posts it (JSON).
    webauthn_response: Option<String>,
    /// The CPS card's answer as the card agent gave it, or what it reported instead.
    card_certificates: Option<String>,
    card_signature: Option<String>,
    card_algorithm: Option<String>,
    card_error: Option<String>,
    card_tries_left: Option<String>,
    /// `1`: sign in with the certificate the browser presented to the card's TLS listener.
    card_tls: Option<String>,
    #[serde(default)]
    csrf_token: String,
    action: Option<String>,
    lang: Option<String>,
    method: Option<String>,
    step: Option<String>,
    then: Option<String>,
    together: Option<String>,
}

/// What a post asks for.
enum Posted<'a> {
    Cancel,
    Step { method: &'a str, op: StepOp, then: Option<Then<'a>> },
}

impl LoginForm {
    fn posted(&self) -> Option<Posted<'_>> {
        if self.action.as_deref() == Some("cancel") {
            return Some(Posted::Cancel);
        }
        if let Some(method) = self.method.as_deref() {
            let op = match self.step.as_deref() {
                None | Some("submit") => StepOp::Submit,
                Some("begin") => StepOp::Begin,
                Some("poll") => StepOp::Poll,
                Some(_) => return None,
            };
            let in_one_go = self.together.as_deref() == Some("1");
            let then = self.then.as_deref().filter(|t| !t.is_empty()).map(|method| Then { method, in_one_go });
            return Some(Posted::Step { method, op, then });
        }
        // Missing or any other action: `login`, as documented.
        let action = self.action.as_deref().unwrap_or("login");
        let a = ACTIONS.iter().find(|a| a.name == action).unwrap_or(&ACTIONS[0]);
        Some(Posted::Step { method: a.method, op: a.op, then: a.then })
    }

    fn input(&self) -> Input {
        let mut input =
            Input::new().with("username", &self.username).with("password", &self.password).with("otp", &self.otp);
        if let (Some(id), Some(code)) = (&self.qr_id, &self.qr_code) {
            input = input.with("qr_id", id).with("qr_code", code);
        }
        if let Some(response) = &self.webauthn_response {
            input = input.with(authn_methods::webauthn::login::RESPONSE_FIELD, response);
        }
        use authn_methods::card;
        let card_fields = [
            (card::FIELD_CERTIFICATES, &self.card_certificates),
            (card::FIELD_SIGNATURE, &self.card_signature),
            (card::FIELD_ALGORITHM, &self.card_algorithm),
            (card::FIELD_ERROR, &self.card_error),
            (card::FIELD_TRIES_LEFT, &self.card_tries_left),
            (card::FIELD_TLS, &self.card_tls),
        ];
        for (name, value) in card_fields {
            if let Some(v) = value {
                input = input.with(name, v);
            }
        }
        input
    }
}

/// The method this browser used last, if it sent one that looks like a method id.
fn last_method(headers: &HeaderMap) -> Option<String> {
    crate::cookie_named(headers, METHOD_COOKIE)
        .filter(|v| v.len() <= 32 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Remembers the way this browser signed in, to offer it first next time.
pub(crate) fn remember_method(r: &mut Response, method: &str, config: &oidc_core::ProviderConfig) {
    let secure = config.secure_cookies;
    let c = cookie::Cookie::build((METHOD_COOKIE, method.to_owned()))
        .path(config.path(INTERACTION_PATH))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(METHOD_COOKIE_MAX_AGE_SECS))
        .build();
    oidc_core::http::cookies::set(r.headers_mut(), &c);
}

/// What a drawn page may run and reach.
enum Allows {
    Nothing,
    OwnScript,
    /// Our script, reaching the card agent at this origin too.
    Reaching(String),
}

/// Which view to prefer when the login has moved on and the person also named a method.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefer {
    /// The person clicked a way to sign in: show it, whatever the login's progress.
    Named,
    /// After a step: where the login stands comes first.
    Progress,
}

/// Everything a login page is drawn from.
struct Draw<'a> {
    st: &'a LoginState,
    interaction: &'a Interaction,
    id: &'a str,
    locale: Locale,
    username: String,
    last: Option<String>,
    /// A QR code is drawn as its offline form.
    offline: bool,
}

impl Draw<'_> {
    fn t(&self) -> &'static Texts {
        texts(self.locale)
    }

    fn card(&self, id: &str) -> MethodCard {
        method_pages::describe(self.t(), id, self.last.as_deref())
    }

    /// The ways to sign in, the last one used first.
    fn offers(&self) -> Vec<MethodCard> {
        let mut cards: Vec<MethodCard> = self
            .st
            .engine
            .offers()
            .iter()
            .map(|o| MethodCard { alone: o.after.is_none(), ..self.card(o.method) })
            .collect();
        cards.sort_by_key(|c| !c.last);
        cards
    }

    fn start(&self, method: &str) -> View {
        let card = self.card(method);
        View::Start { method: card.id, label: card.label, together: card.together }
    }

    /// What the page shows now, with the notice a prompt under way comes with (a code mailed
    /// a moment ago is still announced when the page is drawn again).
    async fn view(
        &self,
        named: Option<&str>,
        choose: bool,
        prefer: Prefer,
    ) -> Result<(View, Option<String>), authn_methods::AuthError> {
        let offers = self.st.engine.offers();
        let offered = |m: &&str| offers.iter().any(|o| o.method == *m && o.after.is_some());
        if choose {
            return Ok((View::Choose { offers: self.offers() }, None));
        }
        if prefer == Prefer::Named
            && let Some(m) = named.filter(offered)
        {
            return Ok((self.start(m), None));
        }
        match self.st.engine.current(self.id).await? {
            Some(StepOutcome::Prompt(shown)) => return Ok(self.prompt(&shown)),
            Some(StepOutcome::Next { methods }) if !methods.is_empty() => {
                return Ok((View::Next { offers: methods.iter().map(|m| self.card(m)).collect() }, None));
            }
            _ => {}
        }
        match named.or(self.last.as_deref()).filter(offered) {
            Some(m) => Ok((self.start(m), None)),
            None => Ok((View::Choose { offers: self.offers() }, None)),
        }
    }

    /// A method's prompt as the page draws it, with the notice it comes with.
    fn prompt(&self, shown: &Shown) -> (View, Option<String>) {
        let t = self.t();
        let (prompt, notice) = match &shown.prompt {
            Prompt::CodeSent { masked_address, time, date, .. } => (
                PromptView::Code,
                Some(format!(
                    "{} {masked_address}. {} {time} {} {date}. {}",
                    t.mail_sent_to, t.mail_valid_until, t.mail_date_joiner, t.mail_retype
                )),
            ),
            Prompt::Number { number, expires_at, silenced } => {
                let (valid_until, _) = authn_methods::mail_otp::expiry_parts(*expires_at, "Europe/Paris");
                let view = PromptView::Number {
                    number: number.clone(),
                    number_spoken: number.chars().map(String::from).collect::<Vec<_>>().join(" "),
                    valid_until,
                    expires_at: *expires_at,
                    poll_after_ms: shown.poll_after_ms.unwrap_or(2000),
                    silenced: *silenced,
                };
                (view, None)
            }
            Prompt::Passkey { options } => (PromptView::Passkey { options: options.clone() }, None),
            card @ Prompt::Card { .. } => match crate::card_page::prompt_view(self.st, self.id, self.locale, card) {
                Some(view) => (view, None),
                None => (PromptView::Code, None),
            },
            Prompt::Qr { .. } if self.offline => (PromptView::QrOffline, None),
            Prompt::Qr { payload, expires_at } => {
                let (valid_until, _) = authn_methods::mail_otp::expiry_parts(*expires_at, "Europe/Paris");
                let view = PromptView::Qr {
                    svg: crate::wallet::qr_svg(payload),
                    payload: payload.clone(),
                    valid_until,
                    expires_at: *expires_at,
                    poll_after_ms: shown.poll_after_ms.unwrap_or(2000),
                };
                (view, None)
            }
            _ => (PromptView::Code, None),
        };
        (View::Prompt { method: shown.method.clone(), prompt }, notice)
    }

    async fn render(&self, view: View, error: Option<String>, notice: Option<String>) -> (String, Allows) {
        let script = matches!(&view, View::Prompt { prompt: PromptView::Number { .. } | PromptView::Qr { .. }, .. });
        let passkey_script = matches!(&view, View::Prompt { prompt: PromptView::Passkey { .. }, .. });
        let card_agent = match &view {
            View::Prompt { prompt: PromptView::Card { agent, .. }, .. } => crate::card_page::agent_origin(agent),
            _ => None,
        };
        let card_script = card_agent.is_some();
        let choosing = matches!(&view, View::Choose { .. });
        let html = LoginPage {
            t: self.t(),
            pk: crate::passkey_texts::passkey_texts(self.locale),
            ct: crate::card_texts::card_texts(self.locale),
            base: self.st.provider.config().base_path().to_owned(),
            action: format!("{}/{}", self.st.path(INTERACTION_PATH), self.id),
            client_name: client_name(self.st, self.interaction).await,
            csrf_token: self.interaction.csrf_token.clone(),
            error,
            notice,
            view,
            choosing,
            script,
            passkey_script,
            card_script,
            username: self.username.chars().take(64).collect(),
        }
        .render_page();
        let allows = match card_agent {
            Some(origin) => Allows::Reaching(origin),
            None if script || passkey_script => Allows::OwnScript,
            None => Allows::Nothing,
        };
        (html, allows)
    }

    /// The page, with its status; a waiting page alone may run its script.
    async fn respond(&self, status: StatusCode, view: View, error: Option<String>, notice: Option<String>) -> Response {
        use oidc_core::http::security::PageAllows;
        let (html, allows) = self.render(view, error, notice).await;
        match allows {
            // These pages alone run a script: ours, asking our own origin (and the card agent).
            Allows::OwnScript => oidc_core::http::security::page(status, html, PageAllows::OwnScript),
            Allows::Reaching(origin) => {
                oidc_core::http::security::page(status, html, PageAllows::OwnScriptReaching(&origin))
            }
            Allows::Nothing => page(status, html),
        }
    }

    /// Where the login stands, with a message.
    async fn again(&self, status: StatusCode, named: Option<&str>, error: String) -> Response {
        match self.view(named, false, Prefer::Progress).await {
            Ok((view, _)) => self.respond(status, view, Some(error), None).await,
            Err(e) => self.failed_to_run(&e).await,
        }
    }

    async fn failed_to_run(&self, e: &authn_methods::AuthError) -> Response {
        let t = self.t();
        let status = failure_status(e, "authentication failed to run");
        let error = if e.is_unavailable() { t.unavailable } else { t.error_title };
        let view = View::Choose { offers: self.offers() };
        self.respond(status, view, Some(error.to_owned()), None).await
    }
}

pub(crate) async fn show(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let now = (st.clock)();
    let browser = jar.browser_cookies().browser;
    let interaction = match st.provider.interaction(&id, browser.as_deref(), now).await {
        Ok(i) => i,
        Err(e) => return interaction_error(&st, locale_for(q.lang.as_deref(), None), e),
    };
    let locale = locale_for(q.lang.as_deref(), Some(&interaction));
    let draw = Draw {
        st: &st,
        interaction: &interaction,
        id: &id,
        locale,
        username: interaction.request.login_hint.clone().unwrap_or_default(),
        last: last_method(&headers),
        offline: q.offline.is_some(),
    };
    match draw.view(q.method.as_deref(), q.choose.is_some(), Prefer::Named).await {
        Ok((view, notice)) => draw.respond(StatusCode::OK, view, None, notice).await,
        Err(e) => draw.failed_to_run(&e).await,
    }
}

pub(crate) async fn submit(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    jar: CookieJar,
    origin: RequestOrigin,
    headers: HeaderMap,
    // Set by the card's TLS listener alone, from the handshake (never from the request).
    presented: Option<axum::Extension<authn_methods::card::PresentedChain>>,
    body: Bytes,
) -> Response {
    let now = (st.clock)();
    let cookies = jar.browser_cookies();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let malformed = || {
        page(
            StatusCode::BAD_REQUEST,
            st.pages().render_error(Locale::default(), oidc_core::authorize::PageError::MalformedRequest),
        )
    };
    let form: LoginForm = match (is_form, serde_urlencoded::from_bytes(&body)) {
        (true, Ok(f)) => f,
        _ => return malformed(),
    };
    let interaction = match st.provider.interaction(&id, cookies.browser.as_deref(), now).await {
        Ok(i) => i,
        Err(e) => return interaction_error(&st, locale_for(form.lang.as_deref(), None), e),
    };
    let locale = locale_for(form.lang.as_deref(), Some(&interaction));
    if !interaction.csrf_matches(&form.csrf_token) {
        return page(
            StatusCode::FORBIDDEN,
            st.pages().render_error(locale, oidc_core::authorize::PageError::Forbidden),
        );
    }
    let Some(posted) = form.posted() else {
        return malformed();
    };
    let (method, op, then) = match posted {
        Posted::Cancel => {
            return match st.provider.abort_interaction(&id, cookies.browser.as_deref(), now).await {
                Ok(location) => redirect(&location, None, st.provider.config()),
                Err(e) => interaction_error(&st, locale, e),
            };
        }
        Posted::Step { method, op, then } => (method, op, then),
    };
    let cx = AuthContext {
        now,
        source_ip: origin.source_ip.clone(),
        interaction: id.clone(),
        device_cookie: device_cookie(&headers),
        user_agent: origin.user_agent.clone(),
        client_name: client_name(&st, &interaction).await,
        required_acr: interaction.required_acr.clone(),
        tls_client_chain: presented.map(|axum::Extension(chain)| chain.0),
    };
    let input = form.input();
    let draw = Draw {
        st: &st,
        interaction: &interaction,
        id: &id,
        locale,
        username: form.username.clone(),
        last: last_method(&headers),
        offline: form.qr_code.is_some(),
    };
    // The way the person chose: the method opened after the password, else the one posted.
    let chosen = then.map(|t| t.method).unwrap_or(method);
    let t = texts(locale);
    let outcome = match st.engine.step(&cx, StepRequest { method, op, input: &input, then }).await {
        Ok(outcome) => outcome,
        Err(e) => return draw.failed_to_run(&e).await,
    };
    match outcome {
        StepOutcome::Success(login) => {
            let remembered = st.engine.offers().iter().any(|o| o.method == chosen).then_some(chosen);
            complete_login(&st, &id, &cookies, &origin, login, locale, remembered).await
        }
        StepOutcome::Prompt(shown) => {
            let (view, notice) = draw.prompt(&shown);
            draw.respond(StatusCode::OK, view, None, notice).await
        }
        // Nothing can follow these factors (the service asked for a stronger way to sign in).
        StepOutcome::Next { methods } if methods.is_empty() => {
            draw.again(StatusCode::OK, None, t.method_unavailable.to_owned()).await
        }
        StepOutcome::Next { methods } => {
            let view = View::Next { offers: methods.iter().map(|m| draw.card(m)).collect() };
            draw.respond(StatusCode::OK, view, None, None).await
        }
        StepOutcome::Refused(Refusal::Invalid) => {
            let error = method_pages::invalid_text(t, method, then.map(|t| t.method));
            draw.again(StatusCode::OK, Some(chosen), error.to_owned()).await
        }
        StepOutcome::Refused(Refusal::Locked { retry_after }) => {
            let mut r = draw.again(StatusCode::TOO_MANY_REQUESTS, Some(chosen), locked_message(t, retry_after)).await;
            with_retry_after(&mut r, Some(retry_after));
            r
        }
        StepOutcome::Denied => draw.again(StatusCode::OK, Some(chosen), t.push_denied.to_owned()).await,
        StepOutcome::Rejected { reason, .. } => {
            let error = crate::card_texts::rejected(t.lang, reason);
            draw.again(StatusCode::OK, Some(chosen), error.to_owned()).await
        }
        StepOutcome::Expired => {
            let error = method_pages::expired_text(t, method);
            draw.again(StatusCode::OK, Some(chosen), error.to_owned()).await
        }
        StepOutcome::Unusable { method, why } => {
            let (status, retry) = match why {
                Unusable::Throttled { retry_after } => (StatusCode::TOO_MANY_REQUESTS, Some(retry_after)),
                _ => (StatusCode::OK, None),
            };
            let error = method_pages::unusable_text(t, method, why);
            let mut r = draw.again(status, Some(chosen), error).await;
            with_retry_after(&mut r, retry);
            r
        }
        StepOutcome::NotAllowed => draw.again(StatusCode::BAD_REQUEST, None, t.method_unavailable.to_owned()).await,
        StepOutcome::Raced => draw.again(StatusCode::CONFLICT, Some(chosen), t.step_raced.to_owned()).await,
    }
}

/// `{"waiting": bool}` for a waiting page's script: whether the other device has yet to answer.
/// Reads only; the page then submits its form, which finishes (or refuses) the login.
pub(crate) async fn waiting(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    jar: CookieJar,
    origin: RequestOrigin,
) -> Response {
    let now = (st.clock)();
    let browser = jar.browser_cookies().browser;
    let waiting = match st.provider.interaction(&id, browser.as_deref(), now).await {
        Ok(_) => {
            let cx = AuthContext {
                now,
                source_ip: origin.source_ip.clone(),
                interaction: id.clone(),
                device_cookie: None,
                user_agent: None,
                client_name: String::new(),
                required_acr: None,
                tls_client_chain: None,
            };
            match st.engine.waiting(&cx).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "reading a waiting step failed");
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
        }
        // Gone or another browser's: nothing to wait for (the form's answer will say why).
        Err(_) => false,
    };
    let mut r = axum::Json(serde_json::json!({ "waiting": waiting })).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
