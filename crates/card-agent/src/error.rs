//! The agent's errors, each with the stable code the login page and the provider read.

/// Why a request failed; [`AgentError::code`] is the `error` field of the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("wrong PIN")]
    WrongPin { tries_left: Option<u8> },
    #[error("the card is blocked (too many wrong PINs): unblock it with the unblocking code")]
    CardBlocked,
    #[error("no card reader: {0}")]
    NoReader(String),
    #[error("no card in the reader")]
    NoCard,
    #[error("the card was removed during the operation")]
    CardRemoved,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("card error: {0}")]
    Card(String),
    #[error("this origin is not allowed to use the card agent")]
    OriginNotAllowed,
    #[error("the challenge was issued for another origin than the page asking")]
    ChallengeOriginMismatch,
    #[error("the card agent is busy")]
    Busy,
}

impl AgentError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::WrongPin { .. } => "wrong_pin",
            AgentError::CardBlocked => "card_blocked",
            AgentError::NoReader(_) => "no_reader",
            AgentError::NoCard => "no_card",
            AgentError::CardRemoved => "card_removed",
            AgentError::InvalidRequest(_) => "invalid_request",
            AgentError::Card(_) => "card_error",
            AgentError::OriginNotAllowed => "origin_not_allowed",
            AgentError::ChallengeOriginMismatch => "challenge_origin_mismatch",
            AgentError::Busy => "busy",
        }
    }

    /// The HTTP status of the JSON answer.
    pub fn http_status(&self) -> u16 {
        match self {
            AgentError::WrongPin { .. } => 401,
            AgentError::CardBlocked => 423,
            AgentError::NoReader(_) | AgentError::NoCard | AgentError::CardRemoved => 409,
            AgentError::InvalidRequest(_) | AgentError::ChallengeOriginMismatch => 400,
            AgentError::Card(_) => 502,
            AgentError::OriginNotAllowed => 403,
            AgentError::Busy => 503,
        }
    }

    /// Tries left, when the card said.
    pub fn tries_left(&self) -> Option<u8> {
        match self {
            AgentError::WrongPin { tries_left } => *tries_left,
            _ => None,
        }
    }

    /// The JSON body: `{"error": code, "message": ..., "tries_left": n}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        if let Some(n) = self.tries_left() {
            body["tries_left"] = n.into();
        }
        body
    }
}
