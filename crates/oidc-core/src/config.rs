//! Protocol settings: issuer, lifetimes, supported assurance levels.

use std::time::Duration;

use session_store::Rate;
use url::Url;

use crate::keys::SigningAlg;

/// What the protocol layer needs to know about the deployment. Built by the server from its
/// configuration file and environment.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The issuer identifier, exactly as it appears in `iss` (no trailing slash).
    pub issuer: String,
    /// The issuer's path (`/auth/realms/esante-wallet`), under which every route answers;
    /// empty for an issuer that is an origin. Derived from `issuer`.
    base_path: String,
    /// Where browsers sign in and out, when not at the issuer (no trailing slash).
    pub login_origin: Option<String>,
    /// Client certificates reach the provider (its own TLS listener, or a trusted proxy): mutual
    /// TLS client authentication and bound tokens are offered.
    pub mtls: bool,
    /// Where relying parties reach the endpoints with mutual TLS, when not at the issuer
    /// (discovery's `mtls_endpoint_aliases`, RFC 8705 §5; no trailing slash).
    pub mtls_origin: Option<String>,
    /// Authorization codes live this long (seconds); 60 by default.
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// An SSO session ends this long after it started (seconds), whatever its activity.
    pub session_ttl: i64,
    /// Seconds without activity after which an SSO session ends (none: only `session_ttl`).
    pub session_idle_timeout: Option<i64>,
    /// A login interaction must be finished within this time (seconds).
    pub interaction_ttl: i64,
    /// Assurance levels from weakest to strongest (`acr` values); requests compare by position.
    pub acr_levels: Vec<String>,
    /// Cookies are `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// The strongest `acr` the configured authentication methods can reach (None: no cap).
    pub reachable_acr: Option<String>,
    /// Algorithm of the JWT access tokens (ID tokens use each client's registered one).
    pub access_token_alg: SigningAlg,
    /// How far in the future a client assertion's `exp` may be (seconds).
    pub max_assertion_lifetime: i64,
    /// Login interactions a source address (its /64 for IPv6) may start...
    pub interactions_per_address: Rate,
    /// ...and a browser (its `caducee_browser` cookie).
    pub interactions_per_browser: Rate,
}

impl ProviderConfig {
    /// Settings with the defaults documented in docs/configuration.md for `issuer`.
    pub fn new(issuer: &str) -> Result<Self, url::ParseError> {
        let url = Url::parse(issuer)?;
        let issuer = issuer.trim_end_matches('/').to_owned();
        Ok(ProviderConfig {
            base_path: url.path().trim_end_matches('/').to_owned(),
            secure_cookies: url.scheme() == "https",
            issuer,
            code_ttl: 60,
            access_token_ttl: 300,
            id_token_ttl: 300,
            refresh_token_ttl: 8 * 3600,
            login_origin: None,
            mtls: false,
            mtls_origin: None,
            session_ttl: 12 * 3600,
            session_idle_timeout: None,
            interaction_ttl: 15 * 60,
            acr_levels: vec!["eidas1".into(), "eidas2".into(), "eidas3".into()],
            max_assertion_lifetime: 300,
            access_token_alg: SigningAlg::ES256,
            reachable_acr: None,
            interactions_per_address: Rate::new(300, Duration::from_secs(600)),
            interactions_per_browser: Rate::new(30, Duration::from_secs(600)),
        })
    }

    /// The issuer's path, empty when the issuer is an origin: every route of this server is
    /// under it, and so are the links and redirects its pages give.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The absolute path of one of this server's routes (`/interaction/…` under the issuer's
    /// path), for a redirect or a link on the same origin.
    pub fn path(&self, route: &str) -> String {
        format!("{}{route}", self.base_path)
    }

    /// The `Path` of the provider's cookies: the issuer's, so that another realm on the same
    /// host never receives them.
    pub fn cookie_path(&self) -> &str {
        if self.base_path.is_empty() { "/" } else { &self.base_path }
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// An endpoint browsers are sent to (authorization, end session): at the login origin when
    /// one is configured, under the issuer's path there too (the same server answers).
    pub fn browser_endpoint(&self, path: &str) -> String {
        match self.login_origin.as_deref() {
            Some(origin) => format!("{origin}{}{path}", self.base_path),
            None => self.endpoint(path),
        }
    }

    /// An endpoint at the mutual-TLS origin, when one is configured.
    pub fn mtls_endpoint(&self, path: &str) -> Option<String> {
        self.mtls_origin.as_deref().map(|origin| format!("{origin}{}{path}", self.base_path))
    }

    /// Position of an `acr` value among the supported levels (higher is stronger).
    pub fn acr_rank(&self, acr: &str) -> Option<usize> {
        self.acr_levels.iter().position(|l| l == acr)
    }

    /// The longest time a token signed now may be presented: how long a retired key stays published.
    pub fn max_signed_token_lifetime(&self) -> i64 {
        self.access_token_ttl.max(self.id_token_ttl)
    }
}
