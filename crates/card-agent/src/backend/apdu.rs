//! The card itself over PC/SC: the IAS application of a CPS3 (IAS-ECC), spoken in APDUs.
//!
//! One signature: connect (shared), begin a transaction, SELECT the IAS application by its AID,
//! read the PKCS#15 objects and the certificates (readable without the PIN), VERIFY the PIN,
//! MSE SET AT with the authentication key (`0x82`), INTERNAL AUTHENTICATE over the DigestInfo,
//! then end the transaction resetting the card, so that no other program finds the PIN
//! verified after us.

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::pkcs15::{PinEntry, parse_aodf, parse_cdf, parse_odf, parse_prkdf};
use super::{CardBackend, ReaderInfo, Signed, check_pin};
use crate::challenge::Challenge;
use crate::error::AgentError;

/// The AID of the CPS3's IAS application.
pub const IAS_AID: [u8; 13] = [0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10];
/// Key reference of the authentication key.
pub const AUTH_KEY_REF: u8 = 0x82;
/// Reference of the PIN ("code porteur") when the AODF does not say.
pub const PIN_REF: u8 = 0x01;
/// The ODF's FID in the application.
const ODF: [u8; 2] = [0x50, 0x31];

/// The PC/SC backend.
#[derive(Debug, Clone)]
pub struct ApduBackend {
    /// How long to wait for a card when none is in a reader.
    pub card_wait: Duration,
}

fn pcsc_error(e: pcsc::Error) -> AgentError {
    use pcsc::Error as E;
    match e {
        E::NoReadersAvailable | E::UnknownReader | E::ReaderUnavailable => AgentError::NoReader(e.to_string()),
        E::NoService | E::ServiceStopped => {
            AgentError::NoReader(format!("the PC/SC service (pcscd) is not running: {e}"))
        }
        E::NoSmartcard => AgentError::NoCard,
        E::RemovedCard | E::ResetCard => AgentError::CardRemoved,
        _ => AgentError::Card(e.to_string()),
    }
}

fn sw_of(answer: &[u8]) -> (u16, &[u8]) {
    match answer {
        [data @ .., a, b] => (u16::from_be_bytes([*a, *b]), data),
        _ => (0, answer),
    }
}

fn card_error(what: &str, sw: u16) -> AgentError {
    AgentError::Card(format!("{what}: status {sw:04X}"))
}

/// A card connection inside a transaction.
struct Session<'a> {
    tx: &'a pcsc::Transaction<'a>,
    ctx: &'a pcsc::Context,
    reader: &'a CStr,
}

impl Session<'_> {
    /// Transmits one APDU; handles `61xx` (GET RESPONSE) and `6Cxx` (wrong Le) as T=0 needs.
    fn transmit(&self, apdu: &[u8]) -> Result<(u16, Vec<u8>), AgentError> {
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let answer = self.tx.transmit(apdu, &mut buf).map_err(|e| self.lost(e))?;
        if answer.len() < 2 {
            // No status word: the reader lost the card.
            return Err(self.lost(pcsc::Error::CommError));
        }
        let (mut sw, data) = sw_of(answer);
        let mut data = data.to_vec();
        if sw & 0xFF00 == 0x6C00 && apdu.len() >= 5 {
            let mut again = apdu.to_vec();
            if let Some(last) = again.last_mut() {
                *last = (sw & 0xFF) as u8;
            }
            return self.transmit(&again);
        }
        while sw & 0xFF00 == 0x6100 {
            let get_response = [0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8];
            let answer = self.tx.transmit(&get_response, &mut buf).map_err(|e| self.lost(e))?;
            let (s, d) = sw_of(answer);
            data.extend_from_slice(d);
            sw = s;
        }
        Ok((sw, data))
    }

    /// A transmission failed: was the card pulled out? pcscd polls the reader, so the
    /// removal may show a moment after the failure: wait for it briefly.
    fn lost(&self, e: pcsc::Error) -> AgentError {
        if matches!(e, pcsc::Error::RemovedCard | pcsc::Error::ResetCard) {
            return AgentError::CardRemoved;
        }
        let mut state = [pcsc::ReaderState::new(self.reader.to_owned(), pcsc::State::UNAWARE)];
        let deadline = Instant::now() + Duration::from_millis(1500);
        loop {
            let now = Instant::now();
            let wait = if state[0].current_state() == pcsc::State::UNAWARE {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            match self.ctx.get_status_change(wait, &mut state) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return pcsc_error(e),
                Err(_) => return AgentError::CardRemoved,
            }
            if !state[0].event_state().contains(pcsc::State::PRESENT) {
                return AgentError::CardRemoved;
            }
            if Instant::now() >= deadline {
                return pcsc_error(e);
            }
            state[0].sync_current_state();
        }
    }

    fn select_application(&self) -> Result<(), AgentError> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x0C, IAS_AID.len() as u8];
        apdu.extend_from_slice(&IAS_AID);
        match self.transmit(&apdu)? {
            (0x9000, _) => Ok(()),
            (sw, _) => Err(card_error("not a CPS card (no IAS application)", sw)),
        }
    }

    /// Selects a file by a PKCS#15 path: from the MF (without its `3F00`), or a FID in the
    /// application.
    fn select_path(&self, path: &[u8]) -> Result<(), AgentError> {
        let (p1, body) = match path {
            [0x3F, 0x00, rest @ ..] if !rest.is_empty() => (0x08, rest),
            [_, _] => (0x02, path),
            _ => (0x09, path),
        };
        let mut apdu = vec![0x00, 0xA4, p1, 0x0C, body.len() as u8];
        apdu.extend_from_slice(body);
        match self.transmit(&apdu)? {
            (0x9000, _) => Ok(()),
            (sw, _) => Err(card_error("SELECT", sw)),
        }
    }

    /// Reads the selected transparent file to its end.
    fn read_all(&self) -> Result<Vec<u8>, AgentError> {
        let mut out = Vec::new();
        loop {
            let Ok(offset) = u16::try_from(out.len()) else {
                return Err(AgentError::Card("file too large".into()));
            };
            if offset > 0x7FFF {
                return Err(AgentError::Card("file too large".into()));
            }
            let [hi, lo] = offset.to_be_bytes();
            let (sw, data) = self.transmit(&[0x00, 0xB0, hi, lo, 0x00])?;
            out.extend_from_slice(&data);
            match sw {
                0x9000 if !data.is_empty() => {}
                0x9000 | 0x6282 | 0x6B00 => return Ok(out),
                _ => return Err(card_error("READ BINARY", sw)),
            }
        }
    }

    fn read_path(&self, path: &[u8]) -> Result<Vec<u8>, AgentError> {
        self.select_path(path)?;
        self.read_all()
    }

    /// The authentication certificate, then the CA certificates, and the PIN, as the PKCS#15
    /// objects say.
    fn pkcs15(&self) -> Result<(Vec<Vec<u8>>, PinEntry), AgentError> {
        self.select_path(&ODF)?;
        let odf = parse_odf(&self.read_all()?);
        let mut pins = Vec::new();
        for p in &odf.auth_objects {
            pins.extend(parse_aodf(&self.read_path(p)?));
        }
        let pin = pins.into_iter().next().unwrap_or(PinEntry {
            reference: PIN_REF,
            needs_padding: false,
            stored_length: 8,
            pad_char: 0xFF,
        });
        let mut keys = Vec::new();
        for p in &odf.private_keys {
            keys.extend(parse_prkdf(&self.read_path(p)?));
        }
        let mut certs = Vec::new();
        for p in &odf.certificates {
            certs.extend(parse_cdf(&self.read_path(p)?));
        }
        let auth_id = keys
            .iter()
            .find(|k| k.key_reference == Some(u32::from(AUTH_KEY_REF)))
            .map(|k| k.id.clone())
            .ok_or_else(|| AgentError::Card("no authentication key on the card".into()))?;
        let leaf = certs
            .iter()
            .find(|c| c.id == auth_id)
            .ok_or_else(|| AgentError::Card("no certificate for the authentication key".into()))?;
        let mut out = vec![self.read_path(&leaf.path)?];
        for ca in certs.iter().filter(|c| c.authority) {
            out.push(self.read_path(&ca.path)?);
        }
        Ok((out, pin))
    }

    fn verify(&self, entry: &PinEntry, pin: &Zeroizing<String>) -> Result<(), AgentError> {
        let mut value = Zeroizing::new(pin.as_bytes().to_vec());
        if entry.needs_padding && value.len() < entry.stored_length {
            value.resize(entry.stored_length, entry.pad_char);
        }
        let mut apdu = Zeroizing::new(vec![0x00, 0x20, 0x00, entry.reference, value.len() as u8]);
        apdu.extend_from_slice(&value);
        match self.transmit(&apdu)?.0 {
            0x9000 => Ok(()),
            0x63C0 | 0x6983 | 0x6984 => Err(AgentError::CardBlocked),
            sw if sw & 0xFFF0 == 0x63C0 => Err(AgentError::WrongPin { tries_left: Some((sw & 0x0F) as u8) }),
            sw => Err(card_error("VERIFY", sw)),
        }
    }

    fn internal_authenticate(&self, digest_info: &[u8]) -> Result<Vec<u8>, AgentError> {
        match self.transmit(&[0x00, 0x22, 0x41, 0xA4, 0x03, 0x84, 0x01, AUTH_KEY_REF])?.0 {
            0x9000 => {}
            sw => return Err(card_error("MSE SET AT", sw)),
        }
        let mut apdu = vec![0x00, 0x88, 0x00, 0x00, digest_info.len() as u8];
        apdu.extend_from_slice(digest_info);
        apdu.push(0x00);
        match self.transmit(&apdu)? {
            (0x9000, sig) if !sig.is_empty() => Ok(sig),
            (0x6982, _) => Err(AgentError::Card("the card refused the key (PIN not verified)".into())),
            (sw, _) => Err(card_error("INTERNAL AUTHENTICATE", sw)),
        }
    }
}

impl ApduBackend {
    fn context() -> Result<pcsc::Context, AgentError> {
        pcsc::Context::establish(pcsc::Scope::User).map_err(pcsc_error)
    }

    fn states(ctx: &pcsc::Context) -> Result<Vec<pcsc::ReaderState>, AgentError> {
        let names = match ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(pcsc_error(e)),
        };
        let mut states: Vec<pcsc::ReaderState> =
            names.into_iter().map(|n| pcsc::ReaderState::new(n, pcsc::State::UNAWARE)).collect();
        if !states.is_empty() {
            ctx.get_status_change(Duration::ZERO, &mut states).map_err(pcsc_error)?;
        }
        Ok(states)
    }

    /// The reader to use: the one named, or the first with a card; waits up to `card_wait`
    /// for a card (GetStatusChange).
    fn choose_reader(&self, ctx: &pcsc::Context, wanted: Option<&str>) -> Result<CString, AgentError> {
        let mut states = Self::states(ctx)?;
        if states.is_empty() {
            return Err(AgentError::NoReader("no card reader is connected".into()));
        }
        if let Some(w) = wanted {
            states.retain(|s| s.name().to_str().is_ok_and(|n| n == w));
            if states.is_empty() {
                return Err(AgentError::NoReader(format!("no reader named {w:?}")));
            }
        }
        let deadline = Instant::now() + self.card_wait;
        loop {
            if let Some(s) = states.iter().find(|s| s.event_state().contains(pcsc::State::PRESENT)) {
                return Ok(s.name().to_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AgentError::NoCard);
            }
            for s in &mut states {
                s.sync_current_state();
            }
            match ctx.get_status_change(deadline - now, &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(pcsc_error(e)),
            }
        }
    }
}

impl CardBackend for ApduBackend {
    fn readers(&self) -> Result<Vec<ReaderInfo>, AgentError> {
        let ctx = Self::context()?;
        Ok(Self::states(&ctx)?
            .iter()
            .map(|s| ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                card_present: s.event_state().contains(pcsc::State::PRESENT),
            })
            .collect())
    }

    fn sign(&self, challenge: &Challenge, pin: &Zeroizing<String>, reader: Option<&str>) -> Result<Signed, AgentError> {
        check_pin(pin)?;
        let ctx = Self::context()?;
        let name = self.choose_reader(&ctx, reader)?;
        let mut card = ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY).map_err(pcsc_error)?;
        let tx = card.transaction().map_err(pcsc_error)?;
        let session = Session { tx: &tx, ctx: &ctx, reader: &name };
        let result = (|| {
            session.select_application()?;
            let (certificates, pin_entry) = session.pkcs15()?;
            session.verify(&pin_entry, pin)?;
            let signature = session.internal_authenticate(&challenge.digest_info())?;
            Ok(Signed { certificates, signature })
        })();
        // Reset: the PIN's security status must not outlive this operation.
        if let Err((_, e)) = tx.end(pcsc::Disposition::ResetCard) {
            tracing::debug!(error = %e, "ending the PC/SC transaction");
        }
        result
    }
}
