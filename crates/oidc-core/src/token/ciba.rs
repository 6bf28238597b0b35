//! The CIBA grant (`urn:openid:params:grant-type:ciba`, CIBA Core 1.0 §10.1): once the
//! professional approved on their phone, the client's `auth_req_id` is redeemed, once, for the
//! tokens of a new session (no browser holds it; the wallet lists it and ends it like any
//! other, and back-channel logout reaches the client).

use super::{TokenParams, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::EndpointError;
use crate::grants::GrantContext;
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::exposed;
use crate::session::RequestOrigin;
use crate::util::random_id;

impl Provider {
    pub(super) async fn ciba_token(
        &self,
        client: &Client,
        params: TokenParams,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let (login, scopes, source_ip) = self.ciba_grant(client, exposed(&params.auth_req_id), now).await?;
        self.ensure_active(&login.subject).await?;
        let origin = RequestOrigin { source_ip, user_agent: None };
        let (session, _no_browser_holds_it) = self.sessions.create(&login, &origin, now).await?;
        self.sessions.add_client(&session.sid, &client.client_id, now).await?;
        self.audit(
            AuditEntry::new(ProtocolEvent::Signin, "success")
                .subject(&login.subject)
                .client(&client.client_id)
                .ip(origin.source_ip.clone())
                .details(serde_json::json!({ "acr": login.acr, "amr": login.amr, "sid": session.sid, "ciba": true })),
        )
        .await;
        let context = GrantContext {
            scopes,
            nonce: None,
            auth_time: login.auth_time,
            acr: login.acr.clone(),
            amr: login.amr.clone(),
            claims: Default::default(),
        };
        self.issue_for_login(client, &session, &random_id(), &context, params.cnf.as_ref(), GrantType::Ciba, now).await
    }
}
