//! What the agent's tests share: a private pcscd with a virtual CPS3, the real `card-agent`
//! binary as a child process (its PC/SC client reaches the private pcscd through
//! `PCSCLITE_CSOCK_NAME`), challenges and signature checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use virtual_card::{Pcscd, TestIdentity, VirtualCard};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Error = Box<dyn std::error::Error>;

pub const PIN: &str = "1234";
pub const ORIGIN: &str = "https://login.example";

pub struct Setup {
    pub pcscd: Pcscd,
    pub card: VirtualCard,
    pub id: TestIdentity,
}

/// A private pcscd with a virtual CPS3 (PIN 1234) in its reader.
pub fn setup() -> Result<Setup, Error> {
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let (pcscd, card) = Pcscd::with_card(&id.profile(PIN)?)?;
    Ok(Setup { pcscd, card, id })
}

/// The agent binary, as a client of this pcscd.
pub fn agent(pcscd: &Pcscd) -> Command {
    let mut cmd = pcscd.command(env!("CARGO_BIN_EXE_card-agent"));
    cmd.env("RUST_LOG", "warn").env_remove("CARD_AGENT_ALLOW_ORIGIN");
    cmd
}

/// `caducee-card-v1:<origin>:<nonce>` with a fresh nonce.
pub fn challenge(origin: &str) -> String {
    let mut nonce = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut nonce);
    format!("caducee-card-v1:{origin}:{}", URL_SAFE_NO_PAD.encode(nonce))
}

/// `card-agent sign` with the PIN on stdin: exit code and JSON.
pub fn sign_cli(cmd: &mut Command, challenge: &str, pin: &str) -> Result<(i32, serde_json::Value), Error> {
    let mut child = cmd
        .args(["sign", "--pin-stdin", "--challenge", challenge])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // The agent may have refused the request (and exited) before reading the PIN.
        let _ = writeln!(stdin, "{pin}");
    }
    let out = child.wait_with_output()?;
    let json = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{e}: stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), json))
}

fn b64d(s: &serde_json::Value) -> Result<Vec<u8>, Error> {
    Ok(URL_SAFE_NO_PAD.decode(s.as_str().ok_or("not a string")?)?)
}

/// Checks a success answer: the certificates are the card's (leaf first), the signature
/// verifies with the leaf's public key over SHA-256 of the challenge.
pub fn check_signed(json: &serde_json::Value, challenge: &str, id: &TestIdentity) -> TestResult {
    assert_eq!(json["algorithm"], "RSA-PKCS1-SHA256", "{json}");
    let certs = json["certificates"].as_array().ok_or("no certificates")?;
    let certs: Vec<Vec<u8>> = certs.iter().map(b64d).collect::<Result<_, _>>()?;
    assert_eq!(certs.first(), Some(&id.cert_der), "the leaf comes first");
    assert_eq!(certs.get(1), Some(&id.ca_cert_der), "then the CA");
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0])?;
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        leaf.public_key().subject_public_key.data.to_vec(),
    );
    key.verify(challenge.as_bytes(), &b64d(&json["signature"])?)
        .map_err(|_| "the signature does not verify over SHA-256(challenge)")?;
    Ok(())
}

/// `card-agent serve` on a free loopback port; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(mut cmd: Command, origins: &[&str]) -> Result<Server, Error> {
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        for o in origins {
            cmd.args(["--allow-origin", o]);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let base = line.trim().strip_prefix("listening on ").ok_or(format!("unexpected: {line}"))?.to_owned();
        Ok(Server { child, base })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
