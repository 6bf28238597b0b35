//! What a virtual card is made of (keys, certificates, PIN, PUK) and the files it shows: the
//! master file, EF.DIR, EF.ATR, EF.GDO and the IAS application with its PKCS#15 objects.

use crate::tlv::{cons, integer, tlv};

/// The CPS3 answer to reset (OpenSC's iasecc driver knows it as "IAS/ECC CPx": T=0, 12
/// historical bytes).
pub const CPS3_ATR: [u8; 17] =
    [0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90, 0x00];

/// The AID of the IAS application (the CPS3's PKCS#15 application).
pub const IAS_AID: [u8; 13] = [0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10];

/// Key reference of the authentication key (MSE SET AT, tag `84`).
pub const AUTH_KEY_REF: u8 = 0x82;
/// Key reference of the signature (non-repudiation) key (MSE SET DST, tag `84`).
pub const SIGN_KEY_REF: u8 = 0x81;
/// Reference of the PIN ("code porteur") in VERIFY `00 20 00 01`.
pub const PIN_REF: u8 = 0x01;
/// Tries of the PIN and of the unblocking code.
pub const PIN_TRIES: u8 = 3;
pub const PUK_TRIES: u8 = 10;

/// File identifiers.
pub mod fid {
    pub const MF: u16 = 0x3F00;
    pub const EF_DIR: u16 = 0x2F00;
    pub const EF_ATR: u16 = 0x2F01;
    pub const EF_GDO: u16 = 0x2F02;
    /// EF.SN.ICC: the chip's serial number (tag 5A), short identifier 0x1C.
    pub const EF_SN: u16 = 0xD003;
    pub const APP: u16 = 0x7F00;
    /// The DF of the keys' security data objects.
    pub const KEYS: u16 = 0x0001;
    pub const ODF: u16 = 0x5031;
    pub const TOKEN_INFO: u16 = 0x5032;
    pub const AODF: u16 = 0x5033;
    pub const PRKDF: u16 = 0x5034;
    pub const CDF: u16 = 0x5035;
    pub const AUTH_CERT: u16 = 0xD001;
    pub const SIGN_CERT: u16 = 0xD002;
    /// The first CA certificate; the next ones follow.
    pub const CA_CERT: u16 = 0xD010;
}

/// Keys, certificates and codes of one virtual card.
#[derive(Clone)]
pub struct CardProfile {
    pub(crate) auth_key_pkcs8: Vec<u8>,
    pub(crate) auth_cert: Vec<u8>,
    pub(crate) sign: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) ca_certs: Vec<Vec<u8>>,
    pub(crate) pin: Vec<u8>,
    pub(crate) puk: Vec<u8>,
    pub(crate) serial: [u8; 8],
}

impl std::fmt::Debug for CardProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardProfile")
            .field("auth_cert_len", &self.auth_cert.len())
            .field("has_sign_key", &self.sign.is_some())
            .field("ca_certs", &self.ca_certs.len())
            .finish_non_exhaustive()
    }
}

/// A profile that cannot make a card.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("the PIN must have 4 to 8 digits")]
    BadPin,
    #[error("the unblocking code must have 4 to 16 digits")]
    BadPuk,
    #[error("the {0} key is not an RSA PKCS#8 key: {1}")]
    BadKey(&'static str, String),
}

pub(crate) fn valid_code(code: &[u8], min: usize, max: usize) -> bool {
    (min..=max).contains(&code.len()) && code.iter().all(u8::is_ascii_digit)
}

impl CardProfile {
    /// A card with an authentication key (PKCS#8 DER, RSA), its certificate (DER) and a PIN of
    /// 4 to 8 digits; the unblocking code is `12345678` until [`CardProfile::with_puk`].
    pub fn new(auth_key_pkcs8: Vec<u8>, auth_cert: Vec<u8>, pin: &str) -> Result<CardProfile, ProfileError> {
        if !valid_code(pin.as_bytes(), 4, 8) {
            return Err(ProfileError::BadPin);
        }
        Ok(CardProfile {
            auth_key_pkcs8,
            auth_cert,
            sign: None,
            ca_certs: Vec::new(),
            pin: pin.as_bytes().to_vec(),
            puk: b"12345678".to_vec(),
            serial: [0x80, 0x25, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67],
        })
    }

    pub fn with_puk(mut self, puk: &str) -> Result<CardProfile, ProfileError> {
        if !valid_code(puk.as_bytes(), 4, 16) {
            return Err(ProfileError::BadPuk);
        }
        self.puk = puk.as_bytes().to_vec();
        Ok(self)
    }

    /// Adds a CA certificate (DER), shown in the PKCS#15 certificates with the authority flag.
    pub fn with_ca_cert(mut self, cert: Vec<u8>) -> CardProfile {
        self.ca_certs.push(cert);
        self
    }

    /// Adds the signature key (reference `0x81`) and its certificate.
    pub fn with_signature_key(mut self, key_pkcs8: Vec<u8>, cert: Vec<u8>) -> CardProfile {
        self.sign = Some((key_pkcs8, cert));
        self
    }

    pub fn with_serial(mut self, serial: [u8; 8]) -> CardProfile {
        self.serial = serial;
        self
    }

    pub fn auth_cert(&self) -> &[u8] {
        &self.auth_cert
    }

    pub fn ca_certs(&self) -> &[Vec<u8>] {
        &self.ca_certs
    }
}

/// One elementary file.
#[derive(Debug, Clone)]
pub(crate) struct Ef {
    pub fid: u16,
    pub content: Vec<u8>,
}

/// The files of the card: the MF's EFs, and the application DF's EFs.
#[derive(Debug, Clone)]
pub(crate) struct FileSystem {
    pub mf: Vec<Ef>,
    pub app: Vec<Ef>,
}

fn path(fids: &[u16]) -> Vec<u8> {
    // PKCS#15 Path ::= SEQUENCE { path OCTET STRING, ... }
    let bytes: Vec<u8> = fids.iter().flat_map(|f| f.to_be_bytes()).collect();
    cons(&[0x30], &[tlv(&[0x04], &bytes)])
}

fn utf8(s: &str) -> Vec<u8> {
    tlv(&[0x0C], s.as_bytes())
}

fn octets(b: &[u8]) -> Vec<u8> {
    tlv(&[0x04], b)
}

/// DER BIT STRING from the bits set (bit 0 first, as PKCS#15 flags and usages are written).
fn bits(set: &[u8]) -> Vec<u8> {
    let max = set.iter().copied().max().map_or(0, |m| usize::from(m) + 1);
    let nbytes = max.div_ceil(8);
    let mut v = vec![0u8; nbytes];
    for b in set {
        v[usize::from(*b) / 8] |= 0x80 >> (b % 8);
    }
    let unused = (nbytes * 8 - max) as u8;
    let mut out = vec![if nbytes == 0 { 0 } else { unused }];
    out.extend_from_slice(&v);
    tlv(&[0x03], &out)
}

fn boolean_true() -> Vec<u8> {
    tlv(&[0x01], &[0xFF])
}

/// `ID` of the objects: the authentication pair `01`, the signature pair `02`, CAs `1x`.
const AUTH_ID: u8 = 0x01;
const SIGN_ID: u8 = 0x02;
const PIN_AUTH_ID: u8 = 0x01;

impl CardProfile {
    pub(crate) fn file_system(&self) -> FileSystem {
        let app_label = "CPS3 IAS";
        // EF.DIR: one application template.
        let ef_dir = cons(
            &[0x61],
            &[tlv(&[0x4F], &IAS_AID), tlv(&[0x50], app_label.as_bytes()), tlv(&[0x51], &[0x3F, 0x00, 0x7F, 0x00])],
        );
        // EF.ATR (IAS-ECC): card capabilities, pre-issuing data and the I/O buffer sizes
        // (send 255, recv 256, the same under secure messaging).
        let ef_atr = [
            tlv(&[0x47], &[0x80, 0x01, 0x00]),
            tlv(&[0x46], &[0x80, 0x01, 0x01, 0x01]),
            tlv(
                &[0xE0],
                &[0x02, 0x02, 0x00, 0xFF, 0x02, 0x02, 0x00, 0xFF, 0x02, 0x02, 0x01, 0x00, 0x02, 0x02, 0x01, 0x00],
            ),
            tlv(&[0x4F], &IAS_AID),
        ]
        .concat();
        // EF.GDO: the card's serial number (ICC serial number, tag 5A).
        let ef_gdo = tlv(&[0x5A], &self.serial);

        let odf = [
            cons(&[0xA8], &[path(&[fid::MF, fid::APP, fid::AODF])]),
            cons(&[0xA0], &[path(&[fid::MF, fid::APP, fid::PRKDF])]),
            cons(&[0xA4], &[path(&[fid::MF, fid::APP, fid::CDF])]),
        ]
        .concat();
        let serial_hex: String = self.serial.iter().map(|b| format!("{b:02X}")).collect();
        // TokenInfo ::= SEQUENCE { version, serialNumber, manufacturerID, label [0], tokenflags }
        let token_info = cons(
            &[0x30],
            &[
                integer(0),
                octets(serial_hex.as_bytes()),
                utf8("Caducée virtual CPS3"),
                tlv(&[0x80], b"CPS3 virtuelle"),
                bits(&[]),
                // supportedAlgorithms [2]: RSA PKCS#1 v1.5 (CKM_RSA_PKCS) for
                // compute-signature, the card's algorithm reference 02.
                cons(
                    &[0xA2],
                    &[cons(
                        &[0x30],
                        &[
                            integer(1),
                            integer(1),
                            tlv(&[0x05], &[]),
                            bits(&[1]),
                            tlv(&[0x06], &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]),
                            integer(2),
                        ],
                    )],
                ),
            ],
        );
        // AODF: the PIN ("code porteur"), ascii-numeric, 4..8 digits, local, reference 1.
        let aodf = cons(
            &[0x30],
            &[
                cons(&[0x30], &[utf8("Code porteur"), bits(&[0])]),
                cons(&[0x30], &[octets(&[PIN_AUTH_ID])]),
                cons(
                    &[0xA1],
                    &[cons(
                        &[0x30],
                        &[
                            bits(&[1, 4]),         // local, initialized
                            tlv(&[0x0A], &[0x01]), // ascii-numeric
                            integer(4),            // minLength
                            integer(8),            // storedLength
                            integer(8),            // maxLength
                            tlv(&[0x80], &[PIN_REF]),
                            path(&[fid::MF, fid::APP]),
                        ],
                    )],
                ),
            ],
        );
        let prkey = |label: &str, id: u8, usage: &[u8], key_ref: u8| {
            cons(
                &[0x30],
                &[
                    cons(&[0x30], &[utf8(label), bits(&[0]), octets(&[PIN_AUTH_ID])]),
                    cons(&[0x30], &[octets(&[id]), bits(usage), bits(&[0, 2]), integer(u32::from(key_ref))]),
                    cons(&[0xA1], &[cons(&[0x30], &[path(&[fid::MF, fid::APP]), integer(2048)])]),
                ],
            )
        };
        // usage bits: sign (2), signRecover (3), nonRepudiation (9).
        let mut prkdf = prkey("CPS_PRIV_AUT", AUTH_ID, &[2], AUTH_KEY_REF);
        if self.sign.is_some() {
            prkdf.extend(prkey("CPS_PRIV_SIG", SIGN_ID, &[9], SIGN_KEY_REF));
        }
        let cert = |label: &str, id: u8, authority: bool, file: u16| {
            let mut common = vec![octets(&[id])];
            if authority {
                common.push(boolean_true());
            }
            cons(
                &[0x30],
                &[
                    cons(&[0x30], &[utf8(label), bits(&[])]),
                    cons(&[0x30], &common),
                    cons(&[0xA1], &[cons(&[0x30], &[path(&[fid::MF, fid::APP, file])])]),
                ],
            )
        };
        let mut cdf = cert("CPS_AUT", AUTH_ID, false, fid::AUTH_CERT);
        let mut app = vec![
            Ef { fid: fid::ODF, content: odf },
            Ef { fid: fid::TOKEN_INFO, content: token_info },
            Ef { fid: fid::AODF, content: aodf },
            Ef { fid: fid::PRKDF, content: prkdf },
            Ef { fid: fid::AUTH_CERT, content: self.auth_cert.clone() },
        ];
        if let Some((_, sign_cert)) = &self.sign {
            cdf.extend(cert("CPS_SIG", SIGN_ID, false, fid::SIGN_CERT));
            app.push(Ef { fid: fid::SIGN_CERT, content: sign_cert.clone() });
        }
        for (i, ca) in self.ca_certs.iter().enumerate() {
            let n = u8::try_from(i).unwrap_or(0xEF);
            let file = fid::CA_CERT + u16::from(n);
            cdf.extend(cert(&format!("CPS_CA_{}", i + 1), 0x10 + n, true, file));
            app.push(Ef { fid: file, content: ca.clone() });
        }
        app.push(Ef { fid: fid::CDF, content: cdf });
        FileSystem {
            mf: vec![
                Ef { fid: fid::EF_DIR, content: ef_dir },
                Ef { fid: fid::EF_ATR, content: ef_atr },
                Ef { fid: fid::EF_GDO, content: ef_gdo },
                Ef { fid: fid::EF_SN, content: tlv(&[0x5A], &self.serial) },
            ],
            app,
        }
    }
}
