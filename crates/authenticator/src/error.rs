//! What can go wrong, and the exit code each failure gives: 1 the server refused (or could not
//! be reached), 2 usage or state error, 3 wrong PIN, 4 the state was wiped.

use std::path::PathBuf;

/// Every failure of a verb.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error (`{"error", "error_description"}`).
    #[error("le serveur a refusé ({status}) : {error}{}", description_suffix(.description))]
    Refused { status: u16, error: String, description: Option<String> },
    /// The server answered, but not with what the protocol says.
    #[error("réponse inattendue du serveur ({status}) : {detail}")]
    Protocol { status: u16, detail: String },
    /// The server could not be reached.
    #[error("serveur injoignable : {0}")]
    Network(#[from] reqwest::Error),
    /// The command line or its input is wrong.
    #[error("{0}")]
    Usage(String),
    /// The app will not act on what it was given, and says why with a code of its own
    /// (`invalid_payload`, `other_server`, `expired`, `offline_unavailable`).
    #[error("{detail}")]
    Declined { error: &'static str, detail: String },
    /// The state file is missing, unreadable or malformed.
    #[error("état {path} : {detail}")]
    State { path: PathBuf, detail: String },
    /// Reading or writing a local file failed.
    #[error("{path} : {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A local cryptographic operation failed (not a wrong PIN).
    #[error("opération cryptographique impossible : {0}")]
    Crypto(&'static str),
    /// The PIN does not open the state; `tries_left` before it is wiped.
    #[error("code PIN incorrect ({tries_left} essai(s) restant(s) avant effacement)")]
    WrongPin { tries_left: u32 },
    /// Too many wrong PINs: the state file was overwritten and deleted.
    #[error(
        "code PIN incorrect trop de fois : l'état a été effacé ({path}) ; réenrôlez ce téléphone depuis le portefeuille"
    )]
    Wiped { path: PathBuf },
}

fn description_suffix(description: &Option<String>) -> String {
    description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default()
}

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused { .. } | Error::Protocol { .. } | Error::Network(_) => 1,
            Error::Usage(_) | Error::Declined { .. } | Error::State { .. } | Error::Io { .. } | Error::Crypto(_) => 2,
            Error::WrongPin { .. } => 3,
            Error::Wiped { .. } => 4,
        }
    }

    /// The failure as one JSON object (`--json`): the server's own `error` and
    /// `error_description` when it refused, a local code otherwise.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Error::Refused { status, error, description } => {
                json!({ "error": error, "error_description": description, "status": status })
            }
            Error::Protocol { status, detail } => {
                json!({ "error": "protocol_error", "error_description": detail, "status": status })
            }
            Error::Network(e) => json!({ "error": "unreachable", "error_description": e.to_string() }),
            Error::Usage(_) => json!({ "error": "usage", "error_description": self.to_string() }),
            Error::Declined { error, detail } => json!({ "error": error, "error_description": detail }),
            Error::State { .. } | Error::Io { .. } | Error::Crypto(_) => {
                json!({ "error": "state", "error_description": self.to_string() })
            }
            Error::WrongPin { tries_left } => {
                json!({ "error": "wrong_pin", "tries_left": tries_left, "error_description": self.to_string() })
            }
            Error::Wiped { path } => {
                json!({ "error": "wiped", "path": path, "error_description": self.to_string() })
            }
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source }
    }

    pub(crate) fn state(path: &std::path::Path, detail: impl Into<String>) -> Error {
        Error::State { path: path.to_owned(), detail: detail.into() }
    }
}
