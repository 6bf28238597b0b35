//! `card-agent` on the command line against a virtual CPS3 behind a private pcscd.

mod common;

use common::*;

#[test]
fn good_pin_signs_the_challenge_and_the_signature_verifies() -> TestResult {
    let s = setup()?;
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut agent(&s.pcscd), &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &s.id)?;
    // The agent resets the card when done: the PIN is not left verified.
    assert!(!s.card.status().pin_verified);
    assert_eq!(s.card.status().pin_tries_left, 3);
    Ok(())
}

#[test]
fn wrong_pins_count_down_then_block_the_card() -> TestResult {
    let s = setup()?;
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut agent(&s.pcscd), &c, "9999")?;
    assert_eq!((code, json["error"].as_str(), json["tries_left"].as_u64()), (2, Some("wrong_pin"), Some(2)));
    let (_, json) = sign_cli(&mut agent(&s.pcscd), &c, "9999")?;
    assert_eq!((json["error"].as_str(), json["tries_left"].as_u64()), (Some("wrong_pin"), Some(1)));
    let (_, json) = sign_cli(&mut agent(&s.pcscd), &c, "9999")?;
    assert_eq!(json["error"], "card_blocked");
    let (_, json) = sign_cli(&mut agent(&s.pcscd), &c, PIN)?;
    assert_eq!(json["error"], "card_blocked", "the right PIN is refused once blocked");
    assert_eq!(s.card.status().pin_tries_left, 0);
    Ok(())
}

#[test]
fn malformed_pin_and_challenge_cost_no_try() -> TestResult {
    let s = setup()?;
    let (_, json) = sign_cli(&mut agent(&s.pcscd), &challenge(ORIGIN), "12a4")?;
    assert_eq!(json["error"], "invalid_request");
    let (_, json) = sign_cli(&mut agent(&s.pcscd), "caducee-card-v1:https://x:short", PIN)?;
    assert_eq!(json["error"], "invalid_request");
    assert_eq!(s.card.status().pin_tries_left, 3);
    Ok(())
}

#[test]
fn card_pulled_out_mid_flow_is_card_removed() -> TestResult {
    let mut s = setup()?;
    // SELECT, then a few READ BINARY: pulled out while the certificates are being read.
    s.card.remove_after_apdus(3);
    let (_, json) = sign_cli(&mut agent(&s.pcscd), &challenge(ORIGIN), PIN)?;
    assert_eq!(json["error"], "card_removed", "{json}");
    // Put back, it works again.
    s.card.remove()?;
    s.card.insert()?;
    let c = challenge(ORIGIN);
    let (code, json) = sign_cli(&mut agent(&s.pcscd), &c, PIN)?;
    assert_eq!(code, 0, "{json}");
    check_signed(&json, &c, &s.id)
}

#[test]
fn no_card_in_the_reader_is_no_card() -> TestResult {
    let mut s = setup()?;
    s.card.remove()?;
    let mut cmd = agent(&s.pcscd);
    cmd.args(["--card-wait", "0"]);
    let (_, json) = sign_cli(&mut cmd, &challenge(ORIGIN), PIN)?;
    assert_eq!(json["error"], "no_card");
    let out = agent(&s.pcscd).arg("readers").output()?;
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains(&format!("{}\tempty", s.pcscd.reader_name())), "{text}");
    Ok(())
}

#[test]
fn readers_lists_the_reader_with_its_card() -> TestResult {
    let s = setup()?;
    let out = agent(&s.pcscd).arg("status").output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let readers = json["readers"].as_array().ok_or("no readers")?;
    assert!(readers.iter().any(|r| r["name"] == s.pcscd.reader_name().as_str() && r["card_present"] == true), "{json}");
    Ok(())
}
