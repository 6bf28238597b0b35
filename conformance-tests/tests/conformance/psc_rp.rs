//! A relying party as those written for Pro Santé Connect are, from PSC's public integration
//! material (see `shared/notes/psc-dropin.md`): it reads the wallet discovery document, builds
//! Keycloak's endpoint paths from the issuer, asks `openid scope_all` with `acr_values=eidas1`,
//! authenticates with `client_secret_post`, wants userinfo as a signed JWT, reads Keycloak's
//! token-response fields (one connector converts `refresh_expires_in` to an integer), refreshes,
//! and logs out server to server with its refresh token. Plain HTTP, no OIDC library: that is
//! how many of them are written. The issuer is a Keycloak realm's, with its path, as PSC's is.

use conformance_tests::browser::Browser;
use conformance_tests::rp::{REDIRECT, USER, World, param};
use jsonwebtoken::jwk::JwkSet;
use reqwest::StatusCode;
use serde_json::Value;
use server::testing::TestProvider;

/// The relying party's view of the provider: the issuer it was configured with, and what it
/// builds from it.
struct Psc {
    issuer: String,
    client_id: &'static str,
    secret: String,
    http: reqwest::Client,
}

impl Psc {
    fn endpoint(&self, name: &str) -> String {
        format!("{}/protocol/openid-connect/{name}", self.issuer)
    }

    async fn form(&self, endpoint: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = vec![("client_id", self.client_id), ("client_secret", self.secret.as_str())];
        all.extend_from_slice(form);
        self.http.post(self.endpoint(endpoint)).form(&all).send().await.unwrap()
    }
}

fn jwt_claims(jwt: &str, keys: &JwkSet, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let jwk = keys.find(header.kid.as_deref().unwrap()).expect("the signing key is published at certs");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation).unwrap().claims
}

#[tokio::test]
async fn a_relying_party_written_for_pro_sante_connect_signs_in_refreshes_and_logs_out() {
    let w = World::start_with(|c| c.issuer = format!("{}/auth/realms/esante-wallet", c.issuer)).await.unwrap();
    assert!(w.provider.base_url.ends_with("/auth/realms/esante-wallet"));
    let mut add = TestProvider::confidential_client("psc-rp", REDIRECT);
    add.auth_method = "client_secret_post".into();
    add.userinfo_alg = Some("RS256".into());
    let (_, secret) = w.provider.add_client(add).await.unwrap();
    let psc =
        Psc { issuer: w.provider.base_url.clone(), client_id: "psc-rp", secret: secret.unwrap(), http: w.http.clone() };

    // Discovery at PSC's wallet path; the authorization endpoint is read from it (PSC's login
    // page lives on another host), the others are built from the issuer.
    let discovery: Value = psc
        .http
        .get(format!("{}/.well-known/wallet-openid-configuration", psc.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], psc.issuer.as_str());
    let keys: JwkSet = psc.http.get(psc.endpoint("certs")).send().await.unwrap().json().await.unwrap();

    let mut auth = reqwest::Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    auth.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", psc.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid scope_all")
        .append_pair("acr_values", "eidas1")
        .append_pair("state", "etat-psc")
        .append_pair("nonce", "nonce-psc");
    let back = w.log_in(&Browser::new(), &auth).await.unwrap();
    assert_eq!(param(&back, "state").as_deref(), Some("etat-psc"));
    let code = param(&back, "code").expect("a code");

    let r =
        psc.form("token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    // Keycloak's fields, read as PSC's relying parties read them.
    let refresh_expires_in: i64 = tokens["refresh_expires_in"].to_string().parse().expect("an integer");
    assert!(refresh_expires_in > 0);
    assert!(tokens["session_state"].is_string() && tokens["not-before-policy"].is_number(), "{tokens}");
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap(), &keys, psc.client_id);
    // Two PSC connectors reject an ID token whose acr is not eidas1.
    assert_eq!(id_token["acr"], "eidas1");
    assert_eq!(id_token["nonce"], "nonce-psc");
    assert_eq!(id_token["sid"], tokens["session_state"]);

    // Userinfo as a signed JWT, with PSC's claims.
    let r = psc
        .http
        .get(psc.endpoint("userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/jwt");
    let userinfo = jwt_claims(&r.text().await.unwrap(), &keys, psc.client_id);
    assert_eq!(userinfo["SubjectNameID"], USER);
    assert_eq!(userinfo["preferred_username"], USER);
    assert!(userinfo["SubjectRefPro"]["exercices"].is_array(), "{userinfo}");
    assert_eq!(userinfo["Palier_Authentification"], "APPPRIP3^1.2.250.1.213.1.5.1.1.1");

    // The access token as PSC's relying parties read it.
    let access = jwt_claims(tokens["access_token"].as_str().unwrap(), &keys, psc.client_id);
    assert_eq!((access["azp"].as_str(), access["preferred_username"].as_str()), (Some("psc-rp"), Some(USER)));
    assert!(access["authMode"].is_string() && access["session_state"] == tokens["session_state"]);

    // One relying party reads the refresh token's `exp` as a JWT's (without verifying it:
    // only the provider can).
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let payload = refresh.split('.').nth(1).expect("a JWT");
    use base64::Engine as _;
    let refresh_claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(refresh_claims["typ"], "Refresh");
    assert_eq!(refresh_claims["exp"].as_i64().unwrap() - refresh_claims["iat"].as_i64().unwrap(), refresh_expires_in);

    // A refresh, then the server-to-server logout with the new refresh token.
    let r = psc.form("token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let renewed: Value = r.json().await.unwrap();
    let refresh = renewed["refresh_token"].as_str().unwrap();
    let r = psc.form("logout", &[("refresh_token", refresh)]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = psc.form("token", &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the session is over");
    let r = psc
        .http
        .get(psc.endpoint("userinfo"))
        .bearer_auth(renewed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
