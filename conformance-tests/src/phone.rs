//! The professional's phone: a P-256 device key made and used by the reference phone app's
//! own code (`authenticator::device`), speaking the documented device API
//! (`{issuer}/push/v1`, docs/authentication.md) over HTTP, as a third party's app would.

use anyhow::Context as _;
use authenticator::device::{DeviceKey, Signer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::testing::TestProvider;

pub struct Phone {
    key: DeviceKey,
    endpoint: String,
    device: String,
    http: reqwest::Client,
}

impl Phone {
    /// Enrols a new phone for the professional `national_id`, with an enrolment code the
    /// provider gives (as the wallet shows it).
    pub async fn enrol(p: &TestProvider, national_id: &str) -> anyhow::Result<Phone> {
        let subject = p
            .directory()
            .professionals()
            .get_by_national_id(national_id)
            .await?
            .context("no such professional")?
            .subject;
        let code = match p.app.push.start_enrolment(&subject, "Téléphone", p.clock.now()).await? {
            authn_methods::push::EnrolmentStart::Started(e) => e.code.to_string(),
            other => anyhow::bail!("enrolment refused: {other:?}"),
        };
        let key = DeviceKey::generate()?;
        let endpoint = p.url("/push/v1");
        let http = reqwest::Client::new();
        let body = json!({ "action": "enrol", "code": code, "label": "Téléphone de test" });
        let jws = key.sign(Signer::NewKey, &endpoint, body, p.clock.now())?;
        let (status, answer) = post(&http, &format!("{endpoint}/devices"), jws).await?;
        anyhow::ensure!(status == StatusCode::CREATED, "enrolment: {status} {answer}");
        let device = answer["device_id"].as_str().context("device_id")?.to_owned();
        Ok(Phone { key, endpoint, device, http })
    }

    async fn call(&self, p: &TestProvider, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        let jws = self.key.sign(Signer::Device(&self.device), &self.endpoint, body, p.clock.now())?;
        post(&self.http, &format!("{}{path}", self.endpoint), jws).await
    }

    /// What waits for the professional's answer.
    pub async fn pending(&self, p: &TestProvider) -> anyhow::Result<Vec<Value>> {
        let (status, body) = self.call(p, "/challenges", json!({ "action": "list" })).await?;
        anyhow::ensure!(status == StatusCode::OK, "list: {status} {body}");
        Ok(body["challenges"].as_array().cloned().unwrap_or_default())
    }

    /// Answers the one request waiting: `approve` (typing `number`), `deny` or `not_me`.
    pub async fn answer(&self, p: &TestProvider, decision: &str, number: &str) -> anyhow::Result<(StatusCode, Value)> {
        let pending = self.pending(p).await?;
        let id = pending.first().and_then(|c| c["id"].as_str()).context("nothing waits on the phone")?.to_owned();
        let body = json!({ "action": "answer", "challenge": id, "decision": decision, "number": number });
        self.call(p, "/answers", body).await
    }
}

async fn post(http: &reqwest::Client, url: &str, jws: String) -> anyhow::Result<(StatusCode, Value)> {
    let r = http.post(url).header("content-type", "application/jose").body(jws).send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}
