//! Wiring: one function builds the whole provider from its configuration, for `main` and for
//! the tests alike (real listener, real storage).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use authn_methods::AuthEngine;
use authn_methods::engine::EngineSettings;
use authn_methods::enrolment::Enrolment;
use authn_methods::lockout::LockoutPolicy;
use authn_methods::mail_otp::{MailOtp, MailOtpSettings};
use authn_methods::mailer::{FileOutbox, Mailer, SmtpMailer, SmtpSettings};
use authn_methods::push::qr::{QrLogin, QrSettings};
use authn_methods::push::{PushApprovals, PushSettings};
use authn_methods::webauthn::Passkeys;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use directory::{DataKey, Directory, DirectoryError};
use oidc_core::backchannel::{BackchannelSettings, Notifier};
use oidc_core::http::{Clock, ProtocolState};
use oidc_core::keys::{KeyError, KeyRing};
use oidc_core::{Provider, ProviderDeps};
use session_store::{MemoryStore, RedisStore, SessionStore, StoreError};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::adapters::DirectoryAdapter;
use crate::config::{Config, ConfigError};

/// How often each node re-reads the signing keys (to pick up a rotation made elsewhere).
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// How often each node looks for back-channel logouts to retry.
pub const LOGOUT_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Largest request body accepted (forms and token requests are small).
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("data folder {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("database: {0}")]
    Directory(#[from] DirectoryError),
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("mail: {0}")]
    Mail(String),
    #[error("first-party client (wallet, console) registration: {0}")]
    Wallet(String),
    #[error("push gateway: {0}")]
    PushGateway(String),
    #[error("provider: {0}")]
    Provider(#[from] oidc_core::error::ProviderError),
    #[error(transparent)]
    Mtls(#[from] crate::mtls_listener::MtlsError),
}

/// Chooses aws-lc-rs as the process's TLS crypto provider. Dependencies enable both rustls
/// back-ends (SMTP through lettre: aws-lc-rs; PostgreSQL through sqlx: ring), and rustls then
/// refuses to guess: without this, the first TLS connection (STARTTLS to the mail server, TLS to
/// PostgreSQL) would panic. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The master key for secrets at rest: from the configuration, or from `data_dir/master.key`
/// (created on first start, readable by its owner only).
pub fn master_key(config: &Config) -> Result<DataKey, BuildError> {
    if !config.master_key.is_empty() {
        return DataKey::from_base64(config.master_key.trim()).map_err(|e| BuildError::MasterKey(e.to_string()));
    }
    if !config.database_url.is_empty() {
        // A shared database is read by several nodes and by operators' commands: a key made up
        // here would encrypt with a key nobody else has.
        return Err(BuildError::MasterKey(
            "master_key (CADUCEE_MASTER_KEY) is required with database_url: every node and every command must use the same key".into(),
        ));
    }
    let path = config.data_dir.join("master.key");
    ensure_dir(&config.data_dir)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            DataKey::from_base64(text.trim()).map_err(|e| BuildError::MasterKey(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = DataKey::generate().map_err(|e| BuildError::MasterKey(e.to_string()))?;
            write_private(&path, key.to_base64().as_bytes())?;
            tracing::info!(path = %path.display(), "generated a new master key for secrets at rest");
            Ok(key)
        }
        Err(e) => Err(BuildError::MasterKey(format!("{}: {e}", path.display()))),
    }
}

/// Creates the data folder, readable by its owner only (it holds the database and the master key).
fn ensure_dir(dir: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| BuildError::DataDir { path: dir.display().to_string(), source })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BuildError::MasterKey(format!("{}: {e}", path.display())))?;
    file.write_all(bytes).map_err(|e| BuildError::MasterKey(format!("{}: {e}", path.display())))
}

/// Opens (and migrates) the database the configuration names.
pub async fn open_directory(config: &Config) -> Result<Directory, BuildError> {
    if config.database_url.is_empty() {
        ensure_dir(&config.data_dir)?;
    }
    let key = master_key(config)?;
    let directory = Directory::connect(&config.database_url(), key).await?;
    directory.migrate().await?;
    Ok(directory)
}

/// Opens the session store the configuration names: Redis (one server, a cluster, or Sentinel)
/// when one is set, else in process.
pub fn open_store(config: &Config) -> Result<Arc<dyn SessionStore>, BuildError> {
    let Some(topology) = config.redis_topology() else {
        let bytes = usize::try_from(config.session.memory_limit_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        return Ok(Arc::new(MemoryStore::with_capacity(bytes)));
    };
    let ca = if config.redis_ca_file.as_os_str().is_empty() {
        None
    } else {
        Some(
            std::fs::read(&config.redis_ca_file)
                .map_err(|source| BuildError::DataDir { path: config.redis_ca_file.display().to_string(), source })?,
        )
    };
    // Lazy: a node may start while Redis is down (or has no primary); it refuses logins until
    // Redis answers.
    let store = RedisStore::connect_lazy_to(&topology, ca.as_deref())?.with_prefix(config.redis_prefix.clone());
    Ok(Arc::new(store))
}

/// The mail transport the configuration names: SMTP, or the file outbox of the embedded default.
pub fn mailer(config: &Config) -> Result<Arc<dyn Mailer>, BuildError> {
    let m = &config.mail;
    if m.smtp_host.is_empty() {
        ensure_dir(&config.data_dir)?;
        let outbox =
            FileOutbox::new(config.data_dir.join("outbox"), &m.from).map_err(|e| BuildError::Mail(e.to_string()))?;
        return Ok(Arc::new(outbox));
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let smtp = SmtpMailer::new(&SmtpSettings {
        host: m.smtp_host.clone(),
        port: m.smtp_port,
        security: m.smtp_security,
        username: non_empty(&m.smtp_username),
        password: non_empty(&m.smtp_password),
        from: m.from.clone(),
    })
    .map_err(|e| BuildError::Mail(e.to_string()))?;
    Ok(Arc::new(smtp))
}

fn push_settings(config: &Config) -> PushSettings {
    let p = &config.push;
    PushSettings {
        validity: Duration::from_secs(p.validity),
        per_account_max: p.max_per_account,
        per_account_window: Duration::from_secs(p.account_window),
        per_address_max: p.max_per_address,
        per_address_window: Duration::from_secs(p.address_window),
        per_client_max: p.max_per_client,
        per_client_window: Duration::from_secs(p.client_window),
        enrolment_freeze: Duration::from_secs(p.enrolment_freeze),
        max_wait: Duration::from_secs(p.max_wait),
        silence: authn_methods::push_notify::SilenceSettings {
            after_denials: p.silence_after_denials,
            after_expiries: p.silence_after_expiries,
            silence_for: Duration::from_secs(p.silence_for),
        },
        warning: if p.warning.trim().is_empty() {
            authn_methods::push::DEFAULT_WARNING.to_owned()
        } else {
            p.warning.trim().to_owned()
        },
        ..PushSettings::default()
    }
}

fn mail_settings(config: &Config) -> MailOtpSettings {
    let m = &config.mail;
    MailOtpSettings {
        validity: Duration::from_secs(m.otp_validity),
        timezone: m.timezone.clone(),
        product: "Caducée".into(),
        per_account_max: m.max_per_account,
        per_account_window: Duration::from_secs(m.account_window),
        min_interval: Duration::from_secs(m.min_interval),
        per_address_max: m.max_per_address,
        per_address_window: Duration::from_secs(m.address_window),
    }
}

/// Registers (or updates) the wallet, the provider's own first-party relying party: a public
/// client with PKCE whose redirect URI follows the issuer.
pub async fn ensure_wallet_client(directory: &Directory, issuer: &str, now: i64) -> Result<(), BuildError> {
    use login_ui::wallet::{WALLET_CLIENT_ID, wallet_redirect_uri};
    use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
    let metadata = ClientMetadata {
        client_name: "Caducée – portefeuille".into(),
        redirect_uris: vec![wallet_redirect_uri(issuer)],
        post_logout_redirect_uris: vec![format!("{issuer}/wallet")],
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        id_token_signed_response_alg: oidc_core::keys::SigningAlg::ES256,
        grant_types: vec!["authorization_code".into()],
        allowed_scopes: vec!["openid".into(), "profile".into()],
        ..ClientMetadata::default()
    };
    ensure_first_party(directory, WALLET_CLIENT_ID, &metadata, now).await
}

/// Registers (or updates) the console (`/admin`), the provider's other first-party relying
/// party: a public client with PKCE whose redirect URI follows the issuer.
pub async fn ensure_console_client(directory: &Directory, issuer: &str, now: i64) -> Result<(), BuildError> {
    use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
    let metadata = ClientMetadata {
        client_name: "Caducée – console d'administration".into(),
        redirect_uris: vec![console::console_redirect_uri(issuer)],
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        id_token_signed_response_alg: oidc_core::keys::SigningAlg::ES256,
        grant_types: vec!["authorization_code".into()],
        allowed_scopes: vec!["openid".into(), "profile".into()],
        ..ClientMetadata::default()
    };
    ensure_first_party(directory, console::CONSOLE_CLIENT_ID, &metadata, now).await
}

async fn ensure_first_party(
    directory: &Directory,
    client_id: &str,
    metadata: &oidc_core::client::ClientMetadata,
    now: i64,
) -> Result<(), BuildError> {
    let value = serde_json::to_value(metadata).map_err(|e| BuildError::Wallet(e.to_string()))?;
    let clients = directory.clients();
    match clients.get(client_id).await? {
        Some(existing) if existing.metadata == value => Ok(()),
        // A public client: no credentials to change.
        Some(_) => Ok(clients.update_metadata(client_id, value, None).await?),
        None => {
            let record = directory::ClientRecord {
                client_id: client_id.into(),
                secret_hash: None,
                metadata: value,
                created_at: now,
                updated_at: now,
                credentials_changed_at: None,
            };
            match clients.create(record).await {
                // Another node registered it at the same moment.
                Err(DirectoryError::Conflict(_)) => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

/// The provider, wired.
#[derive(Clone)]
pub struct App {
    pub config: Config,
    pub directory: Directory,
    pub store: Arc<dyn SessionStore>,
    pub keys: Arc<KeyRing>,
    pub provider: Arc<Provider>,
    pub engine: Arc<AuthEngine>,
    /// Push approvals' blocks and pending requests (sending them is the engine's, when on).
    pub push: Arc<PushApprovals>,
    /// Passkeys and security keys, when `login.methods` names one of their methods.
    pub passkeys: Option<Arc<Passkeys>>,
    /// The CPS card sign-in, when `login.methods` names `card`.
    pub card: Option<Arc<authn_methods::card::CardLogin>>,
    pub clock: Clock,
    /// The TLS listener of mutual TLS, when `mtls.listen` is set.
    mtls: Option<crate::mtls_listener::MtlsServer>,
    /// The card's TLS listener, when the card is on and `card.tls_listen` is set.
    card_tls: Option<crate::card_listener::CardTlsServer>,
}

impl App {
    pub async fn build(config: Config, clock: Clock) -> Result<App, BuildError> {
        install_crypto_provider();
        config.validate()?;
        let directory = open_directory(&config).await?;
        let store = open_store(&config)?;
        Self::assemble(config, directory, store, clock).await
    }

    /// Builds from already opened storage (tests share one database between two nodes).
    pub async fn assemble(
        config: Config,
        directory: Directory,
        store: Arc<dyn SessionStore>,
        clock: Clock,
    ) -> Result<App, BuildError> {
        install_crypto_provider();
        let adapter = Arc::new(DirectoryAdapter::new(directory.clone(), clock.clone()));
        let keys = Arc::new(KeyRing::load_or_init(adapter.clone(), clock()).await?);
        let notifier = Notifier::new(
            config.issuer.clone(),
            keys.clone(),
            adapter.clone(),
            adapter.clone(),
            BackchannelSettings::default(),
            clock.clone(),
        )
        .map_err(|e| BuildError::Wallet(format!("back-channel logout client: {e}")))?;
        let login = &config.login;
        let settings = EngineSettings {
            lockout: LockoutPolicy {
                max_failures: login.max_failures,
                window: Duration::from_secs(login.failure_window),
                base_delay: Duration::from_secs(login.base_lock),
                max_delay: Duration::from_secs(login.max_lock),
                identifier_delay_after: login.identifier_delay_after,
                identifier_window: Duration::from_secs(login.identifier_window),
                identifier_base_delay: Duration::from_secs(login.identifier_base_delay),
                identifier_max_delay: Duration::from_secs(login.identifier_max_delay),
                address_max_attempts: login.address_max_attempts,
                address_window: Duration::from_secs(login.address_window),
                ..LockoutPolicy::default()
            },
            failure_floor: Duration::from_millis(login.failure_floor_ms),
            login_ttl: Duration::from_secs(u64::try_from(config.session.interaction_ttl).unwrap_or(900)),
        };
        let mail = Arc::new(MailOtp::new(
            store.clone(),
            mailer(&config)?,
            mail_settings(&config),
            directory.keyed_hash("mail-otp"),
        ));
        tracing::info!(mail = %mail.mailer().describe(), "one-time passwords by e-mail");
        if config.mail.smtp_host.is_empty() {
            tracing::warn!(
                outbox = %config.data_dir.join("outbox").display(),
                "no SMTP server configured (mail.smtp_host): OTP mails are written to the file outbox, not sent"
            );
        }
        // Built even with push approval off on this node: blocks set by administrators go
        // through it, so that a push pending on another node dies with the block.
        let mut push = PushApprovals::new(directory.clone(), store.clone(), &config.issuer, push_settings(&config));
        if !config.push.webhook_url.is_empty() {
            push = push
                .with_webhook(authn_methods::push_notify::WebhookSettings {
                    url: config.push.webhook_url.clone(),
                    secret: zeroize::Zeroizing::new(config.push.webhook_secret.clone()),
                    timeout: Duration::from_secs(5),
                })
                .map_err(|e| BuildError::PushGateway(e.to_string()))?;
        }
        let push = Arc::new(push);
        // Built when a WebAuthn method is on: the RP ID must then fit the issuer and the login
        // pages' host, which nothing else asks of them.
        let passkeys = if config.login.methods.iter().any(|m| m.starts_with("webauthn")) {
            Some(Arc::new(
                Passkeys::new(
                    &config.issuer,
                    Some(config.login_origin.as_str()),
                    directory.clone(),
                    store.clone(),
                    mail.mailer().clone(),
                    config.webauthn.settings(&config.login.totp_issuer)?,
                )
                .map_err(|e| BuildError::Config(crate::config::ConfigError::Invalid(format!("webauthn: {e}"))))?,
            ))
        } else {
            None
        };
        // Built when the card is on: its lists are read before the first login, so that a
        // node does not refuse every card while its first refresh is under way.
        let card = if config.login.methods.iter().any(|m| m == "card") {
            let trust = Arc::new(config.card.trust()?);
            let failures = trust.crls().refresh().await;
            if !failures.is_empty() {
                tracing::warn!(failed = failures.len(), "some card revocation lists could not be read at start");
            }
            let origin = if config.login_origin.is_empty() {
                url::Url::parse(&config.issuer)
                    .map(|u| u.origin().ascii_serialization())
                    .map_err(|e| BuildError::Config(crate::config::ConfigError::Invalid(format!("issuer: {e}"))))?
            } else {
                config.login_origin.trim_end_matches('/').to_owned()
            };
            let settings = authn_methods::card::CardSettings {
                origin,
                agent_url: config.card.agent_origin(),
                tls_origin: config.card.tls_origin(),
            };
            Some(Arc::new(authn_methods::card::CardLogin::new(trust, directory.clone(), store.clone(), settings)))
        } else {
            None
        };
        // One line per way to sign in, as `login.methods` names them (docs/configuration.md).
        let mut engine = AuthEngine::new(directory.clone(), store.clone(), settings);
        for method in &config.login.methods {
            engine = match method.as_str() {
                "otp" => engine.with_codes(),
                "mail" => engine.with_mail_otp(mail.clone()),
                "push" | "qr" if !config.push.enabled => {
                    tracing::warn!(method = %method, "login.methods names a phone method but push.enabled is false: not offered");
                    engine
                }
                "push" => engine.with_push(push.clone()),
                "qr" => {
                    let settings = QrSettings { validity: Duration::from_secs(config.push.qr_validity) };
                    engine.with_method(Arc::new(QrLogin::new(push.clone(), settings)))
                }
                "webauthn" | "webauthn-key" => match &passkeys {
                    Some(p) => engine.with_webauthn(p.clone(), method == "webauthn"),
                    None => engine,
                },
                "card" => match &card {
                    Some(c) => engine.with_card(c.clone()),
                    None => engine,
                },
                _ => engine,
            };
        }
        let engine = Arc::new(engine);
        let mut provider_config = config.provider_config()?;
        provider_config.reachable_acr = Some(engine.strongest_acr().to_owned());
        let provider = Arc::new(Provider::new(ProviderDeps {
            config: provider_config,
            keys: keys.clone(),
            store: store.clone(),
            clients: adapter.clone(),
            accounts: adapter.clone(),
            grants: adapter.clone(),
            audit: adapter,
            notifier: Some(notifier),
            refresh_token_key: oidc_core::token::RefreshTokenKey::new(&directory.derived_secret("refresh-token")[..]),
            decoupled: (config.push.enabled && config.push.ciba).then(|| {
                Arc::new(crate::decoupled::PhoneApproval::new(directory.clone(), push.clone()))
                    as Arc<dyn oidc_core::ciba::DecoupledLogin>
            }),
        })?);
        let mtls = match config.mtls.listen {
            Some(_) => Some(crate::mtls_listener::MtlsServer::new(&config.mtls)?),
            None => None,
        };
        let card_tls = match (&card, config.card.tls_listen) {
            (Some(_), Some(_)) => Some(crate::card_listener::CardTlsServer::new(&config.card)?),
            _ => None,
        };
        Ok(App { config, directory, store, keys, provider, engine, push, passkeys, card, clock, mtls, card_tls })
    }

    /// The administrators' operations (REST API and CLI).
    /// Registers the wallet and the console for this node's issuer. Only `serve` does it: a
    /// command run with another configuration must not rewrite those of the running servers.
    pub async fn register_wallet(&self) -> Result<(), BuildError> {
        ensure_wallet_client(&self.directory, &self.config.issuer, (self.clock)()).await?;
        ensure_console_client(&self.directory, &self.config.issuer, (self.clock)()).await
    }

    pub fn admin(&self) -> admin_api::AdminService {
        admin_api::AdminService {
            provider: self.provider.clone(),
            directory: self.directory.clone(),
            engine: self.engine.clone(),
            push: self.push.clone(),
            clock: self.clock.clone(),
            admin_certificates: Arc::new(self.config.admin.client_certificates.clone()),
        }
    }

    /// Every route: protocol, login pages, admin API, health; every answer with the security
    /// headers (`oidc_core::http::security`).
    pub fn router(&self) -> Router {
        let protocol_state = ProtocolState {
            provider: self.provider.clone(),
            pages: Arc::new(login_ui::HtmlPages::new(self.provider.config().base_path())),
            clock: self.clock.clone(),
        };
        let documents = oidc_core::http::documents_router(protocol_state.clone());
        let protocol = oidc_core::http::dynamic_router(protocol_state);
        let login = login_ui::router(login_ui::LoginState {
            provider: self.provider.clone(),
            engine: self.engine.clone(),
            push: self.config.push.enabled.then(|| self.push.clone()),
            passkeys: self.passkeys.clone(),
            enrolment: Arc::new(Enrolment::new(self.directory.clone(), self.config.login.totp_issuer.clone())),
            store: self.store.clone(),
            wallet_data: Arc::new(DirectoryAdapter::new(self.directory.clone(), self.clock.clone())),
            clock: self.clock.clone(),
        });
        let devices = device_api::router(device_api::DeviceApiState {
            provider: self.provider.clone(),
            push: self.config.push.enabled.then(|| self.push.clone()),
            clock: self.clock.clone(),
        });
        let admin = admin_api::router(self.admin());
        let console = console::router(console::ConsoleState { admin: self.admin(), store: self.store.clone() });
        let health = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readiness))
            .with_state(self.clone());
        let edge = Arc::new(crate::edge::Edge {
            trusted: self.config.trusted_proxies.clone(),
            // Checked by `Config::validate`; a bad name falls back to the default.
            cert_header: axum::http::HeaderName::from_bytes(self.config.admin.client_certificate_header.as_bytes())
                .unwrap_or_else(|_| axum::http::HeaderName::from_static("x-client-cert")),
            mtls: self.config.mtls.enabled,
        });
        let mut layered = protocol.merge(login).merge(devices).merge(admin).merge(console).merge(health.clone());
        if self.config.metrics.enabled {
            let access = crate::metrics::MetricsAccess {
                // Checked by `Config::validate`.
                allow: self.config.metrics.networks().unwrap_or_default(),
                handle: crate::metrics::handle(),
            };
            let metrics = Router::new().route("/metrics", get(crate::metrics::serve)).with_state(Arc::new(access));
            layered = layered.merge(metrics).route_layer(axum::middleware::from_fn(crate::metrics::track));
        }
        if self.config.telemetry.enabled() {
            layered = layered.route_layer(axum::middleware::from_fn(crate::telemetry::name_span));
        }
        let layered = layered
            .layer(axum::middleware::from_fn_with_state(edge.clone(), crate::edge::client_origin))
            .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
            // The path and the names of the query's parameters, never their values.
            .layer(TraceLayer::new_for_http().make_span_with(crate::request_log::request_span::<axum::body::Body>))
            // Outermost: the id is in place before the request's span is made.
            .layer(axum::middleware::from_fn_with_state(edge, crate::edge::request_id));
        // Discovery and JWKS need none of those layers (no body, no caller-specific answer):
        // layers apply to the routes present when added, so these stay bare.
        // Every answer, the documents and the errors included: static values, in one layer (the
        // router boxes each layer it is given; these three add no allocation of their own).
        let headers = oidc_core::http::security::ResponseHeaders::for_issuer(&self.config.issuer);
        let security = tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(headers.nosniff.0, headers.nosniff.1))
            .layer(SetResponseHeaderLayer::overriding(headers.referrer_policy.0, headers.referrer_policy.1))
            .option_layer(headers.strict_transport_security.map(|(n, v)| SetResponseHeaderLayer::overriding(n, v)));
        let all = documents.merge(layered);
        // An issuer with a path (a Keycloak realm's): every route answers under it, as every
        // link and redirect the pages give does; the probes stay at the root too, where
        // orchestrators look for them.
        let base = self.provider.config().base_path();
        let all = if base.is_empty() { all } else { Router::new().nest(base, all).merge(health) };
        all.layer(security)
    }

    /// Background duties: retry back-channel logouts that are due (every few seconds), reload
    /// keys (rotation on another node), purge expired refresh tokens.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut keys_tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
            let mut logout_tick = tokio::time::interval(LOGOUT_RETRY_INTERVAL);
            keys_tick.tick().await;
            loop {
                tokio::select! {
                    _ = logout_tick.tick() => {
                        if let Some(notifier) = app.provider.notifier() {
                            notifier.retry_due().await;
                        }
                    }
                    _ = keys_tick.tick() => {
                        let now = (app.clock)();
                        if let Err(e) = app.keys.reload(now).await {
                            tracing::warn!(error = %e, "reloading signing keys failed");
                        }
                        if let Err(e) = app.directory.refresh_tokens().purge_expired(now).await {
                            tracing::warn!(error = %e, "purging expired refresh tokens failed");
                        }
                    }
                }
            }
        })
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mtls = match self.config.mtls.listen {
            Some(addr) if self.mtls.is_some() => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        let card_tls = match self.config.card.tls_listen {
            Some(addr) if self.card_tls.is_some() => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        self.serve_with_listeners(listener, mtls, card_tls, shutdown).await
    }

    /// Serves on `listener`, and on `mtls` with TLS asking for client certificates (RFC 8705)
    /// when `mtls.listen` is configured.
    pub async fn serve_with_mtls(
        self,
        listener: TcpListener,
        mtls: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with_listeners(listener, mtls, None, shutdown).await
    }

    /// Serves on `listener`, on `mtls` (RFC 8705) and on `card_tls` (the card's TLS listener)
    /// when they are configured.
    pub async fn serve_with_listeners(
        self,
        listener: TcpListener,
        mtls: Option<TcpListener>,
        card_tls: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let background = self.spawn_background();
        let crl_refresh = self
            .card
            .as_ref()
            .map(|c| c.trust().crls().spawn_refresh(Duration::from_secs(self.config.card.crl_refresh)));
        let router = self.router();
        let mtls_task = match (self.mtls.clone(), mtls) {
            (Some(server), Some(l)) => {
                tracing::info!(address = %l.local_addr()?, "mutual TLS listener");
                Some(tokio::spawn(server.serve(l, router.clone())))
            }
            _ => None,
        };
        let card_task = match (self.card_tls.clone(), card_tls) {
            (Some(server), Some(l)) => {
                tracing::info!(address = %l.local_addr()?, "card TLS listener");
                Some(tokio::spawn(server.serve(l, router.clone())))
            }
            _ => None,
        };
        let result = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        background.abort();
        if let Some(task) = crl_refresh {
            task.abort();
        }
        for task in [mtls_task, card_task].into_iter().flatten() {
            task.abort();
        }
        result
    }
}

/// 200 when the session store and the database answer, 503 otherwise (load balancers stop
/// sending traffic to a node that would only refuse logins).
async fn readiness(State(app): State<App>) -> Response {
    let store = app.store.ping().await.is_ok();
    let database = app.directory.ping().await.is_ok();
    let status = if store && database { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "session_store": store, "database": database }))).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_clients_can_be_built_once_the_provider_is_chosen() {
        super::install_crypto_provider();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        assert!(!config.alpn_protocols.contains(&b"bogus".to_vec()));
    }
}
