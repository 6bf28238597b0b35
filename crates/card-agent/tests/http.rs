//! `card-agent serve` over HTTP against a virtual CPS3 behind a private pcscd: JSON and form
//! answers, origin allow-list, challenge binding, CORS and private network access.

mod common;

use common::*;
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post_json(
    server: &Server,
    origin: Option<&str>,
    body: serde_json::Value,
) -> Result<(StatusCode, serde_json::Value, reqwest::header::HeaderMap), Error> {
    let mut req = client().post(format!("{}/v1/sign", server.base)).json(&body);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    Ok((status, resp.json().await?, headers))
}

#[tokio::test]
async fn json_sign_returns_certificates_and_a_verifying_signature() -> TestResult {
    let s = setup()?;
    let server = Server::start(agent(&s.pcscd), &[ORIGIN, "https://other.example"])?;
    let c = challenge(ORIGIN);
    let (status, json, headers) =
        post_json(&server, Some(ORIGIN), serde_json::json!({ "challenge": c, "pin": PIN })).await?;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    check_signed(&json, &c, &s.id)?;
    // Status lists the reader.
    let resp = client().get(format!("{}/v1/status", server.base)).header("Origin", ORIGIN).send().await?;
    let json: serde_json::Value = resp.json().await?;
    assert!(json["version"].is_string());
    assert!(json["readers"].as_array().ok_or("readers")?.iter().any(|r| r["card_present"] == true), "{json}");
    Ok(())
}

#[tokio::test]
async fn wrong_pin_over_http_counts_down_then_blocks() -> TestResult {
    let s = setup()?;
    let server = Server::start(agent(&s.pcscd), &[ORIGIN])?;
    let c = challenge(ORIGIN);
    for left in [2, 1] {
        let (status, json, _) =
            post_json(&server, Some(ORIGIN), serde_json::json!({ "challenge": c, "pin": "0000" })).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!((json["error"].as_str(), json["tries_left"].as_u64()), (Some("wrong_pin"), Some(left)));
    }
    let (status, json, _) =
        post_json(&server, Some(ORIGIN), serde_json::json!({ "challenge": c, "pin": "0000" })).await?;
    assert_eq!((status, json["error"].as_str()), (StatusCode::LOCKED, Some("card_blocked")));
    let (status, json, _) = post_json(&server, Some(ORIGIN), serde_json::json!({ "challenge": c, "pin": PIN })).await?;
    assert_eq!((status, json["error"].as_str()), (StatusCode::LOCKED, Some("card_blocked")));
    Ok(())
}

#[tokio::test]
async fn foreign_or_missing_origin_is_refused() -> TestResult {
    let s = setup()?;
    let server = Server::start(agent(&s.pcscd), &[ORIGIN])?;
    let body = serde_json::json!({ "challenge": challenge(ORIGIN), "pin": PIN });
    for origin in [Some("https://evil.example"), Some("https://login.example.evil"), None] {
        let (status, json, headers) = post_json(&server, origin, body.clone()).await?;
        assert_eq!((status, json["error"].as_str()), (StatusCode::FORBIDDEN, Some("origin_not_allowed")));
        assert!(headers.get("access-control-allow-origin").is_none());
    }
    let resp =
        client().get(format!("{}/v1/status", server.base)).header("Origin", "https://evil.example").send().await?;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A refused request never reaches the card.
    assert_eq!(s.card.status().pin_tries_left, 3);
    Ok(())
}

#[tokio::test]
async fn challenge_for_another_origin_is_refused() -> TestResult {
    let s = setup()?;
    // A phishing page allowed by mistake relays the real provider's challenge: refused.
    let server = Server::start(agent(&s.pcscd), &[ORIGIN, "https://phish.example"])?;
    let body = serde_json::json!({ "challenge": challenge(ORIGIN), "pin": PIN });
    let (status, json, _) = post_json(&server, Some("https://phish.example"), body).await?;
    assert_eq!((status, json["error"].as_str()), (StatusCode::BAD_REQUEST, Some("challenge_origin_mismatch")));
    let (status, json, _) =
        post_json(&server, Some(ORIGIN), serde_json::json!({ "challenge": "nope", "pin": PIN })).await?;
    assert_eq!((status, json["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    assert_eq!(s.card.status().pin_tries_left, 3);
    Ok(())
}

#[tokio::test]
async fn preflight_allows_private_network_access_for_allowed_origins_only() -> TestResult {
    let s = setup()?;
    let server = Server::start(agent(&s.pcscd), &[ORIGIN])?;
    let preflight = |origin: &'static str| {
        client()
            .request(reqwest::Method::OPTIONS, format!("{}/v1/sign", server.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .header("Access-Control-Request-Private-Network", "true")
            .send()
    };
    let ok = preflight(ORIGIN).await?;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(ok.headers()["access-control-allow-private-network"], "true");
    assert!(ok.headers()["access-control-allow-methods"].to_str()?.contains("POST"));
    let refused = preflight("https://evil.example").await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers().get("access-control-allow-private-network").is_none());
    // No state-changing GET.
    let get = client().get(format!("{}/v1/sign", server.base)).header("Origin", ORIGIN).send().await?;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

fn hidden(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .filter_map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn form_post_answers_the_post_back_page() -> TestResult {
    let s = setup()?;
    let server = Server::start(agent(&s.pcscd), &[ORIGIN])?;
    let c = challenge(ORIGIN);
    let return_to = format!("{ORIGIN}/login/card?x=1&y=2");
    let state = "st<\"&'>ate";
    let resp = client()
        .post(format!("{}/v1/sign", server.base))
        .header("Origin", ORIGIN)
        .form(&[("challenge", c.as_str()), ("pin", PIN), ("return_to", &return_to), ("state", state)])
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str()?.starts_with("text/html"));
    assert!(resp.headers()["content-security-policy"].to_str()?.contains(&format!("form-action {ORIGIN}")));
    let html = resp.text().await?;
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("<h1>"));
    assert!(html.contains("method=\"post\" action=\"https://login.example/login/card?x=1&#38;y=2\""), "{html}");
    assert!(html.contains("autofocus>Continuer"));
    assert_eq!(hidden(&html, "state"), ["st&#60;&#34;&#38;&#39;&#62;ate"], "escaped");
    let json = serde_json::json!({
        "certificates": hidden(&html, "certificate"),
        "signature": hidden(&html, "signature")[0],
        "algorithm": hidden(&html, "algorithm")[0],
    });
    check_signed(&json, &c, &s.id)?;

    // An error posts back the code, the tries left and the state.
    let resp = client()
        .post(format!("{}/v1/sign", server.base))
        .header("Origin", ORIGIN)
        .form(&[("challenge", c.as_str()), ("pin", "0000"), ("return_to", &return_to), ("state", "s2")])
        .send()
        .await?;
    let html = resp.text().await?;
    assert_eq!(hidden(&html, "error"), ["wrong_pin"]);
    assert_eq!(hidden(&html, "tries_left"), ["2"]);
    assert_eq!(hidden(&html, "state"), ["s2"]);
    assert!(hidden(&html, "signature").is_empty());

    // return_to on another origin: refused, nothing posted anywhere.
    let resp = client()
        .post(format!("{}/v1/sign", server.base))
        .header("Origin", ORIGIN)
        .form(&[("challenge", c.as_str()), ("pin", PIN), ("return_to", "https://evil.example/x"), ("state", "s")])
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.card.status().pin_tries_left, 2);
    Ok(())
}

#[test]
fn serve_refuses_a_non_loopback_address() -> TestResult {
    let s = setup()?;
    let out = agent(&s.pcscd).args(["serve", "--listen", "0.0.0.0:0", "--allow-origin", ORIGIN]).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    Ok(())
}

#[tokio::test]
async fn large_bodies_are_refused() -> TestResult {
    let s = setup()?;
    let server = Server::start(agent(&s.pcscd), &[ORIGIN])?;
    let body = serde_json::json!({ "challenge": "x".repeat(16 * 1024), "pin": PIN });
    let resp = client().post(format!("{}/v1/sign", server.base)).header("Origin", ORIGIN).json(&body).send().await?;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let resp = client()
        .post(format!("{}/v1/sign", server.base))
        .header("Origin", ORIGIN)
        .header("Content-Type", "text/plain")
        .body("challenge")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.card.status().pin_tries_left, 3);
    Ok(())
}
