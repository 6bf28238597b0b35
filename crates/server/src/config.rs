//! Configuration: built-in defaults, then `caducee.toml` (or `--config FILE`), then `CADUCEE_*`
//! environment variables (nested keys with `__`, e.g. `CADUCEE_TOKENS__ACCESS_TOKEN_TTL=120`).
//! Every key is documented in docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod card;
mod metrics;
mod mtls;
mod profile;
mod push;
mod redis;
mod telemetry;
mod webauthn;

pub use card::CardConfig;
pub use metrics::MetricsConfig;
pub use mtls::MtlsConfig;
pub use profile::Profile;
pub use push::PushConfig;
pub use redis::RedisSentinelConfig;
pub use telemetry::TelemetryConfig;
pub use webauthn::WebauthnConfig;

/// `Debug` leaves out the secrets: the master key, the passwords in `database_url`, `redis_url`,
/// `redis_cluster_nodes` and `[redis_sentinel]`, and `mail.smtp_password`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The defaults the other settings start from: `standard`, or `pro-sante-connect`
    /// (Pro Santé Connect's lifetimes).
    #[serde(default)]
    pub profile: Profile,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Issuer identifier: the public base URL of the provider.
    pub issuer: String,
    /// Where browsers are sent to sign in and out, when it is another host than the issuer (as
    /// Pro Santé Connect's login page is): discovery's `authorization_endpoint` and
    /// `end_session_endpoint` name it. Empty: the issuer. The same server must answer there.
    #[serde(default)]
    pub login_origin: String,
    /// Folder for the embedded default's files (SQLite database, master key).
    pub data_dir: PathBuf,
    /// Database URL; empty means SQLite in `data_dir/caducee.db`.
    pub database_url: String,
    /// Redis URL for the shared session store; empty means in-process (single node only), unless
    /// `redis_cluster_nodes` or `[redis_sentinel]` names Redis otherwise.
    pub redis_url: String,
    /// The seed nodes of a Redis Cluster holding the shared session store (instead of `redis_url`).
    #[serde(default)]
    pub redis_cluster_nodes: Vec<String>,
    /// A primary and replicas under Redis Sentinel holding the shared session store (instead of
    /// `redis_url`).
    #[serde(default)]
    pub redis_sentinel: RedisSentinelConfig,
    /// Prefix of every Redis key (several deployments may share one Redis).
    pub redis_prefix: String,
    /// The CA (PEM file) that signed the Redis servers' certificates (and the sentinels'), for
    /// TLS; empty: the system's trust store.
    #[serde(default)]
    pub redis_ca_file: PathBuf,
    /// Master key for secrets at rest (base64 of 32 bytes). Empty: read or create
    /// `data_dir/master.key`. Every node of a deployment needs the same key.
    pub master_key: String,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed (e.g. `["127.0.0.1"]`).
    /// Empty: the connection's peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub tokens: TokenSettings,
    pub session: SessionSettings,
    pub login: LoginSettings,
    pub mail: MailSettings,
    pub push: PushConfig,
    pub admin: AdminSettings,
    /// Mutual TLS for relying parties (RFC 8705).
    #[serde(default)]
    pub mtls: MtlsConfig,
    /// `/metrics` for monitoring.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Traces to an OpenTelemetry collector (`[telemetry]`; off by default).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Passkeys and security keys: the operator's policy (`[webauthn]`).
    #[serde(default)]
    pub webauthn: WebauthnConfig,
    /// The CPS card sign-in: its agent, trust anchors and revocation lists (`[card]`).
    #[serde(default)]
    pub card: CardConfig,
}

/// Who may call the admin API besides clients holding a `caducee:admin` token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// SHA-256 thumbprints (base64url, like RFC 8705's `x5t#S256`) of the client certificates
    /// that administer, as verified by the TLS-terminating proxy (mutual TLS).
    pub client_certificates: Vec<String>,
    /// The header in which a trusted proxy passes the verified client certificate: URL-encoded
    /// PEM (nginx's `$ssl_client_escaped_cert`) or base64 DER. Believed from `trusted_proxies`
    /// only; removed from every other request.
    pub client_certificate_header: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Seconds an authorization code is valid.
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// `ES256` or `RS256`.
    pub access_token_alg: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Seconds an SSO session lasts from sign-in.
    pub ttl: i64,
    /// Seconds a person has to finish logging in.
    pub interaction_ttl: i64,
    /// Logins a source address (its /64 for IPv6) may start per `interaction_limit_window`...
    pub max_interactions_per_address: u64,
    /// ...and a browser (its `caducee_browser` cookie).
    pub max_interactions_per_browser: u64,
    pub interaction_limit_window: u64,
    /// Most memory (MiB) the in-process session store may hold (embedded default, no Redis).
    pub memory_limit_mb: u64,
    /// Seconds without a sign-in, single sign-on or token refresh after which an SSO session
    /// ends (0: never; Pro Santé Connect: 1800).
    #[serde(default)]
    pub idle_timeout: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Failures of one identifier from one source (an address, or a browser it signed in with)
    /// before that source is locked out of it.
    pub max_failures: u64,
    /// Seconds over which failures are counted.
    pub failure_window: u64,
    /// Seconds of the first lock; each further one doubles, up to `max_lock`.
    pub base_lock: u64,
    pub max_lock: u64,
    /// Failures on one identifier, from any sources, within `identifier_window` seconds, after
    /// which each failing untrusted source waits before its next attempt on it: from
    /// `identifier_base_delay` seconds, doubling up to `identifier_max_delay`.
    pub identifier_delay_after: u64,
    pub identifier_window: u64,
    pub identifier_base_delay: u64,
    pub identifier_max_delay: u64,
    /// Attempts that did not succeed from one address (/64 for IPv6), any identifiers, per
    /// `address_window` seconds (password spraying).
    pub address_max_attempts: u64,
    pub address_window: u64,
    /// Failed attempts take at least this many milliseconds.
    pub failure_floor_ms: u64,
    /// Name shown in authenticator apps.
    pub totp_issuer: String,
    /// The ways to sign in the login page offers, in this order: `otp` (TOTP apps, OTP tokens,
    /// activation codes, after the password), `mail` (a code by e-mail, after the password),
    /// `push` (approval on the phone, after the password), `qr` (QR code with the phone app,
    /// alone), `webauthn` (a passkey, alone), `webauthn-key` (a security key, after the
    /// password), `card` (the CPS card and its PIN, alone; `[card]`). `push` and `qr` need
    /// `push.enabled`. Default: the first four.
    #[serde(default = "default_login_methods")]
    pub methods: Vec<String>,
}

/// Every way to sign in there is.
pub const LOGIN_METHODS: &[&str] = &["otp", "mail", "push", "qr", "webauthn", "webauthn-key", "card"];

/// The ways to sign in on when `login.methods` is not set, in the order the page offers them.
const DEFAULT_LOGIN_METHODS: &[&str] = &["otp", "mail", "push", "qr"];

fn default_login_methods() -> Vec<String> {
    DEFAULT_LOGIN_METHODS.iter().map(|m| (*m).to_owned()).collect()
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// SMTP server; empty: mails go to the file outbox `data_dir/outbox` (one `.eml` each).
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (loopback relays only).
    pub smtp_security: authn_methods::mailer::SmtpSecurity,
    pub smtp_username: String,
    pub smtp_password: String,
    /// Sender of the OTP mails.
    pub from: String,
    /// Seconds a mailed code stays valid.
    pub otp_validity: u64,
    /// Time zone of the expiry time written in the mail.
    pub timezone: String,
    /// Codes mailed to one account per `account_window` seconds, and at least
    /// `min_interval` seconds apart.
    pub max_per_account: u64,
    pub account_window: u64,
    pub min_interval: u64,
    /// Codes requested from one source address per `address_window` seconds.
    pub max_per_address: u64,
    pub address_window: u64,
}

/// What `Debug` shows of a secret setting: whether it is set, never its value.
fn redacted(value: &str) -> &'static str {
    if value.is_empty() { "" } else { "<redacted>" }
}

/// A URL with its password, if it has one, replaced by `***` (for logs and `Debug`); a URL
/// that cannot be read is not shown at all, since where its password is cannot be told.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) if url.is_empty() => String::new(),
        Err(_) => "<unreadable URL>".to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("profile", &self.profile)
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field("login_origin", &self.login_origin)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_cluster_nodes", &self.redis_cluster_nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>())
            .field("redis_sentinel", &self.redis_sentinel)
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_ca_file", &self.redis_ca_file)
            .field("master_key", &redacted(&self.master_key))
            .field("log_format", &self.log_format)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("tokens", &self.tokens)
            .field("session", &self.session)
            .field("login", &self.login)
            .field("mail", &self.mail)
            .field("push", &self.push)
            .field("admin", &self.admin)
            .field("mtls", &self.mtls)
            .field("metrics", &self.metrics)
            .field("telemetry", &self.telemetry)
            .field("webauthn", &self.webauthn)
            .field("card", &self.card)
            .finish()
    }
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &redacted(&self.smtp_password))
            .field("from", &self.from)
            .field("otp_validity", &self.otp_validity)
            .field("timezone", &self.timezone)
            .field("max_per_account", &self.max_per_account)
            .field("account_window", &self.account_window)
            .field("min_interval", &self.min_interval)
            .field("max_per_address", &self.max_per_address)
            .field("address_window", &self.address_window)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: Profile::Standard,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".into(),
            login_origin: String::new(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            redis_url: String::new(),
            redis_cluster_nodes: Vec::new(),
            redis_sentinel: RedisSentinelConfig::default(),
            redis_prefix: "caducee:".into(),
            redis_ca_file: PathBuf::new(),
            master_key: String::new(),
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            tokens: TokenSettings {
                code_ttl: 60,
                access_token_ttl: 300,
                id_token_ttl: 300,
                refresh_token_ttl: 8 * 3600,
                access_token_alg: "ES256".into(),
            },
            session: SessionSettings {
                ttl: 12 * 3600,
                interaction_ttl: 15 * 60,
                max_interactions_per_address: 300,
                max_interactions_per_browser: 30,
                interaction_limit_window: 600,
                memory_limit_mb: 512,
                idle_timeout: 0,
            },
            login: LoginSettings {
                max_failures: 5,
                failure_window: 15 * 60,
                base_lock: 60,
                max_lock: 3600,
                identifier_delay_after: 10,
                identifier_window: 3600,
                identifier_base_delay: 5,
                identifier_max_delay: 300,
                address_max_attempts: 30,
                address_window: 15 * 60,
                failure_floor_ms: 300,
                totp_issuer: "Caducée".into(),
                methods: default_login_methods(),
            },
            mail: MailSettings {
                smtp_host: String::new(),
                smtp_port: 587,
                smtp_security: authn_methods::mailer::SmtpSecurity::Starttls,
                smtp_username: String::new(),
                smtp_password: String::new(),
                from: "Caducée <ne.pas.repondre@caducee.invalid>".into(),
                otp_validity: 300,
                timezone: "Europe/Paris".into(),
                max_per_account: 5,
                account_window: 3600,
                min_interval: 30,
                max_per_address: 20,
                address_window: 3600,
            },
            push: PushConfig::default(),
            admin: AdminSettings { client_certificates: Vec::new(), client_certificate_header: "x-client-cert".into() },
            mtls: MtlsConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
            webauthn: WebauthnConfig::default(),
            card: CardConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the configuration: defaults, then the file (`path`, or `./caducee.toml` if it
    /// exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut given = Figment::new();
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_owned())),
            Some(p) => given = given.merge(Toml::file(p)),
            None if Path::new("caducee.toml").exists() => given = given.merge(Toml::file("caducee.toml")),
            None => {}
        }
        given = given.merge(Env::prefixed("CADUCEE_").ignore(&["config"]).split("__"));
        // The profile's defaults go under what the file and the environment say.
        let profile: Profile = match given.find_value("profile") {
            Ok(_) => given.extract_inner("profile").map_err(Box::new)?,
            Err(_) => Profile::default(),
        };
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::defaults(profile.overrides()))
            .merge(given)
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.issuer).map_err(|e| ConfigError::Invalid(format!("issuer: {e}")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::Invalid("issuer must not have a query or fragment".into()));
        }
        if url.as_str().trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            // `iss` is compared as a string: it must read as every URL parser reads it.
            return Err(ConfigError::Invalid(format!(
                "issuer must be written in its normal form: {}",
                url.as_str().trim_end_matches('/')
            )));
        }
        if !plain_path(url.path()) {
            // Every route is served under the issuer's path (a Keycloak realm's, say): plain
            // segments only, so that it names one place and is read the same by every router.
            return Err(ConfigError::Invalid(
                "issuer's path must be plain segments (letters, digits, `-`, `_`, `.`, `~`), e.g. \
                 https://auth.example or https://auth.example/auth/realms/esante-wallet"
                    .into(),
            ));
        }
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(ConfigError::Invalid("issuer must be https (http only on loopback, for development)".into()));
        }
        if !self.login_origin.is_empty() {
            let login =
                url::Url::parse(&self.login_origin).map_err(|e| ConfigError::Invalid(format!("login_origin: {e}")))?;
            let loopback = matches!(login.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            let https_or_local = login.scheme() == "https" || (login.scheme() == "http" && loopback);
            if !matches!(login.path(), "" | "/") || login.query().is_some() || !https_or_local {
                return Err(ConfigError::Invalid(
                    "login_origin must be an https origin without a path, e.g. https://wallet.example".into(),
                ));
            }
        }
        self.metrics.networks().map_err(ConfigError::Invalid)?;
        self.telemetry.validate().map_err(ConfigError::Invalid)?;
        self.validate_redis()?;
        if !self.mtls.origin.is_empty() {
            // The mutual-TLS endpoints are https by nature.
            let origin =
                url::Url::parse(&self.mtls.origin).map_err(|e| ConfigError::Invalid(format!("mtls.origin: {e}")))?;
            if origin.scheme() != "https" || !matches!(origin.path(), "" | "/") || origin.query().is_some() {
                return Err(ConfigError::Invalid("mtls.origin must be an https origin without a path".into()));
            }
        }
        if self.mtls.listen.is_some()
            && (self.mtls.certificate.as_os_str().is_empty() || self.mtls.private_key.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid("mtls.listen needs mtls.certificate and mtls.private_key".into()));
        }
        if self.mtls.enabled && self.mtls.listen.is_none() && self.trusted_proxies.is_empty() {
            return Err(ConfigError::Invalid(
                "mtls.enabled needs mtls.listen, or the TLS-terminating proxy in trusted_proxies".into(),
            ));
        }
        if axum::http::HeaderName::from_bytes(self.admin.client_certificate_header.as_bytes()).is_err() {
            return Err(ConfigError::Invalid("admin.client_certificate_header must be a header name".into()));
        }
        if !self.admin.client_certificates.is_empty() && self.trusted_proxies.is_empty() {
            return Err(ConfigError::Invalid(
                "admin.client_certificates needs the TLS-terminating proxy in trusted_proxies".into(),
            ));
        }
        for t in &self.admin.client_certificates {
            let ok = t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "admin.client_certificates: `{t}` is not a SHA-256 thumbprint in base64url (43 characters)"
                )));
            }
        }
        if oidc_core::keys::SigningAlg::parse(&self.tokens.access_token_alg).is_none() {
            return Err(ConfigError::Invalid("tokens.access_token_alg must be ES256 or RS256".into()));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.code_ttl", t.code_ttl),
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("session.ttl", self.session.ttl),
            ("session.interaction_ttl", self.session.interaction_ttl),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        if self.session.idle_timeout < 0 || (self.session.idle_timeout > 0 && self.session.idle_timeout < 60) {
            return Err(ConfigError::Invalid("session.idle_timeout must be 0 (none) or at least 60 seconds".into()));
        }
        if self.mail.otp_validity == 0 || self.mail.max_per_account == 0 {
            return Err(ConfigError::Invalid("mail.otp_validity and mail.max_per_account must be positive".into()));
        }
        if jiff::tz::TimeZone::get(&self.mail.timezone).is_err() {
            return Err(ConfigError::Invalid(format!("mail.timezone: unknown time zone {}", self.mail.timezone)));
        }
        if !(10..=60).contains(&self.push.validity) {
            return Err(ConfigError::Invalid("push.validity must be between 10 and 60 seconds".into()));
        }
        if self.push.max_per_account == 0 || self.push.account_window == 0 {
            return Err(ConfigError::Invalid("push.max_per_account and push.account_window must be positive".into()));
        }
        if self.push.max_per_address == 0 || self.push.address_window == 0 {
            return Err(ConfigError::Invalid("push.max_per_address and push.address_window must be positive".into()));
        }
        if self.push.max_per_client == 0 || self.push.client_window == 0 {
            return Err(ConfigError::Invalid("push.max_per_client and push.client_window must be positive".into()));
        }
        if self.push.warning.chars().count() > 500 {
            return Err(ConfigError::Invalid("push.warning must be at most 500 characters".into()));
        }
        if !self.push.webhook_url.is_empty() {
            let url = url::Url::parse(&self.push.webhook_url)
                .map_err(|e| ConfigError::Invalid(format!("push.webhook_url: {e}")))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(ConfigError::Invalid("push.webhook_url must be an http(s) URL".into()));
            }
            if self.push.webhook_secret.chars().count() < 32 {
                return Err(ConfigError::Invalid(
                    "push.webhook_secret must be at least 32 characters when push.webhook_url is set".into(),
                ));
            }
        }
        if !(30..=600).contains(&self.push.qr_validity) {
            return Err(ConfigError::Invalid("push.qr_validity must be between 30 and 600 seconds".into()));
        }
        if self.push.max_wait > 60 {
            return Err(ConfigError::Invalid("push.max_wait must be at most 60 seconds".into()));
        }
        if self.push.silence_after_denials == 0 || self.push.silence_after_expiries == 0 {
            return Err(ConfigError::Invalid(
                "push.silence_after_denials and push.silence_after_expiries must be positive".into(),
            ));
        }
        self.webauthn.validate()?;
        if self.login.methods.iter().any(|m| m == "card") {
            self.card.validate()?;
        }
        if self.login.methods.is_empty() {
            return Err(ConfigError::Invalid("login.methods must name at least one way to sign in".into()));
        }
        for (i, m) in self.login.methods.iter().enumerate() {
            if !LOGIN_METHODS.contains(&m.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "login.methods: unknown method {m:?} (known: {})",
                    LOGIN_METHODS.join(", ")
                )));
            }
            if self.login.methods[..i].contains(m) {
                return Err(ConfigError::Invalid(format!("login.methods names {m:?} twice")));
            }
        }
        if self.login.max_failures == 0 {
            return Err(ConfigError::Invalid("login.max_failures must be at least 1".into()));
        }
        if self.login.identifier_max_delay > 900 {
            return Err(ConfigError::Invalid(
                "login.identifier_max_delay is at most 900 seconds: it holds the professional off too".into(),
            ));
        }
        for (name, v) in [
            ("login.failure_window", self.login.failure_window),
            ("login.base_lock", self.login.base_lock),
            ("login.max_lock", self.login.max_lock),
            ("login.identifier_delay_after", self.login.identifier_delay_after),
            ("login.identifier_window", self.login.identifier_window),
            ("login.address_max_attempts", self.login.address_max_attempts),
            ("login.address_window", self.login.address_window),
            ("session.max_interactions_per_address", self.session.max_interactions_per_address),
            ("session.max_interactions_per_browser", self.session.max_interactions_per_browser),
            ("session.interaction_limit_window", self.session.interaction_limit_window),
            ("session.memory_limit_mb", self.session.memory_limit_mb),
            ("mail.account_window", self.mail.account_window),
            ("mail.address_window", self.mail.address_window),
            ("mail.max_per_address", self.mail.max_per_address),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data folder.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("caducee.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The protocol settings derived from this configuration.
    pub fn provider_config(&self) -> Result<oidc_core::ProviderConfig, ConfigError> {
        let mut p =
            oidc_core::ProviderConfig::new(&self.issuer).map_err(|e| ConfigError::Invalid(format!("issuer: {e}")))?;
        if !self.login_origin.is_empty() {
            p.login_origin = Some(self.login_origin.trim_end_matches('/').to_owned());
        }
        p.mtls = self.mtls.enabled;
        if self.mtls.enabled && !self.mtls.origin.is_empty() {
            p.mtls_origin = Some(self.mtls.origin.trim_end_matches('/').to_owned());
        }
        p.code_ttl = self.tokens.code_ttl;
        p.access_token_ttl = self.tokens.access_token_ttl;
        p.id_token_ttl = self.tokens.id_token_ttl;
        p.refresh_token_ttl = self.tokens.refresh_token_ttl;
        p.session_ttl = self.session.ttl;
        p.session_idle_timeout = (self.session.idle_timeout > 0).then_some(self.session.idle_timeout);
        p.interaction_ttl = self.session.interaction_ttl;
        let window = std::time::Duration::from_secs(self.session.interaction_limit_window);
        p.interactions_per_address = session_store::Rate::new(self.session.max_interactions_per_address, window);
        p.interactions_per_browser = session_store::Rate::new(self.session.max_interactions_per_browser, window);
        p.access_token_alg = oidc_core::keys::SigningAlg::parse(&self.tokens.access_token_alg)
            .ok_or_else(|| ConfigError::Invalid("tokens.access_token_alg".into()))?;
        Ok(p)
    }
}

/// An issuer's path: empty, or `/`-separated segments of unreserved characters, none of them
/// `.` or `..`, without an empty one (a trailing `/` aside).
fn plain_path(path: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.is_empty()
        || path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./data/caducee.db?mode=rwc");
        assert!(c.redis_url.is_empty());
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn file_and_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "issuer = \"https://idp.example\"\n[tokens]\naccess_token_ttl = 120\n")?;
            jail.set_env("CADUCEE_TOKENS__CODE_TTL", "30");
            jail.set_env("CADUCEE_REDIS_URL", "redis://127.0.0.1:6379/");
            let c = Config::load(Some(Path::new("custom.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.issuer, "https://idp.example");
            assert_eq!(c.tokens.access_token_ttl, 120);
            assert_eq!(c.tokens.code_ttl, 30);
            assert_eq!(c.redis_url, "redis://127.0.0.1:6379/");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_pro_sante_connect_profile_sets_its_lifetimes_under_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("psc.toml", "profile = \"pro-sante-connect\"\n[session]\nttl = 7200\n")?;
            jail.set_env("CADUCEE_TOKENS__REFRESH_TOKEN_TTL", "900");
            let c = Config::load(Some(Path::new("psc.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.profile, Profile::ProSanteConnect);
            assert_eq!((c.tokens.access_token_ttl, c.session.idle_timeout), (120, 1800), "the profile's");
            assert_eq!((c.session.ttl, c.tokens.refresh_token_ttl), (7200, 900), "the file's and the environment's");
            jail.set_env("CADUCEE_PROFILE", "standard");
            let c = Config::load(Some(Path::new("psc.toml"))).map_err(|e| e.to_string())?;
            assert_eq!((c.tokens.access_token_ttl, c.session.idle_timeout), (300, 0));
            jail.set_env("CADUCEE_PROFILE", "keycloak");
            assert!(Config::load(Some(Path::new("psc.toml"))).is_err(), "an unknown profile");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_shipped_production_example_loads() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("caducee.toml", include_str!("../../../deploy/caducee.toml.example"))?;
            let c = Config::load(Some(Path::new("caducee.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.issuer, "https://auth.sante.example");
            assert_eq!(c.admin.client_certificate_header, "x-client-cert");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_config_file_variable_is_not_a_setting() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("other.toml", "issuer = \"https://idp.example\"\n")?;
            jail.set_env("CADUCEE_CONFIG", "other.toml");
            let c = Config::load(Some(Path::new("other.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.issuer, "https://idp.example");
            Ok(())
        });
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let mut c = Config { issuer: "http://idp.example".into(), ..Config::default() };
        assert!(c.validate().is_err());
        c.issuer = "https://idp.example".into();
        c.tokens.access_token_alg = "HS256".into();
        assert!(c.validate().is_err());
        let mut c = Config { issuer: "https://idp.example/auth/realms/esante-wallet".into(), ..Config::default() };
        assert!(c.validate().is_ok(), "a realm's issuer");
        for bad in [
            "https://idp.example/a//b",
            "https://idp.example/a/../b",
            "https://idp.example/%7Bid%7D",
            "https://idp.example/a/{id}",
        ] {
            c.issuer = bad.into();
            assert!(c.validate().is_err(), "{bad}");
        }
        c.issuer = "https://idp.example".into();
        c.login.failure_window = 0;
        assert!(c.validate().is_err(), "a zero window");
    }
}
