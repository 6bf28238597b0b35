//! The card's behaviour: one APDU in, one response out, over the state a real CPS3 keeps
//! (current file, PIN and unblocking-code counters, security status, security environment).

use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};

use crate::apdu::{Command, Response, sw};
use crate::profile::{
    AUTH_KEY_REF, CPS3_ATR, CardProfile, FileSystem, IAS_AID, PIN_REF, PIN_TRIES, PUK_TRIES, ProfileError,
    SIGN_KEY_REF, fid, valid_code,
};

/// What a test can see of the card's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardStatus {
    pub pin_tries_left: u8,
    pub puk_tries_left: u8,
    pub pin_verified: bool,
    pub powered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Df {
    Mf,
    App,
    /// `3F00/0001`, where the CPS3 keeps its keys' security data objects (OpenSC's iasecc
    /// driver looks there); no EF.
    Keys,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// MSE SET AT: INTERNAL AUTHENTICATE.
    Authenticate,
    /// MSE SET DST: PSO COMPUTE DIGITAL SIGNATURE.
    Sign,
}

/// A virtual CPS3.
pub struct Card {
    fs: FileSystem,
    auth_key: RsaPrivateKey,
    sign_key: Option<RsaPrivateKey>,
    pin: Vec<u8>,
    puk: Vec<u8>,
    pin_tries: u8,
    puk_tries: u8,
    // Session state, lost at power off and reset.
    powered: bool,
    verified: bool,
    df: Df,
    ef: Option<u16>,
    se: Option<(Operation, u8)>,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card").field("status", &self.status()).finish_non_exhaustive()
    }
}

fn key(role: &'static str, der: &[u8]) -> Result<RsaPrivateKey, ProfileError> {
    RsaPrivateKey::from_pkcs8_der(der).map_err(|e| ProfileError::BadKey(role, e.to_string()))
}

impl Card {
    pub fn new(profile: &CardProfile) -> Result<Card, ProfileError> {
        let auth_key = key("authentication", &profile.auth_key_pkcs8)?;
        let sign_key = match &profile.sign {
            Some((der, _)) => Some(key("signature", der)?),
            None => None,
        };
        Ok(Card {
            fs: profile.file_system(),
            auth_key,
            sign_key,
            pin: profile.pin.clone(),
            puk: profile.puk.clone(),
            pin_tries: PIN_TRIES,
            puk_tries: PUK_TRIES,
            powered: false,
            verified: false,
            df: Df::Mf,
            ef: None,
            se: None,
        })
    }

    pub fn atr(&self) -> &'static [u8] {
        &CPS3_ATR
    }

    pub fn status(&self) -> CardStatus {
        CardStatus {
            pin_tries_left: self.pin_tries,
            puk_tries_left: self.puk_tries,
            pin_verified: self.verified,
            powered: self.powered,
        }
    }

    fn clear_session(&mut self) {
        self.verified = false;
        self.df = Df::Mf;
        self.ef = None;
        self.se = None;
    }

    pub fn power_on(&mut self) {
        self.clear_session();
        self.powered = true;
    }

    pub fn power_off(&mut self) {
        self.clear_session();
        self.powered = false;
    }

    pub fn reset(&mut self) {
        self.power_on();
    }

    /// Processes one command APDU.
    pub fn process(&mut self, bytes: &[u8]) -> Response {
        let Ok(cmd) = Command::parse(bytes) else {
            return Response::status(sw::WRONG_LENGTH);
        };
        // Only the interindustry class, no secure messaging, no chaining.
        if cmd.cla != 0x00 {
            return Response::status(sw::CLA_NOT_SUPPORTED);
        }
        match cmd.ins {
            0xA4 => self.select(&cmd),
            0xB0 => self.read_binary(&cmd),
            0x20 => self.verify(&cmd),
            0x2C => self.reset_retry_counter(&cmd),
            0x22 => self.manage_security_environment(&cmd),
            0x88 => self.internal_authenticate(&cmd),
            0x2A => self.perform_security_operation(&cmd),
            0xCB => self.get_data(&cmd),
            _ => Response::status(sw::INS_NOT_SUPPORTED),
        }
    }

    // --- files ---

    fn find(&self, df: Df, id: u16) -> Option<&crate::profile::Ef> {
        let files: &[crate::profile::Ef] = match df {
            Df::Mf => &self.fs.mf,
            Df::App => &self.fs.app,
            Df::Keys => &[],
        };
        files.iter().find(|ef| ef.fid == id)
    }

    fn enter(&mut self, df: Df, by_aid: bool) {
        // Selecting the application by its AID starts a new session of it: the security
        // status is cleared (the PIN is the card's, so moving between DFs keeps it).
        if by_aid {
            self.verified = false;
            self.se = None;
        }
        self.df = df;
        self.ef = None;
    }

    fn fcp_df(&self, df: Df) -> Vec<u8> {
        use crate::tlv::tlv;
        let (id, aid): (u16, &[u8]) = match df {
            Df::Mf => (fid::MF, &[]),
            Df::App => (fid::APP, &IAS_AID),
            Df::Keys => (fid::KEYS, &[]),
        };
        let mut body = [tlv(&[0x82], &[0x38]), tlv(&[0x83], &id.to_be_bytes())].concat();
        if !aid.is_empty() {
            body.extend(tlv(&[0x84], aid));
        }
        body.extend(tlv(&[0x8A], &[0x05]));
        // IAS-ECC security attributes (contact): delete and create never.
        body.extend(tlv(&[0xA1], &tlv(&[0x8C], &[0x42, 0xFF, 0xFF])));
        tlv(&[0x62], &body)
    }

    fn fcp_ef(id: u16, size: usize) -> Vec<u8> {
        use crate::tlv::tlv;
        let size = u16::try_from(size).unwrap_or(u16::MAX);
        let body = [
            tlv(&[0x80], &size.to_be_bytes()),
            tlv(&[0x82], &[0x01]),
            tlv(&[0x83], &id.to_be_bytes()),
            tlv(&[0x8A], &[0x05]),
            // IAS-ECC security attributes (contact): update never, read always.
            tlv(&[0xA1], &tlv(&[0x8C], &[0x03, 0xFF, 0x00])),
        ]
        .concat();
        tlv(&[0x62], &body)
    }

    /// Resolves one file identifier from `df`: a DF (MF or the application) or an EF there.
    fn resolve(&self, df: Df, id: u16) -> Option<(Df, Option<u16>)> {
        match id {
            fid::MF => Some((Df::Mf, None)),
            fid::APP if df == Df::Mf => Some((Df::App, None)),
            fid::KEYS if df == Df::Mf => Some((Df::Keys, None)),
            _ => self.find(df, id).map(|_| (df, Some(id))),
        }
    }

    fn select(&mut self, cmd: &Command) -> Response {
        // P2: b4-b3 say what to answer (FCI, FCP, FMD, nothing); first occurrence only.
        if cmd.p2 & 0xF3 != 0 {
            return Response::status(sw::INCORRECT_P1P2);
        }
        let fcp_wanted = cmd.p2 & 0x0C != 0x0C;
        let data = &cmd.data;
        let fids = |d: &[u8]| -> Option<Vec<u16>> {
            if d.is_empty() || !d.len().is_multiple_of(2) {
                return None;
            }
            Some(d.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
        };
        let target: Option<(Df, Option<u16>, bool)> = match cmd.p1 {
            // MF, or a file identifier seen from the current DF.
            0x00 => {
                if data.is_empty() {
                    Some((Df::Mf, None, false))
                } else if data.len() != 2 {
                    return Response::status(sw::WRONG_LENGTH);
                } else {
                    let id = u16::from_be_bytes([data[0], data[1]]);
                    self.resolve(self.df, id).map(|(d, e)| (d, e, false))
                }
            }
            // A child DF, an EF of the current DF.
            0x01 | 0x02 => {
                if data.len() != 2 {
                    return Response::status(sw::WRONG_LENGTH);
                }
                let id = u16::from_be_bytes([data[0], data[1]]);
                match (cmd.p1, self.resolve(self.df, id)) {
                    // IAS-ECC cards take the MF's identifier here too.
                    (_, Some((Df::Mf, None))) => Some((Df::Mf, None, false)),
                    (0x01, Some((d, None))) if d != self.df => Some((d, None, false)),
                    (0x02, Some((d, Some(e)))) => Some((d, Some(e), false)),
                    _ => None,
                }
            }
            // The parent DF.
            0x03 => Some((Df::Mf, None, false)),
            // By DF name (AID), full name only.
            0x04 => {
                if data.is_empty() {
                    Some((Df::Mf, None, false))
                } else if data.as_slice() == IAS_AID {
                    Some((Df::App, None, true))
                } else {
                    None
                }
            }
            // A path from the MF (08) or from the current DF (09); a path starting with 3F00
            // starts at the MF either way.
            0x08 | 0x09 => {
                let Some(ids) = fids(data) else {
                    return Response::status(sw::WRONG_LENGTH);
                };
                let mut df = if cmd.p1 == 0x08 { Df::Mf } else { self.df };
                let mut ef = None;
                let mut found = true;
                for (i, id) in ids.iter().enumerate() {
                    if ef.is_some() {
                        found = false;
                        break;
                    }
                    match self.resolve(df, *id) {
                        Some((d, e)) if *id != fid::MF || i == 0 => {
                            df = d;
                            ef = e;
                        }
                        _ => {
                            found = false;
                            break;
                        }
                    }
                }
                found.then_some((df, ef, false))
            }
            _ => return Response::status(sw::INCORRECT_P1P2),
        };
        let Some((df, ef, by_aid)) = target else {
            return Response::status(sw::FILE_NOT_FOUND);
        };
        if ef.is_none() || df != self.df {
            self.enter(df, by_aid);
        }
        let fcp = match ef {
            Some(id) => {
                self.ef = Some(id);
                let size = self.find(df, id).map_or(0, |f| f.content.len());
                Card::fcp_ef(id, size)
            }
            None => self.fcp_df(df),
        };
        if fcp_wanted { Response::ok(fcp) } else { Response::status(sw::OK) }
    }

    fn read_binary(&mut self, cmd: &Command) -> Response {
        let (df, id, offset) = if cmd.p1 & 0x80 != 0 {
            // Short EF identifier in P1, offset in P2: looked up in the current DF, then the MF.
            let id = match cmd.p1 & 0x1F {
                0x1E => fid::EF_DIR,
                0x1D => fid::EF_ATR,
                0x1C => fid::EF_SN,
                0x02 => fid::EF_GDO,
                sfi => 0x5030 | u16::from(sfi),
            };
            let df = if self.find(self.df, id).is_some() { self.df } else { Df::Mf };
            if self.find(df, id).is_none() {
                return Response::status(sw::FILE_NOT_FOUND);
            }
            if df == self.df {
                self.ef = Some(id);
            }
            (df, id, usize::from(cmd.p2))
        } else {
            let Some(id) = self.ef else {
                return Response::status(sw::NO_CURRENT_EF);
            };
            (self.df, id, usize::from(u16::from_be_bytes([cmd.p1, cmd.p2])))
        };
        if !cmd.data.is_empty() {
            return Response::status(sw::WRONG_LENGTH);
        }
        let Some(ef) = self.find(df, id) else {
            return Response::status(sw::NO_CURRENT_EF);
        };
        let content = &ef.content;
        if offset >= content.len() {
            return Response::status(sw::WRONG_P1P2);
        }
        let ne = cmd.ne.unwrap_or(256);
        let end = offset.saturating_add(ne).min(content.len());
        let data = content[offset..end].to_vec();
        if data.len() < ne { Response { data, sw: sw::END_OF_FILE } } else { Response::ok(data) }
    }

    // --- PIN and unblocking code ---

    fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0x00 {
            return Response::status(sw::INCORRECT_P1P2);
        }
        if cmd.p2 != PIN_REF {
            return Response::status(sw::REF_NOT_FOUND);
        }
        if cmd.data.is_empty() {
            return if self.pin_tries == 0 {
                Response::status(sw::BLOCKED)
            } else if self.verified {
                Response::status(sw::OK)
            } else {
                Response::status(sw::tries_left(self.pin_tries))
            };
        }
        if self.pin_tries == 0 {
            return Response::status(sw::BLOCKED);
        }
        // Padding (FF or 00) after the digits is accepted, as IAS-ECC cards do.
        let end = cmd.data.iter().rposition(|b| *b != 0xFF && *b != 0x00).map_or(0, |i| i + 1);
        let given = &cmd.data[..end];
        if cmd.data.len() > 16 || !valid_code(given, 4, 8) {
            return Response::status(sw::WRONG_LENGTH);
        }
        if constant_time_eq(given, &self.pin) {
            self.pin_tries = PIN_TRIES;
            self.verified = true;
            Response::status(sw::OK)
        } else {
            self.verified = false;
            self.pin_tries -= 1;
            if self.pin_tries == 0 {
                Response::status(sw::BLOCKED)
            } else {
                Response::status(sw::tries_left(self.pin_tries))
            }
        }
    }

    /// RESET RETRY COUNTER `00 2C P1 01`: P1 = 00 unblocking code then new PIN, 01 unblocking
    /// code only (the PIN is kept).
    fn reset_retry_counter(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != PIN_REF {
            return Response::status(sw::REF_NOT_FOUND);
        }
        if cmd.p1 != 0x00 && cmd.p1 != 0x01 {
            return Response::status(sw::INCORRECT_P1P2);
        }
        if cmd.data.is_empty() {
            return match self.puk_tries {
                0 => Response::status(sw::BLOCKED),
                n => Response::status(sw::tries_left(n)),
            };
        }
        if self.puk_tries == 0 {
            return Response::status(sw::BLOCKED);
        }
        let n = self.puk.len();
        if cmd.data.len() < n || (cmd.p1 == 0x01 && cmd.data.len() != n) {
            return Response::status(sw::WRONG_LENGTH);
        }
        let (puk, new_pin) = cmd.data.split_at(n);
        if cmd.p1 == 0x00 && !valid_code(new_pin, 4, 8) {
            return Response::status(sw::WRONG_DATA);
        }
        if !constant_time_eq(puk, &self.puk) {
            self.puk_tries -= 1;
            return match self.puk_tries {
                0 => Response::status(sw::BLOCKED),
                n => Response::status(sw::tries_left(n)),
            };
        }
        self.puk_tries = PUK_TRIES;
        self.pin_tries = PIN_TRIES;
        if cmd.p1 == 0x00 {
            self.pin = new_pin.to_vec();
        }
        Response::status(sw::OK)
    }

    // --- keys ---

    fn manage_security_environment(&mut self, cmd: &Command) -> Response {
        let operation = match (cmd.p1, cmd.p2) {
            (0x41, 0xA4) => Operation::Authenticate,
            (0x41 | 0x81, 0xB6) => Operation::Sign,
            (0xF3, _) => {
                // RESTORE: back to the default (empty) environment.
                self.se = None;
                return Response::status(sw::OK);
            }
            _ => return Response::status(sw::INCORRECT_P1P2),
        };
        let mut key_ref = None;
        for (tag, value) in crate::tlv::parse(&cmd.data) {
            match (tag.as_slice(), value) {
                ([0x84] | [0x83], [r]) => key_ref = Some(*r),
                // Algorithm reference: RSA PKCS#1 v1.5 with the DigestInfo given.
                ([0x80], _) => {}
                _ => return Response::status(sw::WRONG_DATA),
            }
        }
        let Some(key_ref) = key_ref else {
            return Response::status(sw::WRONG_DATA);
        };
        let present = match key_ref {
            AUTH_KEY_REF => true,
            SIGN_KEY_REF => self.sign_key.is_some(),
            _ => false,
        };
        if !present {
            return Response::status(sw::REF_NOT_FOUND);
        }
        self.se = Some((operation, key_ref));
        Response::status(sw::OK)
    }

    fn sign_with(&self, key_ref: u8, digest_info: &[u8]) -> Response {
        if !self.verified {
            return Response::status(sw::SECURITY_STATUS);
        }
        let key = match key_ref {
            AUTH_KEY_REF => &self.auth_key,
            SIGN_KEY_REF => match &self.sign_key {
                Some(k) => k,
                None => return Response::status(sw::REF_NOT_FOUND),
            },
            _ => return Response::status(sw::REF_NOT_FOUND),
        };
        // Type-1 padding over the DigestInfo as given (at most k - 11 bytes).
        if digest_info.is_empty() || digest_info.len() > rsa::traits::PublicKeyParts::size(key) - 11 {
            return Response::status(sw::WRONG_LENGTH);
        }
        match key.sign(Pkcs1v15Sign::new_unprefixed(), digest_info) {
            Ok(sig) => Response::ok(sig),
            Err(_) => Response::status(sw::WRONG_DATA),
        }
    }

    /// INTERNAL AUTHENTICATE `00 88 00 00` with the key MSE SET AT chose.
    fn internal_authenticate(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0x00 || cmd.p2 != 0x00 {
            return Response::status(sw::INCORRECT_P1P2);
        }
        match self.se {
            Some((Operation::Authenticate, key_ref)) => self.sign_with(key_ref, &cmd.data),
            _ if !self.verified => Response::status(sw::SECURITY_STATUS),
            _ => Response::status(sw::CONDITIONS),
        }
    }

    /// PERFORM SECURITY OPERATION: only COMPUTE DIGITAL SIGNATURE (`00 2A 9E 9A`) over a
    /// DigestInfo, with the key MSE SET DST chose.
    fn perform_security_operation(&mut self, cmd: &Command) -> Response {
        if (cmd.p1, cmd.p2) != (0x9E, 0x9A) {
            return Response::status(sw::INCORRECT_P1P2);
        }
        match self.se {
            Some((Operation::Sign, key_ref)) => self.sign_with(key_ref, &cmd.data),
            _ if !self.verified => Response::status(sw::SECURITY_STATUS),
            _ => Response::status(sw::CONDITIONS),
        }
    }
}

impl Card {
    /// GET DATA `00 CB 3F FF` on a security data object (IAS-ECC): only the DOCP (data
    /// object control parameters: ACLs, size, tries) of the PIN and of the RSA keys, which
    /// OpenSC's iasecc driver reads before VERIFY and before using a key. Request:
    /// `4D L 70 L BF <class|80> <ref> L <tag> 80`.
    fn get_data(&mut self, cmd: &Command) -> Response {
        use crate::tlv::{cons, tlv};
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Response::status(sw::INCORRECT_P1P2);
        }
        let d = &cmd.data;
        let Some(i) = d.iter().position(|b| *b == 0xBF) else {
            return Response::status(sw::WRONG_DATA);
        };
        let (Some(class), Some(reference), Some(tag)) = (d.get(i + 1), d.get(i + 2), d.get(i + 4)) else {
            return Response::status(sw::WRONG_DATA);
        };
        let (class, reference) = (class & 0x7F, reference & 0x3F);
        if *tag != 0xA0 {
            // The objects' values (7F41, 7F48) are not readable.
            return Response::status(sw::INCORRECT_P1P2);
        }
        let docp = match (class, reference) {
            // The PIN: change, verify, reset, -, -, put data, get data.
            (0x01, r) if r == PIN_REF => cons(
                &[0xA0],
                &[
                    tlv(&[0xA1], &tlv(&[0x8C], &[0x7F, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00])),
                    tlv(&[0x9A], &[PIN_TRIES]),
                    tlv(&[0x9B], &[self.pin_tries]),
                ],
            ),
            // RSA private keys: PSO sign, internal authenticate, decipher, generate, -, put
            // data, get data; 2048 bits.
            (0x10, r) if r == AUTH_KEY_REF & 0x3F || (r == SIGN_KEY_REF & 0x3F && self.sign_key.is_some()) => cons(
                &[0xA0],
                &[
                    tlv(&[0xA1], &tlv(&[0x8C], &[0x7F, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00])),
                    tlv(&[0x80], &[0x08, 0x00]),
                ],
            ),
            _ => return Response::status(sw::REF_NOT_FOUND),
        };
        let mut header = vec![0xBF, class | 0x80, reference];
        header.extend(tlv(&[], &docp));
        Response::ok(header)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
