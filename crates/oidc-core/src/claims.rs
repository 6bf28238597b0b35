//! The professional's identity as released to relying parties: which claims each scope
//! releases, and the [`AccountDirectory`] the protocol reads accounts from.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Scopes this provider knows, in the order discovery lists them.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "scope_all"];

/// Claims that `profile` releases (besides `sub`).
const PROFILE_CLAIMS: [&str; 3] = ["given_name", "family_name", "preferred_username"];

/// A professional's account as the protocol sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub subject: String,
    /// Blocked accounts get no tokens and their tokens stop working.
    pub active: bool,
    pub given_name: String,
    pub family_name: String,
    /// The national identifier (`SubjectNameID`), also `preferred_username`.
    pub national_id: String,
    pub email: Option<String>,
    /// Every professional claim `scope_all` releases (Pro Santé Connect names and shapes).
    pub professional_claims: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account directory unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// Shared rather than owned: a directory may keep accounts in a cache, and token, userinfo
    /// and authorize requests read one each; copying its claims every time was the code
    /// exchange's largest source of allocations.
    async fn account(&self, subject: &str) -> Result<Option<Arc<Account>>, AccountError>;
}

/// Every claim name a client can receive, for discovery.
pub fn claims_supported() -> Vec<&'static str> {
    let mut names = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
        "azp",
        "at_hash",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "email",
        "email_verified",
        "SubjectNameID",
        "SubjectRefPro",
        "codeCivilite",
        "SubjectOrganization",
        "SubjectOrganizationID",
        "SubjectRole",
        "Secteur_Activite",
        "Palier_Authentification",
        "codeGenreActivite",
        "Acces_Regulation_Medicale",
        "Mode_Acces_Raison",
        "PSI_Locale",
        "UITVersion",
        "otherIds",
    ];
    names.dedup();
    names
}

/// The claims `scopes` release about `account`, without `sub` (added by the caller).
///
/// `acr` is passed so that `scope_all` can state the assurance step as Pro Santé Connect does
/// (`Palier_Authentification`).
pub fn released_claims(account: &Account, scopes: &[String], acr: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let all = has("scope_all");
    if has("profile") || all {
        out.insert("name".into(), Value::String(format!("{} {}", account.given_name, account.family_name)));
        out.insert("given_name".into(), Value::String(account.given_name.clone()));
        out.insert("family_name".into(), Value::String(account.family_name.clone()));
        out.insert("preferred_username".into(), Value::String(account.national_id.clone()));
    }
    if (has("email") || all)
        && let Some(email) = &account.email
    {
        out.insert("email".into(), Value::String(email.clone()));
        // Addresses come from the operator's directory of professionals, not from the
        // professionals themselves, and one-time codes are mailed to them.
        out.insert("email_verified".into(), Value::Bool(true));
    }
    if all {
        for (k, v) in &account.professional_claims {
            if !PROFILE_CLAIMS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
        out.entry("SubjectNameID").or_insert_with(|| Value::String(account.national_id.clone()));
        out.insert("Palier_Authentification".into(), Value::String(palier(acr)));
    }
    out
}

/// How the professional signed in, as Pro Santé Connect's relying parties read it
/// (`authMode`), from the `amr` of the login: `CARD` for the CPS card, `MOBILE` for the phone
/// app (push approval, QR code online or offline) and for a passkey or security key (a
/// device-held key its owner unlocks: `hwk` or `swk` with `pin`; Pro Santé Connect's relying
/// parties know no other value for it), `OTP` for a one-time code (TOTP app, OTP token, mail,
/// activation code), `PASSWORD` otherwise.
pub fn auth_mode(amr: &[String]) -> &'static str {
    let has = |v: &str| amr.iter().any(|a| a == v);
    if has("sc") {
        "CARD"
    } else if has("swk") || has("pin") {
        "MOBILE"
    } else if has("otp") {
        "OTP"
    } else {
        "PASSWORD"
    }
}

/// The scope that releases claim `name`, if any (`claims` requests are honoured only for a
/// client allowed that scope).
pub fn scope_of(name: &str) -> Option<&'static str> {
    match name {
        "name" | "given_name" | "family_name" | "preferred_username" => Some("profile"),
        "email" | "email_verified" => Some("email"),
        _ if claims_supported().contains(&name) && !PROTOCOL_CLAIMS.contains(&name) => Some("scope_all"),
        _ => None,
    }
}

/// Claims of the protocol itself, never released as a person's claim.
const PROTOCOL_CLAIMS: [&str; 12] =
    ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash"];

/// The claims of `names` the account has, whichever scope releases them (the caller checked the
/// client may have those scopes).
pub fn requested_claims(account: &Account, names: &[String], acr: &str) -> Map<String, Value> {
    if names.is_empty() {
        return Map::new();
    }
    let all: Vec<String> = ["profile", "email", "scope_all"].iter().map(|s| (*s).to_owned()).collect();
    released_claims(account, &all, acr).into_iter().filter(|(k, _)| names.iter().any(|n| n == k)).collect()
}

/// Pro Santé Connect's assurance step, `code^OID`: `APPPRIP3` in every answer it gives, card or
/// phone app alike, which relying parties compare with; the strength itself is in `acr`.
fn palier(_acr: &str) -> String {
    "APPPRIP3^1.2.250.1.213.1.5.1.1.1".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        let mut pro = Map::new();
        pro.insert("SubjectNameID".into(), Value::String("899700000001".into()));
        pro.insert("SubjectRefPro".into(), serde_json::json!({"codeCivilite": "M", "exercices": []}));
        Account {
            subject: "f:1:899700000001".into(),
            active: true,
            given_name: "Jean".into(),
            family_name: "Dupont".into(),
            national_id: "899700000001".into(),
            email: Some("jean@example.org".into()),
            professional_claims: pro,
        }
    }

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn openid_alone_releases_nothing_more() {
        assert!(released_claims(&account(), &scopes(&["openid"]), "eidas1").is_empty());
    }

    #[test]
    fn profile_and_email_release_standard_claims_only() {
        let c = released_claims(&account(), &scopes(&["openid", "profile", "email"]), "eidas1");
        assert_eq!(c["given_name"], "Jean");
        assert_eq!(c["preferred_username"], "899700000001");
        assert_eq!(c["email"], "jean@example.org");
        assert_eq!(c["email_verified"], true);
        assert_eq!(c["name"], "Jean Dupont");
        assert!(!c.contains_key("SubjectRefPro"));
    }

    #[test]
    fn the_auth_mode_follows_the_factors() {
        let amr = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        assert_eq!(auth_mode(&amr(&["sc", "pin", "hwk"])), "CARD");
        assert_eq!(auth_mode(&amr(&["swk", "pin", "mfa"])), "MOBILE");
        assert_eq!(auth_mode(&amr(&["pwd", "swk", "mfa"])), "MOBILE");
        assert_eq!(auth_mode(&amr(&["otp", "pin", "mfa"])), "MOBILE");
        assert_eq!(auth_mode(&amr(&["pwd", "otp", "mfa"])), "OTP");
        // Passkeys and security keys (WebAuthn), verified by their owner.
        assert_eq!(auth_mode(&amr(&["hwk", "user", "pin", "mfa"])), "MOBILE");
        assert_eq!(auth_mode(&amr(&["pwd", "hwk", "user", "pin", "mfa"])), "MOBILE");
        assert_eq!(auth_mode(&amr(&["pwd"])), "PASSWORD");
    }

    #[test]
    fn scope_all_releases_professional_claims() {
        let c = released_claims(&account(), &scopes(&["openid", "scope_all"]), "eidas3");
        assert_eq!(c["SubjectNameID"], "899700000001");
        assert_eq!(c["SubjectRefPro"]["codeCivilite"], "M");
        assert_eq!(c["family_name"], "Dupont");
        assert_eq!(c["Palier_Authentification"], "APPPRIP3^1.2.250.1.213.1.5.1.1.1");
        let phone = released_claims(&account(), &scopes(&["openid", "scope_all"]), "eidas1");
        assert_eq!(phone["Palier_Authentification"], "APPPRIP3^1.2.250.1.213.1.5.1.1.1", "as PSC answers");
    }
}
