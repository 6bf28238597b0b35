//! The `caducee` command line: serve, migrate, and the operators' commands on clients,
//! professionals, TOTP apps, OTP tokens and signing keys. Documented in docs/cli.md.

use std::io::{BufRead as _, Read as _};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use directory::{Activity, ClientRecord, Directory, NewProfessional, OtherId, Practice};
use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
use oidc_core::keys::{KeyRing, SigningAlg};
use oidc_core::secret::ExposeSecret as _;
use serde::Deserialize;

use crate::adapters::DirectoryAdapter;
use crate::app::{App, KEY_RELOAD_INTERVAL, open_directory};
use crate::config::{Config, redact_url};

mod args;
mod ops;
mod users;

pub use args::*;
use users::{read_password_stdin, totp_enroll, user};

/// Runs the command line (the binary's `main`).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    crate::app::install_crypto_provider();
    let config = Config::load(cli.config.as_deref())?;
    let telemetry =
        crate::telemetry::init(config.log_format, matches!(cli.command, Command::Serve), &config.telemetry)?;
    let outcome = match cli.command {
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
        Command::Backup { to } => ops::backup(config, &to).await,
        Command::Healthcheck { path } => ops::healthcheck(&config, &path).await,
    };
    telemetry.shutdown();
    outcome
}

fn system_clock() -> oidc_core::http::Clock {
    Arc::new(oidc_core::http::system_clock)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = App::build(config, system_clock()).await?;
    app.register_wallet().await?;
    let store_kind = match app.config.redis_topology() {
        None => "in-process (single node)",
        Some(session_store::RedisTopology::Single(_)) => "Redis",
        Some(session_store::RedisTopology::Cluster(_)) => "Redis Cluster",
        Some(session_store::RedisTopology::Sentinel(_)) => "Redis Sentinel",
    };
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
            let (Some(secret), hash) =
                admin_api::service::new_secret_for(&directory, &client_id, meta.token_endpoint_auth_method)?
            else {
                bail!("client {client_id} does not authenticate with a secret");
            };
            directory.clients().set_secret_hash(&client_id, hash, now()).await?;
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
    let ciba = match add.ciba.as_deref() {
        None => None,
        Some("poll") => Some(oidc_core::client::CibaDeliveryMode::Poll),
        Some("ping") => Some(oidc_core::client::CibaDeliveryMode::Ping),
        Some(other) => anyhow::bail!("--ciba takes poll or ping, not {other}"),
    };
    let ciba_grant = oidc_core::client::GrantType::Ciba.as_str();
    if ciba.is_some() && !grant_types.iter().any(|g| g == ciba_grant) {
        grant_types.push(ciba_grant.to_owned());
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
        backchannel_token_delivery_mode: ciba,
        backchannel_client_notification_endpoint: add.ciba_notification_endpoint,
        tls_client_auth_subject_dn: add.tls_subject_dn,
        tls_client_auth_san_dns: add.tls_san_dns,
        tls_client_auth_san_uri: add.tls_san_uri,
        tls_client_auth_san_ip: add.tls_san_ip,
        tls_client_auth_san_email: add.tls_san_email,
        tls_client_certificate_bound_access_tokens: add.bound_tokens,
        refresh_token_rotation: match add.refresh_rotation.as_deref() {
            None => Default::default(),
            Some(name) => oidc_core::client::RefreshRotation::parse(name)
                .with_context(|| format!("--refresh-rotation takes strict, grace or none, not {name}"))?,
        },
    };
    metadata.validate()?;
    let client_id = add.client_id.unwrap_or_else(oidc_core::util::random_id);
    let (secret, hash) = admin_api::service::new_secret_for(directory, &client_id, method)?;
    let at = now();
    directory
        .clients()
        .create(ClientRecord {
            client_id: client_id.clone(),
            secret_hash: hash,
            metadata: serde_json::to_value(&metadata)?,
            created_at: at,
            updated_at: at,
            credentials_changed_at: None,
        })
        .await?;
    Ok((client_id, secret))
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
    if !config.shared_store() {
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
            println!("activation code: {}", issued.code.expose_secret());
            eprintln!(
                "Hand it to the professional once you are sure who they are; valid until {} (Unix time), usable once.",
                issued.expires_at
            );
        }
        AccountCommand::ActivationCode { user, revoke: true } => {
            admin.revoke_activation_code(&operator(), &user).await?;
            println!("activation code of {user} withdrawn");
        }
        AccountCommand::GrantAdmin { user } => match admin.grant_admin(&operator(), &user).await? {
            true => println!("{user} is now an administrator (console: /admin)"),
            false => println!("{user} already was an administrator"),
        },
        AccountCommand::RevokeAdmin { user } => match admin.revoke_admin(&operator(), &user).await? {
            true => println!("{user} is no longer an administrator"),
            false => println!("{user} was not an administrator"),
        },
        AccountCommand::Admins => print_json(&admin.admins().await?)?,
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
        AuditCommand::Verify { head } => {
            let check = admin.audit_verify(head.as_deref()).await?;
            if let Some(id) = check.first_bad_id {
                bail!("audit log tampered: record {id} does not match the chain ({} record(s) read)", check.records)
            }
            match (check.head_check, head.as_deref()) {
                (Some(directory::HeadCheck::Missing), Some(head)) => {
                    bail!(
                        "audit log cut short: the chain ({} record(s)) no longer reaches the head {head}",
                        check.records
                    )
                }
                (Some(directory::HeadCheck::Differs), Some(head)) => {
                    bail!("audit log rewritten: the record of the head {head} is not the one exported")
                }
                _ => {}
            }
            let against = head.map(|h| format!(", up to the head {h}")).unwrap_or_default();
            println!("audit log intact: {} record(s), chain verified{against}", check.records);
            if check.unkeyed_records > 0 {
                eprintln!(
                    "note: the first {} record(s) were chained before the chain was keyed (bare SHA-256); {}",
                    check.unkeyed_records,
                    if check.unkeyed_records == check.records {
                        "no record is keyed yet, so a rewritten chain would look the same: check against a head kept outside the database"
                    } else {
                        "the keyed records after them vouch for them"
                    }
                );
            }
        }
        AuditCommand::Head => match admin.audit_head().await? {
            Some(head) => println!("{head}"),
            None => bail!("the audit log is empty: no head yet"),
        },
        AuditCommand::List { user, event, from, to, after_id, limit } => {
            let filter =
                admin_api::audit::AuditFilter { national_id: user, event, from, to, after_id, limit: Some(limit) };
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
