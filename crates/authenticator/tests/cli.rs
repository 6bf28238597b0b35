//! The binary's own contract before any server is involved: what it says, in which form, and
//! with which exit code, when it cannot start. (Its flows against a real provider are in the
//! server's tests, `crates/server/tests/it/authenticator.rs`, which run this same binary.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caducee-authenticator"))
        .args(args)
        .env_remove("CADUCEE_AUTHENTICATOR_PIN")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_a_state_every_verb_but_enrol_says_to_enrol_first() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    for verb in [&["pushes"][..], &["approve", "abc", "--number", "42"], &["deny", "abc"], &["unblock"]] {
        let mut args = vec!["--state", state];
        args.extend_from_slice(verb);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{verb:?}: {stderr}");
        assert!(stderr.contains("enrôlez d'abord"), "{verb:?}: {stderr}");
    }
    let (code, stdout, _) = run(&["--json", "--state", state, "pushes"]);
    assert_eq!(code, 2);
    let error: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(error["error"], "state");
}

#[test]
fn an_enrolment_payload_must_name_its_server() {
    let (code, stdout, _) = run(&["--json", "enrol", "caducee-push://enrol?code=ABCD"]);
    assert_eq!(code, 2);
    let error: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(error["error"], "usage");
    let (code, _, stderr) = run(&["enrol", "ABCD"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--server"), "{stderr}");
}
