//! The CPS card sign-in through the provider's own pages, with a test PKI shaped like
//! IGC-Santé's (`test_support::card_pki`) whose revocation lists this test serves over HTTP, as
//! a PKI publishes them. The card agent's part is played here with the card's key (the agent
//! and the virtual card on the real PC/SC stack have their own tests): the page without
//! JavaScript posts to the agent, the agent's page posts the card's answer to the relay route,
//! whose page posts it to the login — the whole path, and what each hop must refuse.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use test_support::card_pki::{CardFlaw, CardHolder, TEST_POLICY_OID, TestPki};
use time::Duration as Span;

use crate::common::*;

/// The PKI's lists, served over HTTP; replaced by the tests as the PKI publishes new ones.
#[derive(Clone, Default)]
struct Published {
    root: Arc<Mutex<Vec<u8>>>,
    people: Arc<Mutex<Vec<u8>>>,
}

async fn root_crl(State(p): State<Published>) -> Vec<u8> {
    p.root.lock().unwrap().clone()
}

async fn people_crl(State(p): State<Published>) -> Vec<u8> {
    p.people.lock().unwrap().clone()
}

struct CardWorld {
    s: Setup,
    pki: TestPki,
    published: Published,
    _dir: tempfile::TempDir,
}

async fn card_world() -> CardWorld {
    card_world_with(|_| {}).await
}

async fn card_world_with(tune: impl FnOnce(&mut server::Config)) -> CardWorld {
    let pki = TestPki::new();
    let published = Published::default();
    *published.root.lock().unwrap() = pki.root_crl(false);
    *published.people.lock().unwrap() = pki.people_crl(&[], Span::hours(1), Span::days(1), 1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crl_base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/root.crl", get(root_crl))
        .route("/people.crl", get(people_crl))
        .with_state(published.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pki.root_pem()).unwrap();
    let intermediate = dir.path().join("people.pem");
    std::fs::write(&intermediate, pki.intermediate_pem()).unwrap();
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.login.methods = vec!["otp".into(), "card".into()];
        c.card.trust_anchors = vec![root];
        c.card.intermediates = vec![intermediate];
        c.card.crls = vec![format!("{crl_base}/root.crl"), format!("{crl_base}/people.crl")];
        c.card.required_policies = vec![TEST_POLICY_OID.into()];
        tune(c);
    })
    .await
    .unwrap();
    CardWorld { s: setup(p).await, pki, published, _dir: dir }
}

/// The value of the first `name="…" value="…"` field in `html`, unescaped.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().replace("&#x2F;", "/").replace("&#47;", "/").replace("&amp;", "&")
}

/// The action of the form whose id is `id`.
fn form_action(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no form {id}"));
    let form_start = html[..at].rfind("<form").unwrap();
    let tag = &html[form_start..html[form_start..].find('>').unwrap() + form_start];
    let start = tag.find("action=\"").unwrap() + "action=\"".len();
    tag[start..].split('"').next().unwrap().replace("&#x2F;", "/").replace("&#47;", "/").replace("&amp;", "&")
}

/// Opens the card step of a new login: the login URL and the card page.
async fn card_page(w: &CardWorld, b: &Browser) -> (String, String) {
    let (login_url, html) = open_login(b, &w.s.p, "rp", &[]).await;
    assert!(html.contains("Carte CPS"), "the card is offered: {html}");
    let token = csrf(&html);
    let r = b.post_form(&login_url, &[("csrf_token", &token), ("method", "card"), ("step", "begin")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let agent = w.s.p.app.config.card.agent_origin();
    assert!(csp.contains(&format!("connect-src 'self' {agent}")), "the page's script may reach the agent: {csp}");
    (login_url, r.text().await.unwrap())
}

/// What the agent's page posts to `return_to` for this card.
fn agent_answer(card: &CardHolder, challenge: &str, state: &str) -> Vec<(String, String)> {
    vec![
        ("certificate".into(), URL_SAFE_NO_PAD.encode(&card.certificate_der)),
        ("signature".into(), URL_SAFE_NO_PAD.encode(card.sign(challenge.as_bytes()))),
        ("algorithm".into(), "RSA-PKCS1-SHA256".into()),
        ("state".into(), state.into()),
    ]
}

/// The agent's page posts `fields` to `return_to`, from another site (no cookie); the relay's
/// page is then posted by the person's browser. Returns the login's answer.
pub(crate) async fn relay(b: &Browser, return_to: &str, fields: &[(String, String)]) -> reqwest::Response {
    let foreign = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = foreign.post(return_to).form(fields).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let action = form_action(&page, "card-relay");
    let names = [
        "csrf_token",
        "lang",
        "method",
        "step",
        "card_certificates",
        "card_signature",
        "card_algorithm",
        "card_error",
        "card_tries_left",
    ];
    let form: Vec<(&str, String)> = names.iter().map(|n| (*n, field(&page, n))).collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let base = url::Url::parse(return_to).unwrap();
    b.post_form(base.join(&action).unwrap().as_str(), &form).await
}

#[tokio::test]
async fn a_professional_signs_in_with_the_card_through_the_agent_without_javascript() {
    let w = card_world().await;
    let card = w.pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let b = Browser::new();
    let (login_url, page) = card_page(&w, &b).await;

    // The PIN form posts to the agent on this computer, never to the provider.
    assert_eq!(form_action(&page, "card-form"), "http://127.0.0.1:8765/v1/sign");
    assert!(page.contains("name=\"pin\"") && page.contains("autocomplete=\"off\""));
    let challenge = field(&page, "challenge");
    assert!(
        challenge.starts_with(&format!("caducee-card-v1:{}:", w.s.p.base_url.trim_end_matches('/'))),
        "{challenge}"
    );
    let return_to = field(&page, "return_to");
    assert_eq!(return_to, format!("{login_url}/card"));
    let state = field(&page, "state");
    assert_eq!(state, csrf(&page), "the agent carries the login's anti-forgery token back");

    // The agent reports a wrong PIN: the provider's page says it, with the tries left.
    let wrong = vec![
        ("error".to_owned(), "wrong_pin".to_owned()),
        ("tries_left".to_owned(), "2".to_owned()),
        ("state".to_owned(), state.clone()),
    ];
    let r = relay(&b, &return_to, &wrong).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again = r.text().await.unwrap();
    assert!(again.contains("Code porteur incorrect.") && again.contains("2 essais restants"), "{again}");
    assert_eq!(field(&again, "challenge"), challenge, "the same challenge stays open");

    // The right PIN: the card's answer signs the professional in, at the strongest level.
    let r = relay(&b, &return_to, &agent_answer(&card, &challenge, &state)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(r.headers());
    let code = query_param(&to, "code").expect("a code for the relying party");
    let (status, tokens) = exchange(&w.s.p, "rp", &w.s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "eidas3");
    let amr: Vec<String> = serde_json::from_value(id["amr"].clone()).unwrap();
    assert!(amr.contains(&"sc".to_owned()) && amr.contains(&"pin".to_owned()), "{amr:?}");
    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["authMode"], "CARD");
}

#[tokio::test]
async fn the_relay_changes_nothing_and_the_login_checks_its_browser_and_token() {
    let w = card_world().await;
    let card = w.pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let b = Browser::new();
    let (_, page) = card_page(&w, &b).await;
    let (challenge, return_to) = (field(&page, "challenge"), field(&page, "return_to"));
    let foreign = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Junk, or a post without the token: refused before anything is shown.
    for body in ["", "certificate=%3Cscript%3E&signature=AA&state=x", "certificate=QQ&signature=QQ"] {
        let r = foreign
            .post(&return_to)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    // The answer relayed with a forged token: the login refuses it, the challenge unspent...
    let forged = agent_answer(&card, &challenge, "forged-token");
    let r = relay(&b, &return_to, &forged).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // ...and another browser posting the real token is not this login's browser.
    let stranger = Browser::new();
    let r = relay(&stranger, &return_to, &agent_answer(&card, &challenge, &csrf(&page))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The professional's own browser still signs in with the same challenge.
    let r = relay(&b, &return_to, &agent_answer(&card, &challenge, &csrf(&page))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_card_revoked_in_the_published_list_is_refused_after_the_next_refresh() {
    let w = card_world().await;
    let card = w.pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let expired = w.pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::Expired);
    let b = Browser::new();
    let (_, page) = card_page(&w, &b).await;
    let r =
        relay(&b, &field(&page, "return_to"), &agent_answer(&expired, &field(&page, "challenge"), &csrf(&page))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Le certificat de votre carte a expiré"));

    // The PKI publishes the card's revocation; the provider reads it at its next refresh.
    *w.published.people.lock().unwrap() = w.pki.people_crl(&[&card], Span::minutes(1), Span::days(1), 2);
    let crls = w.s.p.app.card.as_ref().expect("the card is on").trust().crls().clone();
    assert!(crls.refresh().await.is_empty());
    let b = Browser::new();
    let (_, page) = card_page(&w, &b).await;
    let r = relay(&b, &field(&page, "return_to"), &agent_answer(&card, &field(&page, "challenge"), &csrf(&page))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let refused = r.text().await.unwrap();
    assert!(refused.contains("Cette carte a été révoquée"), "{refused}");
    // The refusal is audited with its reason.
    let audited =
        w.s.p
            .directory()
            .audit()
            .query(directory::AuditQuery { event: Some("login_failed".into()), ..Default::default() })
            .await
            .unwrap();
    assert!(audited.iter().any(|r| r.outcome == "card_revoked"));
}

/// A CPS3's key as the browser's middleware uses it: it signs PKCS#1 v1.5 only, whatever else
/// the server would take.
#[derive(Debug)]
struct Pkcs1Only(Arc<dyn rustls::sign::SigningKey>);

impl rustls::sign::SigningKey for Pkcs1Only {
    fn choose_scheme(&self, offered: &[rustls::SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        let pkcs1 = rustls::SignatureScheme::RSA_PKCS1_SHA256;
        if offered.contains(&pkcs1) { self.0.choose_scheme(&[pkcs1]) } else { None }
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        self.0.algorithm()
    }
}

#[derive(Debug)]
struct TheCard(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for TheCard {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A browser whose middleware reads `card` (TLS 1.2, PKCS#1 v1.5 signatures), trusting
/// `server_ca`, with its cookie jar.
fn card_reading_browser(
    card: &CardHolder,
    server_ca: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Browser {
    use rustls::pki_types::pem::PemObject as _;
    server::app::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls::pki_types::CertificateDer::pem_slice_iter(server_ca.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(card.key_pkcs8_der.clone().into());
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).unwrap();
    let certified =
        rustls::sign::CertifiedKey::new(vec![card.certificate_der.clone().into()], Arc::new(Pkcs1Only(signing)));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(TheCard(Arc::new(certified))));
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    Browser { http }
}

#[tokio::test]
async fn a_browser_that_reads_the_card_presents_it_over_tls_1_2_with_a_pkcs1_signature() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    // The card listener's own certificate, for 127.0.0.1.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&server_key, &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("card-tls.pem"), dir.path().join("card-tls.key"));
    std::fs::write(&cert_path, server_cert.pem()).unwrap();
    std::fs::write(&key_path, server_key.serialize_pem()).unwrap();

    let w = card_world_with(|c| {
        c.card.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.card.tls_certificate = cert_path.clone();
        c.card.tls_private_key = key_path.clone();
    })
    .await;
    let card = w.pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let b = card_reading_browser(&card, &ca.pem(), &[&rustls::version::TLS12]);
    let (login_url, page) = card_page(&w, &b).await;
    let tls_origin = w.s.p.app.config.card.tls_origin.clone();
    let interaction = login_url.rsplit('/').next().unwrap().to_owned();
    let tls_action = format!("{tls_origin}/interaction/{interaction}");
    assert!(page.contains(&format!("action=\"{tls_action}\"")), "the page offers the card read by the browser");
    let form =
        [("csrf_token", csrf(&page)), ("method", "card".into()), ("card_tls", "1".into()), ("step", "submit".into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let r = b.post_form(&tls_action, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let code = query_param(&location(r.headers()), "code").expect("a code for the relying party");
    let (status, tokens) = exchange(&w.s.p, "rp", &w.s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["acr"], "eidas3");
    let used =
        w.s.p
            .directory()
            .audit()
            .query(directory::AuditQuery { event: Some("card_used".into()), ..Default::default() })
            .await
            .unwrap();
    assert_eq!(used.last().map(|r| r.details["via"].clone()), Some(serde_json::json!("tls")));

    // The same checks as through the agent: a revoked card is refused, and the page says why.
    *w.published.people.lock().unwrap() = w.pki.people_crl(&[&card], Span::minutes(1), Span::days(1), 2);
    assert!(w.s.p.app.card.as_ref().unwrap().trust().crls().refresh().await.is_empty());
    let b = card_reading_browser(&card, &ca.pem(), &[&rustls::version::TLS12]);
    let (_, page) = card_page(&w, &b).await;
    let form =
        [("csrf_token", csrf(&page)), ("method", "card".into()), ("card_tls", "1".into()), ("step", "submit".into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let interaction_url = format!("{tls_origin}/interaction/{}", field(&page, "return_to").rsplit('/').nth(1).unwrap());
    let r = b.post_form(&interaction_url, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Cette carte a été révoquée"));

    // A browser that offers TLS 1.3 only cannot use this listener (a CPS3 could not sign there).
    let modern = card_reading_browser(&card, &ca.pem(), &[&rustls::version::TLS13]);
    assert!(modern.http.get(format!("{tls_origin}/.well-known/openid-configuration")).send().await.is_err());
    // Without a client certificate, no handshake either.
    let plain = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(plain.get(format!("{tls_origin}/.well-known/openid-configuration")).send().await.is_err());
}

/// A port nobody listens on now, for a process started later (the card agent must be named in
/// the provider's configuration before it runs, and must know the provider's origin).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The professional's computer: a private pcscd, a virtual CPS3 holding `card` (and the
/// intermediate CA's certificate, as a card may) with PIN 1234, and the real card agent on
/// `agent_port`, accepting pages of `origin`. Everything stops on drop.
pub(crate) struct Workstation {
    pub(crate) card: virtual_card::VirtualCard,
    agent: std::process::Child,
    _pcscd: virtual_card::Pcscd,
}

impl Drop for Workstation {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

pub(crate) const CARD_PIN: &str = "1234";

pub(crate) fn workstation(card: &CardHolder, intermediate: Vec<u8>, agent_port: u16, origin: &str) -> Workstation {
    use std::io::BufRead as _;
    let profile = virtual_card::CardProfile::new(card.key_pkcs8_der.clone(), card.certificate_der.clone(), CARD_PIN)
        .unwrap()
        .with_ca_cert(intermediate);
    // Under a loaded machine pcscd now and then does not see the card arrive within the
    // harness's wait (observed about once in five runs of the card tests side by side): a
    // fresh pcscd gets the card. Three misses in a row fail the test.
    let mut last = None;
    let mut started = None;
    for _ in 0..3 {
        let pcscd = virtual_card::Pcscd::start().expect("a private pcscd (pcscd and vsmartcard-vpcd: see .ci/run)");
        match pcscd.insert_card(&profile) {
            Ok(card) => {
                started = Some((pcscd, card));
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some((pcscd, virtual_card)) = started else { panic!("pcscd never saw the virtual card: {last:?}") };
    let agent =
        virtual_card::workspace_binary("card-agent").expect("the card-agent binary (cargo build -p card-agent)");
    let mut child = pcscd
        .command(agent)
        .args(["serve", "--listen", &format!("127.0.0.1:{agent_port}"), "--allow-origin", origin])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains(&format!("127.0.0.1:{agent_port}")), "the agent listens: {line}");
    Workstation { card: virtual_card, agent: child, _pcscd: pcscd }
}

/// The hidden fields of the agent's answer page, in order (repeated names kept).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|tag| {
            let name = tag.split("name=\"").nth(1)?.split('"').next()?;
            let value = tag.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), value.replace("&#x2F;", "/").replace("&#47;", "/").replace("&amp;", "&")))
        })
        .collect()
}

/// The card page's form, as the browser posts it to the agent (with the page's origin); the
/// hidden fields of the agent's answer page, which posts back to the page's `return_to`.
async fn post_to_agent(origin: &str, page: &str, pin: &str) -> Vec<(String, String)> {
    let return_to = field(page, "return_to");
    let form = [
        ("challenge", field(page, "challenge")),
        ("pin", pin.to_owned()),
        ("return_to", return_to.clone()),
        ("state", field(page, "state")),
    ];
    let r = reqwest::Client::new()
        .post(form_action(page, "card-form"))
        .header("Origin", origin)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let action = html.split("<form method=\"post\" action=\"").nth(1).and_then(|t| t.split('"').next());
    let action = action.map(|a| a.replace("&#x2F;", "/").replace("&#47;", "/"));
    assert_eq!(action.as_deref(), Some(return_to.as_str()), "{html}");
    hidden_fields(&html)
}

#[tokio::test]
async fn a_virtual_cps_card_signs_in_through_the_real_agent_and_pcsc_without_javascript() {
    let agent_port = free_port();
    let w = card_world_with(|c| c.card.agent_url = format!("http://127.0.0.1:{agent_port}")).await;
    let origin = w.s.p.base_url.trim_end_matches('/').to_owned();
    let card = w.pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let station = workstation(&card, w.pki.intermediate_der(), agent_port, &origin);
    let b = Browser::new();
    let (_, page) = card_page(&w, &b).await;
    // A wrong PIN: the card counts it, the agent says so, the provider's page tells the tries left.
    let answer = post_to_agent(&origin, &page, "0000").await;
    assert_eq!(station.card.status().pin_tries_left, 2);
    let r = relay(&b, &field(&page, "return_to"), &answer).await;
    let again = r.text().await.unwrap();
    assert!(again.contains("2 essais restants"), "{again}");

    // The right PIN: the card signs the challenge, the professional is signed in.
    let answer = post_to_agent(&origin, &page, CARD_PIN).await;
    assert!(answer.iter().any(|(n, _)| n == "signature"), "{answer:?}");
    let r = relay(&b, &field(&page, "return_to"), &answer).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(r.headers()), "code").expect("a code for the relying party");
    let (status, tokens) = exchange(&w.s.p, "rp", &w.s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "eidas3");
    assert_eq!(jwt_claims(tokens["access_token"].as_str().unwrap())["authMode"], "CARD");

    // Another login, three wrong PINs in a row: the card blocks itself, and the page says so.
    let b = Browser::new();
    let (_, page) = card_page(&w, &b).await;
    let return_to = field(&page, "return_to");
    for expected in ["2 essais restants", "Il vous reste 1 essai", "Votre carte est bloquée"] {
        let answer = post_to_agent(&origin, &page, "0000").await;
        let shown = relay(&b, &return_to, &answer).await.text().await.unwrap();
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    assert_eq!(station.card.status().pin_tries_left, 0);
    // Even the right PIN is refused by a blocked card.
    let answer = post_to_agent(&origin, &page, CARD_PIN).await;
    assert!(answer.iter().any(|(n, v)| n == "error" && v == "card_blocked"), "{answer:?}");
}
