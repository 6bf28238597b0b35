//! The relying parties' pages: list, show, register (checked by the admin service as the
//! command line's registrations are), rotate a secret, remove. A secret is shown once, on the
//! page that answers the act, never again.

use admin_api::service::NewClient;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
use oidc_core::secret::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::people::{ConfirmPage, signed_in};
use crate::signin::{ConsoleSession, acting, reauthenticate};
use crate::texts::{ConsoleTexts, console_texts};
use crate::{ConsoleState, failure, render, see_other, when};

/// The ways a client registered here may authenticate (keys-based ones need a JWK Set: the
/// command line or the API register those).
const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

#[derive(Template)]
#[template(path = "console_clients.html")]
struct ClientsPage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    clients: Vec<ClientRow>,
    notice: Option<&'static str>,
    methods: [&'static str; 3],
}

struct ClientRow {
    link: String,
    client_id: String,
    name: String,
    method: String,
    created: String,
}

fn client_link(st: &ConsoleState, client_id: &str) -> String {
    format!("{}?{}", st.path("/admin/client"), serde_urlencoded::to_string([("id", client_id)]).unwrap_or_default())
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    done: Option<String>,
}

pub(crate) async fn list(State(st): State<ConsoleState>, Query(q): Query<ListQuery>, headers: HeaderMap) -> Response {
    let session = match signed_in(&st, &headers, None, Some(&st.path("/admin/clients"))).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let clients = match st.admin.clients().await {
        Ok(c) => c,
        Err(e) => return failure(&st, session.locale, e),
    };
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    let rows = clients
        .into_iter()
        .map(|c| ClientRow {
            link: client_link(&st, &c.client_id),
            name: text(&c.metadata, "client_name"),
            method: text(&c.metadata, "token_endpoint_auth_method"),
            created: when(Some(c.created_at)),
            client_id: c.client_id,
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("remove") => Some(t.done_remove_client),
        _ => None,
    };
    let page = ClientsPage { t, base: st.base(), session: &session, clients: rows, notice, methods: AUTH_METHODS };
    render(&st, session.locale, page.render())
}

#[derive(Template)]
#[template(path = "console_client.html")]
struct ClientPage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    client_id: String,
    metadata: String,
    created: String,
    notice: Option<&'static str>,
    edit: EditFields,
}

/// What the edit form shows: the fields an administrator changes most (the others through
/// the API's `PUT /admin/v1/clients/{client_id}`).
#[derive(Default)]
struct EditFields {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
}

impl EditFields {
    fn of(m: &ClientMetadata) -> Self {
        EditFields {
            name: m.client_name.clone(),
            redirect_uris: m.redirect_uris.join("\n"),
            post_logout_redirect_uris: m.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: m.backchannel_logout_uri.clone().unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ShowQuery {
    #[serde(default)]
    id: String,
    done: Option<String>,
}

pub(crate) async fn show(State(st): State<ConsoleState>, Query(q): Query<ShowQuery>, headers: HeaderMap) -> Response {
    let here = client_link(&st, &q.id);
    let session = match signed_in(&st, &headers, None, Some(&here)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let client = match st.admin.client(&q.id).await {
        Ok(c) => c,
        Err(e) => return failure(&st, session.locale, e),
    };
    let edit = serde_json::from_value::<ClientMetadata>(client.metadata.clone())
        .map(|m| EditFields::of(&m))
        .unwrap_or_default();
    let notice = match q.done.as_deref() {
        Some("register") => Some(t.client_registered),
        Some("edit") => Some(t.client_updated),
        _ => None,
    };
    let page = ClientPage {
        t,
        base: st.base(),
        session: &session,
        metadata: serde_json::to_string_pretty(&client.metadata).unwrap_or_default(),
        created: when(Some(client.created_at)),
        client_id: client.client_id,
        notice,
        edit,
    };
    render(&st, session.locale, page.render())
}

#[derive(Template)]
#[template(path = "console_secret.html")]
struct SecretPage<'a> {
    t: &'static ConsoleTexts,
    base: &'a str,
    session: &'a ConsoleSession,
    client_id: &'a str,
    secret: &'a str,
    back: String,
}

fn secret_page(st: &ConsoleState, session: &ConsoleSession, client_id: &str, secret: &SecretString) -> Response {
    let page = SecretPage {
        t: console_texts(session.locale),
        base: st.base(),
        session,
        client_id,
        secret: secret.expose_secret(),
        back: client_link(st, client_id),
    };
    render(st, session.locale, page.render())
}

#[derive(Deserialize, Default)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_name: String,
    #[serde(default)]
    auth_method: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    backchannel_logout_uri: String,
    /// The whole metadata as JSON: when given, it is the registration (the fields above but
    /// the identifier are ignored).
    #[serde(default)]
    metadata: String,
}

/// Metadata typed as JSON, as the admin API reads it. A member the registration does not know
/// is refused rather than dropped: typed by a person, `scope` for `allowed_scopes` would
/// otherwise be saved as nothing, silently.
fn typed_metadata(text: &str) -> Result<ClientMetadata, admin_api::AdminError> {
    let invalid = |m: String| admin_api::AdminError::Invalid(format!("metadata: {m}"));
    let typed: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let metadata = serde_json::from_value::<ClientMetadata>(typed.clone()).map_err(|e| invalid(e.to_string()))?;
    let known = serde_json::to_value(&metadata).map_err(|e| invalid(e.to_string()))?;
    if let (Some(typed), Some(known)) = (typed.as_object(), known.as_object())
        && let Some(unknown) = typed.keys().find(|k| !known.contains_key(*k) && !typed[*k].is_null())
    {
        return Err(invalid(format!("unknown member {unknown:?}")));
    }
    Ok(metadata)
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// «Enregistrer»: a new relying party, through the admin service's checks.
pub(crate) async fn register(
    State(st): State<ConsoleState>,
    origin: oidc_core::RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Response {
    let session = match acting(&st, &headers, origin, &form.csrf_token, "/admin/clients").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let client_id = Some(form.client_id.trim().to_owned()).filter(|c| !c.is_empty());
    if !form.metadata.trim().is_empty() {
        let metadata = match typed_metadata(&form.metadata) {
            Ok(m) => m,
            Err(e) => return failure(&st, session.locale, e),
        };
        return created(
            &st,
            &session,
            st.admin.create_client(&session.actor(), NewClient { client_id, metadata }).await,
        );
    }
    let Some(method) = AUTH_METHODS
        .contains(&form.auth_method.as_str())
        .then(|| TokenEndpointAuthMethod::parse(&form.auth_method))
        .flatten()
    else {
        return failure(
            &st,
            session.locale,
            admin_api::AdminError::Invalid(format!("auth method {}", form.auth_method)),
        );
    };
    let backchannel = form.backchannel_logout_uri.trim();
    let metadata = ClientMetadata {
        client_name: form.client_name.trim().to_owned(),
        redirect_uris: lines(&form.redirect_uris),
        post_logout_redirect_uris: lines(&form.post_logout_redirect_uris),
        token_endpoint_auth_method: method,
        backchannel_logout_uri: (!backchannel.is_empty()).then(|| backchannel.to_owned()),
        backchannel_logout_session_required: !backchannel.is_empty(),
        ..ClientMetadata::default()
    };
    created(&st, &session, st.admin.create_client(&session.actor(), NewClient { client_id, metadata }).await)
}

/// A registration's answer: its secret shown once, or the client's page.
fn created(
    st: &ConsoleState,
    session: &ConsoleSession,
    result: Result<admin_api::service::CreatedClient, admin_api::AdminError>,
) -> Response {
    match result {
        Ok(created) => match &created.client_secret {
            Some(secret) => secret_page(st, session, &created.client.client_id, secret),
            None => see_other(&format!("{}&done=register", client_link(st, &created.client.client_id))),
        },
        Err(e) => failure(st, session.locale, e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ClientActForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    id: String,
    /// `rotate` or `remove`.
    #[serde(default)]
    act: String,
}

fn question(t: &ConsoleTexts, act: &str) -> Option<&'static str> {
    match act {
        "rotate" => Some(t.confirm_rotate),
        "remove" => Some(t.confirm_remove_client),
        _ => None,
    }
}

fn confirm_link(st: &ConsoleState, form: &ClientActForm) -> String {
    let q = serde_urlencoded::to_string([("id", form.id.as_str()), ("act", form.act.as_str())]).unwrap_or_default();
    format!("{}?{q}", st.path("/admin/clients/confirm"))
}

pub(crate) async fn confirm(
    State(st): State<ConsoleState>,
    Query(form): Query<ClientActForm>,
    headers: HeaderMap,
) -> Response {
    let here = confirm_link(&st, &form);
    let session = match signed_in(&st, &headers, None, Some(&here)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = console_texts(session.locale);
    let Some(question) = question(t, &form.act) else {
        return failure(&st, session.locale, admin_api::AdminError::Invalid(form.act.clone()));
    };
    if !session.recently_authenticated(st.now()) {
        return reauthenticate(&st, &here);
    }
    let client = match st.admin.client(&form.id).await {
        Ok(c) => c,
        Err(e) => return failure(&st, session.locale, e),
    };
    let name = client.metadata.get("client_name").and_then(|v| v.as_str()).unwrap_or_default();
    let page = ConfirmPage {
        t,
        base: st.base(),
        session: &session,
        about: format!("{name} ({} {})", t.client_id, client.client_id),
        question,
        action: st.path("/admin/clients/act"),
        fields: vec![("id", client.client_id.clone()), ("act", form.act.clone())],
        cancel: client_link(&st, &client.client_id),
    };
    render(&st, session.locale, page.render())
}

pub(crate) async fn act(
    State(st): State<ConsoleState>,
    origin: oidc_core::RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ClientActForm>,
) -> Response {
    let session = match acting(&st, &headers, origin, &form.csrf_token, "/admin/clients").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !session.recently_authenticated(st.now()) {
        return reauthenticate(&st, &confirm_link(&st, &form));
    }
    let actor = session.actor();
    match form.act.as_str() {
        "rotate" => match st.admin.rotate_secret(&actor, &form.id).await {
            Ok(secret) => secret_page(&st, &session, &form.id, &secret),
            Err(e) => failure(&st, session.locale, e),
        },
        "remove" => match st.admin.delete_client(&actor, &form.id).await {
            Ok(_) => see_other(&format!("{}?done=remove", st.path("/admin/clients"))),
            Err(e) => failure(&st, session.locale, e),
        },
        other => failure(&st, session.locale, admin_api::AdminError::Invalid(other.to_owned())),
    }
}

/// «Enregistrer les modifications»: the names and URIs change, everything else is kept; the
/// admin service checks the result as it checks a registration.
pub(crate) async fn edit(
    State(st): State<ConsoleState>,
    origin: oidc_core::RequestOrigin,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Response {
    let session = match acting(&st, &headers, origin, &form.csrf_token, "/admin/clients").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = form.client_id.trim();
    let current = match st.admin.client(id).await {
        Ok(c) => c,
        Err(e) => return failure(&st, session.locale, e),
    };
    if !form.metadata.trim().is_empty() {
        // The whole registration, as typed: the API's `PUT`.
        return match typed_metadata(&form.metadata) {
            Ok(metadata) => match st.admin.update_client(&session.actor(), id, &metadata).await {
                Ok(_) => see_other(&format!("{}&done=edit", client_link(&st, id))),
                Err(e) => failure(&st, session.locale, e),
            },
            Err(e) => failure(&st, session.locale, e),
        };
    }
    let mut metadata = match serde_json::from_value::<ClientMetadata>(current.metadata) {
        Ok(m) => m,
        Err(e) => return failure(&st, session.locale, admin_api::AdminError::Internal(e.to_string())),
    };
    let backchannel = form.backchannel_logout_uri.trim();
    metadata.client_name = form.client_name.trim().to_owned();
    metadata.redirect_uris = lines(&form.redirect_uris);
    metadata.post_logout_redirect_uris = lines(&form.post_logout_redirect_uris);
    metadata.backchannel_logout_uri = (!backchannel.is_empty()).then(|| backchannel.to_owned());
    metadata.backchannel_logout_session_required = !backchannel.is_empty();
    match st.admin.update_client(&session.actor(), id, &metadata).await {
        Ok(_) => see_other(&format!("{}&done=edit", client_link(&st, id))),
        Err(e) => failure(&st, session.locale, e),
    }
}
