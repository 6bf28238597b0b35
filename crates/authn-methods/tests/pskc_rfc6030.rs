//! The PSKC reader against RFC 6030's own examples (tests/pskc/rfc6030-figure*.xml, the RFC's
//! text), tampered files, and what it must refuse rather than guess.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authn_methods::otp::{HashAlgorithm, TokenKind};
use authn_methods::pskc::{ContainerKey, PskcError, PskcKey, parse};
use zeroize::Zeroizing;

/// The seed of RFC 6030's examples, 3132333435363738393031323334353637383930 in hex.
const SEED: &[u8] = b"12345678901234567890";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/pskc/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// RFC 6030 Figure 6's pre-shared key.
fn preshared() -> ContainerKey {
    let hex = "12345678901234567890123456789012";
    let bytes = (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    ContainerKey::PreShared(Zeroizing::new(bytes))
}

fn passphrase(p: &str) -> ContainerKey {
    ContainerKey::Passphrase(Zeroizing::new(p.into()))
}

fn one(xml: &str, unlock: &ContainerKey) -> PskcKey {
    let mut keys = parse(xml, unlock).unwrap();
    assert_eq!(keys.len(), 1);
    keys.remove(0)
}

fn unsupported(xml: &str, unlock: &ContainerKey) -> (&'static str, String) {
    match parse(xml, unlock) {
        Err(PskcError::Unsupported { what, value }) => (what, value),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn figure2_basic_container() {
    let k = one(&fixture("rfc6030-figure2.xml"), &ContainerKey::None);
    // Figure 2's seed is the four bytes "1234" (too short to import: see tests/hardware.rs).
    assert_eq!(k.secret.as_slice(), b"1234");
    assert_eq!((k.kind, k.digits, k.counter, k.algorithm), (TokenKind::Hotp, 6, 0, HashAlgorithm::Sha1));
    assert_eq!(k.serial, "12345678", "no DeviceInfo: the key Id serves as serial");
    assert_eq!(k.issuer.as_deref(), Some("Issuer-A"));
}

#[test]
fn figure3_supplementary_data() {
    let k = one(&fixture("rfc6030-figure3.xml"), &ContainerKey::None);
    assert_eq!(k.secret.as_slice(), SEED);
    assert_eq!(
        (k.serial.as_str(), k.key_id.as_str(), k.manufacturer.as_deref(), k.digits, k.counter),
        ("987654321", "12345678", Some("Manufacturer"), 8, 0)
    );
    assert_eq!((k.not_before, k.not_after), (None, None));
}

#[test]
fn figure4_seed_derived_from_a_master_key_is_refused() {
    assert_eq!(
        unsupported(&fixture("rfc6030-figure4.xml"), &ContainerKey::None),
        ("key without a seed", "KeyReference".into())
    );
}

#[test]
fn figure5_pin_checked_by_the_device() {
    // The PIN key of the same device is the device's business: only the OTP key comes out.
    let k = one(&fixture("rfc6030-figure5.xml"), &ContainerKey::None);
    assert_eq!(k.secret.as_slice(), SEED);
    assert_eq!((k.serial.as_str(), k.key_id.as_str(), k.digits, k.counter), ("987654321", "12345678", 8, 0));
    // A PIN the server would have to check with the code is refused.
    let prepend = fixture("rfc6030-figure5.xml").replace("PINUsageMode=\"Local\"", "PINUsageMode=\"Prepend\"");
    assert_eq!(unsupported(&prepend, &ContainerKey::None), ("PIN usage mode", "Prepend".into()));
}

#[test]
fn figure6_preshared_aes128_key_with_mac() {
    let xml = fixture("rfc6030-figure6.xml");
    let k = one(&xml, &preshared());
    assert_eq!(k.secret.as_slice(), SEED);
    assert_eq!((k.serial.as_str(), k.digits, k.counter, k.kind), ("987654321", 8, 0, TokenKind::Hotp));
    assert_eq!(parse(&xml, &ContainerKey::None).unwrap_err(), PskcError::KeyNeeded);
    assert_eq!(parse(&xml, &passphrase("qwerty")).unwrap_err(), PskcError::WrongKeyKind("passphrase"));
    let wrong = ContainerKey::PreShared(Zeroizing::new(vec![0x11; 16]));
    assert!(matches!(parse(&xml, &wrong).unwrap_err(), PskcError::Decrypt(_) | PskcError::BadMac(_)));
    let short = ContainerKey::PreShared(Zeroizing::new(vec![0x12; 8]));
    assert_eq!(parse(&xml, &short).unwrap_err(), PskcError::KeyLength { given: 8, needed: 16 });
}

#[test]
fn figure7_pbkdf2_passphrase() {
    let xml = fixture("rfc6030-figure7.xml");
    let k = one(&xml, &passphrase("qwerty"));
    assert_eq!(k.secret.as_slice(), SEED);
    assert_eq!(
        (k.serial.as_str(), k.key_id.as_str(), k.manufacturer.as_deref(), k.digits),
        ("987654321", "123456", Some("TokenVendorAcme"), 8)
    );
    assert!(matches!(parse(&xml, &passphrase("azerty")).unwrap_err(), PskcError::Decrypt(_) | PskcError::BadMac(_)));
    assert_eq!(parse(&xml, &preshared()).unwrap_err(), PskcError::WrongKeyKind("pre-shared key"));
    assert_eq!(parse(&xml, &ContainerKey::None).unwrap_err(), PskcError::KeyNeeded);
}

#[test]
fn figure8_asymmetric_encryption_is_refused() {
    assert_eq!(unsupported(&fixture("rfc6030-figure8.xml"), &ContainerKey::None), ("EncryptionKey", "X509Data".into()));
}

#[test]
fn figure9_signed_container() {
    let k = one(&fixture("rfc6030-figure9.xml"), &ContainerKey::None);
    assert_eq!(k.secret.as_slice(), SEED);
    assert_eq!((k.serial.as_str(), k.key_id.as_str(), k.digits, k.counter), ("0755225266", "123", 6, 0));
}

#[test]
fn figure10_bulk_provisioning() {
    let keys = parse(&fixture("rfc6030-figure10.xml"), &ContainerKey::None).unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.serial.as_str(), k.key_id.as_str(), k.digits, k.counter, k.not_before, k.not_after))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("654321", "1", 8, 0, Some(1_146_441_600), Some(1_149_033_600)),
            ("123456", "2", 8, 0, Some(1_146_441_600), Some(1_149_033_600)),
            ("9999999", "3", 8, 0, Some(1_141_171_200), Some(1_143_763_200)),
            ("9999999", "4", 8, 0, Some(1_143_849_600), Some(1_146_355_200)),
        ]
    );
    assert!(keys.iter().all(|k| k.secret.as_slice() == SEED && k.manufacturer.as_deref() == Some("TokenVendorAcme")));
}

#[test]
fn totp_tokens_with_their_parameters() {
    let keys = parse(&fixture("totp-tokens.xml"), &ContainerKey::None).unwrap();
    let summary: Vec<_> = keys.iter().map(|k| (k.serial.as_str(), k.kind, k.algorithm, k.time_step, k.t0)).collect();
    assert_eq!(
        summary,
        vec![
            ("TOTP-0001", TokenKind::Totp, HashAlgorithm::Sha1, 30, 0),
            ("TOTP-0002", TokenKind::Totp, HashAlgorithm::Sha256, 30, 0)
        ]
    );
    assert_eq!(keys[1].secret.as_slice(), b"12345678901234567890123456789012");
    let hash_uri = fixture("totp-tokens.xml").replace("pskc:totp", "pskc#totp");
    assert_eq!(parse(&hash_uri, &ContainerKey::None).unwrap().len(), 2);
    let drifting = fixture("totp-tokens.xml").replace(
        "<TimeInterval><PlainValue>30</PlainValue></TimeInterval>",
        "<TimeInterval><PlainValue>60</PlainValue></TimeInterval><TimeDrift><PlainValue>-2</PlainValue></TimeDrift>",
    );
    let k = &parse(&drifting, &ContainerKey::None).unwrap()[0];
    assert_eq!((k.time_step, k.drift), (60, -2));
}

#[test]
fn debug_output_never_shows_a_seed() {
    let k = one(&fixture("rfc6030-figure3.xml"), &ContainerKey::None);
    let shown = format!("{k:?}");
    assert!(shown.contains("987654321") && shown.contains("redacted"));
    assert!(!shown.contains("1234567890") && !shown.contains("49, 50, 51"), "{shown}");
}

#[test]
fn tampering_fails_the_mac() {
    let secret = fixture("rfc6030-figure6.xml").replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
    assert_eq!(parse(&secret, &preshared()).unwrap_err(), PskcError::BadMac("12345678".into()));
    let iv = fixture("rfc6030-figure6.xml").replace("AAECAwQFBgcICQoLDA0OD+cI", "AQECAwQFBgcICQoLDA0OD+cI");
    assert_eq!(parse(&iv, &preshared()).unwrap_err(), PskcError::BadMac("12345678".into()));
    let mac = fixture("rfc6030-figure6.xml").replace("Su+NvtQf", "Su+NvtQg");
    assert_eq!(parse(&mac, &preshared()).unwrap_err(), PskcError::BadMac("12345678".into()));
    let pbkdf2 = fixture("rfc6030-figure7.xml").replace("oTvo+S22", "oTvo+S23");
    assert_eq!(parse(&pbkdf2, &passphrase("qwerty")).unwrap_err(), PskcError::BadMac("123456".into()));
    // The MAC key itself altered: whatever it decrypts to does not verify the value.
    let mac_key = fixture("rfc6030-figure6.xml").replace("ESIzRFVmd4iZABEiM0RVZgKn", "ESIzRFVmd4iZABEiM0RVZgKo");
    assert!(matches!(parse(&mac_key, &preshared()).unwrap_err(), PskcError::BadMac(_) | PskcError::Decrypt(_)));
}

#[test]
fn an_encrypted_value_without_a_mac_is_refused() {
    let xml = fixture("rfc6030-figure6.xml");
    let start = xml.find("<MACMethod").unwrap();
    let end = xml.find("</MACMethod>").unwrap() + "</MACMethod>".len();
    let no_method = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(parse(&no_method, &preshared()).unwrap_err(), PskcError::NoMac("12345678".into()));
    let no_value = xml.replace("<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=</ValueMAC>", "");
    assert_eq!(parse(&no_value, &preshared()).unwrap_err(), PskcError::NoMac("12345678".into()));
}

#[test]
fn unsupported_content_is_refused_not_guessed() {
    let fig3 = fixture("rfc6030-figure3.xml");
    let cases: Vec<(String, ContainerKey, &str)> = vec![
        (fig3.replace("pskc:hotp", "pskc:ocra"), ContainerKey::None, "key algorithm"),
        (fig3.replace("Encoding=\"DECIMAL\"", "Encoding=\"HEXADECIMAL\""), ContainerKey::None, "code encoding"),
        (fig3.replace("Length=\"8\"", "Length=\"4\""), ContainerKey::None, "code length"),
        (
            fig3.replace("<ResponseFormat", "<Suite>HMAC-SHA256</Suite><ResponseFormat"),
            ContainerKey::None,
            "HOTP algorithm suite",
        ),
        (fixture("totp-tokens.xml").replace("HMAC-SHA256", "HMAC-MD5"), ContainerKey::None, "algorithm suite"),
        (
            fig3.replace("</Data>", "</Data><Policy><NumberOfTransactions>5</NumberOfTransactions></Policy>"),
            ContainerKey::None,
            "key policy",
        ),
        (fig3.replace("</Data>", "</Data><Policy><KeyUsage>CR</KeyUsage></Policy>"), ContainerKey::None, "key usage"),
        (
            fixture("rfc6030-figure6.xml").replace("xmlenc#aes128-cbc", "xmlenc#kw-aes128"),
            preshared(),
            "encryption algorithm",
        ),
        (fixture("rfc6030-figure6.xml").replace("xmldsig#hmac-sha1", "xmldsig#hmac-md5"), preshared(), "MAC algorithm"),
        (
            fixture("rfc6030-figure7.xml").replace("<PRF/>", "<PRF Algorithm=\"urn:example:prf\"/>"),
            passphrase("qwerty"),
            "PBKDF2 PRF",
        ),
        (
            fixture("rfc6030-figure7.xml").replace("<KeyLength>16</KeyLength>", "<KeyLength>20</KeyLength>"),
            passphrase("qwerty"),
            "derived key length",
        ),
    ];
    for (xml, unlock, expected) in cases {
        assert_eq!(unsupported(&xml, &unlock).0, expected);
    }
    assert_eq!(
        parse(&fig3.replace("Version=\"1.0\"", "Version=\"2.0\""), &ContainerKey::None).unwrap_err(),
        PskcError::Version("2.0".into())
    );
    assert!(matches!(parse("<not-pskc/>", &ContainerKey::None).unwrap_err(), PskcError::NotPskc(_)));
    assert!(matches!(parse("garbage", &ContainerKey::None).unwrap_err(), PskcError::NotPskc(_)));
}

#[test]
fn elements_are_matched_by_namespace() {
    // Another vocabulary's KeyContainer is not a PSKC document.
    let foreign = fixture("rfc6030-figure3.xml").replace("urn:ietf:params:xml:ns:keyprov:pskc\"", "urn:example:x\"");
    assert!(matches!(parse(&foreign, &ContainerKey::None).unwrap_err(), PskcError::NotPskc(_)));
    // A KeyName outside xmldsig is not the pre-shared key's name.
    let keyname = fixture("rfc6030-figure6.xml").replace("ds:KeyName", "KeyName");
    assert_eq!(unsupported(&keyname, &preshared()), ("EncryptionKey", "KeyName".into()));
    // Any prefix bound to the PSKC namespace reads the same.
    let prefixed = fixture("rfc6030-figure7.xml")
        .replace("<pskc:", "<p:")
        .replace("</pskc:", "</p:")
        .replace("xmlns:pskc=", "xmlns:p=");
    assert_eq!(one(&prefixed, &passphrase("qwerty")).secret.as_slice(), SEED);
}

#[test]
fn validity_dates_need_a_time_zone() {
    let fig3 = fixture("rfc6030-figure3.xml");
    let dated = fig3.replace("</Data>", "</Data><Policy><ExpiryDate>2037-12-31T00:00:00Z</ExpiryDate></Policy>");
    assert_eq!(one(&dated, &ContainerKey::None).not_after, Some(2_145_830_400));
    let local = fig3.replace("</Data>", "</Data><Policy><ExpiryDate>2037-12-31T00:00:00</ExpiryDate></Policy>");
    assert_eq!(parse(&local, &ContainerKey::None).unwrap_err(), PskcError::Malformed("ExpiryDate"));
}

/// Issue 13, item 17: a TOTP key's origin (`Time`) and drift (`TimeDrift`) are the file's
/// numbers. Beyond any date they are refused at import with a message naming them, rather than
/// imported as a token whose code checks would overflow (see tests/hardware.rs).
#[test]
fn item_17_totp_origin_or_drift_beyond_any_date_is_refused_at_import() {
    let data = "<TimeInterval><PlainValue>30</PlainValue></TimeInterval>";
    let with = |t0: i64, drift: i64| {
        fixture("totp-tokens.xml")
            .replace("<Time><PlainValue>0</PlainValue></Time>", &format!("<Time><PlainValue>{t0}</PlainValue></Time>"))
            .replacen(data, &format!("{data}<TimeDrift><PlainValue>{drift}</PlainValue></TimeDrift>"), 1)
    };
    for t0 in [i64::MIN, i64::MAX, 253_402_300_800] {
        assert_eq!(parse(&with(t0, 0), &ContainerKey::None).unwrap_err(), PskcError::Malformed("Time"), "{t0}");
    }
    for drift in [i64::MIN, i64::MAX, 8_446_744_073] {
        assert_eq!(
            parse(&with(0, drift), &ContainerKey::None).unwrap_err(),
            PskcError::Malformed("TimeDrift"),
            "{drift}"
        );
    }
    // A real origin and drift (a token that ran 2 steps slow since 2017) are kept as they are.
    let kept = parse(&with(1_500_000_000, -2), &ContainerKey::None).unwrap();
    assert_eq!((kept[0].t0, kept[0].drift, kept[0].time_step), (1_500_000_000, -2, 30));
}
