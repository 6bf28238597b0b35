//! The load generator: N keep-alive HTTP/1.1 connections (hyper's low-level client, no pool,
//! no redirects), each sending its next request as soon as the previous answer is read (closed
//! loop, for peak rates) or on a fixed schedule (open loop, for latencies at a given rate).
//! Only answers that the measure's check accepts are counted; latencies go to an HDR histogram.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// One request to send.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Req {
        Req { method: Method::GET, path: path.into(), headers: Vec::new(), body: Bytes::new() }
    }

    pub fn post_form(path: impl Into<String>, body: String) -> Req {
        Req {
            method: Method::POST,
            path: path.into(),
            headers: vec![(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))],
            body: Bytes::from(body),
        }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> anyhow::Result<Req> {
        self.headers.push((name, HeaderValue::from_str(value)?));
        Ok(self)
    }
}

/// Where requests come from: the same one again, or one per prepared item (e.g. codes).
pub type Source = Arc<dyn Fn() -> Option<Req> + Send + Sync>;
/// Whether an answer counts (status, headers, body).
pub type Check = Arc<dyn Fn(StatusCode, &http::HeaderMap, &[u8]) -> bool + Send + Sync>;

/// The same request, over and over.
pub fn repeat(req: Req) -> Source {
    Arc::new(move || Some(req.clone()))
}

/// Each prepared item once, then the source is dry.
pub fn each<T: Send + Sync + 'static>(items: Vec<T>, make: impl Fn(&T) -> Req + Send + Sync + 'static) -> Source {
    let next = AtomicU64::new(0);
    Arc::new(move || {
        let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).ok()?;
        items.get(i).map(&make)
    })
}

/// Refresh tokens used as relying parties use them: each answer's new `refresh_token` goes back
/// to the pool the next request takes from, so that every connection refreshes its own chain.
/// An answer that is refused loses its chain; `seeds` should hold a few more than connections.
pub fn refresh_chain(seeds: Vec<String>, make: impl Fn(&str) -> Req + Send + Sync + 'static) -> (Source, Check) {
    let pool = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(seeds)));
    let take = pool.clone();
    let source: Source = Arc::new(move || {
        let token = take.lock().ok()?.pop_front()?;
        Some(make(&token))
    });
    let check: Check = Arc::new(move |status, _, body| {
        if status != StatusCode::OK {
            return false;
        }
        let Some(token) = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("refresh_token").and_then(|t| t.as_str()).map(str::to_owned))
        else {
            return false;
        };
        pool.lock().map(|mut p| p.push_back(token)).is_ok()
    });
    (source, check)
}

/// Accept answers with this status whose body contains `needle` (empty: any body).
pub fn status_and(status: StatusCode, needle: &'static str) -> Check {
    // memchr's searcher, not a byte-by-byte scan: that cost the load generator's core about
    // 2 µs per discovery answer (the marker sits 1.5 KiB into it), which at 100,000 answers/s
    // held the measure back rather than the server.
    let finder = memchr::memmem::Finder::new(needle);
    Arc::new(move |s, _, body| s == status && (needle.is_empty() || finder.find(body).is_some()))
}

/// What a load run gave.
#[derive(Debug)]
pub struct Outcome {
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Latencies of the accepted answers, in microseconds.
    pub latency: Histogram<u64>,
    /// A sample of a refused answer, to say why in the report.
    pub first_failure: Option<String>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    pub fn p(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// How to drive the target.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub connections: usize,
    pub duration: Duration,
    /// `None`: closed loop (as fast as answers come); `Some(r)`: r requests per second in all,
    /// spread evenly over the connections.
    pub rate: Option<f64>,
}

struct Shared {
    ok: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
    latency: Mutex<Histogram<u64>>,
    first_failure: Mutex<Option<String>>,
}

/// Runs `plan` against `addr`. Latencies are from the moment a request is written; in the open
/// loop, from the scheduled moment when the connection was late for it (so a stalled server is
/// not hidden by requests that were never sent: coordinated omission).
pub async fn run(addr: SocketAddr, plan: Plan, source: Source, check: Check) -> anyhow::Result<Outcome> {
    let shared = Arc::new(Shared {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        latency: Mutex::new(new_histogram()?),
        first_failure: Mutex::new(None),
    });
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        let (shared, source, check) = (shared.clone(), source.clone(), check.clone());
        let schedule = plan.rate.map(|rate| {
            let period = Duration::from_secs_f64(plan.connections as f64 / rate.max(1.0));
            // Connections start staggered across one period.
            let offset = period.mul_f64(i as f64 / plan.connections as f64);
            (period, start + offset)
        });
        tasks.push(tokio::spawn(async move { connection(addr, deadline, schedule, shared, source, check).await }));
    }
    let mut last_error = None;
    for t in tasks {
        if let Err(e) = t.await.context("load task")? {
            last_error = Some(e);
        }
    }
    // Until the last answer: a dry source (prepared codes) ends early.
    let elapsed = start.elapsed();
    let ok = shared.ok.load(Ordering::Relaxed);
    if ok == 0
        && let Some(e) = last_error
    {
        return Err(e.context(format!("no correct answer from {addr}")));
    }
    let latency = shared.latency.lock().await.clone();
    let first_failure = shared.first_failure.lock().await.clone();
    Ok(Outcome { ok, failed: shared.failed.load(Ordering::Relaxed), elapsed, latency, first_failure })
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn connection(
    addr: SocketAddr,
    deadline: Instant,
    schedule: Option<(Duration, Instant)>,
    shared: Arc<Shared>,
    source: Source,
    check: Check,
) -> anyhow::Result<()> {
    let host = HeaderValue::from_str(&addr.to_string())?;
    let mut local = new_histogram()?;
    let mut sender: Option<Sender> = None;
    let mut next_slot = schedule.map(|(_, first)| first);
    let result = async {
        loop {
            let mut intended = None;
            if let (Some((period, _)), Some(slot)) = (schedule, next_slot) {
                if slot >= deadline {
                    break;
                }
                tokio::time::sleep_until(slot.into()).await;
                intended = Some(slot);
                next_slot = Some(slot + period);
            }
            if Instant::now() >= deadline || shared.stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(req) = source() else {
                shared.stop.store(true, Ordering::Relaxed);
                break;
            };
            let mut builder = Request::builder().method(req.method).uri(req.path).header(http::header::HOST, &host);
            for (name, value) in req.headers {
                builder = builder.header(name, value);
            }
            let request = builder.body(Full::new(req.body))?;
            let s = match sender.as_mut() {
                Some(s) => s,
                None => sender.insert(connect(addr).await?),
            };
            let sent = Instant::now();
            let answer = async {
                s.ready().await?;
                let resp = s.send_request(request).await?;
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await?.to_bytes();
                anyhow::Ok((parts, bytes))
            }
            .await;
            let done = Instant::now();
            match answer {
                Ok((parts, bytes)) => {
                    if check(parts.status, &parts.headers, &bytes) {
                        shared.ok.fetch_add(1, Ordering::Relaxed);
                        // Late by more than a timer tick: count from when it should have left.
                        let from = match intended {
                            Some(t) if sent.duration_since(t) > Duration::from_millis(2) => t,
                            _ => sent,
                        };
                        let micros = u64::try_from(done.duration_since(from).as_micros()).unwrap_or(u64::MAX);
                        local.saturating_record(micros.max(1));
                    } else {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        let mut first = shared.first_failure.lock().await;
                        if first.is_none() {
                            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                            *first = Some(format!("{} {text}", parts.status));
                        }
                    }
                    if parts.headers.get(http::header::CONNECTION).is_some_and(|v| v == "close") {
                        sender = None;
                    }
                }
                Err(e) => {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    let mut first = shared.first_failure.lock().await;
                    if first.is_none() {
                        *first = Some(format!("transport: {e:#}"));
                    }
                    sender = None;
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    shared.latency.lock().await.add(&local).context("merging histograms")?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needle_search() {
        let headers = http::HeaderMap::new();
        let active = status_and(StatusCode::OK, "\"active\":true");
        assert!(active(StatusCode::OK, &headers, b"{\"active\":true}"));
        assert!(!active(StatusCode::OK, &headers, b"{\"active\":false}"));
        assert!(!active(StatusCode::BAD_REQUEST, &headers, b"{\"active\":true}"));
        assert!(status_and(StatusCode::OK, "")(StatusCode::OK, &headers, b"x"));
    }
}
