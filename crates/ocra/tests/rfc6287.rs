//! RFC 6287's test vectors (Appendix C, «One-Way Challenge Response» and «Mutual Challenge-
//! Response» with PIN and counter), and what a malformed suite or question gives: an error,
//! never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ocra::{DataInput, HashFunction, OcraError, QuestionKind, Suite};

const KEY20: &[u8] = b"12345678901234567890";
const KEY32: &[u8] = b"12345678901234567890123456789012";
const KEY64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// SHA1("1234").
const PIN_SHA1: [u8; 20] = [
    0x71, 0x10, 0xed, 0xa4, 0xd0, 0x9e, 0x06, 0x2a, 0xa5, 0xe4, 0xa3, 0x90, 0xb0, 0xa5, 0x72, 0xac, 0x0d, 0x2c, 0x02,
    0x20,
];

fn question(i: usize) -> String {
    i.to_string().repeat(8)
}

#[test]
fn one_way_sha1_6_qn08() {
    let suite = Suite::parse("OCRA-1:HOTP-SHA1-6:QN08").unwrap();
    let expected = ["237653", "243178", "653583", "740991", "608993", "388898", "816933", "224598", "750600", "294470"];
    for (i, want) in expected.iter().enumerate() {
        let q = question(i);
        let input = DataInput { question: &q, ..DataInput::default() };
        assert_eq!(suite.compute(KEY20, &input).unwrap(), *want, "Q {q}");
    }
}

#[test]
fn sha256_8_with_counter_and_pin() {
    let suite = Suite::parse("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1").unwrap();
    let pin = suite.hash_password(b"1234").unwrap();
    assert_eq!(pin, PIN_SHA1);
    let expected = [
        "65347737", "86775851", "78192410", "71565254", "10104329", "65983500", "70069104", "91771096", "75011558",
        "08522129",
    ];
    for (c, want) in expected.iter().enumerate() {
        let input = DataInput { counter: Some(c as u64), question: "12345678", password_hash: Some(&PIN_SHA1) };
        assert_eq!(suite.compute(KEY32, &input).unwrap(), *want, "C {c}");
    }
}

#[test]
fn sha256_8_with_pin() {
    let suite = Suite::parse("OCRA-1:HOTP-SHA256-8:QN08-PSHA1").unwrap();
    let expected = ["83238735", "01501458", "17957585", "86776967", "86807031"];
    for (i, want) in expected.iter().enumerate() {
        let q = question(i);
        let input = DataInput { counter: None, question: &q, password_hash: Some(&PIN_SHA1) };
        assert_eq!(suite.compute(KEY32, &input).unwrap(), *want, "Q {q}");
    }
}

#[test]
fn sha512_8_with_counter() {
    let suite = Suite::parse("OCRA-1:HOTP-SHA512-8:C-QN08").unwrap();
    let expected = ["07016083", "63947962", "70123924", "25341727"];
    for (i, want) in expected.iter().enumerate() {
        let q = question(i);
        let input = DataInput { counter: Some(i as u64), question: &q, password_hash: None };
        assert_eq!(suite.compute(KEY64, &input).unwrap(), *want, "C {i} Q {q}");
    }
}

#[test]
fn a_suite_reads_back_what_it_says() {
    let suite: Suite = "OCRA-1:HOTP-SHA256-8:QH32".parse().unwrap();
    assert_eq!(suite.to_string(), "OCRA-1:HOTP-SHA256-8:QH32");
    assert_eq!(suite.hash_function(), HashFunction::Sha256);
    assert_eq!(suite.digits(), 8);
    assert!(!suite.has_counter());
    assert_eq!(suite.question_format().kind, QuestionKind::Hexadecimal);
    assert_eq!(suite.question_format().max_len, 32);
    assert_eq!(suite.password_hash_function(), None);
    assert_eq!(suite.hash_password(b"1234"), None);
    let with_pin = Suite::parse("OCRA-1:HOTP-SHA1-10:C-QA64-PSHA512").unwrap();
    assert_eq!(with_pin.password_hash_function(), Some(HashFunction::Sha512));
    assert_eq!(with_pin.hash_password(b"1234").unwrap().len(), 64);
    assert!(Suite::parse("OCRA-1:HOTP-SHA512-4:QN04").is_ok());
}

#[test]
fn qh32_takes_any_32_hex_digit_question() {
    let suite = Suite::parse("OCRA-1:HOTP-SHA256-8:QH32").unwrap();
    let key = [0x5au8; 32];
    // A cheap generator: every question different, every digit met, both cases.
    let mut x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
    let mut seen = std::collections::HashSet::new();
    for i in 0..200u32 {
        x = x.wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645).wrapping_add(0x5851_f42d_4c95_7f2d);
        let q = if i % 2 == 0 { format!("{x:032x}") } else { format!("{x:032X}") };
        let code = suite.compute(&key, &DataInput { question: &q, ..DataInput::default() }).unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        // The case of the hexadecimal digits does not matter.
        let other = if i % 2 == 0 { q.to_uppercase() } else { q.to_lowercase() };
        assert_eq!(suite.compute(&key, &DataInput { question: &other, ..DataInput::default() }).unwrap(), code);
        assert!(ocra::verify(&code, &code));
        seen.insert(code);
    }
    assert!(seen.len() > 190, "responses spread: {}", seen.len());
    let too_long = "0".repeat(33);
    assert!(matches!(
        suite.compute(&key, &DataInput { question: &too_long, ..DataInput::default() }),
        Err(OcraError::InvalidQuestion(_))
    ));
}

#[test]
fn malformed_or_unsupported_suites_are_errors() {
    let malformed = [
        "",
        ":",
        "::",
        "OCRA-1",
        "OCRA-1:HOTP-SHA1-6",
        "OCRA-1:HOTP-SHA1-6:QN08:",
        "OCRA-1:HOTP-SHA1-6:QN08:extra",
        "ocra-1:HOTP-SHA1-6:QN08",
        "OCRA-x:HOTP-SHA1-6:QN08",
        "OCRA-1:TOTP-SHA1-6:QN08",
        "OCRA-1:HOTP-SHA1:QN08",
        "OCRA-1:HOTP--6:QN08",
        "OCRA-1:HOTP-SHA1-3:QN08",
        "OCRA-1:HOTP-SHA1-11:QN08",
        "OCRA-1:HOTP-SHA1-06:QN08",
        "OCRA-1:HOTP-SHA1-+6:QN08",
        "OCRA-1:HOTP-SHA1-6-:QN08",
        "OCRA-1:HOTP-SHA1-:QN08",
        "OCRA-1:HOTP-SHA1-6:",
        "OCRA-1:HOTP-SHA1-6:C",
        "OCRA-1:HOTP-SHA1-6:C-C-QN08",
        "OCRA-1:HOTP-SHA1-6:QN08-C",
        "OCRA-1:HOTP-SHA1-6:QN03",
        "OCRA-1:HOTP-SHA1-6:QN65",
        "OCRA-1:HOTP-SHA1-6:QN8",
        "OCRA-1:HOTP-SHA1-6:QN008",
        "OCRA-1:HOTP-SHA1-6:QX08",
        "OCRA-1:HOTP-SHA1-6:qn08",
        "OCRA-1:HOTP-SHA1-6:QN08-QN08",
        "OCRA-1:HOTP-SHA1-6:QN08-",
        "OCRA-1:HOTP-SHA1-6:QN08--PSHA1",
        "OCRA-1:HOTP-SHA1-6:QN08-PSHA1-PSHA1",
        "OCRA-1:HOTP-SHA1-6:QN08-P",
        "OCRA-1:HOTP-SHA1-6:QN08-X",
        "OCRA-1:HOTP-SHA1-6:QÑ08",
        "OCRA-1:HOTP-SHA1-6:QN0٨",
        "OCRA-1:HOTP-SHA1-6:PSHA1",
    ];
    for suite in malformed {
        assert!(
            matches!(Suite::parse(suite), Err(OcraError::MalformedSuite(_))),
            "{suite:?}: {:?}",
            Suite::parse(suite)
        );
    }
    let unsupported = [
        "OCRA-2:HOTP-SHA1-6:QN08",
        "OCRA-1:HOTP-MD5-6:QN08",
        "OCRA-1:HOTP-SHA384-6:QN08",
        "OCRA-1:HOTP-SHA1-0:QN08",
        "OCRA-1:HOTP-SHA1-6:QN08-S064",
        "OCRA-1:HOTP-SHA1-6:QN08-T1M",
        "OCRA-1:HOTP-SHA512-8:QN08-T1M",
        "OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1-S128",
        "OCRA-1:HOTP-SHA1-6:QN08-PMD5",
    ];
    for suite in unsupported {
        assert!(matches!(Suite::parse(suite), Err(OcraError::Unsupported(_))), "{suite:?}: {:?}", Suite::parse(suite));
    }
    let s = Suite::parse("OCRA-1:HOTP-SHA1-6:QN08-T1M").unwrap_err().to_string();
    assert!(s.contains("timestamps (T) are not supported"), "{s}");
}

#[test]
fn questions_must_fit_the_suite() {
    let numeric = Suite::parse("OCRA-1:HOTP-SHA1-6:QN08").unwrap();
    let hex = Suite::parse("OCRA-1:HOTP-SHA1-6:QH08").unwrap();
    let alpha = Suite::parse("OCRA-1:HOTP-SHA1-6:QA08").unwrap();
    let compute = |s: &Suite, q: &str| s.compute(KEY20, &DataInput { question: q, ..DataInput::default() });
    for (suite, bad) in [
        (&numeric, ""),
        (&numeric, "123456789"),
        (&numeric, "1234567a"),
        (&numeric, "-1234567"),
        (&numeric, "١٢٣٤"),
        (&numeric, " 1234"),
        (&hex, "12345g"),
        (&hex, "0x1234"),
        (&hex, "123456789"),
        (&alpha, "abc def"),
        (&alpha, "abc-def"),
        (&alpha, "éèà"),
        (&alpha, "abcdefghi"),
    ] {
        assert!(matches!(compute(suite, bad), Err(OcraError::InvalidQuestion(_))), "{bad:?}");
    }
    assert!(compute(&numeric, "1").is_ok());
    assert!(compute(&hex, "deadBEEF").is_ok());
    assert!(compute(&alpha, "CLI22220").is_ok());
    // The longest numeric question fits once in hexadecimal.
    let long = Suite::parse("OCRA-1:HOTP-SHA256-8:QN64").unwrap();
    assert_eq!(compute(&long, &"9".repeat(64)).unwrap().len(), 8);
}

#[test]
fn counter_pin_and_key_must_match_the_suite() {
    let plain = Suite::parse("OCRA-1:HOTP-SHA256-8:QN08").unwrap();
    let full = Suite::parse("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1").unwrap();
    let q = "12345678";
    let with = |counter, password_hash| DataInput { counter, question: q, password_hash };
    assert_eq!(plain.compute(KEY32, &with(Some(1), None)), Err(OcraError::UnexpectedCounter));
    assert_eq!(plain.compute(KEY32, &with(None, Some(&PIN_SHA1))), Err(OcraError::UnexpectedPasswordHash));
    assert_eq!(full.compute(KEY32, &with(None, Some(&PIN_SHA1))), Err(OcraError::MissingCounter));
    assert_eq!(full.compute(KEY32, &with(Some(0), None)), Err(OcraError::MissingPasswordHash));
    assert_eq!(
        full.compute(KEY32, &with(Some(0), Some(&PIN_SHA1[..19]))),
        Err(OcraError::PasswordHashLength { expected: 20, got: 19 })
    );
    assert_eq!(plain.compute(b"", &with(None, None)), Err(OcraError::EmptyKey));
    assert!(full.compute(KEY32, &with(Some(u64::MAX), Some(&PIN_SHA1))).is_ok());
    // Any key length goes (HMAC hashes long keys).
    assert!(plain.compute(&[7u8; 1000], &with(None, None)).is_ok());
}

#[test]
fn verify_compares_whole_responses() {
    assert!(ocra::verify("07016083", "07016083"));
    assert!(!ocra::verify("07016083", "07016084"));
    assert!(!ocra::verify("07016083", "7016083"));
    assert!(!ocra::verify("07016083", "070160830"));
    assert!(!ocra::verify("07016083", ""));
    assert!(!ocra::verify("07016083", " 07016083"));
}

#[test]
fn no_input_panics() {
    // Every one-character deletion, duplication and replacement of a few suites, computed with
    // every kind of question: errors or responses, never a panic.
    let seeds = ["OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", "OCRA-1:HOTP-SHA1-6:QA64", "OCRA-1:HOTP-SHA512-10:QH32"];
    let replacements = ['0', '1', '4', '9', 'C', 'Q', 'P', 'S', 'T', 'A', 'H', 'N', '-', ':', 'é', '\0'];
    let questions = ["", "0", "12345678", "deadbeef", "ZZZZ", "é", &"9".repeat(70), &"f".repeat(64)];
    let mut variants = Vec::new();
    for seed in seeds {
        let chars: Vec<char> = seed.chars().collect();
        for i in 0..chars.len() {
            let mut deleted = chars.clone();
            deleted.remove(i);
            variants.push(deleted.iter().collect::<String>());
            let mut doubled = chars.clone();
            doubled.insert(i, chars[i]);
            variants.push(doubled.iter().collect());
            for r in replacements {
                let mut replaced = chars.clone();
                replaced[i] = r;
                variants.push(replaced.iter().collect());
            }
        }
    }
    let mut parsed = 0;
    for variant in &variants {
        if let Ok(suite) = Suite::parse(variant) {
            parsed += 1;
            let pin = suite.hash_password(b"1234");
            for q in questions {
                for counter in [None, Some(0)] {
                    let input = DataInput { counter, question: q, password_hash: pin.as_deref() };
                    if let Ok(code) = suite.compute(KEY20, &input) {
                        assert_eq!(code.len(), suite.digits() as usize);
                    }
                }
            }
        }
    }
    assert!(parsed > 10 && parsed < variants.len(), "{parsed} of {}", variants.len());
}
