//! Ending sessions: RP-Initiated Logout 1.0 (`/end_session`) and the one place where a session
//! ends for any reason, so that every token issued under it dies with it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::authorize::{Locale, redirect_with};
use crate::error::ProviderError;
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::{SecretString, exposed};
use crate::session::SsoSession;
use crate::util::random_token;

/// The parameters of `/end_session`; the ID token hint (a signed token naming the person) and
/// the logout hint are redacted from `Debug`.
#[derive(Debug, Default, Deserialize)]
pub struct EndSessionParams {
    pub id_token_hint: Option<SecretString>,
    pub logout_hint: Option<SecretString>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub ui_locales: Option<String>,
}

/// Why a logout request is refused (shown to the person; nothing is redirected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutError {
    InvalidIdTokenHint,
    ClientMismatch,
    UnregisteredRedirectUri,
    RedirectWithoutClient,
    Expired,
    Unavailable,
}

/// What `/end_session` answers.
#[derive(Debug)]
pub enum EndSessionOutcome {
    /// Done; go back to the client.
    Redirect(String),
    /// Done; show the "you are logged out" page.
    LoggedOut(Locale),
    /// The request does not prove it comes from the session's own relying party: ask the person.
    Confirm {
        locale: Locale,
        confirmation: String,
        client_name: Option<String>,
    },
    /// Done; load the relying parties' front-channel logout pages, then go on to `then` (the
    /// client's post-logout redirect) or show the "you are logged out" page.
    FrontChannel {
        locale: Locale,
        frames: Vec<String>,
        then: Option<String>,
    },
    /// The person declined: the session goes on.
    StillLoggedIn(Locale),
    Refused(LogoutError, Locale),
}

/// A logout awaiting the person's confirmation.
#[derive(Debug, Serialize, Deserialize)]
struct PendingLogout {
    sid: String,
    location: Option<String>,
    locale: Locale,
}

const CONFIRMATION_TTL: Duration = Duration::from_secs(600);

fn pending_key(token: &str) -> String {
    crate::store_keys::LOGOUT_CONFIRMATION.key(token)
}

impl Provider {
    /// Ends a session for any reason: removes it, revokes its refresh tokens, tells every relying
    /// party it signed into (back-channel logout, in the background), and records it. Access
    /// tokens die with it, since every check reads the session.
    pub async fn end_session(
        &self,
        sid: &str,
        reason: &'static str,
        now: i64,
    ) -> Result<Option<SsoSession>, ProviderError> {
        let Some(session) = self.sessions.end(sid).await? else {
            return Ok(None);
        };
        self.grants.revoke_sid(&session.subject, sid, now).await?;
        if let Some(notifier) = &self.notifier {
            notifier.session_ended(&session).await;
        }
        self.audit(
            AuditEntry::new(ProtocolEvent::Logout, "success")
                .subject(&session.subject)
                .details(serde_json::json!({ "sid": sid, "reason": reason, "clients": session.clients.iter().map(|c| &c.client_id).collect::<Vec<_>>() })),
        )
        .await;
        Ok(Some(session))
    }

    /// Ends every session of a professional (forced logout everywhere: the wallet's «partout»,
    /// the phone's «ce n'était pas moi», an administrator, a blocked account): each ends as
    /// [`Provider::end_session`] ends one, and every refresh token issued to the professional
    /// is revoked too, whatever session it came from. Returns the sessions ended by this call.
    ///
    /// Stops at the first failure: the caller says so, and calling again finishes the job.
    pub async fn end_every_session(
        &self,
        subject: &str,
        reason: &'static str,
        now: i64,
    ) -> Result<Vec<SsoSession>, ProviderError> {
        let mut ended = Vec::new();
        for s in self.sessions.list_for_subject(subject, now).await? {
            if let Some(session) = self.end_session(&s.sid, reason, now).await? {
                ended.push(session);
            }
        }
        self.grants.revoke_subject(subject, now).await?;
        Ok(ended)
    }

    /// Front-Channel Logout 1.0: the logout pages of the relying parties an ended session signed
    /// into, with `iss` and `sid` for those that asked for them. A client that cannot be read
    /// now is skipped: the back-channel and the dead session already cover it.
    pub async fn frontchannel_frames(&self, session: &SsoSession) -> Vec<String> {
        let mut frames = Vec::new();
        for c in &session.clients {
            let Ok(Some(client)) = self.client(&c.client_id).await else { continue };
            let Some(uri) = client.metadata.frontchannel_logout_uri.as_deref() else { continue };
            let Ok(mut url) = url::Url::parse(uri) else { continue };
            if client.metadata.frontchannel_logout_session_required {
                url.query_pairs_mut().append_pair("iss", &self.config.issuer).append_pair("sid", &session.sid);
            }
            let frame = String::from(url);
            if !frames.contains(&frame) {
                frames.push(frame);
            }
        }
        frames
    }

    /// What the browser sees once its session has ended.
    async fn after_logout(
        &self,
        ended: Option<&SsoSession>,
        location: Option<String>,
        locale: Locale,
    ) -> EndSessionOutcome {
        let frames = match ended {
            Some(s) => self.frontchannel_frames(s).await,
            None => Vec::new(),
        };
        match (frames.is_empty(), location) {
            (false, then) => EndSessionOutcome::FrontChannel { locale, frames, then },
            (true, Some(l)) => EndSessionOutcome::Redirect(l),
            (true, None) => EndSessionOutcome::LoggedOut(locale),
        }
    }

    /// Handles `/end_session` (GET or POST) for the browser holding `session_cookie`.
    pub async fn end_session_request(
        &self,
        params: EndSessionParams,
        session_cookie: Option<&str>,
        now: i64,
    ) -> EndSessionOutcome {
        let locale = Locale::from_ui_locales(params.ui_locales.as_deref());
        match self.end_session_inner(params, session_cookie, locale, now).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "end_session failed");
                EndSessionOutcome::Refused(LogoutError::Unavailable, locale)
            }
        }
    }

    async fn end_session_inner(
        &self,
        params: EndSessionParams,
        session_cookie: Option<&str>,
        locale: Locale,
        now: i64,
    ) -> Result<EndSessionOutcome, ProviderError> {
        let refuse = |e| Ok(EndSessionOutcome::Refused(e, locale));
        let hint = match exposed(&params.id_token_hint) {
            None => None,
            Some(h) => match self.verify_id_token_hint(h, now) {
                Some(c) => Some(c),
                None => return refuse(LogoutError::InvalidIdTokenHint),
            },
        };
        let client_id = match (&params.client_id, &hint) {
            (Some(id), Some(h)) if !h.audiences().contains(&id.as_str()) => return refuse(LogoutError::ClientMismatch),
            (Some(id), _) => Some(id.clone()),
            (None, Some(h)) => h.audiences().first().map(|s| (*s).to_owned()),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(id) => self.client(id).await?,
            None => None,
        };
        let location = match (&params.post_logout_redirect_uri, &client) {
            (None, _) => None,
            (Some(_), None) => return refuse(LogoutError::RedirectWithoutClient),
            (Some(uri), Some(c)) => {
                if !c.metadata.post_logout_redirect_uris.iter().any(|u| u == uri) {
                    return refuse(LogoutError::UnregisteredRedirectUri);
                }
                let mut extra: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = params.state.as_deref() {
                    extra.push(("state", s));
                }
                Some(redirect_with(uri, &extra, &self.config.issuer))
            }
        };
        let done = |location: Option<String>| match location {
            Some(l) => EndSessionOutcome::Redirect(l),
            None => EndSessionOutcome::LoggedOut(locale),
        };

        let session = match session_cookie {
            Some(c) => self.sessions.from_cookie(c, now).await?,
            None => None,
        };
        let Some(session) = session else {
            return Ok(done(location));
        };
        // Only an ID token of this very session ends it at once: one of the same person's
        // other sessions (another browser, an older login) proves nothing about this one.
        let hint_matches = hint.as_ref().is_some_and(|h| h.sub == session.subject && h.sid == session.sid);
        if hint_matches {
            let ended = self.end_session(&session.sid, "rp_initiated", now).await?;
            return Ok(self.after_logout(ended.as_ref(), location, locale).await);
        }
        // Without proof that the request comes from this session's relying party, a link could
        // log anyone out: the person confirms with a form bound to a single-use token.
        let confirmation = random_token();
        let pending = PendingLogout { sid: session.sid.clone(), location, locale };
        let bytes = serde_json::to_vec(&pending).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        self.store.put(&pending_key(&confirmation), &bytes, CONFIRMATION_TTL).await?;
        let client_name = client.map(|c| c.display_name().to_owned());
        Ok(EndSessionOutcome::Confirm { locale, confirmation, client_name })
    }

    /// The person confirmed (or declined) the logout asked by `/end_session`.
    pub async fn confirm_logout(
        &self,
        confirmation: &str,
        accept: bool,
        session_cookie: Option<&str>,
        now: i64,
    ) -> EndSessionOutcome {
        let result: Result<EndSessionOutcome, ProviderError> = async {
            if confirmation.len() > 64 {
                return Ok(EndSessionOutcome::Refused(LogoutError::Expired, Locale::default()));
            }
            let Some(bytes) = self.store.take(&pending_key(confirmation)).await? else {
                return Ok(EndSessionOutcome::Refused(LogoutError::Expired, Locale::default()));
            };
            let pending: PendingLogout =
                serde_json::from_slice(&bytes).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
            let session = match session_cookie {
                Some(c) => self.sessions.from_cookie(c, now).await?,
                None => None,
            };
            if !accept {
                return Ok(EndSessionOutcome::StillLoggedIn(pending.locale));
            }
            // The confirmation is bound to the session it was issued for.
            let mut ended = None;
            if let Some(s) = session
                && s.sid == pending.sid
            {
                ended = self.end_session(&s.sid, "rp_initiated_confirmed", now).await?;
            }
            Ok(self.after_logout(ended.as_ref(), pending.location, pending.locale).await)
        }
        .await;
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "logout confirmation failed");
            EndSessionOutcome::Refused(LogoutError::Unavailable, Locale::default())
        })
    }
}
