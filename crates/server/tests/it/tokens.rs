//! `caducee token …` run as the real binary: what an operator sees when a vendor's file cannot be
//! imported (expired keys, wrong pre-shared key), when it can, and when a token is already held.

use std::io::Write as _;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_caducee");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../authn-methods/tests/pskc");

fn caducee(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("CADUCEE_DATA_DIR", data)
        .env_remove("CADUCEE_CONFIG")
        .current_dir(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn token_import_refusals_and_assignment_rules() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let fixture = |name: &str| format!("{FIXTURES}/{name}");

    let (ok, _, err) = caducee(dir, &["token", "import", &fixture("rfc6030-figure10.xml")], None);
    assert!(!ok && err.contains("654321") && err.contains("expired on 2006-05-31"), "{err}");

    let wrong = dir.join("wrong.hex");
    std::fs::write(&wrong, "00112233445566778899aabbccddeeff\n").unwrap();
    let args = ["token", "import", &fixture("rfc6030-figure6.xml"), "--preshared-key-file", wrong.to_str().unwrap()];
    let (ok, _, err) = caducee(dir, &args, None);
    assert!(!ok && err.contains("wrong key or passphrase"), "{err}");
    let (ok, out, _) = caducee(dir, &["token", "list"], None);
    assert!(ok && out.trim().is_empty(), "nothing imported: {out}");

    let psk = dir.join("psk.hex");
    std::fs::write(&psk, "1234 5678 9012 3456 7890 1234 5678 9012\n").unwrap();
    let args = ["token", "import", &fixture("rfc6030-figure6.xml"), "--preshared-key-file", psk.to_str().unwrap()];
    let (ok, out, err) = caducee(dir, &args, None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "imported 987654321\thotp");
    let (ok, out, err) = caducee(dir, &["token", "import", &fixture("totp-tokens.xml")], None);
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["imported TOTP-0001\ttotp-token", "imported TOTP-0002\ttotp-token"]);

    for id in ["899700000101", "899700000102"] {
        let (ok, _, err) =
            caducee(dir, &["user", "add", "--national-id", id, "--given-name", "A", "--family-name", "B"], None);
        assert!(ok, "{err}");
    }
    let (ok, _, err) = caducee(dir, &["token", "assign", "--serial", "TOTP-0001", "--user", "899700000101"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = caducee(dir, &["token", "assign", "--serial", "TOTP-0001", "--user", "899700000102"], None);
    assert!(!ok && err.contains("unassign it first"), "{err}");
    let (ok, _, err) = caducee(dir, &["token", "assign", "--serial", "NOPE", "--user", "899700000102"], None);
    assert!(!ok && err.contains("no token with serial NOPE"), "{err}");

    let (_, out, _) = caducee(dir, &["token", "list"], None);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "987654321\thotp\t-\tinactive",
            "TOTP-0001\ttotp-token\t899700000101\tactive",
            "TOTP-0002\ttotp-token\t-\tinactive"
        ]
    );
}
