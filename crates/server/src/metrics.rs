//! `/metrics`: the provider's figures in Prometheus text, for the operator's monitoring.
//!
//! What is counted: every request to a route, by route, method and status, with its latency
//! (a histogram); every audited event by name and outcome (logins, pushes, lockouts, tokens,
//! logouts: the directory counts them as it writes them). The figures go through the `metrics`
//! facade to one recorder per process; only the networks `metrics.allow` names may read them.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use oidc_core::http::ClientIp;

/// Latency buckets, in seconds: most answers take a millisecond or less.
const LATENCY_BUCKETS: &[f64] = &[0.000_25, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The process's recorder, installed at the first call; `None` if another recorder was
/// installed first (nothing is then exported from here).
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("caducee_http_request_duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// A label's text without an allocation for the values nearly every request has.
fn label(value: &str, common: &[&'static str]) -> metrics::SharedString {
    match common.iter().find(|c| **c == value) {
        Some(c) => metrics::SharedString::const_str(c),
        None => metrics::SharedString::from(value.to_owned()),
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"];
const STATUSES: &[&str] =
    &["200", "201", "204", "302", "303", "400", "401", "403", "404", "405", "409", "413", "429", "500", "503"];

/// Counts a request to a matched route and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = label(request.method().as_str(), METHODS);
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(route) = route {
        let status = label(response.status().as_str(), STATUSES);
        metrics::counter!("caducee_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
            .increment(1);
        metrics::histogram!("caducee_http_request_duration_seconds", "route" => route)
            .record(started.elapsed().as_secs_f64());
    }
    response
}

/// Who may read `/metrics`.
pub struct MetricsAccess {
    pub allow: Vec<ipnet::IpNet>,
    pub handle: Option<PrometheusHandle>,
}

/// `GET /metrics`: the text exposition format, to allowed networks only (others get a 404,
/// as if there were nothing here).
pub async fn serve(State(access): State<Arc<MetricsAccess>>, request: Request) -> Response {
    let caller = request.extensions().get::<ClientIp>().map(|ClientIp(ip)| *ip);
    let allowed = caller.is_some_and(|ip| access.allow.iter().any(|net| net.contains(&ip)));
    let Some(handle) = access.handle.as_ref().filter(|_| allowed) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = handle.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
