//! One-time passwords by e-mail, through a real SMTP server (the test sink) and the file outbox.

use std::time::Duration;

use oidc_core::secret::ExposeSecret as _;
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use session_store::{RedisStore, SessionStore as _};
use test_support::redis::RedisServer;
use test_support::smtp::SmtpSink;

use crate::common::*;

async fn with_smtp(sink: &SmtpSink, tune: impl FnOnce(&mut server::Config)) -> Setup {
    let port = sink.port();
    let p = TestProvider::start_with(Storage::Embedded, move |c| {
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = port;
        c.mail.smtp_security = authn_methods::mailer::SmtpSecurity::None;
        c.mail.from = "Caducée <ne.pas.repondre@caducee.test>".into();
        tune(c);
    })
    .await
    .unwrap();
    setup(p).await
}

async fn ask_for_code(b: &Browser, url: &str, html: &str, user: &str, password: &str) -> reqwest::Response {
    let token = csrf(html);
    b.post_form(url, &[("username", user), ("password", password), ("csrf_token", &token), ("action", "send_mail_otp")])
        .await
}

fn code_in(text: &str) -> String {
    let marker = "pour vous authentifier : ";
    let start = text.find(marker).expect("the code sentence") + marker.len();
    text[start..start + 6].to_owned()
}

#[tokio::test]
async fn a_mailed_code_signs_in_once_and_the_mail_says_until_when() {
    let sink = SmtpSink::start().unwrap();
    let s = with_smtp(&sink, |c| c.mail.min_interval = 0).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert!(html.contains("Code par courriel"));

    let r = ask_for_code(&b, &url, &html, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Le courriel est parti") && page.contains("8•••@example.org"), "{page}");
    assert!(page.contains("role=\"status\""));

    let mails = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec![format!("{USER}@example.org")]);
    let subject = mails[0].subject();
    let prefix = "[Authentification Caducée] Votre OTP valable jusqu'à ";
    assert!(subject.starts_with(prefix), "{subject}");
    // «16:04:04 (UTC+0200) le 26/07/2018»
    let rest = &subject[prefix.len()..];
    let shape: String = rest.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    assert!(shape == "99:99:99 (UTC+9999) le 99/99/9999" || shape == "99:99:99 (UTC-9999) le 99/99/9999", "{subject}");
    let code = code_in(&mails[0].text());

    // The code signs in (password typed again), once.
    let r = submit(&b, &url, &html, USER, PASSWORD, &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the mailed code works");
    let other = Browser::new();
    let (url2, html2) = open_login(&other, &s.p, "rp", &[]).await;
    assert_eq!(submit(&other, &url2, &html2, USER, PASSWORD, &code).await.status(), StatusCode::OK, "used once only");

    // A new code replaces the previous one.
    ask_for_code(&other, &url2, &html2, USER, PASSWORD).await;
    let first = code_in(&sink.wait_for(2, Duration::from_secs(10))[1].text());
    ask_for_code(&other, &url2, &html2, USER, PASSWORD).await;
    let second = code_in(&sink.wait_for(3, Duration::from_secs(10))[2].text());
    if first != second {
        let r = submit(&other, &url2, &html2, USER, PASSWORD, &first).await;
        assert_eq!(r.status(), StatusCode::OK, "the replaced code no longer works");
    }
    assert_eq!(submit(&other, &url2, &html2, USER, PASSWORD, &second).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn no_mail_without_the_right_password_and_the_answer_does_not_reveal_accounts() {
    let sink = SmtpSink::start().unwrap();
    let s = with_smtp(&sink, |_| {}).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let wrong = ask_for_code(&b, &url, &html, USER, "not the password").await.text().await.unwrap();
    let unknown = ask_for_code(&b, &url, &html, "899755555555", PASSWORD).await.text().await.unwrap();
    for page in [&wrong, &unknown] {
        assert!(page.contains("aucun code n'a été envoyé") || page.contains("aucun code n&#39;a été envoyé"), "{page}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.mails().is_empty(), "no mail bombing by identifier alone");
}

#[tokio::test]
async fn mail_codes_are_throttled_per_account() {
    let sink = SmtpSink::start().unwrap();
    let s = with_smtp(&sink, |c| {
        c.mail.min_interval = 0;
        c.mail.max_per_account = 2;
    })
    .await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    for _ in 0..2 {
        assert_eq!(ask_for_code(&b, &url, &html, USER, PASSWORD).await.status(), StatusCode::OK);
    }
    let r = ask_for_code(&b, &url, &html, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("déjà été envoyé récemment"));
    assert_eq!(sink.wait_for(2, Duration::from_secs(10)).len(), 2);
}

#[tokio::test]
async fn without_smtp_the_mails_land_in_the_outbox() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert_eq!(ask_for_code(&b, &url, &html, USER, PASSWORD).await.status(), StatusCode::OK);
    let outbox = s.p.app.config.data_dir.join("outbox");
    let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one .eml in {}", outbox.display());
    let eml = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(eml.contains(&format!("To: {USER}@example.org")), "{eml}");
}

/// Issue 13, item 14: what the session store keeps of a pending mailed code or activation code
/// is an HMAC under a key derived from the master key. A copy of Redis then gives neither away:
/// trying every one of the million mail codes against the bare SHA-256 that used to be kept
/// finds nothing, and the activation code's bare hash is not there either. The codes still sign
/// in.
#[tokio::test]
async fn item_14_a_copy_of_redis_does_not_give_pending_codes_away() {
    use aws_lc_rs::digest::{SHA256, digest};
    let bare_hash = |subject: &str, code: &str| -> String {
        digest(&SHA256, format!("{subject}:{code}").as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    let redis = RedisServer::start().unwrap();
    let sink = SmtpSink::start().unwrap();
    let url = redis.url();
    let s = with_smtp(&sink, move |c| c.redis_url = url).await;
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    // What someone who copies Redis reads.
    let dump = RedisStore::connect(&redis.url()).await.unwrap().with_prefix("caducee:");
    let stored_hash = |key: String| {
        let dump = &dump;
        async move {
            let bytes = dump.get(&key).await.unwrap().expect("a pending code");
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["hash"].as_str().unwrap().to_owned()
        }
    };

    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert_eq!(ask_for_code(&b, &url, &html, USER, PASSWORD).await.status(), StatusCode::OK);
    let code = code_in(&sink.wait_for(1, Duration::from_secs(10))[0].text());
    let kept = stored_hash(format!("mail-otp:{subject}")).await;
    assert_eq!(kept.len(), 64);
    // Compared as bytes, with one buffer: the million guesses take a moment even unoptimised.
    let kept_bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&kept[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut guess = String::new();
    let found = (0..1_000_000u32).find(|n| {
        use std::fmt::Write as _;
        guess.clear();
        write!(guess, "{subject}:{n:06}").unwrap();
        digest(&SHA256, guess.as_bytes()).as_ref() == kept_bytes.as_slice()
    });
    assert_eq!(found, None, "a bare hash of the code ({code}) is not what is kept");
    assert_eq!(submit(&b, &url, &html, USER, PASSWORD, &code).await.status(), StatusCode::SEE_OTHER, "it signs in");

    let admin = s.p.app.admin();
    let operator = admin_api::Actor { id: "test".into(), source_ip: None };
    let activation = admin.issue_activation_code(&operator, USER).await.unwrap().code.expose_secret().replace(' ', "");
    let kept = stored_hash(format!("activation:{subject}")).await;
    assert_eq!(kept.len(), 64);
    assert_ne!(kept, bare_hash(&subject, &activation));
    let other = Browser::new();
    let (url, html) = open_login(&other, &s.p, "rp", &[]).await;
    assert_eq!(submit(&other, &url, &html, USER, PASSWORD, &activation).await.status(), StatusCode::SEE_OTHER);
}
