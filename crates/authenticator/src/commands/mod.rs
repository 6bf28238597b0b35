//! The verbs, one module each. A verb takes the [`Context`] (state file, how to read the PIN)
//! and returns a [`Report`]: one JSON object for `--json`, a short French text otherwise.
//!
//! Every verb but `enrol` starts with [`Context::unlock`], which asks the PIN, opens the
//! sealed secrets (counting wrong PINs) and gives an [`Unlocked`] device that signs and sends
//! requests; `offline-code`, which must not touch the network, uses [`Context::open`] (the
//! same PIN rules, no HTTP client). A verb is one module here, one variant of [`Command`] and
//! one arm of [`Command::run`].

use std::time::Duration;

use clap::Subcommand;
use serde_json::Value;

use crate::Error;
use crate::device::{Signer, now};
use crate::http::DeviceApi;
use crate::pin::{self, PinSource};
use crate::state::{Secrets, State, StateFile};

pub mod answer;
pub mod enrol;
pub mod offline_code;
pub mod pushes;
pub mod scan;
pub mod unblock;

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrôle ce téléphone : charge utile du QR code du portefeuille (caducee-push://enrol?…)
    /// ou code seul avec --server.
    Enrol(enrol::Args),
    /// Liste les demandes d'approbation en attente (--wait : attend qu'une arrive).
    Pushes(pushes::Args),
    /// Approuve une demande en tapant le nombre affiché par la page de connexion.
    Approve(answer::ApproveArgs),
    /// Refuse une demande (--not-me : « Ce n'était pas moi », bloque les demandes et ferme
    /// toutes les sessions du compte).
    Deny(answer::DenyArgs),
    /// Lève le blocage des demandes d'approbation du compte.
    Unblock,
    /// Connexion par QR code : lit le QR code de la page de connexion
    /// (caducee-auth://login?…), montre qui demande, puis approuve ou refuse.
    Scan(scan::Args),
    /// Connexion par QR code sans réseau : calcule, à partir du QR code de la page de
    /// connexion, l'identifiant et le mot de passe à y taper.
    OfflineCode(offline_code::Args),
}

impl Command {
    pub async fn run(self, cx: &Context) -> Result<Report, Error> {
        match self {
            Command::Enrol(args) => enrol::run(cx, args).await,
            Command::Pushes(args) => pushes::run(cx, args).await,
            Command::Approve(args) => answer::approve(cx, args).await,
            Command::Deny(args) => answer::deny(cx, args).await,
            Command::Unblock => unblock::run(cx).await,
            Command::Scan(args) => scan::run(cx, args).await,
            Command::OfflineCode(args) => offline_code::run(cx, args),
        }
    }
}

/// What every verb is given.
#[derive(Debug)]
pub struct Context {
    pub state: StateFile,
    pub pin: PinSource,
}

/// What a verb did.
#[derive(Debug)]
pub struct Report {
    /// The `--json` output.
    pub json: Value,
    /// The output otherwise.
    pub human: String,
    /// 0, or 1 when the server answered but did not do what was asked (a wrong number).
    pub exit_code: u8,
}

impl Report {
    pub fn ok(json: Value, human: String) -> Report {
        Report { json, human, exit_code: 0 }
    }
}

/// An enrolled device, its secrets open.
pub struct Unlocked {
    pub state: State,
    pub secrets: Secrets,
    pub api: DeviceApi,
}

impl Context {
    /// Asks the PIN and opens the state (a wrong PIN counts; the last one wipes).
    pub fn unlock(&self) -> Result<Unlocked, Error> {
        let (state, secrets) = self.open()?;
        let api = DeviceApi::new(&state.server)?;
        Ok(Unlocked { state, secrets, api })
    }

    /// Asks the PIN and opens the state, as [`Context::unlock`] does, without making an HTTP
    /// client.
    pub fn open(&self) -> Result<(State, Secrets), Error> {
        // Not found is said before the PIN is asked for nothing.
        self.state.load()?;
        let pin = pin::current(self.pin)?;
        self.state.unlock(&pin)
    }
}

impl Unlocked {
    /// Signs `claims` as this device (`kid`) and posts them to `path`.
    pub async fn call(&self, path: &str, claims: Value, timeout: Duration) -> Result<Value, Error> {
        let jws = self.sign(claims)?;
        self.api.post(path, jws, timeout).await
    }

    /// A signed request from this device, for this provider, now.
    pub fn sign(&self, claims: Value) -> Result<String, Error> {
        self.secrets.device_key.sign(Signer::Device(&self.state.device_id), self.api.endpoint(), claims, now())
    }
}

/// A time from the server (seconds since the epoch), in local time.
pub(crate) fn local_time(seconds: i64) -> String {
    match jiff::Timestamp::from_second(seconds) {
        Ok(t) => t.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%d/%m/%Y %H:%M:%S").to_string(),
        Err(_) => seconds.to_string(),
    }
}

/// A field of a server's answer as text, if it is one.
pub(crate) fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str)
}
