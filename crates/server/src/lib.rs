//! The `caducee` binary's library: configuration, command line, and the wiring of every crate
//! into one HTTP server ([`app::App`]). Nothing depends on this crate; it depends on all.

pub mod adapters;
pub mod app;
pub mod cli;
pub mod config;
pub mod recent;
mod request_log;
pub mod testing;

pub use app::App;
pub use config::Config;
