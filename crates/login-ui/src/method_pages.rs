//! What the login page shows of each method: its name, a line of help and its pictogram (as the
//! national portal does: carte CPS, application, code OTP…). The forms themselves are the
//! methods' template fragments (`templates/methods/{id}.html`, `templates/prompts/`).
//!
//! Adding a method here is one entry in [`describe`] and one branch in `methods/start.html`.

use authn_methods::Unusable;

use crate::i18n::Texts;

/// A method as the choice lists show it.
pub(crate) struct MethodCard {
    pub id: String,
    pub label: &'static str,
    pub hint: &'static str,
    /// Inline SVG, hidden from assistive technologies (the label says it all).
    pub icon: &'static str,
    /// The method this browser used last.
    pub last: bool,
    /// It makes a login by itself: the list starts it at once (a post), no password first.
    pub alone: bool,
    /// Its input is typed with the password, in one form (a code): the step must then finish in
    /// that request (the documented one-form login).
    pub together: bool,
}

const ICON_CODE: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="32" height="32"><rect x="5" y="2" width="14" height="20" rx="2" fill="none" stroke="currentColor" stroke-width="2"/><path d="M8 8h2M11 8h2M14 8h2M8 12h2M11 12h2M14 12h2M8 16h8" stroke="currentColor" stroke-width="2"/></svg>"#;
const ICON_MAIL: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="32" height="32"><rect x="2" y="5" width="20" height="14" rx="2" fill="none" stroke="currentColor" stroke-width="2"/><path d="M3 6l9 7 9-7" fill="none" stroke="currentColor" stroke-width="2"/></svg>"#;
const ICON_PHONE: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="32" height="32"><rect x="6" y="2" width="12" height="20" rx="2" fill="none" stroke="currentColor" stroke-width="2"/><path d="M9 12l2 2 4-4" fill="none" stroke="currentColor" stroke-width="2"/><path d="M11 19h2" stroke="currentColor" stroke-width="2"/></svg>"#;
const ICON_QR: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="32" height="32"><path d="M3 3h7v7H3zM14 3h7v7h-7zM3 14h7v7H3z" fill="none" stroke="currentColor" stroke-width="2"/><path d="M14 14h3v3h-3zM18 18h3v3h-3zM18 14h3M14 18v3" stroke="currentColor" stroke-width="2" fill="none"/></svg>"#;
const ICON_CARD: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="32" height="32"><rect x="2" y="5" width="20" height="14" rx="2" fill="none" stroke="currentColor" stroke-width="2"/><rect x="5" y="9" width="5" height="4" rx="1" fill="none" stroke="currentColor" stroke-width="1.5"/></svg>"#;
const ICON_KEY: &str = r#"<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="32" height="32"><circle cx="8" cy="12" r="4" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12 12h10M18 12v4M21 12v3" stroke="currentColor" stroke-width="2"/></svg>"#;

/// The card of method `id`, in the page's language.
pub(crate) fn describe(t: &'static Texts, id: &str, last: Option<&str>) -> MethodCard {
    let pk = crate::passkey_texts::for_lang(t.lang);
    let (label, hint, icon, together) = match id {
        "webauthn" => (pk.method_passkey, pk.method_passkey_hint, ICON_KEY, false),
        "webauthn-key" => (pk.method_key, pk.method_key_hint, ICON_KEY, false),
        "card" => {
            let ct = crate::card_texts::for_lang(t.lang);
            (ct.method, ct.method_hint, ICON_CARD, false)
        }
        "otp" => (t.method_otp, t.method_otp_hint, ICON_CODE, true),
        "mail" => (t.method_mail, t.method_mail_hint, ICON_MAIL, false),
        "push" => (t.method_push, t.method_push_hint, ICON_PHONE, false),
        "qr" => (t.method_qr, t.method_qr_hint, ICON_QR, false),
        _ => (t.method_other, "", ICON_KEY, false),
    };
    MethodCard { id: id.to_owned(), label, hint, icon, last: last == Some(id), together, alone: false }
}

/// A refused attempt, as the form that was posted says it: never which part was wrong.
pub(crate) fn invalid_text(t: &'static Texts, method: &str, then: Option<&str>) -> &'static str {
    if method == "qr" {
        return t.qr_invalid;
    }
    if method.starts_with("webauthn") {
        return crate::passkey_texts::for_lang(t.lang).invalid;
    }
    if method == "card" {
        return crate::card_texts::for_lang(t.lang).invalid;
    }
    match then {
        Some("mail") => t.mail_invalid,
        Some("push") => t.push_invalid,
        _ => t.invalid_credentials,
    }
}

/// A step whose request ran out.
pub(crate) fn expired_text(t: &'static Texts, method: &str) -> &'static str {
    match method {
        "push" => t.push_expired,
        "qr" => t.qr_expired,
        "webauthn" | "webauthn-key" => crate::passkey_texts::for_lang(t.lang).expired,
        "card" => crate::card_texts::for_lang(t.lang).expired,
        _ => t.step_expired,
    }
}

/// Why a method cannot run now.
pub(crate) fn unusable_text(t: &'static Texts, method: &str, why: Unusable) -> String {
    match (method, why) {
        ("mail", Unusable::NotEnrolled) => t.mail_no_address.to_owned(),
        ("webauthn-key", Unusable::NotEnrolled) => crate::passkey_texts::for_lang(t.lang).not_enrolled.to_owned(),
        ("card", Unusable::NotEnrolled) => crate::card_texts::for_lang(t.lang).tls_none.to_owned(),
        ("card", Unusable::Blocked) => crate::card_texts::for_lang(t.lang).account_blocked.to_owned(),
        ("mail", Unusable::Throttled { retry_after }) => {
            format!("{} {retry_after} {}", t.mail_throttled_prefix, t.mail_throttled_suffix)
        }
        (_, Unusable::NotEnrolled) => t.push_no_device.to_owned(),
        (_, Unusable::Blocked) => t.push_blocked.to_owned(),
        (_, Unusable::Throttled { retry_after }) => {
            format!("{} {retry_after} {}", t.push_throttled_prefix, t.push_throttled_suffix)
        }
    }
}
