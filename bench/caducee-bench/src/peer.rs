//! The peer provider (panva's oidc-provider, `bench/peers/`): started pinned like Caducée and
//! put through the same protocol measures.

use std::path::PathBuf;

use anyhow::Context as _;
use tokio::process::Command;

use crate::flows::{self, Rp};
use crate::procs::{self, Server};
use crate::run::{Bench, CLIENT_SECRET_PEER, Protocol, futures_lite};

impl Bench {
    async fn start_peer(&self, alg: &str) -> anyhow::Result<Server> {
        let addr = procs::free_addr()?;
        let node = PathBuf::from("node");
        let mut c = if procs::pinning() {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(procs::SERVER_CORE.to_string()).arg(&node);
            c
        } else {
            Command::new(&node)
        };
        c.arg(self.s.peer_dir.join("oidc-provider.mjs"))
            .current_dir(&self.s.peer_dir)
            .env("NODE_ENV", "production")
            .env("PORT", addr.port().to_string())
            .env("PEER_ALG", alg)
            .env("CLIENT_SECRET", CLIENT_SECRET_PEER);
        Server::spawn(
            &format!("oidc-provider-{alg}"),
            c,
            addr,
            "/.well-known/openid-configuration",
            &self.path(&format!("peer-{alg}.log")),
        )
        .await
    }

    pub async fn peer(&self) -> anyhow::Result<Protocol> {
        let mut p = Protocol::default();
        let cc = Rp { client_id: "bench-cc".into(), secret: CLIENT_SECRET_PEER.into() };
        let server = self.start_peer("ES256").await?;
        let addr = server.addr;
        let base = format!("http://{addr}");
        let http = flows::client()?;
        (p.discovery, p.jwks) = self.documents("peer ", addr).await?;
        let (s, _, at_half) = self.client_credentials_load("peer client_credentials ES256", addr, &cc, true).await?;
        p.cc_es = s;
        if let Some(at_half) = at_half {
            (p.cc_es_p50, p.cc_es_p99) = at_half;
        }
        let token: serde_json::Value = http.get(format!("{base}/__bench/token")).send().await?.json().await?;
        let token = token["access_token"].as_str().context("peer token")?.to_owned();
        let ((userinfo, _), (introspection, _)) =
            self.resource_endpoints("peer ", addr, ("/me", "/token/introspection"), &cc, &token).await?;
        (p.userinfo, p.introspection) = (userinfo, introspection);
        let codes_of = |id: &'static str, n: usize| -> futures_lite::BoxFuture<'_, anyhow::Result<Vec<String>>> {
            let (http, base) = (&http, &base);
            Box::pin(async move {
                let mut codes = Vec::with_capacity(n);
                while codes.len() < n {
                    let batch = (n - codes.len()).min(20_000);
                    let v: Vec<String> =
                        http.get(format!("{base}/__bench/codes?client={id}&n={batch}")).send().await?.json().await?;
                    codes.extend(v);
                }
                Ok(codes)
            })
        };
        for (id, es, refresh) in [
            ("rp-es", true, false),
            ("rp-rs", false, false),
            ("rp-rs-refresh", false, true),
            ("rp-es-refresh", true, true),
        ] {
            let rp = Rp { client_id: id.into(), secret: CLIENT_SECRET_PEER.into() };
            let prepare = |n: usize| codes_of(id, n);
            let what = format!("peer code exchange {id}");
            let x = self.code_exchange(&what, addr, &prepare, &rp, refresh && !es).await?;
            p.notes.push((format!("code exchange {id}"), x.note.clone()));
            match (es, refresh) {
                (true, false) => p.code_es = x.peak,
                (false, false) => p.code_rs = x.peak,
                (false, true) => p.code_rs_refresh = x,
                (true, true) => p.code_es_refresh = x,
            }
        }
        // The refresh grant, with chains started from codes exchanged here.
        let rp = Rp { client_id: "rp-es-refresh".into(), secret: CLIENT_SECRET_PEER.into() };
        let mut seeds = Vec::new();
        for code in codes_of("rp-es-refresh", self.s.connections + 16).await? {
            let json = flows::exchange_json(&http, &base, &rp, &code).await?;
            seeds.push(json["refresh_token"].as_str().context("peer refresh_token")?.to_owned());
        }
        p.refresh = self.refresh_grant("peer refresh grant rp-es-refresh", addr, seeds, &rp).await?;
        server.stop().await?;

        let server = self.start_peer("RS256").await?;
        let addr = server.addr;
        let (s, _, at_half) = self.client_credentials_load("peer client_credentials RS256", addr, &cc, true).await?;
        p.cc_rs = s;
        if let Some(at_half) = at_half {
            (p.cc_rs_p50, p.cc_rs_p99) = at_half;
        }
        server.stop().await?;
        Ok(p)
    }
}
