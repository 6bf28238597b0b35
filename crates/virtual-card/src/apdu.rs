//! ISO 7816-4 command APDUs (short and extended forms) and response status words.

/// A parsed command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// The command data (`Lc` bytes); empty when absent.
    pub data: Vec<u8>,
    /// The expected response length `Ne` (`Le` = 0 means 256, or 65536 in extended form);
    /// `None` when absent.
    pub ne: Option<usize>,
}

/// Why bytes are not a command APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("a command APDU has at least 4 bytes")]
    TooShort,
    #[error("Lc does not match the APDU's length")]
    WrongLength,
}

impl Command {
    /// Parses the four ISO cases, short and extended.
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::TooShort);
        };
        let (data, ne) = match body {
            [] => (Vec::new(), None),
            [le] => (Vec::new(), Some(if *le == 0 { 256 } else { usize::from(*le) })),
            [0, hi, lo] => {
                let le = usize::from(u16::from_be_bytes([*hi, *lo]));
                (Vec::new(), Some(if le == 0 { 65536 } else { le }))
            }
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if lc == 0 {
                    return Err(ApduError::WrongLength);
                }
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest.to_vec(), None),
                    Some(2) => {
                        let le = usize::from(u16::from_be_bytes([rest[lc], rest[lc + 1]]));
                        (rest[..lc].to_vec(), Some(if le == 0 { 65536 } else { le }))
                    }
                    _ => return Err(ApduError::WrongLength),
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest.to_vec(), None),
                    Some(1) => {
                        let le = rest[lc];
                        (rest[..lc].to_vec(), Some(if le == 0 { 256 } else { usize::from(le) }))
                    }
                    _ => return Err(ApduError::WrongLength),
                }
            }
        };
        Ok(Command { cla: *cla, ins: *ins, p1: *p1, p2: *p2, data, ne })
    }
}

/// ISO 7816-4 status words the card answers.
pub mod sw {
    pub const OK: u16 = 0x9000;
    pub const END_OF_FILE: u16 = 0x6282;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY_STATUS: u16 = 0x6982;
    pub const BLOCKED: u16 = 0x6983;
    pub const CONDITIONS: u16 = 0x6985;
    pub const NO_CURRENT_EF: u16 = 0x6986;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const FUNCTION_NOT_SUPPORTED: u16 = 0x6A81;
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    pub const INCORRECT_P1P2: u16 = 0x6A86;
    pub const REF_NOT_FOUND: u16 = 0x6A88;
    pub const WRONG_P1P2: u16 = 0x6B00;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub const COMMAND_NOT_ALLOWED: u16 = 0x6986;

    /// `63Cx`: verification failed, `x` tries left.
    pub fn tries_left(n: u8) -> u16 {
        0x63C0 | u16::from(n.min(15))
    }
}

/// A response APDU: data then the status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub fn ok(data: Vec<u8>) -> Response {
        Response { data, sw: sw::OK }
    }

    pub fn status(sw: u16) -> Response {
        Response { data: Vec::new(), sw }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_short_cases() -> Result<(), ApduError> {
        let c1 = Command::parse(&[0, 0x20, 0, 1])?;
        assert_eq!((c1.data.len(), c1.ne), (0, None));
        let c2 = Command::parse(&[0, 0xB0, 0, 0, 0])?;
        assert_eq!(c2.ne, Some(256));
        let c3 = Command::parse(&[0, 0x20, 0, 1, 4, b'1', b'2', b'3', b'4'])?;
        assert_eq!((c3.data, c3.ne), (b"1234".to_vec(), None));
        let c4 = Command::parse(&[0, 0x88, 0, 0, 2, 9, 9, 0])?;
        assert_eq!((c4.data, c4.ne), (vec![9, 9], Some(256)));
        assert_eq!(Command::parse(&[0, 0x20, 0, 1, 4, 1]), Err(ApduError::WrongLength));
        assert_eq!(Command::parse(&[0, 0x20]), Err(ApduError::TooShort));
        Ok(())
    }

    #[test]
    fn parses_extended_cases() -> Result<(), ApduError> {
        let c = Command::parse(&[0, 0x88, 0, 0, 0, 0, 2, 7, 7, 0, 0])?;
        assert_eq!((c.data, c.ne), (vec![7, 7], Some(65536)));
        let c = Command::parse(&[0, 0xB0, 0, 0, 0, 1, 0])?;
        assert_eq!((c.data.len(), c.ne), (0, Some(256)));
        Ok(())
    }
}
