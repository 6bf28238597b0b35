//! `make demo`: the provider on its embedded default (its data under `data/demo`, fresh at
//! each run), a demo professional who is also an administrator (password and TOTP secret
//! printed; the mail OTP lands in the file outbox), and the demo relying party beside it.
//! Prints what to open. Ctrl-C stops both.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use demo::{CLIENT_ID, DEFAULT_ADDRESS, DemoRp, RpSettings};
use directory::NewProfessional;

const NATIONAL_ID: &str = "899700000042";
const PASSWORD: &str = "demo-caducee-2026";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::app::install_crypto_provider();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();

    let mut config = server::Config::load(None)?;
    // The embedded default whatever caducee.toml says (a demo must not write to a real
    // database), in a folder of its own, emptied at each run: never `make run`'s data.
    config.database_url = String::new();
    config.redis_url = String::new();
    config.data_dir = config.data_dir.join("demo");
    if config.data_dir.exists() {
        std::fs::remove_dir_all(&config.data_dir).with_context(|| format!("emptying {}", config.data_dir.display()))?;
    }
    let outbox = config.data_dir.join("outbox");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is `make run` already running?)", config.listen))?;
    let clock: oidc_core::http::Clock = Arc::new(oidc_core::http::system_clock);
    let app = server::App::build(config, clock).await?;
    app.register_wallet().await?;
    let issuer = app.config.issuer.clone();

    // The demo professional, with a password, a TOTP app and the admin role.
    let hash = authn_methods::password::hash_password(PASSWORD)?;
    let professional = app
        .directory
        .professionals()
        .create(NewProfessional {
            national_id: NATIONAL_ID.into(),
            given_name: "Camille".into(),
            family_name: "Démo".into(),
            email: Some("camille.demo@example.org".into()),
            civility: "MME".into(),
            password_hash: Some(hash),
            ..NewProfessional::default()
        })
        .await?;
    let now = oidc_core::http::system_clock();
    let totp =
        authn_methods::totp::enroll(&app.directory, &professional.subject, NATIONAL_ID, "Caducée", true, now).await?;
    let operator = admin_api::Actor { id: "operator:make-demo".into(), source_ip: None };
    app.admin().grant_admin(&operator, NATIONAL_ID).await?;

    let rp_address: SocketAddr = std::env::var("CADUCEE_DEMO_RP")
        .unwrap_or_else(|_| DEFAULT_ADDRESS.into())
        .parse()
        .context("CADUCEE_DEMO_RP must be an address such as 127.0.0.1:8081")?;
    let rp_listener =
        tokio::net::TcpListener::bind(rp_address).await.with_context(|| format!("cannot listen on {rp_address}"))?;
    let rp_base = format!("http://{rp_address}");
    let secret = demo::register(&app.directory, &rp_base).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut provider_stop = stop_rx.clone();
    let provider = tokio::spawn(app.serve(listener, async move {
        let _ = provider_stop.changed().await;
    }));
    let rp = DemoRp::discover(RpSettings {
        issuer: issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: secret,
        base_url: rp_base.clone(),
    })
    .await?;
    let mut rp_stop = stop_rx;
    let rp_task = tokio::spawn(async move {
        axum::serve(rp_listener, rp.router())
            .with_graceful_shutdown(async move {
                let _ = rp_stop.changed().await;
            })
            .await
    });

    println!();
    println!("Caducée — démonstration / demo");
    println!();
    println!("  Ouvrez / open:            {rp_base}/");
    println!("  Identifiant / identifier: {NATIONAL_ID}");
    println!("  Mot de passe / password:  {PASSWORD}");
    println!("  TOTP (secret):            {}", totp.secret_base32.as_str());
    println!("  TOTP (otpauth URI):       {}", totp.otpauth_uri.as_str());
    println!("  Code par courriel / mail OTP: the newest .eml in {}", outbox.display());
    println!("  Portefeuille / wallet:    {issuer}/wallet");
    println!("  Console (administrateur): {issuer}/admin");
    println!();
    println!("Ctrl-C pour arrêter / to stop.");

    tokio::signal::ctrl_c().await?;
    let _ = stop_tx.send(true);
    let _ = provider.await;
    let _ = rp_task.await;
    Ok(())
}
