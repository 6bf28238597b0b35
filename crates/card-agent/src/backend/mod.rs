//! Where signatures come from: the card itself over PC/SC ([`apdu`]), or a PKCS#11 module
//! (the CPS4 vendor middleware, OpenSC, SoftHSM2 in tests) ([`pkcs11`]).

pub mod apdu;
pub mod pkcs11;
pub mod pkcs15;

use zeroize::Zeroizing;

use crate::challenge::Challenge;
use crate::error::AgentError;

/// A reader (PC/SC) or slot (PKCS#11) and whether a card is in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReaderInfo {
    pub name: String,
    pub card_present: bool,
}

/// The certificates (DER, leaf first) and the signature of one challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub certificates: Vec<Vec<u8>>,
    pub signature: Vec<u8>,
}

/// A way to the card.
pub trait CardBackend: Send + Sync {
    fn readers(&self) -> Result<Vec<ReaderInfo>, AgentError>;

    /// Verifies the PIN on the card and signs SHA-256 of the challenge with the
    /// authentication key (RSA PKCS#1 v1.5).
    fn sign(&self, challenge: &Challenge, pin: &Zeroizing<String>, reader: Option<&str>) -> Result<Signed, AgentError>;
}

/// A PIN the agent will send to the card: 4 to 8 digits (a wrong format costs no try).
pub fn check_pin(pin: &str) -> Result<(), AgentError> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AgentError::InvalidRequest("the PIN has 4 to 8 digits".into()))
    }
}
