//! OpenSC reads the virtual CPS3 as it reads a real one: its iasecc driver ("IAS/ECC CPx")
//! and its PKCS#15 layer, through the private pcscd.

use std::process::Command;

use virtual_card::{Pcscd, TestIdentity};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A private OpenSC configuration (no card cache, optional debug log) in the pcscd folder.
fn opensc(pcscd: &Pcscd, program: &str) -> Result<Command, Box<dyn std::error::Error>> {
    let conf = pcscd.dir().join("opensc.conf");
    let debug = std::env::var("CADUCEE_OPENSC_DEBUG").unwrap_or_else(|_| "0".into());
    std::fs::write(
        &conf,
        format!(
            "app default {{\n debug = {debug};\n debug_file = {};\n reader_driver pcsc {{ }}\n framework pkcs15 {{ use_file_caching = false; }}\n}}\n",
            pcscd.dir().join("opensc.log").display()
        ),
    )?;
    let mut cmd = pcscd.command(program);
    cmd.env("OPENSC_CONF", conf);
    Ok(cmd)
}

#[test]
fn pkcs15_tool_lists_the_certificate_and_the_two_keys() -> TestResult {
    let pcscd = Pcscd::start()?;
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let sign_key = virtual_card::identity::rsa_2048_pkcs8()?;
    let profile = id.profile("1234")?.with_signature_key(sign_key, id.cert_der.clone());
    let _card = pcscd.insert_card(&profile)?;
    let out = opensc(&pcscd, "pkcs15-tool")?.args(["--reader", "0", "-D"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Key ref        : 130 (0x82)") && text.contains("Key ref        : 129 (0x81)"), "{text}");
    assert!(text.contains("CPS_AUT"), "{text}");
    assert!(text.contains("CPS_PRIV_AUT") && text.contains("CPS_PRIV_SIG"), "{text}");
    Ok(())
}
