//! Realism check: the agent's PKCS#11 backend through OpenSC's `opensc-pkcs11.so` (iasecc
//! driver, "IAS/ECC CPx") over the virtual CPS3 behind a private pcscd.

mod common;

use std::path::Path;

use common::*;

const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so";

fn opensc_agent(s: &Setup) -> Result<std::process::Command, Error> {
    if !Path::new(OPENSC_PKCS11).exists() {
        return Err("OpenSC is missing: apt-get install --no-install-recommends opensc".into());
    }
    let conf = s.pcscd.dir().join("opensc.conf");
    let debug = std::env::var("CADUCEE_OPENSC_DEBUG").unwrap_or_else(|_| "0".into());
    std::fs::write(
        &conf,
        format!(
            "app default {{\n debug = {debug};\n debug_file = {};\n framework pkcs15 {{ use_file_caching = false; }}\n}}\n",
            std::env::var("CADUCEE_OPENSC_LOG")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|_| s.pcscd.dir().join("opensc.log"))
                .display()
        ),
    )?;
    let mut cmd = agent(&s.pcscd);
    cmd.env("OPENSC_CONF", conf).args(["--backend", "pkcs11", "--pkcs11-module", OPENSC_PKCS11]);
    Ok(cmd)
}

#[test]
#[ignore = "OpenSC's IAS-ECC PIN and key handling reads security data objects (GET DATA on SDOs) that the virtual card does not model yet"]
fn opensc_pkcs11_over_the_virtual_card_signs() -> TestResult {
    let s = setup()?;
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut opensc_agent(&s)?, &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &s.id)
}
