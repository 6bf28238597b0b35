//! `[metrics]`: the `/metrics` endpoint (docs/configuration.md).

use serde::{Deserialize, Serialize};

/// Who may read the provider's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Answer `GET /metrics` (Prometheus text) and count requests.
    pub enabled: bool,
    /// Networks whose callers may read it (`10.0.0.0/8`, or an address alone); others get a 404.
    /// Behind a proxy, the caller is the address established through `trusted_proxies`.
    pub allow: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, allow: vec!["127.0.0.0/8".into(), "::1/128".into()] }
    }
}

impl MetricsConfig {
    /// The allowed networks; an error names the first entry that is not one.
    pub fn networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.allow
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("metrics.allow: `{entry}` is not a network nor an address"))
            })
            .collect()
    }
}
