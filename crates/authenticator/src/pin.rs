//! Where the PIN comes from: the `CADUCEE_AUTHENTICATOR_PIN` environment variable if set, else
//! one line of standard input (`--pin-stdin`), else the terminal (without echo).

use std::io::BufRead as _;

use zeroize::Zeroizing;

use crate::Error;

/// The environment variable holding the PIN (scripts, tests).
pub const PIN_ENV: &str = "CADUCEE_AUTHENTICATOR_PIN";

/// The shortest PIN accepted at enrolment.
pub const MIN_PIN_LEN: usize = 4;

/// How the PIN is read when `CADUCEE_AUTHENTICATOR_PIN` is not set (which comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinSource {
    /// The terminal, without echo.
    Terminal,
    /// One line of standard input (`--pin-stdin`).
    Stdin,
}

/// A PIN, wiped from memory on drop.
pub type Pin = Zeroizing<String>;

/// The PIN that opens the state.
pub fn current(source: PinSource) -> Result<Pin, Error> {
    read(source, "Code PIN : ")
}

/// A new PIN, at enrolment: asked twice on the terminal, once otherwise.
pub fn new_pin(source: PinSource) -> Result<Pin, Error> {
    let interactive = source == PinSource::Terminal && std::env::var_os(PIN_ENV).is_none();
    let pin = read(source, "Nouveau code PIN : ")?;
    if pin.chars().count() < MIN_PIN_LEN {
        return Err(Error::Usage(format!("le code PIN doit compter au moins {MIN_PIN_LEN} caractères")));
    }
    if interactive {
        let again = read(source, "Confirmez le code PIN : ")?;
        if again.as_str() != pin.as_str() {
            return Err(Error::Usage("les deux codes PIN diffèrent".into()));
        }
    }
    Ok(pin)
}

fn read(source: PinSource, prompt: &str) -> Result<Pin, Error> {
    let pin = match (std::env::var(PIN_ENV), source) {
        (Ok(pin), _) => Zeroizing::new(pin),
        (Err(std::env::VarError::NotUnicode(_)), _) => {
            return Err(Error::Usage(format!("{PIN_ENV} n'est pas de l'UTF-8")));
        }
        (Err(std::env::VarError::NotPresent), PinSource::Terminal) => {
            Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| {
                Error::Usage(format!(
                    "lecture du code PIN sur le terminal impossible ({e}) : utilisez {PIN_ENV} ou --pin-stdin"
                ))
            })?)
        }
        (Err(std::env::VarError::NotPresent), PinSource::Stdin) => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::Usage(format!("lecture du code PIN sur l'entrée standard : {e}")))?;
            Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned())
        }
    };
    if pin.is_empty() {
        return Err(Error::Usage("code PIN vide".into()));
    }
    Ok(pin)
}
