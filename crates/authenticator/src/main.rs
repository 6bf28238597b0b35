//! `caducee-authenticator`: the reference phone app as a command-line program (see the
//! library's documentation). Exit codes: 0 done, 1 the server refused (or was unreachable, or
//! a wrong number was typed), 2 usage or state error, 3 wrong PIN, 4 the state was wiped.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use authenticator::Error;
use authenticator::commands::{Command, Context, Report};
use authenticator::pin::PinSource;
use authenticator::state::StateFile;
use clap::Parser;

/// L'application d'approbation Caducée, en ligne de commande.
#[derive(Debug, Parser)]
#[command(name = "caducee-authenticator", version)]
struct Cli {
    /// Le fichier d'état (défaut : $XDG_DATA_HOME/caducee-authenticator/state.json, ou
    /// ~/.local/share/caducee-authenticator/state.json).
    #[arg(long, global = true, value_name = "FILE", env = "CADUCEE_AUTHENTICATOR_STATE")]
    state: Option<PathBuf>,
    /// Sortie lisible par une machine : un objet JSON sur la sortie standard.
    #[arg(long, global = true)]
    json: bool,
    /// Lire le code PIN sur une ligne de l'entrée standard (sinon : CADUCEE_AUTHENTICATOR_PIN,
    /// puis le terminal).
    #[arg(long, global = true)]
    pin_stdin: bool,
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let outcome = match runtime() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("caducee-authenticator : {e:#}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(report) => {
            if json {
                println!("{}", report.json);
            } else {
                println!("{}", report.human);
            }
            ExitCode::from(report.exit_code)
        }
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            }
            eprintln!("caducee-authenticator : {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

async fn run(cli: Cli) -> Result<Report, Error> {
    let path = match cli.state {
        Some(path) => path,
        None => StateFile::default_path()?,
    };
    let cx = Context {
        state: StateFile::new(path),
        pin: if cli.pin_stdin { PinSource::Stdin } else { PinSource::Terminal },
    };
    cli.command.run(&cx).await
}
