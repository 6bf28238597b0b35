//! `offline-code PAYLOAD`: QR-code login without network. From the login page's QR code
//! ([`crate::login_qr`]: same checks as `scan`, before the PIN is asked), the OCRA response
//! (RFC 6287) to the QR code's `challenge` under the secret and suite shared at enrolment,
//! and the phone's identifier: the professional types both on the login page. Nothing is sent
//! anywhere.

use serde_json::json;

use super::{Context, Report, local_time};
use crate::Error;
use crate::device::now;
use crate::login_qr::LoginPayload;
use crate::state::{Offline, Secrets};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// La charge utile du QR code de la page de connexion (caducee-auth://login?…).
    pub payload: String,
}

/// What to type on the login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineCode {
    /// The phone's identifier (ten digits).
    pub id: String,
    /// The OCRA response.
    pub code: String,
}

/// The code for `challenge` (the QR code's, hexadecimal) under what enrolment gave.
pub fn compute(offline: &Offline, challenge: &str) -> Result<OfflineCode, Error> {
    let (suite, secret) = offline.check().map_err(|detail| Error::Declined {
        error: "offline_unavailable",
        detail: format!("connexion hors ligne impossible avec cet enrôlement : {detail}"),
    })?;
    let input = ocra::DataInput { question: challenge, ..ocra::DataInput::default() };
    let code = suite.compute(&secret, &input).map_err(|e| Error::Declined {
        error: "invalid_payload",
        detail: format!("QR code de connexion inutilisable hors ligne : {e}"),
    })?;
    Ok(OfflineCode { id: offline.id.clone(), code })
}

pub fn run(cx: &Context, args: Args) -> Result<Report, Error> {
    let payload = LoginPayload::parse(&args.payload)?;
    let state = cx.state.load()?;
    payload.check(&state.server, now())?;
    let (_, secrets) = cx.open()?;
    report(&payload, &secrets)
}

/// What the verb says once the state is open.
fn report(payload: &LoginPayload, secrets: &Secrets) -> Result<Report, Error> {
    let Some(offline) = secrets.offline.as_ref() else {
        return Err(Error::Declined {
            error: "offline_unavailable",
            detail: "la connexion hors ligne n'est pas disponible pour cet enrôlement (le serveur ne l'offrait pas \
                     quand ce téléphone a été enrôlé) : utilisez scan, ou retirez ce téléphone dans le portefeuille \
                     et enrôlez-le de nouveau"
                .into(),
        });
    };
    let OfflineCode { id, code } = compute(offline, &payload.challenge)?;
    let human = format!(
        "Identifiant (ID) : {id} — Mot de passe : {code}\n\
         Pour : {} (nom donné par le QR code), valable jusqu'au {}.\n\
         Ne tapez ce code que sur la page de connexion qui affiche ce QR code.",
        payload.client,
        local_time(payload.expires_at)
    );
    Ok(Report::ok(json!({ "id": id, "code": code, "expires_at": payload.expires_at }), human))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::device::DeviceKey;
    use crate::pin::PinSource;
    use crate::state::{Identity, State, StateFile};

    const SERVER: &str = "https://idp.example/push/v1";
    const SECRET: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";
    const SUITE: &str = "OCRA-1:HOTP-SHA256-8:QH32";

    fn offline() -> Offline {
        use base64::Engine as _;
        Offline {
            id: "1234567890".into(),
            secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET),
            suite: SUITE.into(),
        }
    }

    /// A state enrolled with `offline`, sealed under PIN 2468, as `enrol` writes it.
    fn enrolled(dir: &std::path::Path, offline: Option<Offline>) -> Context {
        let file = StateFile::new(dir.join("state.json"));
        let secrets = Secrets { device_key: DeviceKey::generate().unwrap(), offline };
        let id = Identity { server: SERVER, device_id: "dev-1", label: None, enrolled_at: 1 };
        file.save(&State::seal(id, &secrets, "2468", file.path()).unwrap()).unwrap();
        Context { state: file, pin: PinSource::Stdin }
    }

    fn payload(server: &str, challenge: &str, expires_at: i64) -> String {
        let server: String = url::form_urlencoded::byte_serialize(server.as_bytes()).collect();
        format!("caducee-auth://login?server={server}&challenge={challenge}&client=Messagerie&expires_at={expires_at}")
    }

    #[test]
    fn the_code_is_the_ocra_response_to_the_challenge() {
        let challenge = "00112233445566778899aabbccddeeff";
        let expected = ocra::Suite::parse(SUITE)
            .unwrap()
            .compute(&SECRET, &ocra::DataInput { question: challenge, ..ocra::DataInput::default() })
            .unwrap();
        let got = compute(&offline(), challenge).unwrap();
        assert_eq!(got, OfflineCode { id: "1234567890".into(), code: expected });
        assert_ne!(compute(&offline(), "00112233445566778899aabbccddeef0").unwrap().code, got.code);
        let mut broken = offline();
        broken.suite = "OCRA-1:HOTP-SHA256-8:C-QH32".into();
        assert!(matches!(compute(&broken, challenge), Err(Error::Declined { error: "offline_unavailable", .. })));
    }

    #[test]
    fn the_verb_checks_the_payload_before_the_pin_then_computes_from_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let challenge = "ffeeddccbbaa99887766554433221100";
        let expires_at = now() + 60;
        let expected = compute(&offline(), challenge).unwrap();

        // Refused before the PIN is asked (none could be read here: it would fail otherwise).
        let cx = enrolled(dir.path(), Some(offline()));
        let other = payload("https://evil.example/push/v1", challenge, expires_at);
        assert!(matches!(run(&cx, Args { payload: other }), Err(Error::Declined { error: "other_server", .. })));
        let old = payload(SERVER, challenge, now() - 1);
        assert!(matches!(run(&cx, Args { payload: old }), Err(Error::Declined { error: "expired", .. })));
        let garbled = payload(SERVER, "not hex", expires_at);
        assert!(matches!(run(&cx, Args { payload: garbled }), Err(Error::Declined { error: "invalid_payload", .. })));

        // Once open, the state's secrets give the same code.
        let good = LoginPayload::parse(&payload(SERVER, challenge, expires_at)).unwrap();
        let (_, secrets) = cx.state.unlock("2468").unwrap();
        let report = report(&good, &secrets).unwrap();
        assert_eq!(report.json, json!({ "id": "1234567890", "code": expected.code, "expires_at": expires_at }));
        assert_eq!(report.exit_code, 0);
        assert!(
            report.human.starts_with(&format!("Identifiant (ID) : 1234567890 — Mot de passe : {}", expected.code)),
            "{}",
            report.human
        );

        // Enrolled with a provider that gave no offline data: unavailable, exit 2.
        let bare = tempfile::tempdir().unwrap();
        let (_, secrets) = enrolled(bare.path(), None).state.unlock("2468").unwrap();
        let e = super::report(&good, &secrets).unwrap_err();
        assert!(matches!(e, Error::Declined { error: "offline_unavailable", .. }));
        assert_eq!(e.exit_code(), 2);
    }
}
