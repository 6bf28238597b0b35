//! From factors to assurance: the `acr` the session reaches and the `amr` it reports.
//!
//! Levels (weakest first), as Pro Santé Connect's relying parties read them:
//! - `eidas1`: two factors of distinct kinds (password + one-time code, phone app);
//! - `eidas2`: as `eidas1`, with a phishing-resistant factor (WebAuthn);
//! - `eidas3`: a qualified hardware credential unlocked by its PIN (the CPS card).
//!
//! A factor may carry the level the operator gives it ([`FactorResult::level`]: a passkey
//! verified by its owner earns `webauthn.acr`); a login with such a factor and two kinds proven
//! reaches the highest of those levels instead of the counted one.

use serde::{Deserialize, Serialize};

use crate::method::{FactorKind, FactorResult, MethodId};

/// A completed authentication, ready to become an SSO session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthResult {
    pub subject: String,
    pub factors: Vec<FactorResult>,
    pub acr: String,
    pub amr: Vec<String>,
    pub auth_time: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Policy;

/// What the policy knows of a method the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    pub id: MethodId,
    pub kind: FactorKind,
    /// Kinds its factor proves besides `kind`.
    pub also: &'static [FactorKind],
    /// It proves something of a person already identified by an earlier factor.
    pub needs_subject: bool,
    /// It reads an identifier the person types.
    pub identifies: bool,
}

impl MethodInfo {
    /// Its factor alone proves two kinds: enough for a login.
    fn enough_alone(&self) -> bool {
        self.also.iter().any(|k| *k != self.kind)
    }
}

/// A way to sign in that the login page offers first: `method`, after `after` when the method
/// needs the person identified first (a password before a one-time code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub method: MethodId,
    pub after: Option<MethodId>,
}

impl Policy {
    /// The methods that may come next, given the factors proven so far. No order is fixed: a
    /// login opens with any method that identifies the person (a password, the card, the phone
    /// app, a passkey); then come factors of a kind not yet proven, for that person.
    pub fn next(&self, factors: &[FactorResult], methods: &[MethodInfo]) -> Vec<MethodId> {
        if factors.is_empty() {
            // A first factor that is not enough alone opens a login only if a second can follow.
            let seconds = methods.iter().any(|m| m.needs_subject);
            return methods
                .iter()
                .filter(|m| !m.needs_subject && (seconds || m.enough_alone()))
                .map(|m| m.id)
                .collect();
        }
        let proven: Vec<FactorKind> =
            factors.iter().flat_map(|f| std::iter::once(f.kind).chain(f.also.iter().copied())).collect();
        methods.iter().filter(|m| m.needs_subject && !proven.contains(&m.kind)).map(|m| m.id).collect()
    }

    /// The choices of the login page: every method that completes a login, alone (the phone
    /// app: its key and its PIN) or after the method that must come before it (a code after the
    /// password). A first factor that is never enough alone (the password) is not a choice of its
    /// own: it comes with the second.
    pub fn offers(&self, methods: &[MethodInfo]) -> Vec<Offer> {
        let opener = methods.iter().find(|m| m.identifies && !m.needs_subject && !m.enough_alone()).map(|m| m.id);
        methods
            .iter()
            .filter_map(|m| {
                if m.needs_subject {
                    opener.map(|after| Offer { method: m.id, after: Some(after) })
                } else if m.enough_alone() {
                    Some(Offer { method: m.id, after: None })
                } else {
                    None
                }
            })
            .collect()
    }

    /// The level reached by `factors`, or `None` if they are not enough for any level.
    pub fn acr(&self, factors: &[FactorResult]) -> Option<&'static str> {
        let kinds = distinct_kinds(factors);
        let card = factors.iter().any(|f| f.amr.iter().any(|a| a == "sc") && f.amr.iter().any(|a| a == "pin"));
        if card {
            return Some("eidas3");
        }
        if kinds >= 2 {
            let set = factors.iter().filter_map(|f| f.level.as_deref()).filter_map(level_named).max_by_key(|l| rank(l));
            if let Some(level) = set {
                return Some(level);
            }
            if factors.iter().any(|f| f.phishing_resistant) {
                return Some("eidas2");
            }
            return Some("eidas1");
        }
        None
    }

    /// RFC 8176 values: the union over factors, plus `mfa` when two kinds were used.
    pub fn amr(&self, factors: &[FactorResult]) -> Vec<String> {
        let mut amr: Vec<String> = Vec::new();
        for a in factors.iter().flat_map(|f| &f.amr) {
            if !amr.contains(a) {
                amr.push(a.clone());
            }
        }
        if distinct_kinds(factors) >= 2 && !amr.iter().any(|a| a == "mfa") {
            amr.push("mfa".to_owned());
        }
        amr
    }

    /// Combines the factors of one person into a result, if they reach a level, and at least
    /// `required` when the relying party asked for one.
    pub fn result(&self, factors: Vec<FactorResult>, now: i64, required: Option<&str>) -> Option<AuthResult> {
        let subject = factors.first()?.subject.clone();
        if factors.iter().any(|f| f.subject != subject) {
            return None;
        }
        let acr = self.acr(&factors)?;
        if let Some(required) = required
            && rank(acr) < rank(required)
        {
            return None;
        }
        let acr = acr.to_owned();
        let amr = self.amr(&factors);
        Some(AuthResult { subject, factors, acr, amr, auth_time: now })
    }
}

/// The levels, weakest first.
const LEVELS: &[&str] = &["eidas1", "eidas2", "eidas3"];

/// The level named `name`, if there is one.
pub fn level_named(name: &str) -> Option<&'static str> {
    LEVELS.iter().find(|l| **l == name).copied()
}

/// A level's rank; an unknown one ranks above every level (nothing reaches it).
pub(crate) fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(LEVELS.len())
}

fn distinct_kinds(factors: &[FactorResult]) -> usize {
    let mut kinds: Vec<FactorKind> =
        factors.iter().flat_map(|f| std::iter::once(f.kind).chain(f.also.iter().copied())).collect();
    kinds.sort_by_key(|k| *k as u8);
    kinds.dedup();
    kinds.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(subject: &str, kind: FactorKind, amr: &[&str], pr: bool) -> FactorResult {
        FactorResult {
            subject: subject.into(),
            method: "m".into(),
            credential: None,
            kind,
            also: Vec::new(),
            phishing_resistant: pr,
            amr: amr.iter().map(|a| (*a).to_owned()).collect(),
            at: 1,
            level: None,
        }
    }

    #[test]
    fn password_plus_otp_is_eidas1_with_mfa() {
        let f = vec![
            factor("a", FactorKind::Knowledge, &["pwd"], false),
            factor("a", FactorKind::Possession, &["otp"], false),
        ];
        let r = Policy.result(f, 10, None).expect("two factors");
        assert_eq!(r.acr, "eidas1");
        assert_eq!(r.amr, vec!["pwd", "otp", "mfa"]);
        assert_eq!(r.auth_time, 10);
    }

    #[test]
    fn a_level_below_what_the_relying_party_asked_for_is_no_login() {
        let f = vec![
            factor("a", FactorKind::Knowledge, &["pwd"], false),
            factor("a", FactorKind::Possession, &["otp"], false),
        ];
        assert!(Policy.result(f.clone(), 1, Some("eidas1")).is_some());
        assert!(Policy.result(f.clone(), 1, Some("eidas2")).is_none());
        assert!(Policy.result(f, 1, Some("unknown")).is_none());
    }

    #[test]
    fn one_factor_is_not_enough() {
        assert!(Policy.result(vec![factor("a", FactorKind::Knowledge, &["pwd"], false)], 1, None).is_none());
        let two_same = vec![
            factor("a", FactorKind::Possession, &["otp"], false),
            factor("a", FactorKind::Possession, &["otp"], false),
        ];
        assert!(Policy.result(two_same, 1, None).is_none());
    }

    #[test]
    fn factors_of_different_people_never_combine() {
        let f = vec![
            factor("a", FactorKind::Knowledge, &["pwd"], false),
            factor("b", FactorKind::Possession, &["otp"], false),
        ];
        assert!(Policy.result(f, 1, None).is_none());
    }

    fn info(id: MethodId, kind: FactorKind, needs_subject: bool, identifies: bool) -> MethodInfo {
        MethodInfo { id, kind, also: &[], needs_subject, identifies }
    }

    #[test]
    fn next_methods_follow_the_factors_not_a_fixed_order() {
        let methods = [
            info("pwd", FactorKind::Knowledge, false, true),
            info("otp", FactorKind::Possession, true, false),
            info("push", FactorKind::Possession, true, false),
            MethodInfo {
                id: "qr",
                kind: FactorKind::Possession,
                also: &[FactorKind::Knowledge],
                needs_subject: false,
                identifies: true,
            },
        ];
        assert_eq!(Policy.next(&[], &methods), vec!["pwd", "qr"]);
        let pwd = [factor("a", FactorKind::Knowledge, &["pwd"], false)];
        assert_eq!(Policy.next(&pwd, &methods), vec!["otp", "push"]);
        let both = [pwd[0].clone(), factor("a", FactorKind::Possession, &["otp"], false)];
        assert!(Policy.next(&both, &methods).is_empty());
        // The phone app's factor is a login by itself: its key, unlocked by its PIN.
        let phone = FactorResult {
            also: vec![FactorKind::Knowledge],
            ..factor("a", FactorKind::Possession, &["swk", "pin"], false)
        };
        let result = Policy.result(vec![phone], 5, None).expect("two kinds in one factor");
        assert_eq!(
            (result.acr.as_str(), result.amr),
            ("eidas1", vec!["swk".to_owned(), "pin".to_owned(), "mfa".to_owned()])
        );
        // The card or the phone app alone: the password then opens nothing.
        let alone = [methods[0], methods[3]];
        assert_eq!(Policy.next(&[], &alone), vec!["qr"]);
        let offers = Policy.offers(&methods);
        assert_eq!(
            offers,
            vec![
                Offer { method: "otp", after: Some("pwd") },
                Offer { method: "push", after: Some("pwd") },
                Offer { method: "qr", after: None },
            ]
        );
    }

    #[test]
    fn card_with_pin_is_eidas3_and_webauthn_eidas2() {
        let card = vec![
            factor("a", FactorKind::Possession, &["sc", "pin", "hwk"], true),
            factor("a", FactorKind::Knowledge, &["pin"], false),
        ];
        assert_eq!(Policy.acr(&card), Some("eidas3"));
        let wa = vec![
            factor("a", FactorKind::Knowledge, &["pwd"], false),
            factor("a", FactorKind::Possession, &["hwk"], true),
        ];
        assert_eq!(Policy.acr(&wa), Some("eidas2"));
    }

    #[test]
    fn a_level_set_by_the_operator_replaces_the_counted_one() {
        let passkey = |level: &str| FactorResult {
            also: vec![FactorKind::Knowledge],
            level: Some(level.to_owned()),
            ..factor("a", FactorKind::Possession, &["hwk", "user", "pin"], true)
        };
        assert_eq!(Policy.acr(&[passkey("eidas1")]), Some("eidas1"));
        assert_eq!(Policy.acr(&[passkey("eidas3")]), Some("eidas3"));
        // An unknown name is no level: the counted one stands.
        assert_eq!(Policy.acr(&[passkey("gold")]), Some("eidas2"));
        // One kind alone is no login, whatever the level.
        let alone = FactorResult { also: Vec::new(), ..passkey("eidas3") };
        assert_eq!(Policy.acr(&[alone]), None);
    }
}
