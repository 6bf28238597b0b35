//! Realism check: the agent's PKCS#11 backend through OpenSC's `opensc-pkcs11.so` (iasecc
//! driver, "IAS/ECC CPx") over the virtual CPS3 behind a private pcscd. OpenSC reads the PIN's
//! and the keys' security data objects (GET DATA), logs in with VERIFY and signs with MSE SET
//! AT + INTERNAL AUTHENTICATE; built with OpenSSL 3 it refuses CKM_SHA256_RSA_PKCS on IAS-ECC
//! cards, so the agent falls back to CKM_RSA_PKCS over the DigestInfo.

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

fn opensc_pkcs11_over_the_virtual_card_signs() -> TestResult {
    let s = setup()?;
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut opensc_agent(&s)?, &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &s.id)
}

#[test]
fn opensc_pkcs11_maps_a_wrong_pin_and_the_card_counts_it() -> TestResult {
    let s = setup()?;
    let (code, json) = sign_cli(&mut opensc_agent(&s)?, &challenge(ORIGIN), "9999")?;
    assert_eq!((code, json["error"].as_str()), (2, Some("wrong_pin")), "{json}");
    assert_eq!(s.card.status().pin_tries_left, 2);
    Ok(())
}
