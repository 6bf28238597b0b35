//! The raw limits, run as child processes pinned to the server's core: signatures per second
//! with aws-lc-rs (the keys and calls `oidc-core::keys` uses), argon2id hashes per second with
//! the parameters of `authn-methods::password`, and an axum hello-world endpoint started
//! exactly like `caducee serve` starts its runtime (`#[tokio::main]`, default settings).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde::{Deserialize, Serialize};

/// Operations per second on one core.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rates {
    pub rs256: f64,
    pub es256: f64,
    pub eddsa: f64,
    pub argon2id: f64,
}

/// A JWS signing input of the size of an access token's header and claims.
fn signing_input() -> Vec<u8> {
    let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"Pt_EVOGViXyUfCj6vTo2jkwso9RxZZAz_UT2ccg-rus"}"#;
    let claims = r#"{"iss":"http://127.0.0.1:8080","sub":"bench-cc","aud":"bench-cc","client_id":"bench-cc","exp":1790000300,"iat":1790000000,"jti":"2VbwfaqAzR2cYfNi6l2VLp6l2XUJF42u","scope":"api","gid":"RxUzq0bqGa_Bv72dPj-uZMHh0WXET6_DZ"}"#;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", b64.encode(header), b64.encode(claims)).into_bytes()
}

fn per_second(seconds: f64, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    // A short warm-up, then count whole operations for `seconds`.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        op()?;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        op()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Measures every limit for `seconds` each, on the calling thread.
pub fn measure(seconds: f64) -> anyhow::Result<Rates> {
    let rng = SystemRandom::new();
    let msg = signing_input();

    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).context("RSA key")?;
    let mut sig = vec![0u8; rsa.public_modulus_len()];
    let rs256 =
        per_second(seconds, || rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut sig).context("RSA signature"))?;

    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).context("EC key")?;
    let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).context("EC key")?;
    let es256 = per_second(seconds, || ec.sign(&rng, &msg).map(|_| ()).context("ECDSA signature"))?;

    let ed = Ed25519KeyPair::generate().context("Ed25519 key")?;
    let _ = ed.public_key();
    let eddsa = per_second(seconds, || {
        let _ = ed.sign(&msg);
        Ok(())
    })?;

    // authn-methods::password: Argon2id, m = 19 MiB, t = 2, p = 1 (checked by its tests).
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"caducee-bench-salt").map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon2id = per_second(seconds.max(2.0), || {
        hasher
            .hash_password(b"une longue phrase de passe", &salt)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })?;

    Ok(Rates { rs256, es256, eddsa, argon2id })
}

/// The hello-world endpoint, served until killed.
pub async fn hello(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}
