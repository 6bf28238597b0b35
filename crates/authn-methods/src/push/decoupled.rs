//! Pushes a relying party asks for (OpenID CIBA, through the protocol's decoupled login):
//! the same challenge, limits, number check and «ce n'était pas moi» as a login page's push,
//! with the relying party's own limit in place of the source address's.

use super::{NewChallenge, PushApprovals, PushSend, PushStatus};
use crate::method::{AuthContext, AuthError};

/// A decoupled login's push (OpenID CIBA): a relying party, authenticated, asks the phone of
/// the professional it names, and shows `number` (its binding message) for them to type.
#[derive(Debug, Clone)]
pub struct DecoupledPush<'a> {
    pub subject: &'a str,
    /// The CIBA request this push belongs to (its status is asked with the same id).
    pub request: &'a str,
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub number: &'a str,
    /// The relying party's address, as the phone shows it.
    pub source_ip: Option<&'a str>,
    pub now: i64,
}

impl PushApprovals {
    /// Sends the push of a decoupled login (CIBA) that an authenticated relying party asked
    /// for, with the same rules as a login page's: the account's limit, its block, one push at
    /// a time, the number to type (the relying party's binding message). No password comes
    /// first, so the relying party's own limit stands for the address's.
    pub async fn send_decoupled(&self, push: &DecoupledPush<'_>) -> Result<PushSend, AuthError> {
        self.send_challenge(NewChallenge {
            subject: push.subject,
            interaction: decoupled_interaction(push.request),
            client_name: push.client_name,
            number: push.number.to_owned(),
            source_ip: push.source_ip.map(str::to_owned),
            user_agent: None,
            source_limit: (&self.per_client, push.client_id.to_owned(), "client"),
            decoupled: true,
            now: push.now,
        })
        .await
    }

    /// Where the push of the decoupled login `request` stands; an approval is given once.
    pub async fn decoupled_status(&self, request: &str, challenge: &str, now: i64) -> Result<PushStatus, AuthError> {
        let cx = AuthContext { interaction: decoupled_interaction(request), now, ..AuthContext::default() };
        self.status(&cx, challenge).await
    }
}

/// The interaction a decoupled login's push is recorded under: no login page has one.
fn decoupled_interaction(request: &str) -> String {
    format!("ciba:{request}")
}
