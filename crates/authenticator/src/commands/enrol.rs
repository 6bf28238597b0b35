//! `enrol CODE_OR_URI [--server URL] [--label TEXT]`: makes the device key, redeems the
//! wallet's enrolment code with it (`POST /push/v1/devices`, the public key in the header's
//! `jwk`), then seals the key under a new PIN in the state file.

use serde_json::json;
use zeroize::Zeroizing;

use super::{Context, Report, text};
use crate::Error;
use crate::device::{DeviceKey, Signer, now};
use crate::http::{self, DeviceApi, TIMEOUT, paths};
use crate::pin;
use crate::state::{Identity, Secrets, State};

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
    // A later provider may share a secret for offline codes (OCRA); kept sealed if so.
    let shared_secret = text(&answer, "ocra_secret").map(|s| Zeroizing::new(s.to_owned()));
    let offline_codes = shared_secret.is_some();
    let secrets = Secrets { device_key: key, shared_secret };
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
        "offline_codes": offline_codes,
    });
    let human = format!(
        "Téléphone enrôlé (appareil {device_id}) auprès de {}.\nÉtat : {}",
        api.endpoint(),
        cx.state.path().display()
    );
    Ok(Report::ok(json, human))
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
}
