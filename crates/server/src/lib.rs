//! The `caducee` binary's library: configuration, command line, and the wiring of every crate
//! into one HTTP server ([`app::App`]). Nothing depends on this crate; it depends on all.

pub mod adapters;
pub mod app;
pub mod card_listener;
pub mod cli;
pub mod config;
mod decoupled;
mod edge;
pub mod metrics;
pub mod mtls_listener;
pub mod recent;
mod request_log;
pub mod telemetry;
pub mod testing;

pub use app::App;
pub use config::Config;

#[cfg(test)]
mod tests {
    /// Every crate declares the session store's keys it writes; with all of them in one binary,
    /// no two families (nor two rate limits) may share a name.
    #[test]
    fn no_two_crates_write_under_one_name() {
        let families = [
            session_store::keys::ALL,
            oidc_core::store_keys::ALL,
            authn_methods::store_keys::ALL,
            login_ui::store_keys::ALL,
            console::store_keys::ALL,
        ];
        assert_eq!(session_store::keys::first_clash(families.into_iter().flatten()), None);
        let limits = [
            oidc_core::store_keys::LIMITS,
            authn_methods::store_keys::LIMITS,
            login_ui::store_keys::LIMITS,
            console::store_keys::LIMITS,
        ];
        assert_eq!(session_store::keys::first_clash(limits.into_iter().flatten()), None);
    }

    /// docs/operations.md tells operators what every family of keys in Redis holds, for how
    /// long and what losing it costs: a family added without a line there fails here.
    #[test]
    fn the_operations_guide_names_every_family_of_keys() {
        let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md"))
            .unwrap_or_default();
        assert!(guide.contains("## Redis: what is there"), "docs/operations.md has its Redis section");
        let families = [
            oidc_core::store_keys::ALL,
            authn_methods::store_keys::ALL,
            login_ui::store_keys::ALL,
            console::store_keys::ALL,
        ];
        for family in families.into_iter().flatten() {
            let named = format!("`caducee:{}:", family.name());
            assert!(guide.contains(&named), "docs/operations.md names {named}`");
        }
        assert!(guide.contains(&format!("`caducee:{}:{{limit}}:", session_store::keys::RATE_LIMITS.name())));
        let limits = [
            oidc_core::store_keys::LIMITS,
            authn_methods::store_keys::LIMITS,
            login_ui::store_keys::LIMITS,
            console::store_keys::LIMITS,
        ];
        for limit in limits.into_iter().flatten() {
            let named = format!("`{}`", limit.name());
            assert!(guide.contains(&named), "docs/operations.md names the rate limit {named}");
        }
    }
}
