//! The discovery document (OpenID Connect Discovery 1.0): what is implemented, and only that.

use serde_json::json;

use crate::client::{CibaDeliveryMode, GrantType, TokenEndpointAuthMethod};
use crate::client_auth::{ASSERTION_ALGS, SECRET_ASSERTION_ALGS};
use crate::config::ProviderConfig;
use crate::keys::SigningAlg;

/// Serialised once at start-up: it only depends on the configuration, and on whether CIBA is
/// offered (`ciba`).
pub fn document(config: &ProviderConfig, ciba: bool) -> Result<String, serde_json::Error> {
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    // Introspection is for confidential clients only; the token and revocation endpoints also
    // take public ones (`none`).
    // Mutual TLS is offered only where certificates reach the provider.
    let offered = |m: &&TokenEndpointAuthMethod| config.mtls || !m.uses_certificate();
    let token_auth: Vec<&str> = TokenEndpointAuthMethod::ALL.iter().filter(offered).map(|m| m.as_str()).collect();
    let client_auth: Vec<&str> = TokenEndpointAuthMethod::ALL
        .iter()
        .filter(offered)
        .filter(|m| **m != TokenEndpointAuthMethod::None)
        .map(|m| m.as_str())
        .collect();
    let assertion_algs: Vec<&str> = ASSERTION_ALGS.iter().chain(SECRET_ASSERTION_ALGS.iter()).copied().collect();
    let grant_types: Vec<&str> =
        GrantType::ALL.iter().filter(|g| ciba || **g != GrantType::Ciba).map(|g| g.as_str()).collect();
    let mut doc = json!({
        "issuer": config.issuer,
        "authorization_endpoint": config.browser_endpoint("/authorize"),
        "token_endpoint": config.endpoint("/token"),
        "userinfo_endpoint": config.endpoint("/userinfo"),
        "jwks_uri": config.endpoint("/jwks"),
        "end_session_endpoint": config.browser_endpoint("/end_session"),
        "introspection_endpoint": config.endpoint("/introspect"),
        "revocation_endpoint": config.endpoint("/revoke"),
        "scopes_supported": crate::claims::SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": token_auth,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": token_auth,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": crate::claims::claims_supported(),
        "claims_parameter_supported": true,
        "acr_values_supported": config.acr_levels,
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["fr", "en"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
    });
    if let Some(doc) = doc.as_object_mut()
        && config.mtls
    {
        doc.insert("tls_client_certificate_bound_access_tokens".into(), json!(true));
    }
    if let Some(doc) = doc.as_object_mut()
        && config.mtls_origin.is_some()
    {
        let mut aliases = serde_json::Map::new();
        for (name, path) in [
            ("token_endpoint", "/token"),
            ("userinfo_endpoint", "/userinfo"),
            ("introspection_endpoint", "/introspect"),
            ("revocation_endpoint", "/revoke"),
        ]
        .into_iter()
        .chain(ciba.then_some(("backchannel_authentication_endpoint", "/bc-authorize")))
        {
            aliases.insert(name.into(), json!(config.mtls_endpoint(path)));
        }
        doc.insert("mtls_endpoint_aliases".into(), serde_json::Value::Object(aliases));
    }
    if ciba && let Some(doc) = doc.as_object_mut() {
        let modes: Vec<&str> = CibaDeliveryMode::ALL.iter().map(|m| m.as_str()).collect();
        doc.insert("backchannel_authentication_endpoint".into(), json!(config.endpoint("/bc-authorize")));
        doc.insert("backchannel_token_delivery_modes_supported".into(), json!(modes));
        doc.insert("backchannel_user_code_parameter_supported".into(), json!(false));
    }
    serde_json::to_string(&doc)
}
