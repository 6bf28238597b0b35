//! The login page's QR code («connexion par QR code»):
//! `caducee-auth://login?server=<{issuer}/push/v1, percent-encoded>&challenge=<32 lowercase hex>&client=<relying party's name, percent-encoded>&expires_at=<unix seconds>`.
//!
//! Read by `scan` (which answers it over the network) and `offline-code` (which computes the
//! code to type instead). Both refuse, before asking the PIN, a payload that is malformed,
//! that names a server other than the one this phone is enrolled with (a QR code shown by
//! another site must never be answered: that is how a phishing page would relay a login), or
//! that has expired. The `client` it names is only what the QR code claims; `scan` shows the
//! name the provider gives instead.

use crate::Error;
use crate::http;
use crate::state::CHALLENGE_HEX_LEN;

/// The payload's scheme.
pub const SCHEME: &str = "caducee-auth";

/// At most this many characters of the relying party's name are kept.
const MAX_CLIENT_CHARS: usize = 200;

/// A login QR code's payload, read and checked for its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPayload {
    /// The provider's `/push/v1` URL, as [`http::endpoint`] checks it.
    pub server: String,
    /// 32 lowercase hexadecimal digits.
    pub challenge: String,
    /// The relying party's name as the QR code gives it (control characters removed).
    pub client: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::Declined { error: "invalid_payload", detail: format!("QR code de connexion illisible : {}", detail.into()) }
}

impl LoginPayload {
    /// Reads a payload (surrounding spaces ignored). Each parameter once; unknown ones are
    /// ignored.
    pub fn parse(text: &str) -> Result<LoginPayload, Error> {
        let text = text.trim();
        if !text.get(..SCHEME.len() + 1).is_some_and(|s| s.eq_ignore_ascii_case(&format!("{SCHEME}:"))) {
            return Err(invalid(format!("ce n'est pas un QR code de connexion ({SCHEME}://login?…)")));
        }
        let url = url::Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        if url.host_str() != Some("login") || !matches!(url.path(), "" | "/") {
            return Err(invalid(format!("ce n'est pas un QR code de connexion ({SCHEME}://login?…)")));
        }
        let one = |name: &str| -> Result<String, Error> {
            let mut values = url.query_pairs().filter(|(k, _)| k == name).map(|(_, v)| v.into_owned());
            match (values.next(), values.next()) {
                (Some(value), None) => Ok(value),
                (None, _) => Err(invalid(format!("il manque {name}"))),
                (Some(_), Some(_)) => Err(invalid(format!("{name} y figure plusieurs fois"))),
            }
        };
        let server = one("server")?;
        let server = http::endpoint(&server).map_err(|e| invalid(e.to_string()))?;
        let challenge = one("challenge")?;
        if challenge.len() != CHALLENGE_HEX_LEN || !challenge.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(format!(
                "challenge doit compter {CHALLENGE_HEX_LEN} chiffres hexadécimaux minuscules"
            )));
        }
        let client: String = one("client")?.chars().filter(|c| !c.is_control()).take(MAX_CLIENT_CHARS).collect();
        let client = client.trim().to_owned();
        if client.is_empty() {
            return Err(invalid("client est vide"));
        }
        let expires_at = one("expires_at")?;
        let expires_at =
            if !expires_at.is_empty() && expires_at.len() <= 12 && expires_at.bytes().all(|b| b.is_ascii_digit()) {
                expires_at.parse::<i64>().map_err(|_| invalid("expires_at n'est pas un nombre de secondes"))?
            } else {
                return Err(invalid("expires_at n'est pas un nombre de secondes"));
            };
        Ok(LoginPayload { server, challenge, client, expires_at })
    }

    /// Refuses the payload if it names another server than `enrolled` (this phone's
    /// `/push/v1` URL) or has expired at `now`.
    pub fn check(&self, enrolled: &str, now: i64) -> Result<(), Error> {
        if !same_server(&self.server, enrolled) {
            return Err(Error::Declined {
                error: "other_server",
                detail: format!(
                    "REFUSÉ : ce QR code vient d'un autre serveur ({}) que celui où ce téléphone est enrôlé ({enrolled}). \
                     Ne l'approuvez pas et n'en tapez pas le code : une page qui vous le montre cherche peut-être à se \
                     connecter à votre place (hameçonnage).",
                    self.server
                ),
            });
        }
        if now > self.expires_at {
            return Err(Error::Declined {
                error: "expired",
                detail: format!(
                    "ce QR code a expiré ({}) : rechargez la page de connexion pour en obtenir un nouveau",
                    crate::commands::local_time(self.expires_at)
                ),
            });
        }
        Ok(())
    }
}

/// Whether two `/push/v1` URLs name the same server: equal once parsed (scheme and host case,
/// default port), path included.
fn same_server(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const SERVER: &str = "https://idp.example/auth/realms/esante-wallet/push/v1";
    const CHALLENGE: &str = "0123456789abcdef0123456789abcdef";

    fn payload(server: &str, rest: &str) -> String {
        let server: String = url::form_urlencoded::byte_serialize(server.as_bytes()).collect();
        format!("caducee-auth://login?server={server}{rest}")
    }

    fn good() -> String {
        payload(
            SERVER,
            &format!("&challenge={CHALLENGE}&client=Dossier%20m%C3%A9dical%20partag%C3%A9&expires_at=1800000060"),
        )
    }

    fn declined(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
        match result {
            Err(Error::Declined { error, .. }) => error,
            other => panic!("declined expected: {other:?}"),
        }
    }

    #[test]
    fn a_good_payload_reads() {
        let p = LoginPayload::parse(&format!("  {}\n", good())).unwrap();
        assert_eq!(
            p,
            LoginPayload {
                server: SERVER.into(),
                challenge: CHALLENGE.into(),
                client: "Dossier médical partagé".into(),
                expires_at: 1_800_000_060,
            }
        );
        p.check(SERVER, 1_800_000_000).unwrap();
        p.check(SERVER, 1_800_000_060).unwrap();
        // The same server written otherwise.
        p.check("HTTPS://IDP.example:443/auth/realms/esante-wallet/push/v1", 1_800_000_000).unwrap();
        // Parameters in any order, unknown ones ignored, an issuer URL taken as its /push/v1.
        let other_order = format!(
            "CADUCEE-AUTH://login/?expires_at=1800000060&future=1&client=RP&challenge={CHALLENGE}&server=https%3A%2F%2Fidp.example%2Fauth%2Frealms%2Fesante-wallet"
        );
        let p = LoginPayload::parse(&other_order).unwrap();
        assert_eq!((p.server.as_str(), p.client.as_str()), (SERVER, "RP"));
        let local = payload("http://127.0.0.1:8080/push/v1", &format!("&challenge={CHALLENGE}&client=RP&expires_at=1"));
        assert_eq!(LoginPayload::parse(&local).unwrap().server, "http://127.0.0.1:8080/push/v1");
    }

    #[test]
    fn another_server_is_refused() {
        let p = LoginPayload::parse(&good()).unwrap();
        for enrolled in [
            "https://other.example/auth/realms/esante-wallet/push/v1",
            "https://idp.example/push/v1",
            "https://idp.example:8443/auth/realms/esante-wallet/push/v1",
            "https://idp.example.evil.example/auth/realms/esante-wallet/push/v1",
        ] {
            let result = p.check(enrolled, 1_800_000_000);
            assert_eq!(declined(result), "other_server", "{enrolled}");
        }
        let e = p.check("https://other.example/push/v1", 1_800_000_000).unwrap_err();
        assert!(e.to_string().contains("autre serveur"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_json()["error"], "other_server");
        // A look-alike written into the payload is another server too.
        let evil = payload(
            "https://idp.example@evil.example/push/v1",
            &format!("&challenge={CHALLENGE}&client=X&expires_at=1"),
        );
        assert!(LoginPayload::parse(&evil).is_err());
    }

    #[test]
    fn an_expired_payload_is_refused() {
        let p = LoginPayload::parse(&good()).unwrap();
        let e = p.check(SERVER, 1_800_000_061).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(declined(Err::<(), _>(e)), "expired");
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let rest = |challenge: &str, client: &str, expires: &str| {
            payload(SERVER, &format!("&challenge={challenge}&client={client}&expires_at={expires}"))
        };
        let bad = [
            String::new(),
            "caducee-auth:".into(),
            "caducee-push://enrol?server=x&code=y".into(),
            "https://idp.example/login?challenge=x".into(),
            good().replace("//login?", "//enrol?"),
            good().replace("//login?", "//login/other?"),
            good().replace("server=", "serveur="),
            format!("{}&server=https%3A%2F%2Fevil.example%2Fpush%2Fv1", good()),
            format!("{}&challenge={CHALLENGE}", good()),
            payload("http://idp.example/push/v1", &format!("&challenge={CHALLENGE}&client=RP&expires_at=1")),
            payload("not a url", &format!("&challenge={CHALLENGE}&client=RP&expires_at=1")),
            rest("0123456789ABCDEF0123456789ABCDEF", "RP", "1"),
            rest("0123456789abcdef", "RP", "1"),
            rest(&format!("{CHALLENGE}00"), "RP", "1"),
            rest("0123456789abcdef0123456789abcdeg", "RP", "1"),
            rest(CHALLENGE, "", "1"),
            rest(CHALLENGE, "%0A%09", "1"),
            rest(CHALLENGE, "RP", ""),
            rest(CHALLENGE, "RP", "-1"),
            rest(CHALLENGE, "RP", "1e9"),
            rest(CHALLENGE, "RP", "99999999999999999999"),
            good().replace("&client=", "&cli="),
            good().replace("&expires_at=", "&expires="),
            good().replace(&format!("challenge={CHALLENGE}"), "chall=x"),
        ];
        for text in bad {
            let result = LoginPayload::parse(&text);
            assert_eq!(declined(result), "invalid_payload", "{text}");
        }
        // Control characters are dropped from the name, which is bounded.
        let long = "A".repeat(500);
        let p = LoginPayload::parse(&rest(CHALLENGE, &format!("R%1B%5B2JP{long}"), "1")).unwrap();
        assert!(p.client.starts_with("R[2JPA"));
        assert_eq!(p.client.chars().count(), MAX_CLIENT_CHARS);
    }
}
