//! `caducee`: see `caducee --help` and docs/cli.md.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    match server::cli::run(server::cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, without a backtrace: these are operator errors, not bugs.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
