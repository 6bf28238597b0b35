//! Writes the seed inputs of every target into `fuzz/seeds/<target>/`: real requests as
//! relying parties, browsers and the phone app send them, and tokens signed by the provider's
//! own (fixture) keys through its own token endpoint. Run once when a target's input format
//! changes (`cargo run --example make_seeds` in fuzz/).

use std::path::{Path, PathBuf};

use caducee_fuzz::{
    ISSUER, JWT_CLIENT, JWT_CLIENT_KID, NOW, PKCE_CHALLENGE, PKCE_VERIFIER, PROVIDER_ES256_KID, PROVIDER_RS256_KID,
    PUBLIC_CLIENT, REDIRECT_URI, SUBJECT, harness,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const ASSERTION_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

struct Seeds(PathBuf);

impl Seeds {
    fn write(&self, target: &str, name: &str, content: &[u8]) -> Result<()> {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), content)?;
        Ok(())
    }
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = Seeds(root.join("seeds"));
    let h = harness();

    // Tokens minted by the provider itself: a code exchange of the public client.
    let code = h.fresh_code(PUBLIC_CLIENT).ok_or("no code")?;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={PKCE_VERIFIER}&client_id={PUBLIC_CLIENT}",
        enc(&code),
        enc(REDIRECT_URI)
    );
    let reply = h.post_form("/token", None, form.into_bytes()).ok_or("token request")?;
    let tokens = reply.json().ok_or("token response")?;
    let id_token = tokens["id_token"].as_str().ok_or("no id_token")?.to_owned();
    let access_token = tokens["access_token"].as_str().ok_or("no access_token")?.to_owned();

    // authorize_query: the query strings a browser brings from relying parties.
    let redirect = enc(REDIRECT_URI);
    let base = format!(
        "client_id={PUBLIC_CLIENT}&redirect_uri={redirect}&response_type=code&scope=openid%20profile&state=af0ifjsldkj\
         &nonce=n-0S6_WzA2Mj&code_challenge={PKCE_CHALLENGE}&code_challenge_method=S256"
    );
    let wallet = login_ui::wallet::wallet_redirect_uri(ISSUER);
    let authorize = [
        ("code-pkce", base.clone()),
        ("prompt-none", format!("{base}&prompt=none")),
        ("reauth", format!("{base}&prompt=login&max_age=300&acr_values=eidas3%20eidas1&ui_locales=en-GB%20fr")),
        ("max-age-0", format!("{base}&max_age=0&login_hint=810000000001&display=page")),
        ("hint", format!("{base}&id_token_hint={}", enc(&id_token))),
        (
            "confidential",
            format!(
                "client_id={JWT_CLIENT}&redirect_uri={redirect}&response_type=code&scope=openid%20email%20rpps&state=s"
            ),
        ),
        ("request-object", format!("{base}&request=eyJhbGciOiJub25lIn0.e30.&request_uri=urn%3Ax")),
        (
            "implicit",
            format!("{}&response_mode=fragment", base.replace("response_type=code", "response_type=id_token%20token")),
        ),
        ("claims", format!("{base}&claims=%7B%22id_token%22%3A%7B%7D%7D")),
        (
            "bad-redirect",
            format!("client_id={PUBLIC_CLIENT}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid"),
        ),
        ("repeated", format!("{base}&client_id={JWT_CLIENT}")),
        ("post-logout-uri-as-redirect", base.replace("%2Fcb", "%2Fbye")),
        (
            "wallet",
            format!(
                "client_id=caducee-wallet&redirect_uri={}&response_type=code&scope=openid&max_age=900\
                 &code_challenge={PKCE_CHALLENGE}&code_challenge_method=S256",
                enc(&wallet)
            ),
        ),
        ("plain-pkce", base.replace("code_challenge_method=S256", "code_challenge_method=plain")),
    ];
    for (name, query) in authorize {
        seeds.write("authorize_query", name, query.as_bytes())?;
    }

    // token_form: token, revocation and introspection requests.
    let assertion = h.fresh_assertion();
    let token_forms = [
        (
            "code-public",
            format!(
                "/token\ngrant_type=authorization_code&code=$CODE&redirect_uri={redirect}&code_verifier={PKCE_VERIFIER}&client_id={PUBLIC_CLIENT}"
            ),
        ),
        (
            "code-jwt",
            format!(
                "/token\ngrant_type=authorization_code&code=$JWT_CODE&redirect_uri={redirect}&code_verifier={PKCE_VERIFIER}\
                 &client_assertion_type={ASSERTION_TYPE}&client_assertion=$ASSERTION"
            ),
        ),
        (
            "code-wrong-verifier",
            format!(
                "/token\ngrant_type=authorization_code&code=$CODE&redirect_uri={redirect}&code_verifier=x&client_id={PUBLIC_CLIENT}"
            ),
        ),
        ("refresh", format!("/token\ngrant_type=refresh_token&refresh_token=$REFRESH&client_id={PUBLIC_CLIENT}")),
        (
            "refresh-narrower",
            format!("/token\ngrant_type=refresh_token&refresh_token=$REFRESH&client_id={PUBLIC_CLIENT}&scope=openid"),
        ),
        (
            "basic-public",
            format!(
                "/token Basic ZnV6ei1wdWJsaWM6\ngrant_type=authorization_code&code=$CODE&redirect_uri={redirect}&code_verifier={PKCE_VERIFIER}"
            ),
        ),
        (
            "basic-unknown",
            "/token Basic bXklM0FjbGllbnQ6cyUyQmNyZXQ=\ngrant_type=client_credentials&scope=openid".into(),
        ),
        (
            "client-credentials",
            format!(
                "/token\ngrant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion=$ASSERTION"
            ),
        ),
        (
            "raw-assertion",
            format!(
                "/token\ngrant_type=authorization_code&code=$JWT_CODE&redirect_uri={redirect}&code_verifier={PKCE_VERIFIER}\
                 &client_assertion_type={ASSERTION_TYPE}&client_assertion={}",
                enc(&assertion)
            ),
        ),
        ("revoke", format!("/revoke\ntoken=$REFRESH&token_type_hint=refresh_token&client_id={PUBLIC_CLIENT}")),
        (
            "introspect",
            format!(
                "/introspect\ntoken={}&client_assertion_type={ASSERTION_TYPE}&client_assertion=$ASSERTION",
                enc(&access_token)
            ),
        ),
    ];
    for (name, form) in token_forms {
        seeds.write("token_form", name, form.as_bytes())?;
    }

    // client_assertion: signed claims (header, claims, extra form) and whole tokens.
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": JWT_CLIENT_KID }).to_string();
    let claims = |aud: &str, iat: i64, exp: i64| {
        format!(r#"{{"iss":"{JWT_CLIENT}","sub":"{JWT_CLIENT}","aud":"{aud}","jti":"$JTI","iat":{iat},"exp":{exp}}}"#)
    };
    let token_endpoint = format!("{ISSUER}/token");
    let assertions = [
        ("valid", format!("{header}\n{}", claims(&token_endpoint, NOW, NOW + 60))),
        ("issuer-aud", format!("{header}\n{}", claims(ISSUER, NOW, NOW + 60))),
        ("expired", format!("{header}\n{}", claims(&token_endpoint, NOW - 90, NOW - 30))),
        ("long-lived", format!("{header}\n{}", claims(&token_endpoint, NOW, NOW + 3600))),
        ("with-client-id", format!("{header}\n{}\n&client_id={JWT_CLIENT}", claims(&token_endpoint, NOW, NOW + 60))),
        ("no-kid", format!("{}\n{}", json!({ "alg": "ES256" }), claims(&token_endpoint, NOW, NOW + 60))),
        (
            "aud-array",
            format!(
                r#"{header}
{{"iss":"{JWT_CLIENT}","sub":"{JWT_CLIENT}","aud":["{token_endpoint}","x"],"jti":"$JTI","exp":{}}}"#,
                NOW + 60
            ),
        ),
        ("raw", assertion.clone()),
        ("alg-none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJmdXp6LWp3dCIsInN1YiI6ImZ1enotand0In0.".into()),
    ];
    for (name, input) in assertions {
        seeds.write("client_assertion", name, input.as_bytes())?;
    }

    // id_token_hint: the provider's own tokens, and claims signed with its keys.
    let es = json!({ "alg": "ES256", "typ": "JWT", "kid": PROVIDER_ES256_KID }).to_string();
    let rs = json!({ "alg": "RS256", "typ": "JWT", "kid": PROVIDER_RS256_KID }).to_string();
    let at = json!({ "alg": "ES256", "typ": "at+jwt", "kid": PROVIDER_ES256_KID }).to_string();
    let id_claims = |exp: i64| {
        json!({
            "iss": ISSUER, "sub": SUBJECT, "aud": PUBLIC_CLIENT, "azp": PUBLIC_CLIENT, "exp": exp, "iat": NOW - 60,
            "auth_time": NOW - 60, "acr": "eidas1", "amr": ["pwd", "otp"], "sid": "fuzz-sid", "nonce": "n",
        })
        .to_string()
    };
    let at_claims = json!({
        "iss": ISSUER, "sub": SUBJECT, "aud": PUBLIC_CLIENT, "client_id": PUBLIC_CLIENT, "exp": NOW + 300,
        "iat": NOW, "jti": "at-1", "scope": "openid profile", "sid": "fuzz-sid", "gid": "g",
    })
    .to_string();
    let hints = [
        ("id-token", id_token.clone()),
        ("access-token", access_token.clone()),
        ("signed-es256", format!("{es}\n{}", id_claims(NOW + 300))),
        ("signed-rs256", format!("{rs}\n{}", id_claims(NOW + 300))),
        ("signed-expired", format!("{es}\n{}", id_claims(NOW - 300))),
        ("signed-access", format!("{at}\n{at_claims}")),
        (
            "aud-array",
            format!(
                "{es}\n{}",
                id_claims(NOW + 300).replace(r#""aud":"fuzz-public""#, r#""aud":["fuzz-public","other"]"#)
            ),
        ),
    ];
    for (name, input) in hints {
        seeds.write("id_token_hint", name, input.as_bytes())?;
    }

    // phone_request: what the phone app sends.
    let aud = format!("{ISSUER}/push/v1");
    let kid = r#"{"alg":"ES256","kid":"$KID"}"#;
    let phone = [
        (
            "enrol",
            format!(
                r#"devices
{{"alg":"ES256","jwk":$JWK}}
{{"action":"enrol","code":"$CODE","label":"Pixel de Jeanne","aud":"{aud}","iat":{NOW},"jti":"$JTI"}}"#
            ),
        ),
        (
            "list",
            format!("challenges\n{kid}\n{{\"action\":\"list\",\"aud\":\"{aud}\",\"iat\":{NOW},\"jti\":\"$JTI\"}}"),
        ),
        (
            "approve",
            format!(
                "answers\n{kid}\n{{\"action\":\"answer\",\"challenge\":\"$CH\",\"decision\":\"approve\",\"number\":\"$NUM\",\"aud\":\"{aud}\",\"iat\":{NOW},\"jti\":\"$JTI\"}}"
            ),
        ),
        (
            "wrong-number",
            format!(
                "answers\n{kid}\n{{\"action\":\"answer\",\"challenge\":\"$CH\",\"decision\":\"approve\",\"number\":\"00\",\"aud\":\"{aud}\",\"iat\":{},\"jti\":\"$JTI\"}}",
                NOW - 30
            ),
        ),
        (
            "deny",
            format!(
                "answers\n{kid}\n{{\"action\":\"answer\",\"challenge\":\"$CH\",\"decision\":\"deny\",\"aud\":\"{aud}\",\"iat\":{},\"jti\":\"$JTI\"}}",
                NOW + 30
            ),
        ),
        (
            "not-me",
            format!(
                "answers\n{kid}\n{{\"action\":\"answer\",\"challenge\":\"$CH\",\"decision\":\"not_me\",\"aud\":\"{aud}\",\"iat\":{NOW},\"jti\":\"$JTI\"}}"
            ),
        ),
        (
            "stale",
            format!(
                "challenges\n{kid}\n{{\"action\":\"list\",\"aud\":\"{aud}\",\"iat\":{},\"jti\":\"$JTI\"}}",
                NOW - 3600
            ),
        ),
    ];
    for (name, input) in phone {
        seeds.write("phone_request", name, input.as_bytes())?;
    }
    // A whole enrolment request as the phone sends it (its code is long gone).
    let enrol_header = json!({ "alg": "ES256", "jwk": h.phone_key.public_jwk(None, None) });
    let enrol_claims = json!({ "action": "enrol", "code": "0123456789abcdef", "aud": aud, "iat": NOW, "jti": "raw-1" });
    seeds.write(
        "phone_request",
        "raw-enrol",
        format!("devices\n{}", h.phone_key.sign_json(&enrol_header, &enrol_claims)).as_bytes(),
    )?;

    // pskc: RFC 6030's examples and a TOTP vendor file, from the PSKC reader's own tests.
    let fixtures = root.join("../crates/authn-methods/tests/pskc");
    for entry in std::fs::read_dir(&fixtures)? {
        let path = entry?.path();
        if let Some(name) = path.file_stem().and_then(|n| n.to_str()) {
            seeds.write("pskc", name, &std::fs::read(&path)?)?;
        }
    }
    // A TOTP token whose clock the vendor measured: an origin (`Time`) and a drift in steps.
    let drifting = std::fs::read_to_string(fixtures.join("totp-tokens.xml"))?
        .replace("<Time><PlainValue>0</PlainValue></Time>", "<Time><PlainValue>1500000000</PlainValue></Time>")
        .replace(
            "<TimeInterval><PlainValue>30</PlainValue></TimeInterval>\n      </Data>\n    </Key>\n  </KeyPackage>\n  <KeyPackage>",
            "<TimeInterval><PlainValue>30</PlainValue></TimeInterval>\n        <TimeDrift><PlainValue>-2</PlainValue></TimeDrift>\n      </Data>\n    </Key>\n  </KeyPackage>\n  <KeyPackage>",
        );
    seeds.write("pskc", "totp-drift", drifting.as_bytes())?;
    println!("seeds written under {}", seeds.0.display());
    Ok(())
}
