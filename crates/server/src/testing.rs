//! Helpers for whole-provider tests (this crate's `tests/` and `conformance-tests/`): a real
//! provider on a free loopback port, with real storage, a movable clock, and shortcuts to
//! create professionals and clients. Not used by the binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use directory::{ClientRecord, Directory, NewProfessional, Practice, Professional};
use oidc_core::client::ClientMetadata;
use session_store::SessionStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{App, BuildError};
use crate::cli::{ClientAdd, add_client};
use crate::config::Config;

/// The system clock plus an offset that tests move forward, instead of sleeping.
#[derive(Clone, Default)]
pub struct TestClock {
    offset: Arc<AtomicI64>,
}

impl TestClock {
    pub fn now(&self) -> i64 {
        oidc_core::http::system_clock() + self.offset.load(Ordering::SeqCst)
    }

    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn as_clock(&self) -> oidc_core::http::Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

/// A running provider for tests. Stops when dropped.
pub struct TestProvider {
    pub app: App,
    pub base_url: String,
    pub clock: TestClock,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _data: Option<tempfile::TempDir>,
}

/// Where a test provider keeps its state.
pub enum Storage {
    /// A fresh SQLite file and an in-process session store (the embedded default).
    Embedded,
    /// Given storage (e.g. PostgreSQL and Redis shared by several nodes).
    Shared { directory: Directory, store: Arc<dyn SessionStore> },
}

impl TestProvider {
    /// The embedded default on a free port.
    pub async fn start() -> Result<TestProvider, BuildError> {
        Self::start_with(Storage::Embedded, |_| {}).await
    }

    /// A provider on `storage`, with `tune` applied to its configuration (issuer and listen
    /// address are set to the free port chosen here; `tune` may add a path to the issuer, and
    /// [`TestProvider::url`] then answers under it).
    pub async fn start_with(storage: Storage, tune: impl FnOnce(&mut Config)) -> Result<TestProvider, BuildError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| BuildError::DataDir { path: "listener".into(), source })?;
        let addr = listener.local_addr().map_err(|source| BuildError::DataDir { path: "listener".into(), source })?;
        let base_url = format!("http://{addr}");
        let data = tempfile::tempdir().map_err(|source| BuildError::DataDir { path: "tempdir".into(), source })?;
        let mut config =
            Config { listen: addr, issuer: base_url.clone(), data_dir: data.path().to_owned(), ..Config::default() };
        // Failures are padded to hide timing; tests need not wait that long.
        config.login.failure_floor_ms = 20;
        tune(&mut config);
        // An issuer with a path (a realm's) on this listener: every route is under it.
        let base_url = match config.issuer.trim_end_matches('/') {
            issuer if issuer.starts_with(&format!("{base_url}/")) => issuer.to_owned(),
            _ => base_url,
        };
        // A mutual-TLS listener asked on port 0: on a free port, named by `mtls.origin`.
        let mtls = match config.mtls.listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| BuildError::DataDir { path: "mtls listener".into(), source })?;
                let bound =
                    l.local_addr().map_err(|source| BuildError::DataDir { path: "mtls listener".into(), source })?;
                config.mtls.listen = Some(bound);
                if config.mtls.origin.is_empty() {
                    config.mtls.origin = format!("https://localhost:{}", bound.port());
                }
                Some(l)
            }
            None => None,
        };
        // The card's TLS listener asked on port 0: on a free port of the login pages' host (so
        // that the login's cookie goes there too), named by `card.tls_origin`.
        let card_tls = match config.card.tls_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| BuildError::DataDir { path: "card listener".into(), source })?;
                let bound =
                    l.local_addr().map_err(|source| BuildError::DataDir { path: "card listener".into(), source })?;
                config.card.tls_listen = Some(bound);
                if config.card.tls_origin.is_empty() {
                    config.card.tls_origin = format!("https://127.0.0.1:{}", bound.port());
                }
                Some(l)
            }
            None => None,
        };
        let clock = TestClock::default();
        let app = match storage {
            Storage::Embedded => App::build(config, clock.as_clock()).await?,
            Storage::Shared { directory, store } => App::assemble(config, directory, store, clock.as_clock()).await?,
        };
        app.register_wallet().await?;
        let (tx, rx) = oneshot::channel::<()>();
        let serving = app.clone();
        let task = tokio::spawn(async move {
            serving
                .serve_with_listeners(listener, mtls, card_tls, async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(TestProvider { app, base_url, clock, shutdown: Some(tx), task: Some(task), _data: Some(data) })
    }

    /// `path` under the issuer (`/token` → `http://127.0.0.1:…/token`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Where a `Location` the server gave leads (an absolute path is on this server's origin,
    /// and already carries the issuer's path).
    pub fn resolve(&self, location: &str) -> String {
        url::Url::parse(&self.base_url)
            .and_then(|base| base.join(location))
            .map(String::from)
            .unwrap_or_else(|_| location.to_owned())
    }

    pub fn directory(&self) -> &Directory {
        &self.app.directory
    }

    /// Creates a professional with a password and an active TOTP app; returns the account and
    /// the TOTP secret (to compute codes with [`TestProvider::totp`]).
    pub async fn add_professional(&self, national_id: &str, password: &str) -> anyhow::Result<(Professional, Vec<u8>)> {
        let hash = authn_methods::password::hash_password(password)?;
        let p = self
            .directory()
            .professionals()
            .create(NewProfessional {
                subject: None,
                national_id: national_id.to_owned(),
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
                password_hash: Some(hash),
            })
            .await?;
        let enrolment = authn_methods::totp::enroll(
            self.directory(),
            &p.subject,
            &p.national_id,
            "Caducée",
            true,
            self.clock.now() - 60,
        )
        .await?;
        Ok((p, enrolment.authenticator.secret.to_vec()))
    }

    /// The TOTP code of `secret` at the provider's current time, `steps_ahead` periods later.
    pub fn totp(&self, secret: &[u8], steps_ahead: i64) -> anyhow::Result<String> {
        let at = self.clock.now() + steps_ahead * 30;
        Ok(authn_methods::totp::current_code(secret, authn_methods::totp::TotpParams::default(), at)?)
    }

    /// Registers a client; returns its id and secret (if it has one).
    pub async fn add_client(&self, add: ClientAdd) -> anyhow::Result<(String, Option<String>)> {
        add_client(self.directory(), add).await
    }

    /// Registers a client with arbitrary metadata (validated as the CLI does); returns the
    /// secret for secret-based methods.
    pub async fn add_client_metadata(
        &self,
        client_id: &str,
        metadata: ClientMetadata,
    ) -> anyhow::Result<Option<String>> {
        metadata.validate()?;
        let (secret, hash) =
            admin_api::service::new_secret_for(self.directory(), client_id, metadata.token_endpoint_auth_method)?;
        let now = self.clock.now();
        self.directory()
            .clients()
            .create(ClientRecord {
                client_id: client_id.to_owned(),
                secret_hash: hash,
                metadata: serde_json::to_value(&metadata)?,
                created_at: now,
                updated_at: now,
                credentials_changed_at: None,
            })
            .await?;
        Ok(secret)
    }

    /// A confidential client (`client_secret_basic`) redirecting to `redirect_uri`.
    pub fn confidential_client(name: &str, redirect_uri: &str) -> ClientAdd {
        ClientAdd {
            name: name.to_owned(),
            client_id: Some(name.to_owned()),
            redirect_uris: vec![redirect_uri.to_owned()],
            post_logout_redirect_uris: Vec::new(),
            auth_method: "client_secret_basic".into(),
            jwks_file: None,
            id_token_alg: "RS256".into(),
            userinfo_alg: None,
            no_refresh: false,
            grant_types: Vec::new(),
            scopes: Vec::new(),
            resource_server: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            ciba: None,
            ciba_notification_endpoint: None,
            tls_subject_dn: None,
            tls_san_dns: None,
            tls_san_uri: None,
            tls_san_ip: None,
            tls_san_email: None,
            bound_tokens: false,
            refresh_rotation: None,
        }
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
