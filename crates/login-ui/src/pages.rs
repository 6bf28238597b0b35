//! Templates and the [`HtmlPages`] the protocol uses for its own pages.

use askama::Template;
use oidc_core::Locale;
use oidc_core::authorize::PageError;
use oidc_core::http::Pages;
use oidc_core::logout::LogoutError;

use crate::i18n::{self, Texts, texts};
use crate::method_pages::MethodCard;

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub t: &'static Texts,
    pub pk: &'static crate::passkey_texts::PasskeyTexts,
    pub ct: &'static crate::card_texts::CardTexts,
    /// The issuer's path, before every link of the page to this server.
    pub base: String,
    pub action: String,
    pub client_name: String,
    pub csrf_token: String,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub view: View,
    /// The list of ways to sign in is shown (no link back to it).
    pub choosing: bool,
    /// The page runs its one script (a waiting step).
    pub script: bool,
    /// The page runs the passkey script (a WebAuthn ceremony).
    pub passkey_script: bool,
    /// The page runs the card script (a CPS card sign-in).
    pub card_script: bool,
    /// The identifier as typed, kept when the form is shown again.
    pub username: String,
}

/// What the login page shows under its title.
pub(crate) enum View {
    /// The ways to sign in, the last one used first.
    Choose { offers: Vec<MethodCard> },
    /// Identifier and password, then what `method` adds (a code field, a button).
    Start { method: String, label: &'static str, together: bool },
    /// The identifier is proven: the methods that may come next.
    Next { offers: Vec<MethodCard> },
    /// The method under way asks for something.
    Prompt { method: String, prompt: PromptView },
}

/// A method's prompt, ready to draw.
pub(crate) enum PromptView {
    /// A code to type in `otp`.
    Code,
    /// A number to type on the other device, which the page waits for.
    Number {
        number: String,
        /// The digits apart, so that screen readers say «4 2», not «forty-two».
        number_spoken: String,
        valid_until: String,
        expires_at: i64,
        poll_after_ms: u64,
        /// The device was not woken (auto-silence): the professional must open the app.
        silenced: bool,
    },
    /// A QR code to scan with the phone app, which the page waits for.
    Qr {
        /// Inline SVG drawn by the server.
        svg: String,
        /// `caducee-auth://…`, also a link for a phone that shows the page itself.
        payload: String,
        valid_until: String,
        expires_at: i64,
        poll_after_ms: u64,
    },
    /// The same QR code's offline form: the identifier and password the app derived from it.
    QrOffline,
    /// A WebAuthn ceremony: `options` for the browser (JSON), answered by the page's script.
    Passkey { options: String },
    /// A CPS card sign-in: the PIN form posts `challenge` to the card agent's `agent` URL,
    /// which answers to `return_to`; `notice`: what the agent reported last; `messages`: what
    /// the page's script says of each report (JSON).
    /// `tls_action`: where a browser that reads the card itself posts the step over TLS.
    Card {
        challenge: String,
        agent: String,
        return_to: String,
        tls_action: Option<String>,
        notice: Option<String>,
        messages: String,
    },
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    t: &'static Texts,
    base: &'a str,
    title: &'a str,
    message: &'a str,
    detail: Option<&'a str>,
    is_error: bool,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct LogoutConfirmPage<'a> {
    t: &'static Texts,
    base: &'a str,
    confirmation: &'a str,
    client_name: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "frontchannel_logout.html")]
struct FrontChannelLogoutPage<'a> {
    t: &'static Texts,
    base: &'a str,
    frames: &'a [String],
    then: Option<&'a str>,
}

/// Renders a template, falling back to a minimal page: a template error must not become a
/// blank answer (nor leak its details).
pub(crate) fn render_or_fallback(result: Result<String, askama::Error>) -> String {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "template rendering failed");
        "<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Caducée</title></head><body><h1>Erreur / Error</h1></body></html>".to_owned()
    })
}

impl LoginPage {
    pub(crate) fn render_page(&self) -> String {
        render_or_fallback(self.render())
    }
}

/// The protocol's pages, in the same look as the login form, for a server whose routes are
/// under `base` (the issuer's path).
#[derive(Debug, Default, Clone)]
pub struct HtmlPages {
    base: String,
}

impl HtmlPages {
    pub fn new(base_path: &str) -> Self {
        HtmlPages { base: base_path.to_owned() }
    }

    fn message(&self, locale: Locale, title: &str, message: &str, detail: Option<&str>, is_error: bool) -> String {
        render_or_fallback(
            MessagePage { t: texts(locale), base: &self.base, title, message, detail, is_error }.render(),
        )
    }

    pub(crate) fn render_error(&self, locale: Locale, error: PageError) -> String {
        let t = texts(locale);
        let detail = matches!(error, PageError::InteractionExpired | PageError::Forbidden).then_some(t.error_back);
        self.message(locale, t.error_title, i18n::page_error(locale, error), detail, true)
    }
}

impl Pages for HtmlPages {
    fn error(&self, locale: Locale, error: PageError) -> String {
        self.render_error(locale, error)
    }

    fn logout_error(&self, locale: Locale, error: LogoutError) -> String {
        let t = texts(locale);
        self.message(locale, t.logout_title, i18n::logout_error(locale, error), None, true)
    }

    fn logout_confirm(&self, locale: Locale, confirmation: &str, client_name: Option<&str>) -> String {
        render_or_fallback(LogoutConfirmPage { t: texts(locale), base: &self.base, confirmation, client_name }.render())
    }

    fn logged_out(&self, locale: Locale) -> String {
        let t = texts(locale);
        self.message(locale, t.logout_title, t.logged_out, None, false)
    }

    fn frontchannel_logout(&self, locale: Locale, frames: &[String], then: Option<&str>) -> String {
        render_or_fallback(FrontChannelLogoutPage { t: texts(locale), base: &self.base, frames, then }.render())
    }

    fn still_logged_in(&self, locale: Locale) -> String {
        let t = texts(locale);
        self.message(locale, t.logout_title, t.still_logged_in, None, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_has_labelled_fields_and_escapes_values() {
        let html = LoginPage {
            t: texts(Locale::Fr),
            base: "/auth/realms/r".into(),
            action: "/auth/realms/r/interaction/abc".into(),
            client_name: "<script>x</script>".into(),
            csrf_token: "tok".into(),
            error: Some("Identifiant incorrect".into()),
            notice: None,
            view: View::Start { method: "otp".into(), label: "Code OTP", together: true },
            choosing: false,
            script: false,
            passkey_script: false,
            card_script: false,
            pk: crate::passkey_texts::passkey_texts(Locale::Fr),
            ct: crate::card_texts::card_texts(Locale::Fr),
            username: "\"><b>".into(),
        }
        .render_page();
        assert!(html.contains("<html lang=\"fr\">"));
        for field in ["username", "password", "otp"] {
            assert!(html.contains(&format!("<label for=\"{field}\">")), "{field} has a label");
            assert!(html.contains(&format!("name=\"{field}\"")), "{field} input");
        }
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""));
        assert!(!html.contains("<script>x</script>"));
        assert!(!html.contains("\"><b>"));
        assert!(html.contains("role=\"alert\""));
        // The default button (Enter) signs in: it comes before «Annuler».
        let login = html.find("id=\"sign-in\"").unwrap();
        assert!(login < html.find("value=\"cancel\"").unwrap());
        assert!(html.contains("name=\"then\" value=\"otp\""));
        // Every link to this server is under the issuer's path.
        assert!(html.contains("href=\"/auth/realms/r/assets/caducee.css\""));
        assert!(html.contains("action=\"/auth/realms/r/interaction/abc\""));
    }

    #[test]
    fn the_passkey_prompt_loads_its_script_and_carries_its_options_escaped() {
        let html = LoginPage {
            t: texts(Locale::En),
            pk: crate::passkey_texts::passkey_texts(Locale::En),
            base: String::new(),
            action: "/interaction/abc".into(),
            client_name: "RP".into(),
            csrf_token: "tok".into(),
            error: None,
            notice: None,
            view: View::Prompt {
                method: "webauthn".into(),
                prompt: PromptView::Passkey { options: r#"{"challenge":"a\"><script>"}"#.into() },
            },
            choosing: false,
            script: false,
            passkey_script: true,
            card_script: false,
            ct: crate::card_texts::card_texts(Locale::En),
            username: String::new(),
        }
        .render_page();
        assert!(html.contains(r#"<script src="/assets/webauthn.js" defer></script>"#));
        assert!(!html.contains("login-wait.js"));
        // The options are an attribute's value, escaped: no markup, no inline script.
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("id=\"passkey-form\"") && html.contains("name=\"webauthn_response\""));
        assert!(html.contains("Use my passkey") && html.contains("<noscript>"));
        // The way to the other methods stays.
        assert!(html.contains("?choose=1"));
    }

    #[test]
    fn pages_exist_in_english() {
        let html = HtmlPages::default().error(Locale::En, PageError::UnknownClient);
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("not known to Caducée"));
    }

    #[test]
    fn the_card_prompt_posts_the_pin_to_the_agent_only_and_escapes_what_it_carries() {
        let html = LoginPage {
            t: texts(Locale::Fr),
            pk: crate::passkey_texts::passkey_texts(Locale::Fr),
            ct: crate::card_texts::card_texts(Locale::Fr),
            base: String::new(),
            action: "/interaction/abc".into(),
            client_name: "RP".into(),
            csrf_token: "tok".into(),
            error: None,
            notice: None,
            view: View::Prompt {
                method: "card".into(),
                prompt: PromptView::Card {
                    challenge: "caducee-card-v1:https://a.example:\"><script>".into(),
                    agent: "http://127.0.0.1:8765/v1/sign".into(),
                    return_to: "https://a.example/interaction/abc/card".into(),
                    tls_action: Some("https://a.example:8443/interaction/abc".into()),
                    notice: Some("Code porteur incorrect. 2 essais restants avant le blocage de la carte.".into()),
                    messages: r#"{"wrong_pin":"Code \"porteur\" <b>"}"#.into(),
                },
            },
            choosing: false,
            script: false,
            passkey_script: false,
            card_script: true,
            username: String::new(),
        }
        .render_page();
        assert!(html.contains("/assets/card.js"));
        assert!(html.contains("action=\"http://127.0.0.1:8765/v1/sign\" id=\"card-form\""));
        // The PIN: labelled, in the agent's form alone.
        assert!(html.contains("<label for=\"card-pin\">Code porteur</label>"));
        let agent_form = &html[html.find("id=\"card-form\"").unwrap()..html.find("id=\"card-answer\"").unwrap()];
        assert!(agent_form.contains("name=\"pin\""));
        assert_eq!(html.matches("name=\"pin\"").count(), 1);
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("role=\"alert\" id=\"card-notice\""));
        assert!(html.contains("action=\"https://a.example:8443/interaction/abc\""));
        assert!(html.contains("name=\"card_tls\" value=\"1\""));
    }
}
