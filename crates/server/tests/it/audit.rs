//! The audit chain's head, kept outside the database (issue 13, item 13).

use reqwest::{Method, StatusCode};
use server::testing::TestProvider;

use crate::admin::{admin_token, call};
use crate::common::*;

/// Issue 13, item 13: an operator keeps the chain's head (`caducee audit head`) outside the
/// database; `audit verify --head` and the admin API's `audit/verify?head=` then catch a chain
/// cut short before it, which the chain alone cannot show.
#[tokio::test]
async fn item_13_a_head_kept_outside_the_database_catches_a_chain_cut_short() {
    use sea_orm::ConnectionTrait as _;
    let s = setup(TestProvider::start().await.unwrap()).await;
    // A few records: a sign-in and its tokens, an admin client's token.
    let code = login(&Browser::new(), &s.p, "rp", USER, &s.totp, 0).await;
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::OK);
    let admin = admin_token(&s.p, &["caducee:admin"]).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_caducee"))
            .args(args)
            .env("CADUCEE_DATA_DIR", &s.p.app.config.data_dir)
            .env_remove("CADUCEE_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["audit", "head"]);
    assert!(ok, "{err}");
    let head = out.trim().to_owned();
    let (id, hash) = head.split_once(':').unwrap();
    let id: i64 = id.parse().unwrap();
    assert!(id >= 3 && hash.len() == 64, "{head}");

    let (ok, out, err) = cli(&["audit", "verify", "--head", &head]);
    assert!(ok && out.contains("chain verified") && out.contains(&head), "{out}{err}");
    let verify = |head: String| {
        let p = &s.p;
        let admin = admin.clone();
        async move {
            let r = call(p, Method::GET, &format!("/admin/v1/audit/verify?head={head}"), Some(&admin), None).await;
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, check) = verify(head.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((check["intact"].as_bool(), check["head_check"].as_str()), (Some(true), Some("matches")), "{check}");
    assert_eq!(check["unkeyed_records"], 0);
    assert!(check["head"].as_str().unwrap().contains(':'));
    let (status, check) = verify("12:nothex".into()).await;
    assert_eq!((status, check["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));

    // Whoever can write the database removes the newest records: what is left still chains.
    let raw = sea_orm::Database::connect(s.p.app.config.database_url()).await.unwrap();
    raw.execute_unprepared(&format!("DELETE FROM audit_log WHERE id >= {id}")).await.unwrap();
    let (ok, out, err) = cli(&["audit", "verify"]);
    assert!(ok, "without the head, nothing shows: {out}{err}");
    let (ok, _, err) = cli(&["audit", "verify", "--head", &head]);
    assert!(!ok && err.contains("cut short"), "{err}");
    let (_, check) = verify(head).await;
    assert_eq!((check["intact"].as_bool(), check["head_check"].as_str()), (Some(false), Some("missing")), "{check}");
}
