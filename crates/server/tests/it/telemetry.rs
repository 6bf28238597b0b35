//! Traces, when `[telemetry]` names a collector: the real binary exports each request's span
//! over OTLP/HTTP to a receiver on loopback that decodes them as a collector would, continuing
//! the caller's `traceparent`, and without a parameter's value.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use reqwest::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_caducee");

/// What the receiver got: each span with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn collector() -> (u16, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            Value::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        for span in scope.spans {
                            store.lock().unwrap().push((service.clone(), span));
                        }
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()?.value.as_ref()).map(|v| match v {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test]
async fn request_spans_reach_the_collector_in_the_callers_trace() {
    let (collector_port, received) = collector().await;
    let data = tempfile::tempdir().unwrap();
    let port = test_support::free_port().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_remove("CADUCEE_CONFIG")
        .env("CADUCEE_DATA_DIR", data.path())
        .env("CADUCEE_LISTEN", format!("127.0.0.1:{port}"))
        .env("CADUCEE_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("CADUCEE_TELEMETRY__OTLP_ENDPOINT", format!("http://127.0.0.1:{collector_port}"))
        .env("CADUCEE_TELEMETRY__SERVICE_NAME", "caducee-test")
        .current_dir(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status() == StatusCode::OK) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "caducee serve did not start");

    // A relying party's request in its own trace, with a secret in the body.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .post(format!("{base}/token"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "s3cr3t-value")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = reqwest::get(format!("{base}/authorize?client_id=x&login_hint=899700000001")).await.unwrap();
    assert!(r.status().is_client_error());

    // SIGTERM: the node flushes what it has not sent yet before it exits.
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the node did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spans = received.lock().unwrap().clone();
    let token = spans
        .iter()
        .find(|(_, s)| s.name == "POST /token")
        .unwrap_or_else(|| panic!("a span for the token request: {spans:?}"));
    assert_eq!(token.0, "caducee-test", "the configured service name");
    assert_eq!(hex(&token.1.trace_id), trace_id, "the caller's trace continues");
    assert_eq!(hex(&token.1.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(attribute(&token.1, "http.route").as_deref(), Some("/token"));
    assert_eq!(attribute(&token.1, "http.response.status_code").as_deref(), Some("401"));
    let authorize = spans.iter().find(|(_, s)| s.name == "GET /authorize").expect("a span for /authorize");
    assert_eq!(attribute(&authorize.1, "query").as_deref(), Some("client_id&login_hint"), "names only");
    assert_ne!(hex(&authorize.1.trace_id), trace_id, "a request without traceparent starts its own trace");
    let everything = format!("{spans:?}");
    for secret in ["s3cr3t-value", "899700000001"] {
        assert!(!everything.contains(secret), "no value leaves in a span: {secret}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
