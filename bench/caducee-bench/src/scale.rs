//! The production shape as deployed: two `caducee serve` nodes over one PostgreSQL and one
//! Redis behind one address (`test_support::balancer`, round robin per connection), beside one
//! node over the same stores behind the same balancer, on the same machine; and what each
//! request kind costs the stores (`costs.rs`), counted on the one node.
//!
//! On a 2-core machine the bench keeps its rule (servers on core 0, the load generator on
//! core 1): both nodes share core 0 with PostgreSQL and Redis, so the measure shows what a
//! second node costs or gains on the same core (two runtimes, two pools, shared sessions
//! through Redis), not the scaling over more cores, which this machine cannot show.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http::StatusCode;

use crate::caducee::Setup;
use crate::costs::{Costs, Stores};
use crate::flows::{self, Browser};
use crate::loadgen::{self, Req};
use crate::report::Row;
use crate::run::{Bench, say};
use crate::stats::Summary;

/// One configuration's figures.
#[derive(Clone, Debug, Default)]
pub struct NodeFigures {
    /// Code exchanges with a refresh token, all ES256 (`rp-es-refresh`).
    pub code: Summary,
    pub userinfo: Summary,
    /// SSO logins to a second client: authorize with the session, code, token, userinfo.
    pub sso: Summary,
}

#[derive(Clone, Debug, Default)]
pub struct Scale {
    pub one: NodeFigures,
    pub two: NodeFigures,
    pub costs: Vec<(String, Costs)>,
}

/// Sessions the measures use: one per SSO-login worker.
const SESSIONS: usize = 16;

impl Bench {
    pub async fn production_nodes(&self) -> anyhow::Result<Scale> {
        let redis = self.start_redis().await?;
        let pg = self.start_postgres()?;
        let stores = Stores { pg_port: pg.port(), redis_port: redis.addr.port() };
        stores.prepare().await?;
        let (a, b) = (crate::procs::free_addr()?, crate::procs::free_addr()?);
        // Node B is not started yet: the balancer gives its turns to node A meanwhile.
        let balancer = test_support::balancer::Balancer::start(vec![a, b])?;
        let place = self.production_place("data-nodes", pg.url(), stores, Some(balancer.url()))?;
        let setup = self.setup_caducee(&place, a, &[]).await?;
        let addr = balancer.address();
        let base = balancer.url();
        let node_a = self.start_caducee("nodes-a", &place, a, &[]).await?;
        let http = flows::client()?;
        let mut browsers = Vec::new();
        for _ in 0..SESSIONS {
            let (user, otp) = setup.users.take_waiting().await?;
            browsers.push(flows::full_login(&http, &base, &setup.rp_es, user, &otp).await.context("login")?);
        }
        let first = browsers.first().cloned().context("no session")?;
        let code = flows::login(&http, &base, &mut first.clone(), &setup.rp_es, None).await?;
        let token = flows::exchange(&http, &base, &setup.rp_es, &code).await?;

        let mut scale =
            Scale { costs: self.request_costs(addr, stores, &setup, &first, &token).await?, ..Scale::default() };
        scale.one = self.node_figures("one node", addr, &setup, &browsers, &token).await?;
        let node_b = self.start_caducee("nodes-b", &place, b, &[]).await?;
        scale.two = self.node_figures("two nodes", addr, &setup, &browsers, &token).await?;
        say(format!("balancer: {} connections accepted", balancer.accepted()));
        node_b.stop().await?;
        node_a.stop().await?;
        redis.stop().await?;
        drop(pg);
        Ok(scale)
    }

    /// Code exchanges, userinfo and SSO logins through the balancer.
    async fn node_figures(
        &self,
        label: &str,
        addr: std::net::SocketAddr,
        setup: &Setup,
        browsers: &[Browser],
        token: &str,
    ) -> anyhow::Result<NodeFigures> {
        let mut f = NodeFigures::default();
        let rp = &setup.rp_es_refresh;
        let browser = browsers.first().context("no session")?;
        let what = format!("{label}: code exchange rp-es-refresh");
        f.code = self.session_code_exchange(&what, addr, browser, rp, false).await?.peak;
        let (userinfo, _) = self
            .peak(
                &format!("{label}: userinfo"),
                addr,
                loadgen::repeat(crate::run::bearer("/userinfo", token)?),
                loadgen::status_and(StatusCode::OK, "\"sub\""),
            )
            .await?;
        f.userinfo = userinfo;
        // A new client: its connections are spread over the nodes there are now.
        let http = flows::client()?;
        let base = format!("http://{addr}");
        let browsers: Arc<Vec<Browser>> = Arc::new(browsers.to_vec());
        let mut rates = Vec::new();
        for _ in 0..self.s.runs {
            let o = flows::drive_sso_logins(SESSIONS, self.s.duration, (&http, &base), &setup.rp_sso, &browsers).await;
            if o.failed > 0 {
                say(format!("{label}: {} SSO logins failed: {}", o.failed, o.first_failure.as_deref().unwrap_or("")));
            }
            rates.push(o.ok as f64 / o.secs);
        }
        f.sso = Summary::of(&rates);
        say(format!("{label}: SSO logins {:.0}/s", f.sso.median));
        Ok(f)
    }

    /// What each request kind costs the stores, on the node there is.
    async fn request_costs(
        &self,
        addr: std::net::SocketAddr,
        stores: Stores,
        setup: &Setup,
        browser: &Browser,
        token: &str,
    ) -> anyhow::Result<Vec<(String, Costs)>> {
        let mut out = Vec::new();
        let base = format!("http://{addr}");
        let http = flows::client()?;
        for rp in [&setup.rp_es, &setup.rp_es_refresh] {
            let what = format!("code exchange {}", rp.client_id);
            let codes = self.prepare_codes(addr, browser, rp, 1500).await?;
            let source = loadgen::each(codes, crate::run::exchange_request(rp));
            let c = self.costs(&what, addr, stores, source, loadgen::status_and(StatusCode::OK, "id_token")).await?;
            out.push((what, c));
        }
        let rp = &setup.rp_es_refresh;
        let seeds = self.refresh_seeds((&http, &base), std::slice::from_ref(browser), rp, 8).await?;
        let (source, check) = loadgen::refresh_chain(seeds, crate::run::refresh_request(rp));
        out.push(("refresh grant".into(), self.costs("refresh grant", addr, stores, source, check).await?));
        let source = loadgen::repeat(crate::run::bearer("/userinfo", token)?);
        let c = self.costs("userinfo", addr, stores, source, loadgen::status_and(StatusCode::OK, "\"sub\"")).await?;
        out.push(("userinfo".into(), c));
        let source = loadgen::repeat(crate::run::introspect("/introspect", &setup.cc, token)?);
        let c = self
            .costs("introspection", addr, stores, source, loadgen::status_and(StatusCode::OK, "\"active\":true"))
            .await?;
        out.push(("introspection".into(), c));
        let source = loadgen::repeat(crate::run::client_credentials(&setup.cc)?);
        let c = self
            .costs("client credentials", addr, stores, source, loadgen::status_and(StatusCode::OK, "access_token"))
            .await?;
        out.push(("client credentials".into(), c));
        let req =
            Req::get(flows::authorize_path(&setup.rp_sso)).header(http::header::COOKIE, &browser.cookie_header())?;
        let check: loadgen::Check = Arc::new(|status, headers, _| {
            status == StatusCode::SEE_OTHER
                && headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok()).and_then(flows::code_of).is_some()
        });
        let c = self.costs("authorize with an SSO session", addr, stores, loadgen::repeat(req), check).await?;
        out.push(("authorize with an SSO session (code issued)".into(), c));

        // Whole flows, one after the other: a full login (5 requests), then a logout.
        let n = 8;
        let (http, base, setup) = (&http, &base, setup);
        let (c, sessions) = self
            .costs_of("full login", stores, n, move |_| async move {
                let (user, otp) = setup.users.take_waiting().await?;
                let mut b = Browser::default();
                let code = flows::login(http, base, &mut b, &setup.rp_es, Some((user, &otp))).await?;
                let json = flows::exchange_json(http, base, &setup.rp_es, &code).await?;
                let access = json["access_token"].as_str().context("no access_token")?;
                flows::userinfo(http, base, access).await?;
                let id_token = json["id_token"].as_str().context("no id_token")?.to_owned();
                anyhow::Ok((b, id_token))
            })
            .await?;
        out.push(("full login: authorize, form, password + TOTP, token, userinfo (per login)".into(), c));
        let sessions = &sessions;
        let (c, _) = self
            .costs_of("end_session", stores, n, move |i| async move {
                let (b, id_token) = sessions.get(i).context("no session to end")?;
                let resp = http
                    .get(format!("{base}/end_session"))
                    .query(&[("id_token_hint", id_token.as_str())])
                    .header(http::header::COOKIE, b.cookie_header())
                    .send()
                    .await?;
                anyhow::ensure!(resp.status() == StatusCode::OK, "/end_session answered {}", resp.status());
                Ok(())
            })
            .await?;
        out.push(("end_session with id_token_hint (per logout)".into(), c));
        // Give the background deliveries and audit writes their moment before the next measure.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(out)
    }
}

/// The rows of this measure in the report.
pub fn rows(s: &Scale) -> Vec<Row> {
    let g = "Production shape: two nodes behind one address (PostgreSQL + Redis)";
    let mut rows = Vec::new();
    for (name, one, two) in [
        ("authorization_code + refresh token, ES256 ID + access token", &s.one.code, &s.two.code),
        ("userinfo (bearer)", &s.one.userinfo, &s.two.userinfo),
        ("SSO login to a second client: authorize, code, token, userinfo", &s.one.sso, &s.two.sso),
    ] {
        rows.push(Row::new(g, &format!("{name}: one node"), "/s", one.clone()));
        let mut r = Row::new(g, &format!("{name}: two nodes"), "/s", two.clone());
        if let Some(x) = two.ratio_to(one.median) {
            r.note = format!("{x:.2}× one node");
        }
        rows.push(r);
    }
    rows
}
