//! The `caducee` command line: serve, migrate, and the operators' commands on clients,
//! professionals, TOTP apps, OTP tokens and signing keys. Documented in docs/cli.md.

use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use directory::{Activity, ClientRecord, Directory, NewProfessional, OtherId, Practice};
use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod, new_client_secret};
use oidc_core::keys::{KeyRing, SigningAlg};
use serde::Deserialize;

use crate::adapters::DirectoryAdapter;
use crate::app::{App, KEY_RELOAD_INTERVAL, open_directory};
use crate::config::{Config, LogFormat};

#[derive(Parser, Debug)]
#[command(name = "caducee", version, about = "Caducée, an OpenID Connect provider for e-health professionals")]
pub struct Cli {
    /// Configuration file (default: ./caducee.toml if present). Every setting can also be
    /// given as a CADUCEE_* environment variable.
    #[arg(long, global = true, env = "CADUCEE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the provider.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage relying parties.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage health professionals' accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Enrol TOTP apps (FreeOTP, Google Authenticator).
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Manage OTP tokens («boîtiers OTP»): import their seeds (PSKC), assign them.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// See and end professionals' SSO sessions (needs the shared session store: redis_url).
    #[command(subcommand)]
    Session(SessionCommand),
    /// Block or unblock accounts, lift lockouts, remove authenticators, issue activation codes.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Query and verify the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// List a professional's live sessions.
    List {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// End one session: its relying parties are told, its tokens die.
    Revoke {
        /// The session's identifier (`sid`, as `session list` shows it).
        #[arg(long)]
        sid: String,
    },
    /// End every session of a professional (forced logout everywhere).
    RevokeAll {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Block an account: no more sign-in, every session ends now.
    Block {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Unblock an account: sign-in is possible again.
    Unblock {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Block push approvals to a professional's phone.
    BlockPushes {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Lift a push block (set by «ce n'était pas moi», the wallet or an admin).
    UnblockPushes {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Lift the lockout of an identifier after too many failures.
    ResetLockout {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// List a professional's authenticators.
    Authenticators {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Issue an activation code (valid 72 h, usable once) for a professional who lost every
    /// second factor: with the password, it signs them in once, to enrol a new authenticator.
    ActivationCode {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
        /// Withdraw the pending code instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Remove an authenticator (an app is deleted, a token goes back to the pool).
    RemoveAuthenticator {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
        /// The authenticator's id, as `account authenticators` shows it.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain: any edited or removed record is reported.
    Verify,
    /// List records, oldest first.
    List {
        /// A professional's national identifier.
        #[arg(long)]
        user: Option<String>,
        /// One event type (`signin`, `login_failed`, `logout`, `admin.session.revoke`, …).
        #[arg(long)]
        event: Option<String>,
        /// From this time (Unix seconds, inclusive).
        #[arg(long)]
        from: Option<i64>,
        /// Until this time (Unix seconds, inclusive).
        #[arg(long)]
        to: Option<i64>,
        /// The last id of the previous page.
        #[arg(long)]
        after_id: Option<i64>,
        /// At most 1000.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Back-channel logout deliveries and their outcome.
    Deliveries {
        /// One session's deliveries.
        #[arg(long)]
        sid: Option<String>,
        /// One relying party's deliveries.
        #[arg(long)]
        client_id: Option<String>,
        /// pending, delivered or failed.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Import the token seeds of a PSKC file (RFC 6030) as unassigned tokens.
    Import {
        /// The vendor's PSKC file.
        file: PathBuf,
        /// File holding the container's pre-shared AES key, in hex (for `ds:KeyName` containers).
        #[arg(long, conflicts_with = "passphrase_stdin")]
        preshared_key_file: Option<PathBuf>,
        /// Read the container's passphrase (PBKDF2-derived key) from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Give a token to a professional (it signs them in from now on).
    Assign {
        /// The token's serial number.
        #[arg(long)]
        serial: String,
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Take a token back (lost or returned): it signs nobody in.
    Unassign {
        /// The token's serial number.
        #[arg(long)]
        serial: String,
    },
    /// List tokens: serial, kind, holder, state.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a relying party; prints its client_id and (once) its secret.
    Add(Box<ClientAdd>),
    /// List registered relying parties.
    List,
    /// Show one relying party's registration.
    Show {
        /// The client's identifier.
        #[arg(long)]
        client_id: String,
    },
    /// Remove a relying party.
    Remove {
        /// The client's identifier.
        #[arg(long)]
        client_id: String,
    },
    /// Issue a new secret (the old one stops working at once); prints it once.
    RotateSecret {
        /// The client's identifier.
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Args, Debug)]
pub struct ClientAdd {
    /// Display name shown on the login page.
    #[arg(long)]
    pub name: String,
    /// Identifier to use (default: generated).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Allowed redirect URI (repeat for several); matched exactly. Required unless the client
    /// only uses client credentials.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// client_secret_basic, client_secret_post, private_key_jwt or none (public client, PKCE required).
    #[arg(long, default_value = "client_secret_basic")]
    pub auth_method: String,
    /// JWK Set file with the client's public keys (private_key_jwt).
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// ID token signature: RS256 (default) or ES256.
    #[arg(long, default_value = "RS256")]
    pub id_token_alg: String,
    /// Answer userinfo as a JWT signed with this algorithm (RS256 or ES256) instead of JSON.
    #[arg(long)]
    pub userinfo_alg: Option<String>,
    /// Do not issue refresh tokens to this client.
    #[arg(long)]
    pub no_refresh: bool,
    /// Grant types (repeat): authorization_code, refresh_token, client_credentials.
    /// Default: authorization_code and refresh_token.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Scopes this client may obtain (repeat); default: every scope of the login flow. A service
    /// for the admin API gets `caducee:admin` with the client_credentials grant.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Let this client introspect tokens issued to other clients (a resource server).
    #[arg(long)]
    pub resource_server: bool,
    /// Where to POST logout tokens when a session it signed into ends (Back-Channel Logout 1.0).
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens (always sent; recorded for discovery).
    #[arg(long)]
    pub backchannel_logout_session_required: bool,
    /// A page that logs the client out when the provider's logout page loads it in an iframe
    /// (Front-Channel Logout 1.0); same scheme, host and port as a redirect URI.
    #[arg(long)]
    pub frontchannel_logout_uri: Option<String>,
    /// Add `iss` and `sid` to the front-channel logout URI.
    #[arg(long)]
    pub frontchannel_logout_session_required: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a professional's account.
    Add(Box<UserAdd>),
    /// List accounts.
    List {
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Set or replace a password (read from standard input).
    SetPassword {
        /// The professional's national identifier.
        #[arg(long)]
        national_id: String,
    },
    /// Import accounts from a JSON file (an array of professionals, PSC-shaped practices).
    Import { file: PathBuf },
}

#[derive(Args, Debug)]
pub struct UserAdd {
    /// National identifier (SubjectNameID), e.g. 899700000001; also the login identifier.
    #[arg(long)]
    pub national_id: String,
    /// Given name (first name).
    #[arg(long)]
    pub given_name: String,
    /// Family name.
    #[arg(long)]
    pub family_name: String,
    /// E-mail address: where OTP codes are mailed.
    #[arg(long)]
    pub email: Option<String>,
    /// M or MME.
    #[arg(long, default_value = "")]
    pub civility: String,
    /// Profession code (10 physician, 21 pharmacist, 40 dental surgeon, 50 midwife, 60 nurse...).
    #[arg(long)]
    pub profession: Option<String>,
    /// Professional category: C civil, M military, E student.
    #[arg(long, default_value = "C")]
    pub category: String,
    /// Specialty code (codeSavoirFaire), e.g. SM54.
    #[arg(long)]
    pub specialty: Option<String>,
    /// Place of practice (raisonSocialeSite).
    #[arg(long)]
    pub organization: Option<String>,
    /// Password on the command line (visible to other local users: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum TotpCommand {
    /// Enrol a TOTP app for a professional; prints the otpauth:// URI to scan.
    Enroll {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Add new signing keys (RS256 and ES256) and sign with them; the previous ones stay
    /// published until every token they signed has expired.
    Rotate,
    /// List signing keys.
    List,
}

/// Runs the command line (the binary's `main`).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    crate::app::install_crypto_provider();
    let config = Config::load(cli.config.as_deref())?;
    init_logging(config.log_format, matches!(cli.command, Command::Serve));
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open_directory(&config).await?;
            println!("database schema is up to date ({})", redact_url(&config.database_url()));
            Ok(())
        }
        Command::Client(c) => client(config, c).await,
        Command::User(c) => user(config, c).await,
        Command::Totp(TotpCommand::Enroll { user }) => totp_enroll(config, &user).await,
        Command::Token(c) => token(config, c).await,
        Command::Keys(c) => keys(config, c).await,
        Command::Session(c) => session(config, c).await,
        Command::Account(c) => account(config, c).await,
        Command::Audit(c) => audit(config, c).await,
    }
}

fn init_logging(format: LogFormat, serving: bool) {
    let default = if serving { "info,tower_http=info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn system_clock() -> oidc_core::http::Clock {
    Arc::new(oidc_core::http::system_clock)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = App::build(config, system_clock()).await?;
    app.register_wallet().await?;
    let store_kind =
        if app.config.redis_url.is_empty() { "in-process (single node)".to_owned() } else { "Redis".to_owned() };
    tracing::info!(
        issuer = %app.config.issuer,
        database = %redact_url(&app.config.database_url()),
        session_store = %store_kind,
        "Caducée is starting"
    );
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listen, "listening; discovery at {}/.well-known/openid-configuration", app.config.issuer);
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn now() -> i64 {
    oidc_core::http::system_clock()
}

/// An operator's change leaves an audit record like the admin API's, the operator (`$USER`) as
/// its actor.
async fn audit_operator(
    directory: &Directory,
    event: &str,
    subject: Option<&str>,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    directory
        .audit()
        .append(directory::AuditEvent {
            event: event.to_owned(),
            actor: Some(operator().id),
            subject: subject.map(str::to_owned),
            client_id: None,
            source_ip: None,
            outcome: "success".into(),
            details,
            at: now(),
        })
        .await
        .context("the change is made, but its audit record could not be written")?;
    Ok(())
}

async fn client(config: Config, command: ClientCommand) -> anyhow::Result<()> {
    let directory = open_directory(&config).await?;
    match command {
        ClientCommand::Add(add) => {
            let (client_id, secret) = add_client(&directory, *add).await?;
            audit_operator(&directory, "admin.client.create", None, serde_json::json!({ "client_id": client_id }))
                .await?;
            println!("client_id: {client_id}");
            if let Some(secret) = secret {
                println!("client_secret: {secret}");
                eprintln!("Keep the secret now: it is stored hashed and cannot be shown again.");
            }
        }
        ClientCommand::List => {
            for r in directory.clients().list().await? {
                let name = r.metadata.get("client_name").and_then(|v| v.as_str()).unwrap_or("");
                let method = r
                    .metadata
                    .get("token_endpoint_auth_method")
                    .and_then(|v| v.as_str())
                    .unwrap_or("client_secret_basic");
                println!("{}\t{}\t{}", r.client_id, method, name);
            }
        }
        ClientCommand::Show { client_id } => {
            let r = directory.clients().get(&client_id).await?.with_context(|| format!("no client {client_id}"))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "client_id": r.client_id, "metadata": r.metadata }))?
            );
        }
        ClientCommand::Remove { client_id } => {
            if !directory.clients().delete(&client_id).await? {
                bail!("no client {client_id}");
            }
            // Its refresh tokens die with it; its access tokens are refused since the client is gone.
            let revoked = directory.refresh_tokens().revoke_client(&client_id, now()).await?;
            audit_operator(
                &directory,
                "admin.client.delete",
                None,
                serde_json::json!({ "client_id": client_id, "refresh_tokens_revoked": revoked }),
            )
            .await?;
            println!("removed {client_id} ({revoked} refresh token(s) revoked)");
        }
        ClientCommand::RotateSecret { client_id } => {
            let r = directory.clients().get(&client_id).await?.with_context(|| format!("no client {client_id}"))?;
            let meta: ClientMetadata = serde_json::from_value(r.metadata)?;
            if !meta.token_endpoint_auth_method.uses_secret() {
                bail!("client {client_id} does not authenticate with a secret");
            }
            let (secret, hash) = new_client_secret();
            directory.clients().set_secret_hash(&client_id, Some(hash)).await?;
            audit_operator(
                &directory,
                "admin.client.rotate_secret",
                None,
                serde_json::json!({ "client_id": client_id }),
            )
            .await?;
            println!("client_secret: {secret}");
        }
    }
    Ok(())
}

/// Validates and stores a client registration. Returns its id and, for secret-based methods, the secret.
pub async fn add_client(directory: &Directory, add: ClientAdd) -> anyhow::Result<(String, Option<String>)> {
    let method = TokenEndpointAuthMethod::parse(&add.auth_method)
        .with_context(|| format!("unknown auth method {}", add.auth_method))?;
    let jwks = match &add.jwks_file {
        Some(path) => Some(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON (a JWK Set is expected)", path.display()))?,
        ),
        None => None,
    };
    let alg = |name: &str| SigningAlg::parse(name).with_context(|| format!("unsupported algorithm {name}"));
    let mut grant_types = if add.grant_types.is_empty() {
        vec!["authorization_code".to_owned(), "refresh_token".to_owned()]
    } else {
        add.grant_types.clone()
    };
    if add.no_refresh {
        grant_types.retain(|g| g != "refresh_token");
    }
    let metadata = ClientMetadata {
        client_name: add.name,
        redirect_uris: add.redirect_uris,
        post_logout_redirect_uris: add.post_logout_redirect_uris,
        token_endpoint_auth_method: method,
        jwks,
        id_token_signed_response_alg: alg(&add.id_token_alg)?,
        userinfo_signed_response_alg: add.userinfo_alg.as_deref().map(alg).transpose()?,
        grant_types,
        allowed_scopes: add.scopes,
        resource_server: add.resource_server,
        backchannel_logout_uri: add.backchannel_logout_uri,
        backchannel_logout_session_required: add.backchannel_logout_session_required,
        frontchannel_logout_uri: add.frontchannel_logout_uri,
        frontchannel_logout_session_required: add.frontchannel_logout_session_required,
    };
    metadata.validate()?;
    let client_id = add.client_id.unwrap_or_else(oidc_core::util::random_id);
    let (secret, hash) = if method.uses_secret() {
        let (s, h) = new_client_secret();
        (Some(s), Some(h))
    } else {
        (None, None)
    };
    let at = now();
    directory
        .clients()
        .create(ClientRecord {
            client_id: client_id.clone(),
            secret_hash: hash,
            metadata: serde_json::to_value(&metadata)?,
            created_at: at,
            updated_at: at,
        })
        .await?;
    Ok((client_id, secret))
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(password)
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < 12 {
        bail!("passwords must have at least 12 characters");
    }
    Ok(())
}

async fn hash(password: String) -> anyhow::Result<String> {
    check_password(&password)?;
    Ok(tokio::task::spawn_blocking(move || authn_methods::password::hash_password(&password)).await??)
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let directory = open_directory(&config).await?;
    match command {
        UserCommand::Add(add) => {
            let password = match (add.password.clone(), add.password_stdin) {
                (Some(p), _) => Some(p),
                (None, true) => Some(read_password_stdin()?),
                (None, false) => None,
            };
            let password_hash = match password {
                Some(p) => Some(hash(p).await?),
                None => None,
            };
            let practices = match &add.profession {
                None => Vec::new(),
                Some(code) => vec![Practice {
                    code_profession: code.clone(),
                    code_categorie_professionnelle: add.category.clone(),
                    code_civilite_dexercice: add.civility.clone(),
                    nom_dexercice: add.family_name.clone(),
                    prenom_dexercice: add.given_name.clone(),
                    code_type_savoir_faire: if add.specialty.is_some() { "S".into() } else { String::new() },
                    code_savoir_faire: add.specialty.clone().unwrap_or_default(),
                    activities: add
                        .organization
                        .iter()
                        .map(|o| Activity { raison_sociale_site: o.clone(), ..Activity::default() })
                        .collect(),
                }],
            };
            let p = directory
                .professionals()
                .create(NewProfessional {
                    subject: None,
                    national_id: add.national_id,
                    given_name: add.given_name,
                    family_name: add.family_name,
                    email: add.email,
                    civility: add.civility,
                    practices,
                    other_ids: Vec::new(),
                    password_hash,
                })
                .await?;
            audit_operator(&directory, "admin.account.create", Some(&p.subject), serde_json::Value::Null).await?;
            println!("national_id: {}\nsubject: {}", p.national_id, p.subject);
        }
        UserCommand::List { offset, limit } => {
            for p in directory.professionals().list(offset, limit).await? {
                println!("{}\t{}\t{} {}\t{}", p.national_id, p.status.as_str(), p.given_name, p.family_name, p.subject);
            }
        }
        UserCommand::SetPassword { national_id } => {
            let p = directory
                .professionals()
                .get_by_national_id(&national_id)
                .await?
                .with_context(|| format!("no professional {national_id}"))?;
            let h = hash(read_password_stdin()?).await?;
            directory.professionals().set_password_hash(&p.id, Some(h)).await?;
            audit_operator(&directory, "admin.account.set_password", Some(&p.subject), serde_json::Value::Null).await?;
            println!("password set for {national_id}");
        }
        UserCommand::Import { file } => {
            let mut text = String::new();
            std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?
                .read_to_string(&mut text)?;
            let records: Vec<ImportRecord> =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
            let mut created = 0usize;
            for r in records {
                let password_hash = match r.password {
                    Some(p) => Some(hash(p).await?),
                    None => None,
                };
                let id = r.national_id.clone();
                let p = directory
                    .professionals()
                    .create(NewProfessional {
                        subject: r.subject,
                        national_id: r.national_id,
                        given_name: r.given_name,
                        family_name: r.family_name,
                        email: r.email,
                        civility: r.civility,
                        practices: r.exercices,
                        other_ids: r.other_ids,
                        password_hash,
                    })
                    .await
                    .with_context(|| format!("importing {id}"))?;
                audit_operator(
                    &directory,
                    "admin.account.create",
                    Some(&p.subject),
                    serde_json::json!({ "import": true }),
                )
                .await?;
                created += 1;
            }
            println!("imported {created} professional(s)");
        }
    }
    Ok(())
}

/// One professional in an import file (docs/cli.md shows an example).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRecord {
    national_id: String,
    #[serde(default)]
    subject: Option<String>,
    given_name: String,
    family_name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    civility: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    exercices: Vec<Practice>,
    #[serde(default, rename = "otherIds")]
    other_ids: Vec<OtherId>,
}

async fn totp_enroll(config: Config, national_id: &str) -> anyhow::Result<()> {
    let directory = open_directory(&config).await?;
    let p = directory
        .professionals()
        .get_by_national_id(national_id)
        .await?
        .with_context(|| format!("no professional {national_id}"))?;
    let enrolment =
        authn_methods::totp::enroll(&directory, &p.subject, &p.national_id, &config.login.totp_issuer, true, now())
            .await?;
    audit_operator(&directory, "admin.authenticator.enrol", Some(&p.subject), serde_json::json!({ "kind": "totp" }))
        .await?;
    println!("{}", enrolment.otpauth_uri.as_str());
    eprintln!(
        "Scan this URI as a QR code with FreeOTP or Google Authenticator, or type the secret: {}",
        enrolment.secret_base32.as_str()
    );
    Ok(())
}

fn operator() -> admin_api::Actor {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    admin_api::Actor { id: format!("operator:{who}"), source_ip: None }
}

async fn admin_service(config: Config) -> anyhow::Result<admin_api::AdminService> {
    Ok(App::build(config, system_clock()).await?.admin())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Sessions and lockout counters live in the session store: with the embedded default, inside
/// the server's own process, out of this command's reach.
fn needs_shared_store(config: &Config) -> anyhow::Result<()> {
    if config.redis_url.is_empty() {
        bail!(
            "this command needs the shared session store (redis_url): with the embedded default, sessions and \
             lockouts live inside the server process; use the admin API of the running server (docs/admin.md)"
        );
    }
    Ok(())
}

async fn session(config: Config, command: SessionCommand) -> anyhow::Result<()> {
    needs_shared_store(&config)?;
    let admin = admin_service(config).await?;
    match command {
        SessionCommand::List { user } => print_json(&admin.sessions(&user).await?)?,
        SessionCommand::Revoke { sid } => {
            admin.revoke_session(&operator(), &sid).await?;
            println!("session {sid} ended; its relying parties are being told");
        }
        SessionCommand::RevokeAll { user } => {
            let n = admin.revoke_all(&operator(), &user).await?;
            println!("{n} session(s) of {user} ended; their relying parties are being told");
        }
    }
    // Back-channel deliveries run in the background: give them their quick attempts.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    Ok(())
}

async fn account(config: Config, command: AccountCommand) -> anyhow::Result<()> {
    if matches!(
        command,
        AccountCommand::Block { .. } | AccountCommand::ResetLockout { .. } | AccountCommand::ActivationCode { .. }
    ) {
        needs_shared_store(&config)?;
    }
    let admin = admin_service(config).await?;
    match command {
        AccountCommand::Block { user } => {
            print_json(&admin.block(&operator(), &user).await?)?;
            // Back-channel deliveries run in the background: give them their quick attempts.
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        AccountCommand::Unblock { user } => print_json(&admin.unblock(&operator(), &user).await?)?,
        AccountCommand::BlockPushes { user } => print_json(&admin.block_pushes(&operator(), &user).await?)?,
        AccountCommand::UnblockPushes { user } => print_json(&admin.unblock_pushes(&operator(), &user).await?)?,
        AccountCommand::ResetLockout { user } => {
            admin.reset_lockout(&operator(), &user).await?;
            println!("lockout of {user} lifted");
        }
        AccountCommand::Authenticators { user } => print_json(&admin.authenticators(&user).await?)?,
        AccountCommand::ActivationCode { user, revoke: false } => {
            let issued = admin.issue_activation_code(&operator(), &user).await?;
            println!("activation code: {}", issued.code);
            eprintln!(
                "Hand it to the professional once you are sure who they are; valid until {} (Unix time), usable once.",
                issued.expires_at
            );
        }
        AccountCommand::ActivationCode { user, revoke: true } => {
            admin.revoke_activation_code(&operator(), &user).await?;
            println!("activation code of {user} withdrawn");
        }
        AccountCommand::RemoveAuthenticator { user, id } => {
            admin.remove_authenticator(&operator(), &user, &id).await?;
            println!("authenticator {id} removed");
        }
    }
    Ok(())
}

async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    let admin = admin_service(config).await?;
    match command {
        AuditCommand::Verify => {
            let check = admin.audit_verify().await?;
            match check.first_bad_id {
                None => println!("audit log intact: {} record(s), chain verified", check.records),
                Some(id) => {
                    bail!("audit log tampered: record {id} does not match the chain ({} record(s) read)", check.records)
                }
            }
        }
        AuditCommand::List { user, event, from, to, after_id, limit } => {
            let filter =
                admin_api::service::AuditFilter { national_id: user, event, from, to, after_id, limit: Some(limit) };
            print_json(&admin.audit_query(filter).await?)?;
        }
        AuditCommand::Deliveries { sid, client_id, status } => {
            print_json(&admin.deliveries(sid, client_id, status).await?)?
        }
    }
    Ok(())
}

fn parse_hex(text: &str) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    let clean = zeroize::Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect::<String>());
    if !clean.len().is_multiple_of(2) || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("the pre-shared key must be hexadecimal");
    }
    let bytes = (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(zeroize::Zeroizing::new(bytes))
}

async fn token(config: Config, command: TokenCommand) -> anyhow::Result<()> {
    use authn_methods::hardware;
    use authn_methods::pskc::{ContainerKey, parse};
    let directory = open_directory(&config).await?;
    match command {
        TokenCommand::Import { file, preshared_key_file, passphrase_stdin } => {
            // Plain containers hold the seeds in clear: wipe the text once parsed.
            let xml = zeroize::Zeroizing::new(
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?,
            );
            let unlock = match (preshared_key_file, passphrase_stdin) {
                (Some(path), _) => ContainerKey::PreShared(parse_hex(&zeroize::Zeroizing::new(
                    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
                ))?),
                (None, true) => ContainerKey::Passphrase(zeroize::Zeroizing::new(read_password_stdin()?)),
                (None, false) => ContainerKey::None,
            };
            let keys = parse(&xml, &unlock).with_context(|| format!("reading {}", file.display()))?;
            let imported = hardware::import(&directory, keys).await?;
            let serials: Vec<&str> = imported.iter().filter_map(|t| t.serial.as_deref()).collect();
            audit_operator(&directory, "admin.token.import", None, serde_json::json!({ "serials": serials })).await?;
            for t in imported {
                println!("imported {}\t{}", t.serial.unwrap_or_default(), t.kind);
            }
        }
        TokenCommand::Assign { serial, user } => {
            let p = directory
                .professionals()
                .get_by_national_id(&user)
                .await?
                .with_context(|| format!("no professional {user}"))?;
            hardware::assign(&directory, &serial, &p.subject).await?;
            audit_operator(&directory, "admin.token.assign", Some(&p.subject), serde_json::json!({ "serial": serial }))
                .await?;
            println!("token {serial} assigned to {user}");
        }
        TokenCommand::Unassign { serial } => {
            hardware::unassign(&directory, &serial).await?;
            audit_operator(&directory, "admin.token.unassign", None, serde_json::json!({ "serial": serial })).await?;
            println!("token {serial} unassigned");
        }
        TokenCommand::List => {
            for t in directory.authenticators().list_all().await?.into_iter().filter(hardware::is_token) {
                let Some(serial) = &t.serial else { continue };
                let holder = match &t.subject {
                    Some(s) => directory
                        .professionals()
                        .get_by_subject(s)
                        .await?
                        .map(|p| p.national_id)
                        .unwrap_or_else(|| "?".into()),
                    None => "-".into(),
                };
                let state = if t.active { "active" } else { "inactive" };
                println!("{serial}\t{}\t{holder}\t{state}", t.kind);
            }
        }
    }
    Ok(())
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    let directory = open_directory(&config).await?;
    let adapter = Arc::new(DirectoryAdapter::new(directory.clone(), system_clock()));
    match command {
        KeysCommand::Rotate => {
            let ring = KeyRing::load_or_init(adapter, now()).await?;
            let provider = config.provider_config()?;
            // Running nodes keep signing with the old key until their next reload; and an ID token
            // it signed may come back as id_token_hint as long as its session lives.
            let longest = provider.max_signed_token_lifetime().max(provider.session_ttl);
            let publish_for = longest + i64::try_from(KEY_RELOAD_INTERVAL.as_secs())? + 60;
            let kids = ring.rotate(now(), publish_for).await?;
            audit_operator(&directory, "admin.keys.rotate", None, serde_json::json!({ "new_kids": kids })).await?;
            for kid in kids {
                println!("new signing key {kid}");
            }
            eprintln!(
                "Previous keys stay published for {publish_for} s; running nodes switch within {} s.",
                KEY_RELOAD_INTERVAL.as_secs()
            );
        }
        KeysCommand::List => {
            for k in directory.signing_keys().list().await? {
                let state = match (k.retired_at, k.publish_until) {
                    (None, _) => "active".to_owned(),
                    (Some(_), Some(until)) => format!("retired, published until {until}"),
                    (Some(_), None) => "retired".to_owned(),
                };
                println!("{}\t{}\t{}", k.kid, k.alg, state);
            }
        }
    }
    Ok(())
}
