//! What a relying party sees of a successful login: discovery, the code flow with PKCE, the ID
//! token and userinfo (OIDC Core 3.1, 5.3), signed responses, and refresh (RFC 6749 6, OIDC Core 12).

use conformance_tests::browser::Browser;
use conformance_tests::rp::{OtherClaims, REDIRECT, USER, World, authorize, full_claims, oauth_error, param};
use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
use oidc_core::client::ClientMetadata;
use openidconnect::core::{CoreGenderClaim, CoreJwsSigningAlgorithm, CoreTokenType, CoreUserInfoClaims};
use openidconnect::{AccessTokenHash, Nonce, OAuth2TokenResponse, TokenResponse, UserInfoClaims};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn discovery_advertises_working_endpoints_and_both_key_types() {
    let w = World::start().await.unwrap();
    let meta = w.metadata().await.expect("the document parses as CoreProviderMetadata, and its JWKS too");
    assert_eq!(meta.issuer().as_str(), w.provider.base_url, "Discovery 4.3: issuer is exactly the one asked");
    let r = w.http.get(w.provider.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "Discovery 4.2");
    let raw: serde_json::Value = r.json().await.unwrap();
    let advertised: Vec<(&String, &str)> = raw
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("_endpoint") || *k == "jwks_uri")
        .map(|(k, v)| (k, v.as_str().unwrap()))
        .collect();
    assert!(advertised.len() >= 7, "{advertised:?}");
    for (key, url) in advertised {
        assert!(url.starts_with(&w.provider.base_url), "{key} is on the issuer: {url}");
        let status = w.http.get(url).send().await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{key} ({url}) answers");
    }
    assert_eq!(meta.token_endpoint().unwrap().as_str(), raw["token_endpoint"]);
    assert_eq!(meta.userinfo_endpoint().unwrap().as_str(), raw["userinfo_endpoint"]);
    assert_eq!(raw["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(raw["response_types_supported"], json!(["code"]));
    assert_eq!(raw["authorization_response_iss_parameter_supported"], true);

    let jwks: serde_json::Value =
        w.http.get(raw["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(meta.jwks().keys().len(), keys.len(), "openidconnect parsed every key");
    assert!(keys.iter().any(|k| k["kty"] == "RSA" && k["alg"] == "RS256" && k["use"] == "sig"), "{jwks}");
    assert!(keys.iter().any(|k| k["kty"] == "EC" && k["crv"] == "P-256" && k["alg"] == "ES256"), "{jwks}");
    assert!(keys.iter().all(|k| k.get("d").is_none() && k.get("p").is_none()), "no private parts");
    // docs/protocol.md promises RFC 7638 thumbprints as kids.
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    for key in &set.keys {
        assert_eq!(key.common.key_id.as_deref(), Some(key.thumbprint(ThumbprintHash::SHA256).unwrap().as_str()));
    }
}

#[tokio::test]
async fn code_flow_with_pkce_yields_a_verified_id_token_and_userinfo() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let pending = authorize(&client, &["profile", "email"]);
    let nonce = pending.nonce.clone();
    let back = w.log_in(&Browser::new(), &pending.url).await.unwrap();
    assert!(back.as_str().starts_with(&format!("{REDIRECT}?")), "{back}");
    assert_eq!(param(&back, "iss").as_deref(), Some(w.provider.base_url.as_str()), "RFC 9207 iss");
    let tokens = w.finish(&client, back, pending).await.unwrap().tokens;

    assert_eq!(tokens.token_type(), &CoreTokenType::Bearer);
    assert!(tokens.expires_in().is_some_and(|d| d.as_secs() > 0));
    let scopes: Vec<&str> = tokens.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    assert!(["openid", "profile", "email"].iter().all(|s| scopes.contains(s)), "{scopes:?}");
    let at_header = jsonwebtoken::decode_header(tokens.access_token().secret()).unwrap();
    assert_eq!(at_header.typ.as_deref(), Some("at+jwt"), "RFC 9068 access token");

    let id_token = tokens.id_token().expect("an ID token");
    assert_eq!(id_token.signing_alg().unwrap(), &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    let verifier = client.id_token_verifier();
    // Signature, iss, aud, exp and nonce are openidconnect's checks (OIDC Core 3.1.3.7).
    let claims = id_token.claims(&verifier, &nonce).expect("a valid ID token");
    assert_eq!(claims.issuer().as_str(), w.provider.base_url);
    assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["rp"]);
    assert_eq!(claims.nonce().map(|n| n.secret()), Some(nonce.secret()));
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("eidas1"));
    let amr: Vec<&str> = claims.auth_method_refs().unwrap().iter().map(|a| a.as_str()).collect();
    assert!(["pwd", "otp", "mfa"].iter().all(|x| amr.contains(x)), "RFC 8176 amr: {amr:?}");
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!((auth_time - w.provider.clock.now()).abs() < 60);
    assert!(claims.expiration() > claims.issue_time());
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected, "at_hash matches the access token");
    let full = full_claims(id_token, &verifier, &nonce).unwrap();
    assert!(full.additional_claims().0["sid"].as_str().is_some_and(|s| !s.is_empty()), "sid");
    assert_eq!(full.authorized_party().map(|a| a.as_str()), Some("rp"));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&w.http)
        .await
        .expect("userinfo, with sub equal to the ID token's");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.preferred_username().unwrap().as_str(), USER);
    assert_eq!(info.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Jeanne"));
    assert_eq!(info.family_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Martin"));
    assert!(info.email().is_some());
}

#[tokio::test]
async fn scope_all_releases_pro_sante_connect_claims() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let signed = w.sign_in(&client, &Browser::new(), &["scope_all"]).await.unwrap();
    let id_token = signed.tokens.id_token().unwrap();
    let sub = id_token.claims(&client.id_token_verifier(), &signed.nonce).unwrap().subject().clone();
    let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = client
        .user_info(signed.tokens.access_token().clone(), Some(sub))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();
    let psc = &info.additional_claims().0;
    assert_eq!(psc["SubjectNameID"], USER);
    assert_eq!(info.preferred_username().unwrap().as_str(), USER);
    assert_eq!(psc["SubjectRefPro"]["codeCivilite"], "MME");
    assert_eq!(psc["SubjectRefPro"]["exercices"][0]["codeProfession"], "10");
    assert_eq!(psc["SubjectRole"], json!(["10^1.2.250.1.213.1.1.5.5"]));
    assert!(psc["Palier_Authentification"].as_str().unwrap().starts_with("APPPRIP"));
}

#[tokio::test]
async fn es256_id_tokens_for_clients_that_register_them() {
    let w = World::start().await.unwrap();
    let metadata: ClientMetadata =
        serde_json::from_value(json!({ "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "ES256" }))
            .unwrap();
    let secret = w.provider.add_client_metadata("es", metadata).await.unwrap();
    let client = w.client("es", secret).await.unwrap();
    let signed = w.sign_in(&client, &Browser::new(), &[]).await.unwrap();
    let id_token = signed.tokens.id_token().unwrap();
    assert_eq!(id_token.signing_alg().unwrap(), &CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    let verifier = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &signed.nonce).expect("verified with the provider's P-256 key");
    let actual = AccessTokenHash::from_token(
        signed.tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(Some(&actual), claims.access_token_hash());
}

#[tokio::test]
async fn signed_userinfo_for_clients_that_register_it() {
    let w = World::start().await.unwrap();
    let metadata: ClientMetadata =
        serde_json::from_value(json!({ "redirect_uris": [REDIRECT], "userinfo_signed_response_alg": "RS256" }))
            .unwrap();
    let secret = w.provider.add_client_metadata("signed", metadata).await.unwrap();
    let client = w.client("signed", secret).await.unwrap();
    let signed = w.sign_in(&client, &Browser::new(), &["profile"]).await.unwrap();
    let at = signed.tokens.access_token();
    let raw = w.http.get(w.provider.url("/userinfo")).bearer_auth(at.secret()).send().await.unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.headers()["content-type"], "application/jwt", "OIDC Core 5.3.2");
    let sub = signed.tokens.id_token().unwrap().claims(&client.id_token_verifier(), &signed.nonce).unwrap().subject();
    // openidconnect checks the signature, iss and aud (the client) of the userinfo JWT.
    let info: CoreUserInfoClaims = client
        .user_info(at.clone(), Some(sub.clone()))
        .unwrap()
        .require_signed_response(true)
        .request_async(&w.http)
        .await
        .expect("a signed userinfo JWT verified by openidconnect");
    assert_eq!(info.subject(), sub);
    assert!(info.given_name().is_some());
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let first = w.sign_in(&client, &Browser::new(), &[]).await.unwrap().tokens;
    let rt1 = first.refresh_token().expect("a refresh token").clone();

    let second = client.exchange_refresh_token(&rt1).unwrap().request_async(&w.http).await.unwrap();
    let rt2 = second.refresh_token().expect("a rotated refresh token").clone();
    assert_ne!(rt1.secret(), rt2.secret(), "rotated");
    assert_ne!(first.access_token().secret(), second.access_token().secret());
    assert_eq!(w.userinfo_status(second.access_token().secret()).await.unwrap(), StatusCode::OK);

    // The old one again: refused, and the whole family dies with it (RFC 9700 4.14.2).
    let reuse = client.exchange_refresh_token(&rt1).unwrap().request_async(&w.http).await;
    assert_eq!(oauth_error(&reuse).as_deref(), Some("invalid_grant"), "{reuse:?}");
    let after = client.exchange_refresh_token(&rt2).unwrap().request_async(&w.http).await;
    assert_eq!(oauth_error(&after).as_deref(), Some("invalid_grant"), "the newest refresh token is revoked too");
    for at in [first.access_token(), second.access_token()] {
        assert_eq!(w.userinfo_status(at.secret()).await.unwrap(), StatusCode::UNAUTHORIZED, "and its access tokens");
    }
}

#[tokio::test]
async fn a_refreshed_id_token_keeps_the_original_authentication() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let first = w.sign_in(&client, &Browser::new(), &["profile"]).await.unwrap();
    let verifier = client.id_token_verifier();
    let original = first.tokens.id_token().unwrap().claims(&verifier, &first.nonce).unwrap().clone();

    w.provider.clock.advance(301);
    let old = first.tokens.access_token().secret();
    assert_eq!(w.userinfo_status(old).await.unwrap(), StatusCode::UNAUTHORIZED, "the access token expired");
    let refreshed =
        client.exchange_refresh_token(first.tokens.refresh_token().unwrap()).unwrap().request_async(&w.http).await;
    let refreshed = refreshed.expect("an expired access token does not stop a refresh");
    assert_eq!(w.userinfo_status(refreshed.access_token().secret()).await.unwrap(), StatusCode::OK);

    // OIDC Core 12.2: same iss, sub, aud, azp and auth_time; a new iat; nonce absent or the same.
    let id_token = refreshed.id_token().expect("an ID token on refresh");
    let same_nonce = |n: Option<&Nonce>| match n {
        Some(n) if n.secret() != first.nonce.secret() => Err("a different nonce".to_owned()),
        _ => Ok(()),
    };
    let claims = full_claims(id_token, &verifier, same_nonce).expect("a valid refreshed ID token");
    assert_eq!(claims.issuer(), original.issuer());
    assert_eq!(claims.subject(), original.subject());
    assert_eq!(claims.audiences(), original.audiences());
    assert_eq!(claims.authorized_party(), original.authorized_party());
    assert_eq!(claims.auth_time(), original.auth_time(), "auth_time is the original authentication's");
    assert!(claims.issue_time() > original.issue_time(), "iat is the new token's");
}

#[tokio::test]
async fn a_narrowed_refresh_keeps_the_refresh_token_scope() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let first = w.sign_in(&client, &Browser::new(), &["profile"]).await.unwrap().tokens;

    // RFC 6749 6: the access token may be narrowed...
    let narrow = client
        .exchange_refresh_token(first.refresh_token().unwrap())
        .unwrap()
        .add_scope(openidconnect::Scope::new("openid".into()))
        .request_async(&w.http)
        .await
        .unwrap();
    let scopes: Vec<&str> = narrow.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    assert_eq!(scopes, ["openid"]);
    // ...but "if a new refresh token is issued, the refresh token scope MUST be identical to that
    // of the refresh token included by the client in the request": the next refresh, without
    // `scope`, gets the scope originally granted.
    let next = client
        .exchange_refresh_token(narrow.refresh_token().unwrap())
        .unwrap()
        .request_async(&w.http)
        .await
        .expect("a refresh without scope");
    let scopes: Vec<&str> = next.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    assert!(scopes.contains(&"profile"), "RFC 6749 6: the rotated refresh token lost `profile`: {scopes:?}");
}
