//! Issue 13, item 18: what `{:?}` prints of the values that carry secrets (the configuration,
//! the command line, the tokens a grant answers, the admin API's answers, enrolment codes and
//! seeds) never shows one. Each value comes from the real code path that makes it.

use clap::Parser as _;
use oidc_core::client_auth::ClientCredentials;
use oidc_core::http::oauth::ClientForm as _;
use oidc_core::token::TokenParams;
use server::testing::TestProvider;

use crate::common::*;

fn assert_hidden(what: &str, debug: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!debug.contains(secret), "{what} shows {secret}: {debug}");
    }
}

#[test]
fn item_18_debug_of_the_configuration_and_the_command_line_shows_no_secret() {
    let mut config = server::Config {
        master_key: "bWFzdGVyLWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE=".into(),
        database_url: "postgres://caducee:DB-PASSWORD-731@db.internal/caducee".into(),
        redis_url: "redis://:REDIS-PASSWORD-732@cache.internal:6379/0".into(),
        ..server::Config::default()
    };
    config.mail.smtp_password = "SMTP-PASSWORD-733".into();
    config.redis_cluster_nodes = vec!["rediss://caducee:CLUSTER-PASSWORD-737@node1.internal:6379".into()];
    config.redis_sentinel.sentinels = vec!["redis://:SENTINEL-PASSWORD-738@sentinel1.internal:26379".into()];
    config.redis_sentinel.password = "NODE-PASSWORD-739".into();
    config.push.webhook_url = "https://gateway:GATEWAY-PASSWORD-735@push.internal/wake".into();
    config.push.webhook_secret = "WEBHOOK-SECRET-736".into();
    let debug = format!("{config:?}");
    assert_hidden(
        "Config",
        &debug,
        &[
            "bWFzdGVyLWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE",
            "DB-PASSWORD-731",
            "REDIS-PASSWORD-732",
            "SMTP-PASSWORD-733",
            "GATEWAY-PASSWORD-735",
            "WEBHOOK-SECRET-736",
            "CLUSTER-PASSWORD-737",
            "SENTINEL-PASSWORD-738",
            "NODE-PASSWORD-739",
        ],
    );
    assert!(
        debug.contains("db.internal") && debug.contains("cache.internal") && debug.contains("push.internal"),
        "where they are is still said: {debug}"
    );

    let cli = server::cli::Cli::try_parse_from([
        "caducee",
        "user",
        "add",
        "--national-id",
        "899700000001",
        "--given-name",
        "Jeanne",
        "--family-name",
        "Martin",
        "--password",
        "CLI-PASSWORD-734",
    ])
    .unwrap();
    assert_hidden("the command line", &format!("{cli:?}"), &["CLI-PASSWORD-734"]);
}

#[tokio::test]
async fn item_18_debug_of_tokens_admin_answers_and_enrolments_shows_no_secret() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let app = &s.p.app;
    let now = s.p.clock.now();

    // A token response, from a real grant.
    let code = login(&Browser::new(), &s.p, "rp", USER, &s.totp, 0).await;
    let params: TokenParams = serde_json::from_value(serde_json::json!({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
    }))
    .unwrap();
    let creds: ClientCredentials =
        params.credentials(ClientCredentials::parse_basic(&basic("rp", &s.secret)).and_then(Result::ok));
    assert_hidden("ClientCredentials", &format!("{creds:?}"), &[&s.secret]);
    let tokens = app.provider.token(params, &creds, now).await.unwrap();
    let written = serde_json::to_value(&tokens).unwrap();
    let issued: Vec<&str> =
        ["access_token", "id_token", "refresh_token"].iter().map(|k| written[k].as_str().unwrap()).collect();
    assert_hidden("TokenResponse", &format!("{tokens:?}"), &issued);

    // The admin API's answers that hand a secret over once.
    let admin = app.admin();
    let operator = admin_api::Actor { id: "operator:test".into(), source_ip: None };
    let new: admin_api::service::NewClient = serde_json::from_value(serde_json::json!({
        "client_id": "nouveau", "metadata": { "redirect_uris": ["https://nouveau.example/cb"] }
    }))
    .unwrap();
    let created = admin.create_client(&operator, new).await.unwrap();
    let secret = serde_json::to_value(&created).unwrap()["client_secret"].as_str().unwrap().to_owned();
    assert_hidden("CreatedClient", &format!("{created:?}"), &[&secret]);
    let view = admin.issue_activation_code(&operator, USER).await.unwrap();
    let code = serde_json::to_value(&view).unwrap()["code"].as_str().unwrap().to_owned();
    assert_hidden("ActivationCodeView", &format!("{view:?}"), &[&code, &code.replace(' ', "")]);

    // Codes and seeds of enrolments.
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let issued = app.engine.activation_codes().issue(&subject, now).await.unwrap();
    assert_hidden("IssuedCode", &format!("{issued:?}"), &[&issued.code, &issued.code.replace(' ', "")]);
    let totp = authn_methods::totp::enroll(s.p.directory(), &subject, USER, "Caducée", false, now).await.unwrap();
    assert_hidden("TotpEnrolment", &format!("{totp:?}"), &[totp.secret_base32.as_str()]);
    let enrolment = authn_methods::enrolment::Enrolment::new(s.p.directory().clone(), "Caducée");
    let pending = enrolment.start_totp(&subject, USER, now).await.unwrap();
    assert_hidden("PendingTotp", &format!("{pending:?}"), &[pending.secret_base32.as_str()]);
    let push = app.push.start_enrolment(&subject, "phone", now).await.unwrap().started().unwrap();
    assert_hidden("PushEnrolment", &format!("{push:?}"), &[push.code.as_str()]);
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}
