//! The virtual card through the real PC/SC stack: a private pcscd, the vpcd driver, and raw
//! APDUs sent by `virtual-cps apdu` (a PC/SC client in its own process).

use virtual_card::{Pcscd, TestIdentity};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SELECT_IAS: &str = "00A4040C0DE828BD080F8025000001FF0010";
const VERIFY_1234: &str = "002000010431323334";
const MSE_AUTH: &str = "002241A403840182";

fn apdus(pcscd: &Pcscd, apdus: &[&str]) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let out = pcscd
        .command(env!("CARGO_BIN_EXE_virtual-cps"))
        .arg("apdu")
        .arg("--reader")
        .arg(pcscd.reader_name())
        .args(apdus)
        .output()?;
    if !out.status.success() {
        return Err(format!("virtual-cps apdu: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_owned).collect())
}

fn internal_authenticate() -> String {
    format!("0088000033{}{}00", "3031300d060960864801650304020105000420", "11".repeat(32))
}

#[test]
fn key_operation_without_pin_is_refused_over_pcsc() -> TestResult {
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let (pcscd, card) = Pcscd::with_card(&id.profile("1234")?)?;
    let ia = internal_authenticate();
    let out = apdus(&pcscd, &[SELECT_IAS, MSE_AUTH, &ia, VERIFY_1234, MSE_AUTH, &ia])?;
    assert_eq!(out[..4], ["9000", "9000", "6982", "9000"]);
    assert_eq!(out[5].len(), 2 * 258);
    assert!(out[5].ends_with("9000"));
    assert_eq!(card.status().pin_tries_left, 3);
    Ok(())
}

#[test]
fn reset_clears_the_security_status() -> TestResult {
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let (pcscd, card) = Pcscd::with_card(&id.profile("1234")?)?;
    let ia = internal_authenticate();
    let out = apdus(&pcscd, &[SELECT_IAS, VERIFY_1234, "reset", SELECT_IAS, MSE_AUTH, &ia, "0020000100"])?;
    assert_eq!(out, ["9000", "9000", "reset", "9000", "9000", "6982", "63C3"]);
    assert!(!card.status().pin_verified);
    Ok(())
}

#[test]
fn removal_and_reinsertion_are_seen_by_pcscd() -> TestResult {
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let (pcscd, mut card) = Pcscd::with_card(&id.profile("1234")?)?;
    assert_eq!(apdus(&pcscd, &[SELECT_IAS, VERIFY_1234])?, ["9000", "9000"]);
    card.remove()?;
    assert!(apdus(&pcscd, &[SELECT_IAS]).is_err(), "no card in the reader");
    card.insert()?;
    assert_eq!(apdus(&pcscd, &[SELECT_IAS, "0020000100"])?, ["9000", "63C3"]);
    Ok(())
}

#[test]
fn workspace_binary_finds_a_built_binary() -> TestResult {
    let path = virtual_card::workspace_binary("virtual-cps")?;
    assert_eq!(path, std::path::PathBuf::from(env!("CARGO_BIN_EXE_virtual-cps")));
    assert!(virtual_card::workspace_binary("no-such-binary").is_err());
    Ok(())
}

#[test]
fn virtual_cps_run_inserts_a_card_from_files() -> TestResult {
    let pcscd = Pcscd::start()?;
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let dir = pcscd.dir();
    std::fs::write(dir.join("key.der"), &id.key_pkcs8)?;
    std::fs::write(dir.join("cert.der"), &id.cert_der)?;
    std::fs::write(dir.join("ca.der"), &id.ca_cert_der)?;
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_virtual-cps"))
        .args(["run", "--port", &pcscd.vpcd_port().to_string(), "--pin", "4321"])
        .arg("--key")
        .arg(dir.join("key.der"))
        .arg("--cert")
        .arg(dir.join("cert.der"))
        .arg("--ca")
        .arg(dir.join("ca.der"))
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let present = pcscd.wait_card_present(std::time::Duration::from_secs(10));
    let out = apdus(&pcscd, &[SELECT_IAS, "002000010434333231", "00A4020C02D001", "00B0000004"]);
    let _ = run.kill();
    let _ = run.wait();
    assert!(present, "pcscd did not see the card");
    let out = out?;
    assert_eq!(out[..3], ["9000", "9000", "9000"]);
    assert_eq!(out[3], format!("{}9000", id.cert_der[..4].iter().map(|b| format!("{b:02X}")).collect::<String>()));
    Ok(())
}
