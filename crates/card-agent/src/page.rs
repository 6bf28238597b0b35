//! The page the agent answers a plain form with (the login page without JavaScript posts its
//! form straight to the agent): a form posting back to the provider (`return_to`) with the
//! certificates and the signature, or the error, and the `state` the provider gave.
//! French first, English second; askama escapes every value.

use askama::Template;

use crate::error::AgentError;

/// An error to post back.
#[derive(Debug)]
pub struct PageError {
    pub code: &'static str,
    pub tries_left: Option<u8>,
    pub fr: &'static str,
    pub en: &'static str,
}

impl From<&AgentError> for PageError {
    fn from(e: &AgentError) -> PageError {
        let (fr, en) = match e {
            AgentError::WrongPin { .. } => ("Code porteur incorrect.", "Wrong PIN."),
            AgentError::CardBlocked => (
                "La carte est bloquée : débloquez-la avec le code de déblocage.",
                "The card is blocked: unblock it with the unblocking code.",
            ),
            AgentError::NoReader(_) => ("Aucun lecteur de carte.", "No card reader."),
            AgentError::NoCard => ("Aucune carte dans le lecteur.", "No card in the reader."),
            AgentError::CardRemoved => ("La carte a été retirée.", "The card was removed."),
            AgentError::InvalidRequest(_) => ("Demande invalide.", "Invalid request."),
            AgentError::Busy => ("L'agent de carte est occupé.", "The card agent is busy."),
            _ => ("La carte n'a pas pu signer.", "The card could not sign."),
        };
        PageError { code: e.code(), tries_left: e.tries_left(), fr, en }
    }
}

#[derive(Template)]
#[template(path = "result.html")]
pub struct ResultPage<'a> {
    pub return_to: &'a str,
    pub state: &'a str,
    pub certificates: Vec<String>,
    pub signature: Option<String>,
    pub algorithm: &'a str,
    pub error: Option<PageError>,
}
