//! `[telemetry]`: traces sent to an OpenTelemetry collector (docs/configuration.md).

use serde::{Deserialize, Serialize};

/// Where traces go, if anywhere. Off unless `otlp_endpoint` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`); traces are posted to
    /// `/v1/traces` under it, in protobuf. Empty: no traces.
    pub otlp_endpoint: String,
    /// `service.name` of the traces.
    pub service_name: String,
    /// The share of requests traced, from 0 to 1, unless the caller's `traceparent` says
    /// whether it was sampled.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { otlp_endpoint: String::new(), service_name: "caducee".into(), sample_ratio: 1.0 }
    }
}

impl TelemetryConfig {
    pub fn enabled(&self) -> bool {
        !self.otlp_endpoint.is_empty()
    }

    /// The URL the spans are posted to.
    pub fn traces_url(&self) -> String {
        let base = self.otlp_endpoint.trim_end_matches('/');
        if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err("telemetry.sample_ratio must be between 0 and 1".into());
        }
        if self.service_name.trim().is_empty() {
            return Err("telemetry.service_name must not be empty".into());
        }
        if self.enabled() {
            let url = url::Url::parse(&self.otlp_endpoint)
                .map_err(|_| format!("telemetry.otlp_endpoint: `{}` is not a URL", self.otlp_endpoint))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err("telemetry.otlp_endpoint must be an http or https URL".into());
            }
            if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                return Err("telemetry.otlp_endpoint must carry no credentials and no query".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once_and_bad_settings_are_refused() {
        let mut t = TelemetryConfig { otlp_endpoint: "http://127.0.0.1:4318/".into(), ..Default::default() };
        assert_eq!(t.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert!(t.validate().is_ok());
        t.otlp_endpoint = "https://otel.example/v1/traces".into();
        assert_eq!(t.traces_url(), "https://otel.example/v1/traces");
        for bad in ["otel.example:4318", "ftp://otel.example", "https://user:pw@otel.example"] {
            t.otlp_endpoint = bad.into();
            assert!(t.validate().is_err(), "{bad}");
        }
        t.otlp_endpoint.clear();
        t.sample_ratio = 1.5;
        assert!(t.validate().is_err());
    }
}
