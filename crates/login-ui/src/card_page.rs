//! The CPS card's part of the login page: its prompt, and the relay page that brings the card
//! agent's answer back when the page runs no script.
//!
//! Without JavaScript, the PIN form posts to the card agent on the professional's computer
//! (`http://127.0.0.1:…`), which answers with a form posting the card's answer to
//! `POST /interaction/{id}/card`. That post comes from another site, so the browser sends no
//! `SameSite=Lax` cookie with it and the login cannot be checked against its browser there:
//! this route changes nothing and only shows a page of ours whose button posts the same fields,
//! with the login's anti-forgery token (which the agent carried in `state`), to the login page
//! itself — where the browser's cookie and the token are checked as for every other step.

use askama::Template;
use authn_methods::Prompt;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use oidc_core::Locale;
use oidc_core::flow::INTERACTION_PATH;

use crate::card_texts::{CardTexts, card_texts};
use crate::i18n::{Texts, texts};
use crate::pages::PromptView;
use crate::{LoginState, page};

/// The card agent's path that signs a challenge.
const AGENT_SIGN_PATH: &str = "/v1/sign";

/// The card's prompt, ready to draw (`None`: not a card prompt).
pub(crate) fn prompt_view(st: &LoginState, id: &str, locale: Locale, prompt: &Prompt) -> Option<PromptView> {
    let Prompt::Card { challenge, agent, tls_origin, notice, tries_left, .. } = prompt else {
        return None;
    };
    let lang = locale.as_str();
    let interaction = format!("{}/{id}", st.path(INTERACTION_PATH));
    Some(PromptView::Card {
        challenge: challenge.clone(),
        agent: format!("{}{AGENT_SIGN_PATH}", agent.trim_end_matches('/')),
        return_to: st.provider.config().browser_endpoint(&format!("{INTERACTION_PATH}/{id}/card")),
        tls_action: tls_origin.as_ref().map(|origin| format!("{origin}{interaction}")),
        notice: notice.as_deref().map(|code| crate::card_texts::agent_notice(lang, code, *tries_left)),
        messages: messages(lang),
    })
}

/// What the page's script says for each of the agent's reports (JSON, in a `data-` attribute).
fn messages(lang: &str) -> String {
    let t = crate::card_texts::for_lang(lang);
    let mut map = serde_json::Map::new();
    for code in authn_methods::card::AGENT_ERRORS {
        map.insert((*code).to_owned(), crate::card_texts::agent_notice(lang, code, None).into());
    }
    map.insert("tries_one".into(), t.tries_left_one.into());
    map.insert("tries_many".into(), t.tries_left_many.into());
    serde_json::Value::Object(map).to_string()
}

/// The agent's origin, for the page's Content-Security-Policy (`connect-src`).
pub(crate) fn agent_origin(agent_sign_url: &str) -> Option<String> {
    let url = url::Url::parse(agent_sign_url).ok()?;
    let origin = url.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}

#[derive(Template)]
#[template(path = "card_relay.html")]
struct RelayPage<'a> {
    t: &'static Texts,
    ct: &'static CardTexts,
    base: &'a str,
    action: &'a str,
    csrf_token: &'a str,
    certificates: &'a str,
    signature: &'a str,
    algorithm: &'a str,
    error: &'a str,
    tries_left: &'a str,
}

/// What the agent posted, checked for shape only (the login step checks the rest).
#[derive(Default)]
struct Relayed {
    certificates: Vec<String>,
    signature: String,
    algorithm: String,
    state: String,
    error: String,
    tries_left: String,
    lang: Option<String>,
}

fn base64url(v: &str, max: usize) -> bool {
    v.len() <= max && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn relayed(body: &[u8]) -> Option<Relayed> {
    let mut r = Relayed::default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    for (name, value) in &pairs {
        let value = value.trim();
        match name.as_str() {
            "certificate" if r.certificates.len() < authn_methods::card::pki::MAX_CHAIN => {
                if !base64url(value, 12 * 1024) {
                    return None;
                }
                r.certificates.push(value.to_owned());
            }
            "certificate" => return None,
            "signature" if base64url(value, 2048) => r.signature = value.to_owned(),
            "algorithm" if value.len() <= 32 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                r.algorithm = value.to_owned();
            }
            "state" if base64url(value, 128) => r.state = value.to_owned(),
            "error" if value.len() <= 40 && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
                r.error = value.to_owned();
            }
            "tries_left" if value.len() <= 2 && value.bytes().all(|b| b.is_ascii_digit()) => {
                r.tries_left = value.to_owned();
            }
            "lang" => r.lang = Some(value.to_owned()),
            "signature" | "algorithm" | "state" | "error" | "tries_left" => return None,
            // Whatever else the agent adds is not ours to carry.
            _ => {}
        }
    }
    let answered = !r.certificates.is_empty() && !r.signature.is_empty();
    (!r.state.is_empty() && (answered || !r.error.is_empty())).then_some(r)
}

/// `POST /interaction/{id}/card`: the card agent's answer, shown as a page of ours whose button
/// posts it to the login. Changes nothing.
pub(crate) async fn relay(State(st): State<LoginState>, Path(id): Path<String>, body: Bytes) -> Response {
    let well_formed_id = !id.is_empty() && base64url(&id, 128);
    let relayed = relayed(&body).filter(|_| well_formed_id);
    let locale = relayed.as_ref().and_then(|r| r.lang.as_deref()).and_then(Locale::from_tag).unwrap_or_default();
    let Some(r) = relayed else {
        return page(
            StatusCode::BAD_REQUEST,
            st.pages().render_error(locale, oidc_core::authorize::PageError::MalformedRequest),
        );
    };
    let action = format!("{}/{id}", st.path(INTERACTION_PATH));
    let certificates = r.certificates.join(",");
    let html = crate::pages::render_or_fallback(
        RelayPage {
            t: texts(locale),
            ct: card_texts(locale),
            base: st.provider.config().base_path(),
            action: &action,
            csrf_token: &r.state,
            certificates: &certificates,
            signature: &r.signature,
            algorithm: &r.algorithm,
            error: &r.error,
            tries_left: &r.tries_left,
        }
        .render(),
    );
    page(StatusCode::OK, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_carries_an_answer_or_an_error_and_nothing_else() {
        let r =
            relayed(b"certificate=QUJD&certificate=REVG&signature=c2ln&algorithm=RSA-PKCS1-SHA256&state=tok&pin=1234")
                .expect("an answer");
        assert_eq!(r.certificates, vec!["QUJD", "REVG"]);
        assert_eq!(r.signature, "c2ln");
        let r = relayed(b"error=wrong_pin&tries_left=2&state=tok").expect("an error");
        assert_eq!((r.error.as_str(), r.tries_left.as_str()), ("wrong_pin", "2"));
        // No token, nothing posted, or fields that are not of the expected shape: refused.
        assert!(relayed(b"certificate=QUJD&signature=c2ln").is_none());
        assert!(relayed(b"state=tok").is_none());
        assert!(relayed(b"certificate=%3Cscript%3E&signature=c2ln&state=tok").is_none());
        assert!(relayed(b"error=%22%3E&state=tok").is_none());
        let five = "certificate=QQ&".repeat(5) + "signature=c2ln&state=tok";
        assert!(relayed(five.as_bytes()).is_none());
    }

    #[test]
    fn the_agent_origin_is_its_scheme_host_and_port() {
        assert_eq!(agent_origin("http://127.0.0.1:8765/v1/sign").as_deref(), Some("http://127.0.0.1:8765"));
        assert_eq!(agent_origin("not a url"), None);
    }
}
