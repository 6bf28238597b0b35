//! `enrol CODE_OR_URI [--server URL] [--label TEXT]`: makes the device key, redeems the
//! wallet's enrolment code with it (`POST /push/v1/devices`, the public key in the header's
//! `jwk`), then seals the key under a new PIN in the state file, with what offline sign-in
//! needs when the answer carries it (`offline_id`, `offline_secret`, `offline_suite`).

use serde_json::{Value, json};

use super::{Context, Report, text};
use crate::Error;
use crate::device::{DeviceKey, Signer, now};
use crate::http::{self, DeviceApi, TIMEOUT, paths};
use crate::pin;
use crate::state::{Identity, Offline, Secrets, State};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// La charge utile du QR code (caducee-push://enrol?server=…&code=…) ou le code seul.
    pub code_or_uri: String,
    /// L'adresse du serveur (l'URL …/push/v1 affichée sous le QR code), avec un code seul.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Le nom de ce téléphone dans le portefeuille.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
}

/// Where to enrol, read from the QR payload or the code and `--server`.
#[derive(Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The `/push/v1` URL.
    pub endpoint: String,
    pub code: String,
}

/// The QR payload's scheme.
pub const SCHEME: &str = "caducee-push";

impl Invitation {
    pub fn parse(code_or_uri: &str, server: Option<&str>) -> Result<Invitation, Error> {
        let given = code_or_uri.trim();
        let (from_uri, code) = if given.to_ascii_lowercase().starts_with(&format!("{SCHEME}:")) {
            let url = url::Url::parse(given).map_err(|e| Error::Usage(format!("QR code illisible : {e}")))?;
            if url.host_str() != Some("enrol") || !matches!(url.path(), "" | "/") {
                return Err(Error::Usage(format!("ce QR code n'est pas une invitation à enrôler : {given}")));
            }
            let pair = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
            let server = pair("server").ok_or_else(|| Error::Usage("le QR code ne dit pas quel serveur".into()))?;
            let code = pair("code").ok_or_else(|| Error::Usage("le QR code ne porte pas de code".into()))?;
            (Some(server), code)
        } else {
            (None, given.to_owned())
        };
        let server = match (from_uri, server) {
            (Some(uri), Some(option)) if http::endpoint(&uri)? != http::endpoint(option)? => {
                return Err(Error::Usage("--server contredit le serveur du QR code".into()));
            }
            (Some(uri), _) => uri,
            (None, Some(option)) => option.to_owned(),
            (None, None) => return Err(Error::Usage("un code seul demande --server URL".into())),
        };
        if code.is_empty() || code.len() > 128 || !code.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::Usage("code d'enrôlement invalide".into()));
        }
        Ok(Invitation { endpoint: http::endpoint(&server)?, code })
    }
}

pub async fn run(cx: &Context, args: Args) -> Result<Report, Error> {
    let invitation = Invitation::parse(&args.code_or_uri, args.server.as_deref())?;
    cx.state.prepare_new()?;
    let pin = pin::new_pin(cx.pin)?;
    let key = DeviceKey::generate()?;
    let mut claims = json!({ "action": "enrol", "code": invitation.code });
    if let Some(label) = args.label.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        claims["label"] = json!(label);
    }
    let api = DeviceApi::new(&invitation.endpoint)?;
    let jws = key.sign(Signer::NewKey, api.endpoint(), claims, now())?;
    let answer = api.post(paths::DEVICES, jws, TIMEOUT).await?;
    let device_id = text(&answer, "device_id")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| Error::Protocol { status: 201, detail: "pas de device_id dans la réponse".into() })?
        .to_owned();
    // The device is enrolled on the server now: offline data it gave wrong only leaves
    // offline sign-in off, said below, rather than losing the enrolment.
    let (offline, offline_warning) = match offline_from(&answer) {
        Ok(offline) => (offline, None),
        Err(warning) => (None, Some(warning)),
    };
    let offline_id = offline.as_ref().map(|o| o.id.clone());
    let secrets = Secrets { device_key: key, offline };
    let id =
        Identity { server: api.endpoint(), device_id: &device_id, label: args.label.as_deref(), enrolled_at: now() };
    let state = State::seal(id, &secrets, &pin, cx.state.path())?;
    cx.state.save(&state)?;
    let json = json!({
        "outcome": "enrolled",
        "device_id": device_id,
        "server": api.endpoint(),
        "label": args.label,
        "state": cx.state.path(),
        "offline_codes": offline_id.is_some(),
        "offline_id": offline_id,
        "offline_warning": offline_warning,
    });
    let offline = match (&offline_id, &offline_warning) {
        (Some(id), _) => format!("Connexion hors ligne (QR code) : disponible, identifiant {id}."),
        (None, Some(warning)) => {
            format!("Connexion hors ligne (QR code) : indisponible, réponse du serveur invalide ({warning}).")
        }
        (None, None) => "Connexion hors ligne (QR code) : le serveur ne la propose pas.".to_owned(),
    };
    let human = format!(
        "Téléphone enrôlé (appareil {device_id}) auprès de {}.\n{offline}\nÉtat : {}",
        api.endpoint(),
        cx.state.path().display()
    );
    Ok(Report::ok(json, human))
}

/// Offline sign-in from the enrolment answer: all of `offline_id`, `offline_secret` and
/// `offline_suite`, checked, or none (an older provider).
fn offline_from(answer: &Value) -> Result<Option<Offline>, String> {
    let field = |name: &str| answer.get(name).filter(|v| !v.is_null());
    match (field("offline_id"), field("offline_secret"), field("offline_suite")) {
        (None, None, None) => Ok(None),
        (Some(Value::String(id)), Some(Value::String(secret)), Some(Value::String(suite))) => {
            let offline = Offline { id: id.clone(), secret: secret.clone(), suite: suite.clone() };
            offline.check()?;
            Ok(Some(offline))
        }
        _ => Err("offline_id, offline_secret et offline_suite vont ensemble, en texte".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_qr_payload_or_a_code_with_server_name_the_endpoint_and_the_code() {
        let uri = "caducee-push://enrol?server=http%3A%2F%2F127.0.0.1%3A8080%2Fpush%2Fv1&code=abc123";
        let expected = Invitation { endpoint: "http://127.0.0.1:8080/push/v1".into(), code: "abc123".into() };
        assert_eq!(Invitation::parse(uri, None).unwrap(), expected);
        assert_eq!(Invitation::parse(uri, Some("http://127.0.0.1:8080/push/v1/")).unwrap(), expected);
        assert_eq!(Invitation::parse(" abc123 ", Some("http://127.0.0.1:8080")).unwrap(), expected);
        assert!(Invitation::parse(uri, Some("https://other.example/push/v1")).is_err());
        assert!(Invitation::parse("abc123", None).is_err());
        assert!(Invitation::parse("caducee-push://login?server=x&code=y", None).is_err());
        assert!(Invitation::parse("caducee-push://enrol?code=y", None).is_err());
        assert!(Invitation::parse("caducee-push://enrol?server=http%3A%2F%2Fevil.example%2F&code=y", None).is_err());
    }

    #[test]
    fn offline_data_comes_whole_and_checked_or_not_at_all() {
        let given = json!({
            "device_id": "dev-1",
            "offline_id": "0123456789",
            "offline_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYyE",
            "offline_suite": "OCRA-1:HOTP-SHA256-8:QH32",
        });
        let offline = offline_from(&given).unwrap().unwrap();
        assert_eq!((offline.id.as_str(), offline.suite.as_str()), ("0123456789", "OCRA-1:HOTP-SHA256-8:QH32"));
        assert!(offline_from(&json!({ "device_id": "dev-1" })).unwrap().is_none());
        assert!(offline_from(&json!({ "device_id": "dev-1", "offline_id": null })).unwrap().is_none());
        for (field, value) in [
            ("offline_id", json!(null)),
            ("offline_id", json!(123456789)),
            ("offline_id", json!("12345")),
            ("offline_secret", json!("short")),
            ("offline_suite", json!("OCRA-1:HOTP-SHA256-8:QN08")),
        ] {
            let mut broken = given.clone();
            broken[field] = value;
            assert!(offline_from(&broken).is_err(), "{field}: {broken}");
        }
    }
}
