//! The PKCS#11 backend against SoftHSM2 (a real PKCS#11 module; private configuration and
//! token folder), the way a CPS4 works through its vendor's middleware.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use virtual_card::TestIdentity;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "CPS4 test";

struct Token {
    dir: tempfile::TempDir,
    id: TestIdentity,
}

impl Token {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn agent(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_card-agent"));
        cmd.env("SOFTHSM2_CONF", self.conf()).env("RUST_LOG", "warn").args([
            "--backend",
            "pkcs11",
            "--pkcs11-module",
            SOFTHSM,
        ]);
        cmd
    }
}

fn run(cmd: &mut Command) -> Result<(), Error> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// A SoftHSM2 token holding the identity's key, its certificate and the CA's, plus a second
/// signing key whose certificate is not for client authentication (it must not be picked).
fn token() -> Result<Token, Error> {
    if !Path::new(SOFTHSM).exists() {
        return Err("SoftHSM2 is missing: apt-get install --no-install-recommends softhsm2".into());
    }
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens)?;
    std::fs::write(
        dir.path().join("softhsm2.conf"),
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )?;
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let t = Token { dir, id };
    run(Command::new("softhsm2-util").env("SOFTHSM2_CONF", t.conf()).args([
        "--init-token",
        "--free",
        "--label",
        TOKEN,
        "--pin",
        PIN,
        "--so-pin",
        "12345678",
    ]))?;
    let write = |file: &str, bytes: &[u8], ty: &str, obj_id: &str, label: &str| -> Result<(), Error> {
        let path = t.dir.path().join(file);
        std::fs::write(&path, bytes)?;
        let mut cmd = Command::new("pkcs11-tool");
        cmd.env("SOFTHSM2_CONF", t.conf())
            .args(["--module", SOFTHSM, "--token-label", TOKEN, "--login", "--pin", PIN, "--write-object"])
            .arg(&path)
            .args(["--type", ty, "--id", obj_id, "--label", label]);
        if ty == "privkey" {
            cmd.arg("--usage-sign");
        }
        run(&mut cmd)
    };
    // A decoy first: a signing key whose certificate is the CA's own (not client auth).
    write("decoy.der", &virtual_card::identity::rsa_2048_pkcs8()?, "privkey", "05", "decoy")?;
    write("decoy-cert.der", &t.id.ca_cert_der, "cert", "05", "decoy")?;
    write("key.der", &t.id.key_pkcs8, "privkey", "01", "CPS_PRIV_AUT")?;
    write("cert.der", &t.id.cert_der, "cert", "01", "CPS_AUT")?;
    write("ca.der", &t.id.ca_cert_der, "cert", "10", "CA")?;
    Ok(t)
}

#[test]
fn pkcs11_backend_signs_with_the_client_auth_key_on_softhsm() -> TestResult {
    let t = token()?;
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut t.agent(), &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &t.id)?;
    assert_eq!(json["certificates"].as_array().map(Vec::len), Some(2), "leaf and CA, once");
    let out = t.agent().arg("readers").output()?;
    assert!(String::from_utf8(out.stdout)?.contains(&format!("{TOKEN}\tcard")));
    Ok(())
}

#[test]
fn pkcs11_backend_maps_a_wrong_pin() -> TestResult {
    let t = token()?;
    let (code, json) = sign_cli(&mut t.agent(), &challenge(ORIGIN), "9999")?;
    assert_eq!((code, json["error"].as_str()), (2, Some("wrong_pin")), "{json}");
    // The right PIN still works (SoftHSM2 keeps no retry counter: CKR_PIN_LOCKED cannot be
    // produced with it; the mapping is the same code path).
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut t.agent(), &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &t.id)
}

#[test]
fn pkcs11_backend_uses_a_configured_label() -> TestResult {
    let t = token()?;
    let c = challenge(ORIGIN);
    let mut cmd = t.agent();
    cmd.args(["--pkcs11-key-label", "CPS_PRIV_AUT"]);
    let (code, json) = sign_cli(&mut cmd, &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &t.id)
}
