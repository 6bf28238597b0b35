//! The state file: which server, which device, and the device's secrets sealed under the PIN.
//!
//! ```json
//! { "format": 1, "server": "https://…/push/v1", "device_id": "…", "label": "…", "enrolled_at": 1800000000,
//!   "kdf": { "alg": "argon2id", "m_cost": 19456, "t_cost": 2, "p_cost": 1, "salt": "…" },
//!   "sealed": { "alg": "A256GCM", "nonce": "…", "ciphertext": "…" },
//!   "wrong_pins": 0, "max_wrong_pins": 5 }
//! ```
//!
//! The sealed part is AES-256-GCM under argon2id(PIN, salt), its additional data binding the
//! server URL and the device id (a sealed blob moved into another state does not open). Inside,
//! JSON: the device key (PKCS#8) and, when the enrolment answer carried them, what offline
//! sign-in needs (`offline`: the phone's identifier, the OCRA secret and suite, see
//! [`Offline`]). A PIN that does not open it counts on disk; after
//! `max_wrong_pins` in a row the file is overwritten with zeros and deleted. The counter stops
//! someone at the keyboard; a copy of the file is guarded by argon2id's cost alone, hence a PIN
//! longer than four digits is better.
//!
//! Written atomically (a temporary file beside it, then a rename), mode 0600.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD as B64, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;
use crate::device::{DeviceKey, random_bytes};

/// The state file's format version.
pub const FORMAT: u32 = 1;
/// Wrong PINs in a row before the state is wiped.
pub const MAX_WRONG_PINS: u32 = 5;

/// argon2id settings (OWASP's password storage minimum: 19 MiB, two passes, one lane).
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// The state file, as on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// The `/push/v1` URL of the provider.
    pub server: String,
    pub device_id: String,
    #[serde(default)]
    pub label: Option<String>,
    pub enrolled_at: i64,
    pub kdf: Kdf,
    pub sealed: Sealed,
    pub wrong_pins: u32,
    pub max_wrong_pins: u32,
}

/// How the sealing key is derived from the PIN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kdf {
    pub alg: String,
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    /// Base64 (standard, unpadded).
    pub salt: String,
}

/// The sealed secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sealed {
    pub alg: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// What the sealed part holds, once opened.
pub struct Secrets {
    pub device_key: DeviceKey,
    /// Offline sign-in (QR code without network), if the provider gave it at enrolment.
    pub offline: Option<Offline>,
}

/// What offline sign-in needs, as the enrolment answer gave it (`offline_id`,
/// `offline_secret`, `offline_suite`): the identifier the professional types with the code,
/// the OCRA secret shared with the provider and the OCRA suite. Sealed with the device key;
/// wiped from memory on drop.
#[derive(Clone, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct Offline {
    /// The phone's identifier for offline sign-in: ten digits.
    pub id: String,
    /// The OCRA secret, base64url without padding (32 bytes).
    pub secret: String,
    /// The OCRA suite (`OCRA-1:HOTP-SHA256-8:QH32`).
    pub suite: String,
}

impl std::fmt::Debug for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offline")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("suite", &self.suite)
            .finish()
    }
}

/// The length of a login QR code's challenge, in hexadecimal digits: the question an offline
/// suite must take.
pub const CHALLENGE_HEX_LEN: usize = 32;

impl Offline {
    /// Checks what an enrolment answer gave: ten digits, a base64url secret of 16 to 64 bytes
    /// (32 today), and a suite this app computes with a login QR code's challenge as the only
    /// input (hexadecimal question of at least 32 digits; no counter, no PIN hash). Returns
    /// the suite and the secret's bytes.
    pub fn check(&self) -> Result<(ocra::Suite, Zeroizing<Vec<u8>>), String> {
        if self.id.len() != 10 || !self.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err("offline_id n'est pas un identifiant à dix chiffres".into());
        }
        let secret = Zeroizing::new(
            URL_SAFE_NO_PAD.decode(self.secret.as_bytes()).map_err(|_| "offline_secret n'est pas du base64url")?,
        );
        if !(16..=64).contains(&secret.len()) {
            return Err(format!("offline_secret a {} octets (32 attendus)", secret.len()));
        }
        let suite = ocra::Suite::parse(&self.suite).map_err(|e| format!("offline_suite : {e}"))?;
        let question = suite.question_format();
        if suite.has_counter()
            || suite.password_hash_function().is_some()
            || question.kind != ocra::QuestionKind::Hexadecimal
            || question.max_len < CHALLENGE_HEX_LEN
        {
            return Err(format!("offline_suite {} non prise en charge (attendu : …:QH32)", self.suite));
        }
        Ok((suite, secret))
    }
}

/// The sealed part's plaintext, as written.
#[derive(Serialize)]
struct SecretsOut<'a> {
    device_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline: Option<&'a Offline>,
}

/// The sealed part's plaintext, as read (wiped on drop). Fields it does not know are ignored
/// (the first states had an unused `shared_secret`).
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct SecretsIn {
    device_key: String,
    #[serde(default)]
    offline: Option<Offline>,
}

/// Who the state is for, besides its secrets.
pub struct Identity<'a> {
    pub server: &'a str,
    pub device_id: &'a str,
    pub label: Option<&'a str>,
    pub enrolled_at: i64,
}

/// The sealing key, wiped on drop.
type SealKey = Zeroizing<[u8; 32]>;

impl Kdf {
    /// Fresh settings with a new salt.
    fn new() -> Result<Kdf, Error> {
        let salt = random_bytes(16)?;
        Ok(Kdf { alg: "argon2id".into(), m_cost: M_COST, t_cost: T_COST, p_cost: P_COST, salt: B64.encode(salt) })
    }

    /// argon2id(PIN, salt). Settings read from a file are bounded, so that a doctored file
    /// cannot ask for gigabytes or hours.
    fn derive(&self, pin: &str, path: &Path) -> Result<SealKey, Error> {
        if self.alg != "argon2id"
            || !(8..=1_048_576).contains(&self.m_cost)
            || !(1..=16).contains(&self.t_cost)
            || !(1..=8).contains(&self.p_cost)
        {
            return Err(Error::state(path, "paramètres argon2id non pris en charge"));
        }
        let salt = B64.decode(&self.salt).map_err(|_| Error::state(path, "sel illisible"))?;
        let params = argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| Error::state(path, "paramètres argon2id invalides"))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(pin.as_bytes(), &salt, key.as_mut())
            .map_err(|_| Error::state(path, "dérivation argon2id impossible"))?;
        Ok(key)
    }
}

/// The additional data of the seal: the state's identity.
fn aad(server: &str, device_id: &str) -> Vec<u8> {
    let mut aad = b"caducee-authenticator/1\0".to_vec();
    aad.extend_from_slice(server.as_bytes());
    aad.push(0);
    aad.extend_from_slice(device_id.as_bytes());
    aad
}

fn aead_key(key: &SealKey) -> Result<LessSafeKey, Error> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_ref()).map_err(|_| Error::Crypto("clé AES-256-GCM"))?))
}

impl State {
    /// A new state holding `secrets` sealed under `pin`.
    pub fn seal(id: Identity<'_>, secrets: &Secrets, pin: &str, path: &Path) -> Result<State, Error> {
        let kdf = Kdf::new()?;
        let key = kdf.derive(pin, path)?;
        let device_key = Zeroizing::new(B64.encode(secrets.device_key.pkcs8()));
        let plain = SecretsOut { device_key: &device_key, offline: secrets.offline.as_ref() };
        let mut buf = Zeroizing::new(serde_json::to_vec(&plain).map_err(|_| Error::Crypto("secrets en JSON"))?);
        let nonce_bytes = random_bytes(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| Error::Crypto("nonce"))?;
        aead_key(&key)?
            .seal_in_place_append_tag(nonce, Aad::from(aad(id.server, id.device_id)), &mut *buf)
            .map_err(|_| Error::Crypto("chiffrement AES-256-GCM"))?;
        Ok(State {
            format: FORMAT,
            server: id.server.to_owned(),
            device_id: id.device_id.to_owned(),
            label: id.label.map(str::to_owned),
            enrolled_at: id.enrolled_at,
            kdf,
            sealed: Sealed { alg: "A256GCM".into(), nonce: B64.encode(nonce_bytes), ciphertext: B64.encode(&*buf) },
            wrong_pins: 0,
            max_wrong_pins: MAX_WRONG_PINS,
        })
    }

    /// The secrets if `pin` opens them, `None` if it does not (wrong PIN, or a doctored file).
    fn open(&self, pin: &str, path: &Path) -> Result<Option<Secrets>, Error> {
        let key = self.kdf.derive(pin, path)?;
        if self.sealed.alg != "A256GCM" {
            return Err(Error::state(path, "chiffrement non pris en charge"));
        }
        let nonce = B64.decode(&self.sealed.nonce).map_err(|_| Error::state(path, "nonce illisible"))?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| Error::state(path, "nonce invalide"))?;
        let mut buf = Zeroizing::new(
            B64.decode(&self.sealed.ciphertext).map_err(|_| Error::state(path, "partie scellée illisible"))?,
        );
        let Ok(plain) = aead_key(&key)?.open_in_place(nonce, Aad::from(aad(&self.server, &self.device_id)), &mut buf)
        else {
            return Ok(None);
        };
        let mut plain: SecretsIn =
            serde_json::from_slice(plain).map_err(|_| Error::state(path, "partie scellée malformée"))?;
        let pkcs8 = Zeroizing::new(
            B64.decode(plain.device_key.as_bytes()).map_err(|_| Error::state(path, "clé de l'appareil illisible"))?,
        );
        let offline = plain.offline.take();
        Ok(Some(Secrets { device_key: DeviceKey::from_pkcs8(pkcs8)?, offline }))
    }
}

/// Where the state lives, and what is done to it.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    /// `$XDG_DATA_HOME/caducee-authenticator/state.json`, or under `~/.local/share`.
    pub fn default_path() -> Result<PathBuf, Error> {
        let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".local").join("share"),
                None => return Err(Error::Usage("ni XDG_DATA_HOME ni HOME : précisez --state FICHIER".into())),
            },
        };
        Ok(base.join("caducee-authenticator").join("state.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Before enrolling: no state here yet, and its directory exists (so that the device key
    /// made next can be kept).
    pub fn prepare_new(&self) -> Result<(), Error> {
        if self.exists() {
            return Err(Error::state(
                &self.path,
                "ce téléphone est déjà enrôlé : retirez ce fichier (ou choisissez-en un autre avec --state) pour réenrôler",
            ));
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(dir)
    }

    /// Reads the state.
    pub fn load(&self) -> Result<State, Error> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::state(&self.path, "introuvable : enrôlez d'abord ce téléphone (enrol)"));
            }
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let state: State =
            serde_json::from_slice(&bytes).map_err(|e| Error::state(&self.path, format!("illisible ({e})")))?;
        if state.format != FORMAT {
            return Err(Error::state(&self.path, format!("format {} inconnu", state.format)));
        }
        Ok(state)
    }

    /// Writes the state atomically (temporary file, then rename), readable by its owner only.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("state.json");
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let mut json = serde_json::to_vec_pretty(state).map_err(|e| Error::state(&self.path, e.to_string()))?;
        json.push(b'\n');
        let written = (|| {
            let _ = std::fs::remove_file(&tmp);
            let mut file = private_file(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            // The rename itself is durable once the directory is.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(&self.path, e)
        })
    }

    /// Overwrites the file with zeros, then deletes it.
    pub fn wipe(&self) -> Result<(), Error> {
        let zeroed = (|| {
            let len = std::fs::metadata(&self.path)?.len();
            let mut file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
            let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
            file.write_all(&zeros)?;
            file.sync_all()
        })();
        let removed = std::fs::remove_file(&self.path);
        zeroed.and(removed).map_err(|e| Error::io(&self.path, e))
    }

    /// Opens the state with `pin`. A wrong PIN counts on disk and says how many tries are
    /// left; the last one wipes the state. A right PIN resets the count. Runs under an
    /// exclusive lock, so that tries made in parallel are counted one after the other.
    pub fn unlock(&self, pin: &str) -> Result<(State, Secrets), Error> {
        let lock = self.lock()?;
        let mut state = self.load()?;
        match state.open(pin, &self.path)? {
            Some(secrets) => {
                if state.wrong_pins != 0 {
                    state.wrong_pins = 0;
                    self.save(&state)?;
                }
                Ok((state, secrets))
            }
            None => {
                let max = state.max_wrong_pins.clamp(1, 100);
                state.wrong_pins = state.wrong_pins.saturating_add(1);
                if state.wrong_pins >= max {
                    self.wipe()?;
                    drop(lock);
                    let _ = std::fs::remove_file(self.lock_path());
                    return Err(Error::Wiped { path: self.path.clone() });
                }
                self.save(&state)?;
                Err(Error::WrongPin { tries_left: max - state.wrong_pins })
            }
        }
    }
}

impl StateFile {
    /// The lock file beside the state (never renamed, unlike the state).
    fn lock_path(&self) -> PathBuf {
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("state.json");
        self.path.with_file_name(format!(".{name}.lock"))
    }

    /// Waits for, then holds, the state's exclusive lock until the file returned is dropped.
    fn lock(&self) -> Result<std::fs::File, Error> {
        let path = self.lock_path();
        let file = match private_file(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| Error::io(&path, e))?
            }
            // No directory: no state either, which loading says better.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::state(&self.path, "introuvable : enrôlez d'abord ce téléphone (enrol)"));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn offline() -> Offline {
        Offline {
            id: "0123456789".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYyE".into(),
            suite: "OCRA-1:HOTP-SHA256-8:QH32".into(),
        }
    }

    fn sealed(dir: &Path, offline: Option<Offline>) -> StateFile {
        let file = StateFile::new(dir.join("sub").join("state.json"));
        let secrets = Secrets { device_key: DeviceKey::generate().unwrap(), offline };
        let id = Identity { server: "https://idp.example/push/v1", device_id: "dev-1", label: None, enrolled_at: 1 };
        let state = State::seal(id, &secrets, "2468", file.path()).unwrap();
        file.save(&state).unwrap();
        file
    }

    #[test]
    fn the_right_pin_opens_the_secrets_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = sealed(dir.path(), Some(offline()));
        let (state, secrets) = file.unlock("2468").unwrap();
        assert_eq!(state.device_id, "dev-1");
        let opened = secrets.offline.as_ref().unwrap();
        let expected = offline();
        assert_eq!((&opened.id, &opened.secret, &opened.suite), (&expected.id, &expected.secret, &expected.suite));
        let text = std::fs::read_to_string(file.path()).unwrap();
        for sealed in ["0123456789", "c2VjcmV0", "OCRA-1"] {
            assert!(!text.contains(sealed), "{sealed} is sealed");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (_, secrets) = sealed(dir.path(), None).unlock("2468").unwrap();
        assert!(secrets.offline.is_none());
    }

    #[test]
    fn offline_data_is_checked_as_the_enrolment_gives_it() {
        let (suite, secret) = offline().check().unwrap();
        assert_eq!(suite.as_str(), "OCRA-1:HOTP-SHA256-8:QH32");
        assert_eq!(secret.len(), 32);
        let with = |f: fn(&mut Offline)| {
            let mut o = offline();
            f(&mut o);
            o.check()
        };
        assert!(with(|o| o.id = "012345678".into()).is_err());
        assert!(with(|o| o.id = "01234567ab".into()).is_err());
        assert!(with(|o| o.secret = "c2VjcmV0".into()).is_err());
        assert!(with(|o| o.secret = "not base64url!".into()).is_err());
        assert!(with(|o| o.suite = "OCRA-1:HOTP-SHA256-8:QN08".into()).is_err());
        assert!(with(|o| o.suite = "OCRA-1:HOTP-SHA256-8:QH16".into()).is_err());
        assert!(with(|o| o.suite = "OCRA-1:HOTP-SHA256-8:C-QH32".into()).is_err());
        assert!(with(|o| o.suite = "OCRA-1:HOTP-SHA256-8:QH32-PSHA1".into()).is_err());
        assert!(with(|o| o.suite = "OCRA-1:HOTP-SHA256-8:QH32-T1M".into()).is_err());
        assert!(with(|o| o.suite = "OCRA-1:HOTP-SHA1-6:QH64".into()).is_ok());
    }

    #[test]
    fn a_sealed_part_of_the_first_format_still_opens() {
        // The first states sealed an unused `shared_secret` beside the key.
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("state.json"));
        let key = DeviceKey::generate().unwrap();
        let kdf = Kdf::new().unwrap();
        let seal_key = kdf.derive("2468", file.path()).unwrap();
        let plain = serde_json::json!({ "device_key": B64.encode(key.pkcs8()), "shared_secret": "x" });
        let mut buf = serde_json::to_vec(&plain).unwrap();
        let nonce_bytes = random_bytes(NONCE_LEN).unwrap();
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).unwrap();
        let server = "https://idp.example/push/v1";
        aead_key(&seal_key)
            .unwrap()
            .seal_in_place_append_tag(nonce, Aad::from(aad(server, "dev-1")), &mut buf)
            .unwrap();
        let state = State {
            format: FORMAT,
            server: server.into(),
            device_id: "dev-1".into(),
            label: None,
            enrolled_at: 1,
            kdf,
            sealed: Sealed { alg: "A256GCM".into(), nonce: B64.encode(nonce_bytes), ciphertext: B64.encode(&buf) },
            wrong_pins: 0,
            max_wrong_pins: MAX_WRONG_PINS,
        };
        file.save(&state).unwrap();
        let (_, secrets) = file.unlock("2468").unwrap();
        assert!(secrets.offline.is_none());
        assert_eq!(secrets.device_key.pkcs8(), key.pkcs8());
    }

    #[test]
    fn wrong_pins_count_down_a_right_one_resets_and_the_last_wipes() {
        let dir = tempfile::tempdir().unwrap();
        let file = sealed(dir.path(), None);
        assert!(matches!(file.unlock("0000"), Err(Error::WrongPin { tries_left: 4 })));
        assert!(matches!(file.unlock("0000"), Err(Error::WrongPin { tries_left: 3 })));
        file.unlock("2468").unwrap();
        assert_eq!(file.load().unwrap().wrong_pins, 0);
        for left in (1..5).rev() {
            match file.unlock("1111") {
                Err(Error::WrongPin { tries_left }) => assert_eq!(tries_left, left),
                _ => panic!("a wrong PIN"),
            }
        }
        assert!(matches!(file.unlock("1111"), Err(Error::Wiped { .. })));
        assert!(!file.exists());
        assert!(matches!(file.unlock("2468"), Err(Error::State { .. })));
    }

    #[test]
    fn wrong_pins_tried_in_parallel_are_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let file = sealed(dir.path(), None);
        let results: Vec<_> = std::thread::scope(|scope| {
            let tries: Vec<_> = (0..5).map(|_| scope.spawn(|| file.unlock("1357"))).collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let wiped = results.iter().filter(|r| matches!(r, Err(Error::Wiped { .. }))).count();
        let mut left: Vec<u32> = results
            .iter()
            .filter_map(|r| match r {
                Err(Error::WrongPin { tries_left }) => Some(*tries_left),
                _ => None,
            })
            .collect();
        left.sort_unstable();
        assert_eq!((wiped, left), (1, vec![1, 2, 3, 4]));
        assert!(!file.exists());
    }

    #[test]
    fn a_sealed_part_moved_to_another_device_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = sealed(dir.path(), None);
        let mut state = file.load().unwrap();
        state.device_id = "dev-2".into();
        file.save(&state).unwrap();
        assert!(matches!(file.unlock("2468"), Err(Error::WrongPin { .. })));
    }
}
