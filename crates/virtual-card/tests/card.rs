//! The card's behaviour, APDU by APDU, without PC/SC.

use virtual_card::{TestIdentity, VirtualCard};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn card(pin: &str) -> Result<(VirtualCard, TestIdentity), Box<dyn std::error::Error>> {
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let profile = id.profile(pin)?.with_puk("87654321")?;
    Ok((VirtualCard::new(&profile, 1)?, id))
}

fn sw(answer: &[u8]) -> u16 {
    let n = answer.len();
    u16::from_be_bytes([answer[n - 2], answer[n - 1]])
}

const SELECT_IAS: &str = "00A4040C0DE828BD080F8025000001FF0010";

fn send(card: &VirtualCard, hex: &str) -> Vec<u8> {
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect();
    card.transmit_direct(&bytes)
}

#[test]
fn pin_tries_block_and_unblocking_code_resets_them() -> TestResult {
    let (card, _) = card("1234")?;
    assert_eq!(sw(&send(&card, SELECT_IAS)), 0x9000);
    assert_eq!(sw(&send(&card, "0020000100")), 0x63C3, "empty VERIFY tells tries left");
    assert_eq!(sw(&send(&card, "002000010431313131")), 0x63C2);
    assert_eq!(sw(&send(&card, "002000010431313131")), 0x63C1);
    assert_eq!(sw(&send(&card, "002000010431313131")), 0x6983);
    assert_eq!(sw(&send(&card, "002000010431323334")), 0x6983, "the right PIN is refused once blocked");
    assert_eq!(card.status().pin_tries_left, 0);
    // A wrong unblocking code costs one of its 10 tries.
    assert_eq!(sw(&send(&card, "002C0101083131313131313131")), 0x63C9);
    // The right one, with a new PIN.
    assert_eq!(sw(&send(&card, "002C00010C383736353433323139393939")), 0x9000);
    assert_eq!(card.status().pin_tries_left, 3);
    assert_eq!(card.status().puk_tries_left, 10);
    assert_eq!(sw(&send(&card, "002000010431323334")), 0x63C2, "the old PIN is gone");
    assert_eq!(sw(&send(&card, "002000010439393939")), 0x9000);
    assert_eq!(sw(&send(&card, "0020000100")), 0x9000, "empty VERIFY once verified");
    // RESET RETRY COUNTER with the code only keeps the PIN.
    assert_eq!(sw(&send(&card, "002000010431313131")), 0x63C2);
    assert_eq!(sw(&send(&card, "002C0101083837363534333231")), 0x9000);
    assert_eq!(card.status().pin_tries_left, 3);
    Ok(())
}

#[test]
fn key_operations_need_the_pin_and_sign_digest_infos() -> TestResult {
    let (card, id) = card("1234")?;
    assert_eq!(sw(&send(&card, SELECT_IAS)), 0x9000);
    assert_eq!(sw(&send(&card, "0022 41A4 03 840182".replace(' ', "").as_str())), 0x9000);
    let message = b"caducee-card-v1:https://login.example:nonce";
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message);
    let digest_info = "3031300d060960864801650304020105000420".to_owned() + &hex(hash.as_ref());
    let ia = format!("0088000033{digest_info}00");
    assert_eq!(sw(&send(&card, &ia)), 0x6982, "no key operation without the PIN");
    assert_eq!(sw(&send(&card, "002000010431323334")), 0x9000);
    let answer = send(&card, &ia);
    assert_eq!((answer.len(), sw(&answer)), (258, 0x9000));
    let (_, cert) = x509_parser::parse_x509_certificate(&id.cert_der)?;
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        cert.public_key().subject_public_key.data.to_vec(),
    );
    public.verify(message, &answer[..256]).map_err(|_| "the signature does not verify with the certificate's key")?;
    // Re-selecting the application clears the security status.
    assert_eq!(sw(&send(&card, SELECT_IAS)), 0x9000);
    assert_eq!(sw(&send(&card, "002241A403840182")), 0x9000);
    assert_eq!(sw(&send(&card, &ia)), 0x6982);
    // Unknown key, no signature key on this card.
    assert_eq!(sw(&send(&card, "002241A403840199")), 0x6A88);
    assert_eq!(sw(&send(&card, "002241B603840181")), 0x6A88);
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn files_read_in_chunks_with_iso_end_of_file() -> TestResult {
    let (card, id) = card("1234")?;
    assert_eq!(sw(&send(&card, SELECT_IAS)), 0x9000);
    // The authentication certificate by its FID, with its FCP.
    let fcp = send(&card, "00A4020402D001");
    assert_eq!(sw(&fcp), 0x9000);
    assert_eq!(fcp[0], 0x62);
    let mut cert = Vec::new();
    loop {
        let off = cert.len();
        let answer = send(&card, &format!("00B0{:04X}00", off));
        let s = sw(&answer);
        cert.extend_from_slice(&answer[..answer.len() - 2]);
        if s == 0x6282 {
            break;
        }
        assert_eq!(s, 0x9000);
    }
    assert_eq!(cert, id.cert_der);
    assert_eq!(sw(&send(&card, &format!("00B0{:04X}10", cert.len()))), 0x6B00);
    // By path from the MF, and errors.
    assert_eq!(sw(&send(&card, "00A4080C047F005031")), 0x9000);
    assert_eq!(sw(&send(&card, "00A4020C02ABCD")), 0x6A82);
    assert_eq!(sw(&send(&card, "00A4040C05A000000001")), 0x6A82);
    assert_eq!(sw(&send(&card, "00A4070C02ABCD")), 0x6A86);
    assert_eq!(sw(&send(&card, "00FF000000")), 0x6D00);
    assert_eq!(sw(&send(&card, "80B0000000")), 0x6E00);
    assert_eq!(sw(&send(&card, "002000010431")), 0x6700);
    Ok(())
}

#[test]
fn pso_compute_digital_signature_uses_the_signature_key() -> TestResult {
    let id = TestIdentity::generate("899700218896 Jean Dupont")?;
    let sign_key = virtual_card::identity::rsa_2048_pkcs8()?;
    let profile = id.profile("1234")?.with_signature_key(sign_key, id.cert_der.clone());
    let card = VirtualCard::new(&profile, 1)?;
    assert_eq!(sw(&send(&card, SELECT_IAS)), 0x9000);
    let digest_info = "3031300d060960864801650304020105000420".to_owned() + &"22".repeat(32);
    let cds = format!("002A9E9A33{digest_info}00");
    assert_eq!(sw(&send(&card, "002241B603840181")), 0x9000);
    assert_eq!(sw(&send(&card, &cds)), 0x6982);
    assert_eq!(sw(&send(&card, "002000010431323334")), 0x9000);
    let answer = send(&card, &cds);
    assert_eq!((answer.len(), sw(&answer)), (258, 0x9000));
    // The environment is per operation: INTERNAL AUTHENTICATE needs MSE SET AT.
    assert_eq!(sw(&send(&card, &format!("0088000033{digest_info}00"))), 0x6985);
    // A DigestInfo too long for the key's padding.
    assert_eq!(sw(&send(&card, &format!("002A9E9AF6{}00", "00".repeat(246)))), 0x6700);
    // Wrong P1-P2, wrong reference.
    assert_eq!(sw(&send(&card, "002A9E9B00")), 0x6A86);
    assert_eq!(sw(&send(&card, "002000020431323334")), 0x6A88);
    Ok(())
}
