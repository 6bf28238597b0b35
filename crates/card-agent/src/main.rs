//! `card-agent`: lists readers, signs a challenge with the CPS card, or serves the login page
//! on loopback.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use card_agent::backend::apdu::ApduBackend;
use card_agent::backend::pkcs11::Pkcs11Backend;
use card_agent::http::{ServerConfig, check_allowed_origin, router, signed_json};
use card_agent::{AgentError, CardBackend, Challenge};
use clap::{Parser, Subcommand, ValueEnum};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "card-agent", version, about = "The CPS card agent: signs the provider's challenge with the card")]
struct Cli {
    /// How to reach the card: its APDUs over PC/SC (CPS3), or a PKCS#11 module (CPS4
    /// middleware).
    #[arg(long, env = "CARD_AGENT_BACKEND", value_enum, default_value_t = Backend::Apdu, global = true)]
    backend: Backend,
    /// The PKCS#11 module (shared library) for `--backend pkcs11`.
    #[arg(long, env = "CARD_AGENT_PKCS11_MODULE", global = true)]
    pkcs11_module: Option<PathBuf>,
    /// The label of the PKCS#11 key to sign with (by default, the key whose certificate allows
    /// client authentication).
    #[arg(long, env = "CARD_AGENT_PKCS11_KEY_LABEL", global = true)]
    pkcs11_key_label: Option<String>,
    /// Seconds to wait for a card when none is in the reader.
    #[arg(long, env = "CARD_AGENT_CARD_WAIT", default_value_t = 3, global = true)]
    card_wait: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Apdu,
    Pkcs11,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lists the readers (or PKCS#11 slots) and whether a card is in each.
    Readers,
    /// Prints the agent's status as `GET /v1/status` answers it (JSON).
    Status,
    /// Signs a challenge with the card and prints the JSON `POST /v1/sign` answers.
    Sign {
        #[arg(long)]
        challenge: String,
        #[arg(long)]
        reader: Option<String>,
        /// Reads the PIN from the first line of standard input (otherwise: a prompt without
        /// echo).
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Serves the login page on a loopback address.
    Serve {
        #[arg(long, env = "CARD_AGENT_LISTEN", default_value = "127.0.0.1:8765")]
        listen: SocketAddr,
        /// An origin allowed to use the agent (`https://login.example`); repeat for more.
        #[arg(long = "allow-origin", env = "CARD_AGENT_ALLOW_ORIGIN", value_delimiter = ',', required = true)]
        allow_origin: Vec<String>,
        /// Seconds one card operation may take.
        #[arg(long, env = "CARD_AGENT_TIMEOUT", default_value_t = 60)]
        timeout: u64,
    },
}

fn backend(cli: &Cli) -> anyhow::Result<Arc<dyn CardBackend>> {
    Ok(match cli.backend {
        Backend::Apdu => Arc::new(ApduBackend { card_wait: Duration::from_secs(cli.card_wait) }),
        Backend::Pkcs11 => {
            let module = cli
                .pkcs11_module
                .clone()
                .context("--backend pkcs11 needs --pkcs11-module PATH (the vendor's PKCS#11 library)")?;
            Arc::new(Pkcs11Backend { module, key_label: cli.pkcs11_key_label.clone() })
        }
    })
}

fn read_pin(from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
    let pin = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line)?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        Zeroizing::new(rpassword::prompt_password("Code porteur (PIN) : ")?)
    };
    Ok(pin)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let backend = backend(&cli)?;
    match &cli.command {
        Cmd::Readers => {
            let readers = backend.readers()?;
            if readers.is_empty() {
                println!("no reader");
            }
            for r in readers {
                println!("{}\t{}", r.name, if r.card_present { "card" } else { "empty" });
            }
            Ok(())
        }
        Cmd::Status => {
            let readers = match backend.readers() {
                Ok(r) => r,
                Err(AgentError::NoReader(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            print_json(&serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "readers": readers }))
        }
        Cmd::Sign { challenge, reader, pin_stdin } => {
            let result = Challenge::parse(challenge).and_then(|c| {
                let pin = read_pin(*pin_stdin).map_err(|e| AgentError::InvalidRequest(e.to_string()))?;
                backend.sign(&c, &pin, reader.as_deref())
            });
            match result {
                Ok(signed) => print_json(&signed_json(&signed)),
                Err(e) => {
                    print_json(&e.to_json())?;
                    std::process::exit(2);
                }
            }
        }
        Cmd::Serve { listen, allow_origin, timeout } => {
            if !listen.ip().is_loopback() {
                bail!("the agent listens on loopback only (127.0.0.1 or ::1), not on {listen}");
            }
            let allowed = allow_origin.iter().map(|o| check_allowed_origin(o)).collect::<Result<Vec<_>, _>>()?;
            let app = router(
                backend,
                ServerConfig { allowed_origins: allowed, operation_timeout: Duration::from_secs(*timeout) },
            );
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                let addr = listener.local_addr()?;
                // The first line on stdout says where (tests read it with port 0).
                println!("listening on http://{addr}");
                std::io::stdout().flush()?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = tokio::signal::ctrl_c().await;
                    })
                    .await?;
                anyhow::Ok(())
            })
        }
    }
}
