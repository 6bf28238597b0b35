//! Logs, and traces when `[telemetry]` names a collector: one `tracing` subscriber whose log
//! layer prints events as before, and whose OpenTelemetry layer (optional) exports each
//! request's span over OTLP/HTTP. A request carrying a W3C `traceparent` continues its
//! caller's trace.
//!
//! Spans carry what the request log carries (method, path, parameter names, request id), never
//! a parameter's value, a cookie or a header's content.

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, TelemetryConfig};

/// How long one export may take before it is dropped: a collector that hangs must not hold
/// the spans of the next ones.
const EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP exporter cannot be built: {0}")]
    Exporter(String),
}

/// The installed subscriber's exporter, if any: [`Telemetry::shutdown`] sends what is left.
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing the last traces failed");
        }
    }
}

/// Installs the process's subscriber: logs to stderr in `format`, filtered by `RUST_LOG` (or
/// the defaults), and, when `telemetry` names a collector, traces of every request.
pub fn init(format: LogFormat, serving: bool, telemetry: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let default = if serving { "info,tower_http=info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colours);
    let logs = match format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Text => logs.boxed(),
    }
    .with_filter(filter);

    let provider = if serving && telemetry.enabled() { Some(tracer_provider(telemetry)?) } else { None };
    let traces = provider.as_ref().map(|provider| {
        // The request spans (debug, under tower_http, so that the log's filter leaves them
        // out by default) and what this workspace's crates say inside them.
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("tower_http::trace::make_span", tracing::Level::DEBUG)
            .with_default(tracing::Level::INFO);
        tracing_opentelemetry::layer().with_tracer(provider.tracer("caducee")).with_filter(targets)
    });
    // Fails only when a subscriber is already installed (a second call): keep the first.
    let _ = tracing_subscriber::registry().with(logs).with(traces).try_init();
    Ok(Telemetry { provider })
}

fn tracer_provider(telemetry: &TelemetryConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(telemetry.traces_url())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(telemetry.service_name.clone()).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(telemetry.sample_ratio))))
        .with_resource(resource)
        .build())
}

/// Names the request's span by its route (`POST /token`, `GET /interaction/{id}`) and notes its
/// status: what a trace viewer groups by. Only on routed requests, when traces are exported.
pub async fn name_span(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let span = tracing::Span::current();
    if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        // The OpenTelemetry span is already started (entered): `otel.name` recorded now would
        // be ignored, so the name is changed on the span itself.
        let name = format!("{} {}", request.method(), route.as_str());
        tracing_opentelemetry::OpenTelemetrySpanExt::context(&span).span().update_name(name);
        span.record("http.route", route.as_str());
    }
    let response = next.run(request).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// Makes `span` continue the trace of the request's `traceparent`, if it has one and traces
/// are exported (otherwise nothing happens).
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(span, parent);
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
