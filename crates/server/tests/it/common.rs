//! A browser (cookie jar, no automatic redirects) and a relying party, driven by hand so that
//! every hop of the flow is visible to the assertions.

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use server::testing::TestProvider;
use url::Url;

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const PASSWORD: &str = "correct horse battery";

pub struct Browser {
    pub http: Client,
}

impl Browser {
    pub fn new() -> Browser {
        let http = Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Browser { http }
    }

    /// A browser on another machine: its requests come from `ip`, an address of 127.0.0.0/8.
    pub fn at(ip: &str) -> Browser {
        Browser::at_as(ip, None)
    }

    /// The same, announcing itself as `user_agent` when given.
    pub fn at_as(ip: &str, user_agent: Option<&str>) -> Browser {
        let mut builder = Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .local_address(ip.parse::<std::net::IpAddr>().unwrap());
        if let Some(user_agent) = user_agent {
            builder = builder.user_agent(user_agent);
        }
        Browser { http: builder.build().unwrap() }
    }

    pub async fn get(&self, url: &str) -> Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Response {
        self.http.post(url).form(form).send().await.unwrap()
    }
}

pub fn location(headers: &HeaderMap) -> String {
    headers.get(LOCATION).expect("a Location header").to_str().unwrap().to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub fn csrf(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a csrf_token field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The authorize URL for `client_id` with the usual parameters plus `extra`.
pub fn authorize_url(p: &TestProvider, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&p.url("/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        let defaults = [
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "st4te"),
            ("nonce", "n0nce"),
        ];
        // `extra` replaces a default of the same name.
        for (k, v) in defaults.iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)) {
            q.append_pair(k, v);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Opens the login page of a new authorization request; returns its URL and HTML.
pub async fn open_login(b: &Browser, p: &TestProvider, client_id: &str, extra: &[(&str, &str)]) -> (String, String) {
    let r = b.get(&authorize_url(p, client_id, extra)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = p.resolve(&location(r.headers()));
    assert!(login.contains("/interaction/"), "sent to the login page, got {login}");
    let page = b.get(&login).await;
    assert_eq!(page.status(), StatusCode::OK);
    (login, page.text().await.unwrap())
}

/// Submits the login form.
pub async fn submit(b: &Browser, login_url: &str, html: &str, user: &str, password: &str, otp: &str) -> Response {
    let token = csrf(html);
    b.post_form(
        login_url,
        &[("username", user), ("password", password), ("otp", otp), ("csrf_token", &token), ("action", "login")],
    )
    .await
}

/// A full login for `user`; returns the code from the redirect.
pub async fn login(b: &Browser, p: &TestProvider, client_id: &str, user: &str, secret: &[u8], step: i64) -> String {
    let (url, html) = open_login(b, p, client_id, &[]).await;
    let r = submit(b, &url, &html, user, PASSWORD, &p.totp(secret, step).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login accepted");
    let to = location(r.headers());
    assert!(to.starts_with(REDIRECT), "back to the client: {to}");
    query_param(&to, "code").expect("a code")
}

/// Exchanges a code at `p` with Basic client authentication.
pub async fn exchange(p: &TestProvider, client_id: &str, secret: &str, code: &str) -> (StatusCode, serde_json::Value) {
    let r = Client::new()
        .post(p.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

pub async fn userinfo(p: &TestProvider, access_token: &str) -> StatusCode {
    Client::new().get(p.url("/userinfo")).bearer_auth(access_token).send().await.unwrap().status()
}

pub async fn refresh(p: &TestProvider, client_id: &str, secret: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let r = Client::new()
        .post(p.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// A provider with one professional (`899700000001`) and one confidential client (`rp`).
pub struct Setup {
    pub p: TestProvider,
    pub secret: String,
    pub totp: Vec<u8>,
}

pub const USER: &str = "899700000001";

pub async fn setup(p: TestProvider) -> Setup {
    let (_, totp) = p.add_professional(USER, PASSWORD).await.unwrap();
    let (_, secret) = p.add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();
    Setup { p, secret: secret.unwrap(), totp }
}

/// The claims of a JWT the provider issued, read without checking its signature (what the
/// test asserts is what the token says).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a compact JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
