//! The fuzzing harness: one real provider per process, built by `server::App::assemble` as
//! `caducee serve` builds it (every route, every layer, the login UI, the phones' API), on an
//! in-memory SQLite directory and the in-process session store, driven in process through its
//! axum router (`tower::ServiceExt::oneshot`) from a current-thread tokio runtime.
//!
//! Three things differ from a production node, to make inputs reproducible and fast:
//! - the clock is fixed at [`NOW`], so that a seed's `exp` or `iat` means the same on every run;
//! - the signing keys are fixtures (`fixtures/*.p8.der`), so that seeds signed by the provider,
//!   by the `private_key_jwt` client or by the phone verify on every run;
//! - no client uses a secret: argon2id (~15 ms a check) would cut executions a hundredfold.
//!   The `Authorization: Basic` parsing is still fuzzed; only the hash check is out of reach.
//!
//! Some values cannot be written in a seed because the provider makes them afresh (an
//! authorization code, a refresh token, a push challenge, a device id). Inputs name them with
//! placeholders (`$CODE`, `$REFRESH`, ...), which [`Harness::fill`] replaces by a value minted
//! just before the request through the provider's own API; see each target for its list.

pub mod jws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use directory::{DataKey, Directory, NewProfessional, Practice};
use oidc_core::authorize::AuthorizeParams;
use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
use oidc_core::flow::{AuthorizeOutcome, BrowserCookies};
use oidc_core::http::oauth::ClientForm as _;
use oidc_core::http::{BROWSER_COOKIE, SESSION_COOKIE};
use oidc_core::keys::{KeyStore as _, SigningAlg, StoredKey};
use oidc_core::session::{LoginResult, RequestOrigin};
use server::adapters::DirectoryAdapter;
use server::{App, Config};
use session_store::MemoryStore;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;
use zeroize::Zeroizing;

use crate::jws::{EcSigner, RsaSigner};

/// The provider's clock, in Unix seconds (2027-01-15T08:00:00Z).
pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://caducee.example";
pub const REDIRECT_URI: &str = "https://rp.example/cb";
pub const POST_LOGOUT_URI: &str = "https://rp.example/bye";
/// A public client (PKCE, no secret).
pub const PUBLIC_CLIENT: &str = "fuzz-public";
/// A confidential client authenticating with `private_key_jwt` (key: `fixtures/client-es256`).
pub const JWT_CLIENT: &str = "fuzz-jwt";
pub const JWT_CLIENT_KID: &str = "client-key-1";
/// The kids of the provider's fixture keys.
pub const PROVIDER_ES256_KID: &str = "fuzz-es256";
pub const PROVIDER_RS256_KID: &str = "fuzz-rs256";
/// The professional with an SSO session and an enrolled push phone.
pub const SUBJECT: &str = "f:00000000-0000-4000-8000-000000000001:810000000001";
/// A professional without a phone, for enrolment requests.
pub const ENROLLING_SUBJECT: &str = "f:00000000-0000-4000-8000-000000000002:810000000002";
/// RFC 7636 appendix B: the verifier and its S256 challenge, used for every fresh code.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// 32 zero bytes: secrets at rest in the in-memory database need a master key.
const MASTER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

const PROVIDER_ES256: &[u8] = include_bytes!("../fixtures/provider-es256.p8.der");
const PROVIDER_RS256: &[u8] = include_bytes!("../fixtures/provider-rs256.p8.der");
const CLIENT_ES256: &[u8] = include_bytes!("../fixtures/client-es256.p8.der");
const PHONE_ES256: &[u8] = include_bytes!("../fixtures/phone-es256.p8.der");

/// The largest response body read back (pages are a few KB).
const MAX_RESPONSE: usize = 1 << 20;

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The OAuth `error` of a JSON error body.
    pub fn oauth_error(&self) -> Option<String> {
        self.json()?.get("error")?.as_str().map(str::to_owned)
    }
}

/// The provider under test and what the targets need to talk to it.
pub struct Harness {
    rt: Runtime,
    pub app: App,
    router: Router,
    /// The cookies of a browser holding an SSO session of [`SUBJECT`] (a code replay, or a
    /// refresh token reused, ends that session: the harness then opens another).
    sso: Mutex<BrowserCookies>,
    pub provider_es256: EcSigner,
    pub provider_rs256: RsaSigner,
    pub client_key: EcSigner,
    pub phone_key: EcSigner,
    /// The device id of [`SUBJECT`]'s phone (`kid` of its requests).
    pub phone_device: String,
    counter: AtomicU64,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// The process's harness, built on first use. A failure here is the harness's, not the
/// provider's: it aborts the run with the reason.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| match Harness::build() {
        Ok(h) => h,
        Err(e) => panic!("fuzz harness setup failed: {e:#}"),
    })
}

type SetupResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn setup_error(what: &str) -> Box<dyn std::error::Error + Send + Sync> {
    what.to_owned().into()
}

fn config() -> Config {
    let mut config = Config {
        issuer: ISSUER.into(),
        database_url: "sqlite::memory:".into(),
        master_key: MASTER_KEY.into(),
        // Only the mail outbox would write there, and no target sends mail.
        data_dir: std::env::temp_dir().join("caducee-fuzz"),
        ..Config::default()
    };
    // Short-lived state expires (and is swept) within seconds, so that millions of requests
    // do not pile up interactions and codes in memory; nothing here depends on their length.
    config.session.interaction_ttl = 5;
    config.tokens.code_ttl = 5;
    config.tokens.access_token_alg = "ES256".into();
    config.push.enabled = true;
    config.push.max_per_account = u64::MAX;
    config.push.account_window = 1;
    config.push.max_per_address = u64::MAX;
    config.push.address_window = 1;
    // A phone's list request could otherwise hold an input for half a minute.
    config.push.max_wait = 0;
    config.login.failure_floor_ms = 0;
    // The limits on strangers (logins started per browser and address, failures per source)
    // would soon answer every input with 429 and leave the parsers behind them unexplored.
    config.session.max_interactions_per_address = u64::MAX;
    config.session.max_interactions_per_browser = u64::MAX;
    config.session.interaction_limit_window = 1;
    config.login.max_failures = u64::MAX;
    config.login.address_max_attempts = u64::MAX;
    config.login.address_window = 1;
    config
}

fn professional(subject: &str, national_id: &str) -> NewProfessional {
    NewProfessional {
        subject: Some(subject.into()),
        national_id: national_id.into(),
        given_name: "Jeanne".into(),
        family_name: "Martin".into(),
        email: Some(format!("{national_id}@example.org")),
        civility: "MME".into(),
        practices: vec![Practice {
            code_profession: "10".into(),
            code_categorie_professionnelle: "C".into(),
            code_savoir_faire: "SM54".into(),
            code_type_savoir_faire: "S".into(),
            ..Practice::default()
        }],
        other_ids: Vec::new(),
        // Nobody logs in with a password here (the session is opened through the provider's
        // API), so no argon2id hash is needed.
        password_hash: None,
    }
}

fn client_metadata(method: TokenEndpointAuthMethod, jwks: Option<serde_json::Value>) -> ClientMetadata {
    ClientMetadata {
        client_name: "Fuzz RP".into(),
        redirect_uris: vec![REDIRECT_URI.into()],
        post_logout_redirect_uris: vec![POST_LOGOUT_URI.into()],
        token_endpoint_auth_method: method,
        jwks,
        id_token_signed_response_alg: SigningAlg::ES256,
        ..ClientMetadata::default()
    }
}

fn stored_key(kid: &str, alg: SigningAlg, der: &[u8]) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg,
        pkcs8: Zeroizing::new(der.to_vec()),
        created_at: NOW - 3600,
        retired_at: None,
        publish_until: None,
    }
}

fn origin() -> RequestOrigin {
    RequestOrigin { source_ip: Some("203.0.113.7".into()), user_agent: Some("caducee-fuzz".into()) }
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Opens an SSO session of [`SUBJECT`], the way the login pages open one once a person is
/// authenticated; returns the browser's cookies.
async fn open_session(app: &App) -> SetupResult<BrowserCookies> {
    let browser = "fuzz-browser-0123456789abcdef".to_owned();
    let cookies = BrowserCookies { session: None, browser: Some(browser.clone()) };
    let outcome = app.provider.authorize(code_request(PUBLIC_CLIENT), &cookies, &origin(), NOW).await;
    let AuthorizeOutcome::Login { location, .. } = outcome else {
        return Err(setup_error("an authorization request without a session did not lead to the login pages"));
    };
    let interaction = location.rsplit('/').next().unwrap_or_default().to_owned();
    let login = LoginResult {
        subject: SUBJECT.into(),
        acr: app.engine.strongest_acr().into(),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: NOW - 60,
        methods: vec!["password".into(), "totp".into()],
    };
    let finished = app.provider.finish_interaction(&interaction, &cookies, &login, &origin(), NOW).await?;
    let session = finished.session_cookie.ok_or_else(|| setup_error("no session cookie"))?;
    Ok(BrowserCookies { session: Some(session), browser: Some(browser) })
}

/// The `Cookie` header of a browser with these cookies.
fn cookie_header(cookies: &BrowserCookies) -> String {
    format!(
        "{SESSION_COOKIE}={}; {BROWSER_COOKIE}={}",
        cookies.session.as_deref().unwrap_or_default(),
        cookies.browser.as_deref().unwrap_or_default()
    )
}

/// A valid authorization request of `client_id` (code flow, S256 PKCE).
fn code_request(client_id: &str) -> AuthorizeParams {
    AuthorizeParams {
        client_id: Some(client_id.into()),
        redirect_uri: Some(REDIRECT_URI.into()),
        response_type: Some("code".into()),
        scope: Some("openid profile".into()),
        state: Some("fuzz-state".into()),
        nonce: Some("fuzz-nonce".into()),
        code_challenge: Some(PKCE_CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
        ..AuthorizeParams::default()
    }
}

impl Harness {
    fn build() -> SetupResult<Harness> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let provider_es256 = EcSigner::from_pkcs8(PROVIDER_ES256)?;
        let provider_rs256 = RsaSigner::from_pkcs8(PROVIDER_RS256)?;
        let client_key = EcSigner::from_pkcs8(CLIENT_ES256)?;
        let phone_key = EcSigner::from_pkcs8(PHONE_ES256)?;
        let clock: oidc_core::http::Clock = Arc::new(|| NOW);
        let config = config();
        let client_jwks = serde_json::json!({ "keys": [client_key.public_jwk(Some(JWT_CLIENT_KID), Some("ES256"))] });

        let (app, sso, phone_device) = rt.block_on(async {
            let key = DataKey::from_base64(MASTER_KEY)?;
            let directory = Directory::connect(&config.database_url, key).await?;
            directory.migrate().await?;
            // The fixture keys are stored before the key ring loads, which then generates none.
            let adapter = DirectoryAdapter::new(directory.clone(), clock.clone());
            adapter.insert(&stored_key(PROVIDER_ES256_KID, SigningAlg::ES256, PROVIDER_ES256)).await?;
            adapter.insert(&stored_key(PROVIDER_RS256_KID, SigningAlg::RS256, PROVIDER_RS256)).await?;
            let store = Arc::new(MemoryStore::with_sweep_interval(Duration::from_secs(1)));
            let app = App::assemble(config, directory.clone(), store, clock).await?;
            app.register_wallet().await?;

            directory.professionals().create(professional(SUBJECT, "810000000001")).await?;
            directory.professionals().create(professional(ENROLLING_SUBJECT, "810000000002")).await?;
            for (id, method, jwks) in [
                (PUBLIC_CLIENT, TokenEndpointAuthMethod::None, None),
                (JWT_CLIENT, TokenEndpointAuthMethod::PrivateKeyJwt, Some(client_jwks)),
            ] {
                let metadata = client_metadata(method, jwks);
                metadata.validate()?;
                directory
                    .clients()
                    .create(directory::ClientRecord {
                        client_id: id.into(),
                        secret_hash: None,
                        metadata: serde_json::to_value(&metadata)?,
                        created_at: NOW,
                        updated_at: NOW,
                        credentials_changed_at: None,
                    })
                    .await?;
            }

            let sso = open_session(&app).await?;

            let push = app.push.clone();
            let enrolment = push
                .start_enrolment(SUBJECT, "Fuzz phone", NOW)
                .await?
                .started()
                .ok_or_else(|| setup_error("the professional already has a phone"))?;
            let claims = serde_json::json!({
                "action": "enrol", "code": enrolment.code.as_str(), "label": "Fuzz phone",
                "aud": push.endpoint(), "iat": NOW, "jti": "fuzz-enrolment",
            });
            let header = serde_json::json!({ "alg": "ES256", "jwk": phone_key.public_jwk(None, None) });
            let token = phone_key.sign_json(&header, &claims);
            let device = push.register_device(&token, NOW).await?.device_id;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((app, sso, device))
        })?;
        let router = app.router();
        Ok(Harness {
            rt,
            app,
            router,
            sso: Mutex::new(sso),
            provider_es256,
            provider_rs256,
            client_key,
            phone_key,
            phone_device,
            counter: AtomicU64::new(0),
        })
    }
}

impl Harness {
    /// Runs `future` to completion on the harness's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// A number this process never returned before (fresh `jti`s).
    pub fn unique(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `request` through every route and layer of the server, as from a client at
    /// 203.0.113.7, and reads the whole response.
    pub fn send(&self, mut request: Request<Body>) -> Reply {
        if trace() {
            eprintln!("-> {} {}", request.method(), request.uri());
        }
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 40000))));
        self.rt.block_on(async {
            let response = match self.router.clone().oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, MAX_RESPONSE).await.unwrap_or_default();
            if trace() {
                let location = parts.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
                eprintln!(
                    "<- {} {location} {}",
                    parts.status,
                    String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
                );
            }
            Reply { status: parts.status, headers: parts.headers, body }
        })
    }

    /// `GET path_and_query`, with the SSO session's cookies if `with_session`. `None` when the
    /// input cannot even be written as an HTTP request target (no server would see it).
    pub fn get(&self, path_and_query: &str, with_session: bool) -> Option<Reply> {
        let mut builder = Request::get(path_and_query);
        if with_session {
            builder = builder.header("cookie", cookie_header(&self.sso()));
        }
        Some(self.send(builder.body(Body::empty()).ok()?))
    }

    /// `POST path` with `body` and the given headers; a header whose value cannot be sent in
    /// HTTP is left out (no server would see it either).
    pub fn post(&self, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Option<Reply> {
        let mut builder = Request::post(path);
        for (name, value) in headers {
            if let Ok(v) = axum::http::HeaderValue::from_bytes(value) {
                builder = builder.header(*name, v);
            }
        }
        Some(self.send(builder.body(Body::from(body)).ok()?))
    }

    /// A form `POST` (`application/x-www-form-urlencoded`), plus an `Authorization` header.
    pub fn post_form(&self, path: &str, authorization: Option<&[u8]>, body: Vec<u8>) -> Option<Reply> {
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/x-www-form-urlencoded")];
        if let Some(a) = authorization {
            headers.push(("authorization", a));
        }
        self.post(path, &headers, body)
    }

    /// A fresh authorization code for `client_id`, issued from the SSO session (challenge:
    /// [`PKCE_CHALLENGE`], redirect URI: [`REDIRECT_URI`]).
    pub fn fresh_code(&self, client_id: &str) -> Option<String> {
        for _ in 0..2 {
            let sso = self.sso();
            let outcome = self.rt.block_on(self.app.provider.authorize(code_request(client_id), &sso, &origin(), NOW));
            if let AuthorizeOutcome::Redirect(location) = outcome {
                return query_param(&location, "code");
            }
            // The session has ended (see `sso`): open another, once.
            let reopened = self.rt.block_on(open_session(&self.app)).ok()?;
            *self.sso.lock().unwrap_or_else(PoisonError::into_inner) = reopened;
        }
        None
    }

    fn sso(&self) -> BrowserCookies {
        self.sso.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A fresh refresh token of the public client, from a real code exchange.
    pub fn fresh_refresh_token(&self) -> Option<String> {
        let code = self.fresh_code(PUBLIC_CLIENT)?;
        let params = oidc_core::token::TokenParams {
            grant_type: Some("authorization_code".into()),
            code: Some(code.into()),
            redirect_uri: Some(REDIRECT_URI.into()),
            code_verifier: Some(PKCE_VERIFIER.into()),
            client_id: Some(PUBLIC_CLIENT.into()),
            ..Default::default()
        };
        let creds = params.credentials(None);
        let response = self.rt.block_on(self.app.provider.token(params, &creds, NOW)).ok()?;
        oidc_core::secret::exposed(&response.refresh_token).map(str::to_owned)
    }

    /// A valid client assertion of [`JWT_CLIENT`] for the token endpoint, with a fresh `jti`.
    pub fn fresh_assertion(&self) -> String {
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": JWT_CLIENT_KID });
        let claims = serde_json::json!({
            "iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": format!("{ISSUER}/token"),
            "jti": format!("fresh-{}", self.unique()), "iat": NOW, "exp": NOW + 60,
        });
        self.client_key.sign_json(&header, &claims)
    }

    /// A push waiting for [`SUBJECT`]'s phone: its challenge id and the number to type. Lifts
    /// the block a «not me» answer leaves first.
    pub fn fresh_push(&self) -> Option<(String, String)> {
        let push = self.app.push.clone();
        self.rt.block_on(async {
            push.unblock(SUBJECT, None, NOW).await.ok()?;
            let cx = authn_methods::method::AuthContext {
                now: NOW,
                source_ip: Some("203.0.113.7".into()),
                interaction: format!("fuzz-{}", self.unique()),
                device_cookie: None,
                user_agent: None,
                client_name: "Fuzz RP".into(),
                required_acr: None,
                tls_client_chain: None,
            };
            match push.send(&cx, SUBJECT, "Fuzz RP").await.ok()? {
                authn_methods::push::PushSend::Sent { challenge, number, .. } => Some((challenge, number)),
                _ => None,
            }
        })
    }

    /// A fresh enrolment code for [`ENROLLING_SUBJECT`], whose phone (enrolled by an earlier
    /// input) is removed first.
    pub fn fresh_enrolment_code(&self) -> Option<String> {
        let push = self.app.push.clone();
        let authenticators = self.app.directory.authenticators();
        self.rt.block_on(async {
            for a in authenticators.list_for_subject(ENROLLING_SUBJECT).await.ok()? {
                authenticators.delete(&a.id).await.ok()?;
            }
            let enrolment = push.start_enrolment(ENROLLING_SUBJECT, "Fuzz phone 2", NOW).await.ok()?.started()?;
            Some(enrolment.code.as_str().to_owned())
        })
    }
}

/// Replaces each `$NAME` (capitals and `_`) of `text` for which `value` has a value; a name
/// that appears twice gets the same value. Other text is kept as it is.
pub fn fill(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut known: Vec<(String, Option<String>)> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let len = after.bytes().take_while(|b| b.is_ascii_uppercase() || *b == b'_').count();
        let name = &after[..len];
        let found = match known.iter().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone(),
            None => {
                let v = if name.is_empty() { None } else { value(name) };
                known.push((name.to_owned(), v.clone()));
                v
            }
        };
        match found {
            Some(v) => out.push_str(&v),
            None => {
                out.push('$');
                out.push_str(name);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Whether to print every request and response (`CADUCEE_FUZZ_TRACE=1`), to see what an
/// input does when replayed (`fuzz/target/.../TARGET INPUT_FILE`).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("CADUCEE_FUZZ_TRACE").is_some())
}

/// The bytes as text, if they are UTF-8 (what every parser here starts with).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
