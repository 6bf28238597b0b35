//! The back-channel fan-out measure: relying parties on loopback in this process, and the
//! time from a logout until every healthy one has its logout token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http::StatusCode;

use crate::flows::{self, Browser, Rp};
use crate::run::Bench;

/// The relying parties of the fan-out measure: loopback servers in this process; the first one
/// hangs (accepts, never answers), the others answer 200 and note when the logout token came.
pub struct Receivers {
    pub addrs: Vec<SocketAddr>,
    hits: Arc<std::sync::Mutex<Vec<(usize, Instant)>>>,
}

impl Receivers {
    pub async fn start(n: usize) -> anyhow::Result<Receivers> {
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut addrs = Vec::new();
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addrs.push(listener.local_addr()?);
            let hits = hits.clone();
            let app = if i == 0 {
                axum::Router::new().route(
                    "/backchannel",
                    axum::routing::post(|| async {
                        std::future::pending::<()>().await;
                        StatusCode::OK
                    }),
                )
            } else {
                axum::Router::new().route(
                    "/backchannel",
                    axum::routing::post(move || {
                        let hits = hits.clone();
                        async move {
                            if let Ok(mut h) = hits.lock() {
                                h.push((i, Instant::now()));
                            }
                            StatusCode::OK
                        }
                    }),
                )
            };
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        Ok(Receivers { addrs, hits })
    }

    fn reset(&self) {
        if let Ok(mut h) = self.hits.lock() {
            h.clear();
        }
    }

    fn healthy_notified(&self) -> (usize, Option<Instant>) {
        match self.hits.lock() {
            Ok(h) => {
                let mut seen: Vec<usize> = h.iter().map(|(i, _)| *i).collect();
                seen.sort_unstable();
                seen.dedup();
                (seen.len(), h.iter().map(|(_, t)| *t).max())
            }
            Err(_) => (0, None),
        }
    }
}

impl Bench {
    /// One session signs in to every fan-out client, then its relying party logs it out
    /// (`/end_session` with an `id_token_hint`): ms until all healthy ones have their token.
    pub(crate) async fn fanout(
        &self,
        http: &reqwest::Client,
        base: &str,
        rps: &[Rp],
        browser: &Browser,
        receivers: &Receivers,
    ) -> anyhow::Result<f64> {
        let mut b = browser.clone();
        let mut first_code = None;
        for rp in rps {
            let code = flows::login(http, base, &mut b, rp, None).await?;
            first_code.get_or_insert((rp.clone(), code));
        }
        let (rp, code) = first_code.context("no fan-out client")?;
        let resp = http
            .post(format!("{base}/token"))
            .header(http::header::AUTHORIZATION, rp.basic())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", flows::REDIRECT_URI),
                ("code_verifier", flows::PKCE_VERIFIER),
            ])
            .send()
            .await?;
        let json: serde_json::Value = resp.json().await?;
        let id_token = json["id_token"].as_str().context("no id_token")?.to_owned();
        let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        receivers.reset();
        let healthy = rps.len().saturating_sub(1);
        let t0 = Instant::now();
        let resp = http
            .get(format!("{base}/end_session?id_token_hint={id_token}"))
            .header(http::header::COOKIE, cookie)
            .send()
            .await?;
        if !resp.status().is_success() && !resp.status().is_redirection() {
            bail!("/end_session answered {}", resp.status());
        }
        loop {
            let (n, last) = receivers.healthy_notified();
            if n >= healthy {
                let last = last.context("no arrival")?;
                return Ok(last.duration_since(t0).as_secs_f64() * 1000.0);
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("only {n} of {healthy} healthy relying parties notified after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
