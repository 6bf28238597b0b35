//! `caducee`: see `caducee --help` and docs/cli.md.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::cli::run(server::cli::Cli::parse()).await
}
