//! `caducee`: see `caducee --help` and docs/cli.md.

use std::process::ExitCode;

use clap::Parser as _;

// mimalloc rather than glibc's allocator: requests make many small allocations on the
// runtime's thread, and the audit writer frees some of them on its own; measured on the
// bench (docs/benchmarks.md), 5-13 % more code exchanges per core and a few % on every other
// protocol endpoint. Version 2 of mimalloc is the one measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
