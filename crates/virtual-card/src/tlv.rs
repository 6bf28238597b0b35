//! A small BER-TLV writer for the card's file contents (FCP templates, PKCS#15 objects, EF.ATR).

/// Encodes one TLV: `tag` (one or two bytes, as written), definite length, value.
pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 4 + value.len());
    out.extend_from_slice(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        out.push(0x82);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// A constructed TLV from already encoded children.
pub fn cons(tag: &[u8], children: &[Vec<u8>]) -> Vec<u8> {
    tlv(tag, &children.concat())
}

/// DER INTEGER of a small non-negative number.
pub fn integer(n: u32) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(3);
    let mut v = bytes[first..].to_vec();
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(&[0x02], &v)
}

/// Iterates over the TLVs of `input` (tag bytes, value); stops at the first malformed one.
/// Used to read the card's command data (MSE templates).
pub fn parse(mut input: &[u8]) -> Vec<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, value, rest)) = one(input) {
        out.push((tag, value));
        input = rest;
    }
    out
}

fn one(input: &[u8]) -> Option<(Vec<u8>, &[u8], &[u8])> {
    let first = *input.first()?;
    let mut i = 1;
    if first & 0x1F == 0x1F {
        while input.get(i)? & 0x80 != 0 {
            i += 1;
        }
        i += 1;
    }
    let tag = input.get(..i)?.to_vec();
    let l0 = *input.get(i)?;
    i += 1;
    let len = match l0 {
        0..=0x7F => usize::from(l0),
        0x81 => {
            i += 1;
            usize::from(*input.get(i - 1)?)
        }
        0x82 => {
            i += 2;
            usize::from(u16::from_be_bytes([*input.get(i - 2)?, *input.get(i - 1)?]))
        }
        _ => return None,
    };
    let value = input.get(i..i + len)?;
    Some((tag, value, &input[i + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_round_trip() {
        assert_eq!(tlv(&[0x04], &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(tlv(&[0x04], &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(&[0x04], &[0; 300])[..4], [0x04, 0x82, 1, 44]);
        assert_eq!(integer(0x82), vec![2, 2, 0, 0x82]);
        assert_eq!(integer(3), vec![2, 1, 3]);
        let bytes = [tlv(&[0x84], &[0x82]), tlv(&[0x80], &[0x02])].concat();
        let parsed = parse(&bytes);
        assert_eq!(parsed.len(), 2);
        assert_eq!((parsed[0].0.as_slice(), parsed[0].1), (&[0x84][..], &[0x82][..]));
    }
}
