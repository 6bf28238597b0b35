//! The person at the keyboard: a browser with a cookie jar that fills in the login form.

use anyhow::{Context as _, bail};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode, Url};

pub struct Browser {
    pub http: Client,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

/// Where a navigation ended: a redirect to a relying party, or a page of the provider.
#[derive(Debug)]
pub enum Landing {
    /// A redirect out of the provider (to a relying party's URI).
    Redirect(Url),
    /// The login form, with its URL and HTML.
    LoginForm { url: Url, html: String },
    /// Any other page (error page, logout confirmation...).
    Page { status: StatusCode, html: String },
}

impl Browser {
    pub fn new() -> Browser {
        // Redirects are followed by hand: every hop is checked, and the flow stops where it
        // leaves the provider.
        let http = Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap_or_default();
        Browser { http }
    }

    /// Opens `url` and follows the provider's own redirects until the flow leaves it or a page shows.
    pub async fn navigate(&self, url: &Url, provider: &Url) -> anyhow::Result<Landing> {
        let mut current = url.clone();
        for _ in 0..10 {
            let r = self.http.get(current.clone()).send().await?;
            let status = r.status();
            if status.is_redirection() {
                let location = r.headers().get("location").context("redirect without Location")?.to_str()?;
                let next = current.join(location)?;
                if next.origin() != provider.origin() {
                    return Ok(Landing::Redirect(next));
                }
                current = next;
                continue;
            }
            let html = r.text().await?;
            // The login pages are under the issuer's path (a realm's, say).
            let login_pages = format!("{}/interaction/", provider.path().trim_end_matches('/'));
            if current.path().starts_with(&login_pages) && status == StatusCode::OK {
                return Ok(Landing::LoginForm { url: current, html });
            }
            return Ok(Landing::Page { status, html });
        }
        bail!("too many redirects")
    }

    /// Fills in and submits the login form; returns where the provider sends the browser.
    pub async fn submit_login(
        &self,
        form_url: &Url,
        html: &str,
        user: &str,
        password: &str,
        otp: &str,
    ) -> anyhow::Result<Landing> {
        self.submit(form_url, html, &[("username", user), ("password", password), ("otp", otp), ("action", "login")])
            .await
    }

    /// Presses «Annuler» on the login form.
    pub async fn cancel_login(&self, form_url: &Url, html: &str) -> anyhow::Result<Landing> {
        self.submit(form_url, html, &[("action", "cancel")]).await
    }

    async fn submit(&self, form_url: &Url, html: &str, fields: &[(&str, &str)]) -> anyhow::Result<Landing> {
        let token = hidden_field(html, "csrf_token").context("the form has a csrf_token")?;
        let mut form = fields.to_vec();
        form.push(("csrf_token", &token));
        let r = self.http.post(form_url.clone()).form(&form).send().await?;
        let status = r.status();
        if status.is_redirection() {
            let location = r.headers().get("location").context("redirect without Location")?.to_str()?;
            return Ok(Landing::Redirect(form_url.join(location)?));
        }
        Ok(Landing::Page { status, html: r.text().await? })
    }

    /// Posts a form (e.g. the logout confirmation) and returns the response.
    pub async fn post(&self, url: Url, form: &[(&str, &str)]) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.post(url).form(form).send().await?)
    }
}

/// The value of a hidden `<input name=... value=...>` in a page we rendered ourselves.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next().map(str::to_owned)
}
