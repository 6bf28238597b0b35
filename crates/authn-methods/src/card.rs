//! The CPS card («carte de professionnel de santé»): a login by itself, with the card in a
//! reader on the professional's computer and its PIN («code porteur») typed once.
//!
//! The provider never sees the PIN nor talks to the reader: the card agent on the
//! professional's computer (`crates/card-agent`) does, as the card's owner asks it from the login
//! page. This method owns the provider's side:
//! - a challenge per login, `caducee-card-v1:<login origin>:<nonce>`, kept in the session store
//!   for two minutes and taken once, atomically, bound to the login (interaction) it was issued
//!   for — so to the relying party that login serves. The agent refuses to sign a challenge
//!   whose origin is not the page's that asks, so a look-alike site cannot relay ours;
//! - the card's answer: its certificate chain and its signature of the challenge (RSA PKCS#1
//!   v1.5 over SHA-256, what an IAS-ECC card's INTERNAL AUTHENTICATE makes of a DigestInfo),
//!   checked in [`pki`] against the operator's trust anchors and the revocation lists of
//!   [`crl`];
//! - the professional the certificate names ([`pki::IdentifierRule`]).
//!
//! A card login proves possession (the card) and knowledge (its PIN, checked by the card
//! itself, which blocks after three wrong ones): `amr` `sc` and `pin`, the strongest level.
//!
//! Must not depend on HTTP: the login page draws [`crate::Prompt::Card`] and posts the answer's
//! fields back ([`FIELD_CERTIFICATES`], [`FIELD_SIGNATURE`], or [`FIELD_ERROR`] when the agent
//! reported one).

pub mod crl;
pub mod pki;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use directory::{AccountStatus, AuditEvent, Directory};
use serde::{Deserialize, Serialize};
use session_store::SessionStore;

use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
    Unusable,
};
use pki::{CardRejection, CardTrust, VerifiedCard};

pub const METHOD_ID: MethodId = "card";
/// How long a challenge can be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(120);
/// What every challenge starts with: the agent signs nothing else.
pub const CHALLENGE_PREFIX: &str = "caducee-card-v1";
/// The card's certificates, base64url DER, the card's own first, separated by commas.
pub const FIELD_CERTIFICATES: &str = "card_certificates";
/// The card's signature of the challenge, base64url.
pub const FIELD_SIGNATURE: &str = "card_signature";
/// The signature's algorithm as the agent names it (`RSA-PKCS1-SHA256`).
pub const FIELD_ALGORITHM: &str = "card_algorithm";
/// What the agent reported instead of an answer (a wrong PIN, no card), and the PIN tries left.
pub const FIELD_ERROR: &str = "card_error";
pub const FIELD_TRIES_LEFT: &str = "card_tries_left";
/// `1`: sign in with the certificate chain the browser presented in the TLS handshake
/// ([`AuthContext::tls_client_chain`]), on the card's TLS listener.
pub const FIELD_TLS: &str = "card_tls";

/// The certificate chain a browser presented to the card's TLS listener (DER, its own first),
/// which the handshake proved it holds the key of: the listener puts it in the request's
/// extensions, the login page hands it to the method in [`AuthContext::tls_client_chain`].
#[derive(Debug, Clone)]
pub struct PresentedChain(pub Vec<Vec<u8>>);

/// What the agent may report; anything else is shown as `card_error`.
pub const AGENT_ERRORS: &[&str] = &[
    "wrong_pin",
    "card_blocked",
    "no_reader",
    "no_card",
    "card_removed",
    "card_error",
    "origin_not_allowed",
    "challenge_origin_mismatch",
    "invalid_request",
    "agent_unreachable",
];

/// The card as the login page reaches it.
#[derive(Debug, Clone)]
pub struct CardSettings {
    /// The login pages' origin, as the browser sends it in `Origin` (`https://host[:port]`).
    pub origin: String,
    /// Where the card agent listens on the professional's computer.
    pub agent_url: String,
    /// The origin of the card's TLS listener, where a browser that reads the card itself (the
    /// card maker's middleware) presents its certificate; none: not offered.
    pub tls_origin: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Issued {
    interaction: String,
}

#[derive(Serialize, Deserialize)]
struct State {
    nonce: String,
    challenge: String,
    expires_at: i64,
}

/// The card login method.
pub struct CardLogin {
    trust: Arc<CardTrust>,
    directory: Directory,
    store: Arc<dyn SessionStore>,
    settings: CardSettings,
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(format!("card: {e}"))
}

fn key(nonce: &str) -> String {
    crate::store_keys::CARD_CHALLENGE.key(nonce)
}

/// The card's answer as posted: its chain and its signature.
fn answer(input: &Input) -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
    let certificates = input.get(FIELD_CERTIFICATES)?.trim();
    let signature = input.get(FIELD_SIGNATURE)?.trim();
    if let Some(alg) = input.get(FIELD_ALGORITHM).map(str::trim).filter(|a| !a.is_empty())
        && alg != "RSA-PKCS1-SHA256"
        && alg != "ECDSA-SHA256"
    {
        return None;
    }
    let chain = certificates
        .split(',')
        .take(pki::MAX_CHAIN + 1)
        .map(|c| URL_SAFE_NO_PAD.decode(c.trim()).ok())
        .collect::<Option<Vec<_>>>()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    (!chain.is_empty() && !signature.is_empty() && signature.len() <= 1024).then_some((chain, signature))
}

impl CardLogin {
    pub fn new(
        trust: Arc<CardTrust>,
        directory: Directory,
        store: Arc<dyn SessionStore>,
        settings: CardSettings,
    ) -> Self {
        CardLogin { trust, directory, store, settings }
    }

    pub fn trust(&self) -> &Arc<CardTrust> {
        &self.trust
    }

    fn prompt(&self, st: &State, notice: Option<String>, tries_left: Option<u8>) -> Prompt {
        Prompt::Card {
            challenge: st.challenge.clone(),
            agent: self.settings.agent_url.clone(),
            tls_origin: self.settings.tls_origin.clone(),
            expires_at: st.expires_at,
            notice,
            tries_left,
        }
    }

    fn continue_with(&self, st: State, notice: Option<String>, tries_left: Option<u8>) -> Result<Step, AuthError> {
        let prompt = self.prompt(&st, notice, tries_left);
        let state = serde_json::to_value(st).map_err(internal)?;
        Ok(Step::Continue { state: MethodState(state), prompt })
    }

    /// Checks a card's answer to the challenge of `st`, taken once.
    async fn check(
        &self,
        cx: &AuthContext,
        st: &State,
        chain: &[Vec<u8>],
        signature: &[u8],
    ) -> Result<Step, AuthError> {
        let Some(issued) = self.store.take(&key(&st.nonce)).await? else {
            return Ok(Step::Failed(Failure::Expired));
        };
        let Ok(issued) = serde_json::from_slice::<Issued>(&issued) else {
            return Ok(Step::Failed(Failure::Expired));
        };
        if issued.interaction != cx.interaction {
            return Ok(Step::Failed(Failure::Bad));
        }
        let verified = self.trust.verify_signed(chain, st.challenge.as_bytes(), signature, cx.now);
        self.signed_in(cx, verified, "agent").await
    }

    /// The factor a verified card brings, or why the card was refused; `via`: how its answer
    /// came (`agent`, or `tls` for the card the browser presented), for the audit.
    async fn signed_in(
        &self,
        cx: &AuthContext,
        verified: Result<VerifiedCard, CardRejection>,
        via: &'static str,
    ) -> Result<Step, AuthError> {
        let card = match verified {
            Ok(card) => card,
            Err(CardRejection::Malformed | CardRejection::BadSignature) => return Ok(Step::Failed(Failure::Bad)),
            Err(why) => {
                tracing::info!(reason = why.code(), "card refused");
                return Ok(Step::Failed(Failure::Rejected(why.code())));
            }
        };
        let Some(professional) = self.directory.professionals().get_by_national_id(&card.national_id).await? else {
            return Ok(Step::Failed(Failure::Rejected("card_unknown")));
        };
        if professional.status != AccountStatus::Active {
            return Ok(Step::Failed(Failure::Unusable(Unusable::Blocked)));
        }
        // Which card signed in, and how, for the professional's and the operator's records.
        let record = AuditEvent {
            event: "card_used".to_owned(),
            actor: Some(professional.subject.clone()),
            subject: Some(professional.subject.clone()),
            client_id: None,
            source_ip: cx.source_ip.clone(),
            outcome: "success".to_owned(),
            details: serde_json::json!({
                "interaction": cx.interaction,
                "serial": card.serial,
                "issuer": card.issuer,
                "via": via,
            }),
            at: cx.now,
        };
        if let Err(e) = self.directory.audit().append(record).await {
            tracing::error!(error = %e, "audit append failed");
        }
        Ok(Step::Done(FactorResult {
            subject: professional.subject,
            method: METHOD_ID.to_owned(),
            credential: Some(format!("card:{}", card.serial)),
            kind: FactorKind::Possession,
            also: vec![FactorKind::Knowledge],
            // The signature covers the login pages' origin, and the agent signs only for the
            // page of that origin.
            phishing_resistant: true,
            amr: vec!["sc".to_owned(), "pin".to_owned()],
            at: cx.now,
            level: None,
        }))
    }
}

#[async_trait]
impl AuthMethod for CardLogin {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn also_proves(&self) -> &'static [FactorKind] {
        &[FactorKind::Knowledge]
    }

    fn needs_subject(&self) -> bool {
        false
    }

    fn retry_in_place(&self) -> bool {
        false
    }

    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    async fn begin(&self, cx: &AuthContext, _subject: Option<&str>) -> Result<Step, AuthError> {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = format!("{CHALLENGE_PREFIX}:{}:{nonce}", self.settings.origin);
        let issued = serde_json::to_vec(&Issued { interaction: cx.interaction.clone() }).map_err(internal)?;
        self.store.put(&key(&nonce), &issued, CHALLENGE_TTL).await?;
        let expires_at = cx.now + i64::try_from(CHALLENGE_TTL.as_secs()).unwrap_or(120);
        self.continue_with(State { nonce, challenge, expires_at }, None, None)
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        let Ok(st) = serde_json::from_value::<State>(state.0) else {
            return Ok(Step::Failed(Failure::Expired));
        };
        if st.expires_at < cx.now {
            return Ok(Step::Failed(Failure::Expired));
        }
        if input.get(FIELD_TLS).is_some_and(|v| v.trim() == "1") {
            // The card read by the browser itself, presented in the TLS handshake of this very
            // request: the handshake proved the key. The challenge is spent all the same.
            self.store.take(&key(&st.nonce)).await?;
            let Some(chain) = cx.tls_client_chain.as_deref().filter(|c| !c.is_empty()) else {
                return Ok(Step::Failed(Failure::Unusable(Unusable::NotEnrolled)));
            };
            let verified = self.trust.verify_chain(chain, cx.now);
            return self.signed_in(cx, verified, "tls").await;
        }
        if let Some(error) = input.get(FIELD_ERROR).map(str::trim).filter(|e| !e.is_empty()) {
            // The agent could not get an answer from the card: the same challenge stays open.
            let code = AGENT_ERRORS.iter().find(|c| **c == error).copied().unwrap_or("card_error");
            let tries = input.get(FIELD_TRIES_LEFT).and_then(|t| t.trim().parse::<u8>().ok()).filter(|t| *t <= 15);
            return self.continue_with(st, Some(code.to_owned()), tries);
        }
        let typed = input.get(FIELD_CERTIFICATES).is_some_and(|c| !c.trim().is_empty());
        if !typed {
            return self.continue_with(st, None, None);
        }
        let Some((chain, signature)) = answer(input) else {
            // Not an answer: spend the challenge all the same, so it cannot be tried again.
            self.store.take(&key(&st.nonce)).await?;
            return Ok(Step::Failed(Failure::Bad));
        };
        self.check(cx, &st, &chain, &signature).await
    }
}
