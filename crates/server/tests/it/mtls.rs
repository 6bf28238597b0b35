//! Mutual TLS for relying parties (RFC 8705), with real TLS on loopback and certificates made
//! here (`rcgen`): `tls_client_auth` on the provider's own TLS listener (a CA the operator
//! trusts, the registered subject DN), certificate-bound access tokens checked at userinfo and
//! shown by introspection, and `self_signed_tls_client_auth` with the certificate passed by a
//! trusted proxy.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::testing::{Storage, TestProvider};

use crate::common::*;

/// A certificate and its key, in PEM.
struct Pem {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Pem {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }

    /// RFC 8705 §3.1.
    fn thumbprint(&self) -> String {
        use base64::Engine as _;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(subject: &[(DnType, &str)], sans: &[&str], client: bool, issuer: Option<&CertifiedIssuer<'_, KeyPair>>) -> Pem {
    let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (kind, value) in subject {
        params.distinguished_name.push(kind.clone(), *value);
    }
    params.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Pem { cert: cert.pem(), key: key.serialize_pem(), der: cert.der().to_vec() }
}

/// In the certificate's order (country first); RFC 4514 writes it the other way round.
const DN: [(DnType, &str); 3] =
    [(DnType::CountryName, "FR"), (DnType::OrganizationName, "Hôpital Test"), (DnType::CommonName, "rp-mtls")];

fn https_client(ca: &str, identity: Option<&Pem>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none());
    if let Some(identity) = identity {
        builder = builder.identity(identity.identity());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn tls_client_auth_on_the_providers_listener_binds_tokens_to_the_certificate() {
    let authority = ca("CA des services de santé");
    let server_cert = leaf(&[(DnType::CommonName, "localhost")], &["localhost"], false, Some(&authority));
    let rp = leaf(&DN, &["rp.example"], true, Some(&authority));
    let other = leaf(&[(DnType::CommonName, "autre-rp")], &["autre.example"], true, Some(&authority));
    // The same subject, from a CA nobody trusts.
    let rogue_ca = ca("Usurpateur");
    let rogue = leaf(&DN, &["rp.example"], true, Some(&rogue_ca));

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (certificate, private_key) = (write("server.pem", &server_cert.cert), write("server.key", &server_cert.key));
    let client_ca = write("ca.pem", &authority.pem());
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.mtls.enabled = true;
        c.mtls.listen = Some("127.0.0.1:0".parse().unwrap());
        c.mtls.certificate = certificate;
        c.mtls.private_key = private_key;
        c.mtls.client_ca = client_ca;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let mtls = |path: &str| format!("{}{path}", s.p.app.config.mtls.origin);

    // RFC 8705 §5: discovery names the methods, bound tokens and the endpoints' aliases.
    let d: Value = reqwest::get(s.p.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    let methods = d["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("tls_client_auth")) && methods.contains(&json!("self_signed_tls_client_auth")));
    assert_eq!(d["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(d["mtls_endpoint_aliases"]["token_endpoint"], mtls("/token").as_str());
    assert_eq!(d["mtls_endpoint_aliases"]["userinfo_endpoint"], mtls("/userinfo").as_str());

    let mut add = TestProvider::confidential_client("rp-mtls", REDIRECT);
    add.auth_method = "tls_client_auth".into();
    add.tls_subject_dn = Some("CN=rp-mtls,O=Hôpital Test,C=FR".into());
    add.bound_tokens = true;
    let (_, secret) = s.p.add_client(add).await.unwrap();
    assert!(secret.is_none(), "no secret for a mutual-TLS client");

    let b = Browser::new();
    let code = login(&b, &s.p, "rp-mtls", USER, &s.totp, 0).await;
    let exchange_with = |identity: Option<&Pem>, code: String| {
        let http = https_client(&authority.pem(), identity);
        let url = mtls("/token");
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", "rp-mtls"),
            ];
            let r = http.post(url).form(&form).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // Another client's certificate, the right DN from an untrusted CA, no certificate: the
    // client is not authenticated (and the code is not spent).
    for identity in [Some(&other), Some(&rogue), None] {
        let (status, body) = exchange_with(identity, code.clone()).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
    }
    let (status, tokens) = exchange_with(Some(&rp), code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(access)["cnf"]["x5t#S256"], rp.thumbprint().as_str(), "RFC 8705 §3.1");

    // §3: the bound token is honoured with its certificate only.
    let userinfo_with = |identity: Option<&Pem>, url: String| {
        let http = https_client(&authority.pem(), identity);
        async move { http.get(url).bearer_auth(access).send().await.unwrap().status() }
    };
    assert_eq!(userinfo_with(Some(&rp), mtls("/userinfo")).await, StatusCode::OK);
    assert_eq!(userinfo_with(Some(&other), mtls("/userinfo")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo_with(None, mtls("/userinfo")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo(&s.p, access).await, StatusCode::UNAUTHORIZED, "without TLS at all");

    // §3.2: introspection tells the resource server which certificate goes with the token.
    let introspected: Value = https_client(&authority.pem(), Some(&rp))
        .post(mtls("/introspect"))
        .form(&[("token", access), ("client_id", "rp-mtls")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"]["x5t#S256"], rp.thumbprint().as_str());

    // A client registered for bound tokens presents its certificate on refresh too.
    let r = https_client(&authority.pem(), Some(&rp))
        .post(mtls("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", "rp-mtls"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let renewed: Value = r.json().await.unwrap();
    assert_eq!(jwt_claims(renewed["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], rp.thumbprint().as_str());
}

#[tokio::test]
async fn self_signed_tls_client_auth_with_the_certificate_a_trusted_proxy_passes() {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.mtls.enabled = true;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await
    .unwrap();
    let own = leaf(&[(DnType::CommonName, "service-autonome")], &[], true, None);
    let stranger = leaf(&[(DnType::CommonName, "service-autonome")], &[], true, None);
    use base64::Engine as _;
    let x5c = base64::engine::general_purpose::STANDARD.encode(&own.der);
    // The JWK of the certificate's key, with the certificate itself (RFC 8705 §2.2).
    let jwks = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x5c": [x5c] }] });
    let jwks_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(jwks_file.path(), jwks_with_key(&own, jwks).to_string()).unwrap();
    let mut add = TestProvider::confidential_client("svc-self", REDIRECT);
    add.auth_method = "self_signed_tls_client_auth".into();
    add.jwks_file = Some(jwks_file.path().to_owned());
    add.redirect_uris.clear();
    add.grant_types = vec!["client_credentials".into()];
    add.scopes = vec!["caducee:reports".into()];
    p.add_client(add).await.unwrap();

    let escaped =
        |pem: &str| url::form_urlencoded::byte_serialize(pem.as_bytes()).collect::<String>().replace('+', "%20");
    let ask = |from: &'static str, cert: Option<String>| {
        let url = p.url("/token");
        async move {
            let http =
                reqwest::Client::builder().local_address(from.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
            let mut r = http.post(url).form(&[("grant_type", "client_credentials"), ("client_id", "svc-self")]);
            if let Some(cert) = cert {
                r = r.header("x-client-cert", cert);
            }
            r.send().await.unwrap().status()
        }
    };
    assert_eq!(ask("127.0.0.1", Some(escaped(&own.cert))).await, StatusCode::OK);
    assert_eq!(ask("127.0.0.1", Some(escaped(&stranger.cert))).await, StatusCode::UNAUTHORIZED, "another key");
    assert_eq!(ask("127.0.0.1", None).await, StatusCode::UNAUTHORIZED, "no certificate");
    // From an address that is not the proxy, the header is not believed.
    assert_eq!(ask("127.0.0.2", Some(escaped(&own.cert))).await, StatusCode::UNAUTHORIZED);
}

/// Adds the certificate's public key to the JWK (`x`, `y`), so that the set is a valid one.
fn jwks_with_key(pem: &Pem, mut jwks: Value) -> Value {
    use base64::Engine as _;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(&pem.der).unwrap();
    let point = cert.public_key().subject_public_key.data.to_vec();
    assert_eq!(point.len(), 65);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    jwks["keys"][0]["x"] = json!(b64(&point[1..33]));
    jwks["keys"][0]["y"] = json!(b64(&point[33..]));
    jwks
}
