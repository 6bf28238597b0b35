//! Just enough PKCS#15 (ISO 7816-15) to find the authentication certificate: the ODF's
//! directory paths, the private keys' identifiers and references, the certificates' paths.

use x509_parser::asn1_rs::{Any, Class, FromBer};

/// A private key of the PrKDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: Vec<u8>,
    pub key_reference: Option<u32>,
}

/// A certificate of a CDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    pub id: Vec<u8>,
    pub authority: bool,
    pub path: Vec<u8>,
}

/// A PIN of the AODF: how VERIFY must present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinEntry {
    /// The reference VERIFY names in P2.
    pub reference: u8,
    /// Pad the PIN to `stored_length` with `pad_char` (the `needs-padding` flag).
    pub needs_padding: bool,
    pub stored_length: usize,
    pub pad_char: u8,
}

/// The directory files the ODF points to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Odf {
    pub private_keys: Vec<Vec<u8>>,
    pub certificates: Vec<Vec<u8>>,
    pub auth_objects: Vec<Vec<u8>>,
}

/// The top-level objects of a PKCS#15 file (which may be padded with 00 or FF).
fn objects(mut input: &[u8]) -> Vec<Any<'_>> {
    let mut out = Vec::new();
    while let Some(first) = input.first() {
        if *first == 0x00 || *first == 0xFF {
            break;
        }
        match Any::from_ber(input) {
            Ok((rest, any)) => {
                out.push(any);
                input = rest;
            }
            Err(_) => break,
        }
    }
    out
}

fn children<'a>(any: &Any<'a>) -> Vec<Any<'a>> {
    if any.header.is_constructed() { objects(any.data) } else { Vec::new() }
}

fn is_universal(any: &Any<'_>, tag: u32) -> bool {
    any.header.class() == Class::Universal && any.header.tag().0 == tag
}

const OCTET_STRING: u32 = 4;
const SEQUENCE: u32 = 16;
const INTEGER: u32 = 2;
const BOOLEAN: u32 = 1;

/// Path ::= SEQUENCE { path OCTET STRING, ... }
fn path(any: &Any<'_>) -> Option<Vec<u8>> {
    if !is_universal(any, SEQUENCE) {
        return None;
    }
    children(any).first().filter(|c| is_universal(c, OCTET_STRING)).map(|c| c.data.to_vec())
}

pub fn parse_odf(bytes: &[u8]) -> Odf {
    let mut odf = Odf::default();
    for entry in objects(bytes) {
        if entry.header.class() != Class::ContextSpecific {
            continue;
        }
        let Some(p) = children(&entry).first().and_then(path) else { continue };
        match entry.header.tag().0 {
            0 => odf.private_keys.push(p),
            4..=6 => odf.certificates.push(p),
            8 => odf.auth_objects.push(p),
            _ => {}
        }
    }
    odf
}

pub fn parse_prkdf(bytes: &[u8]) -> Vec<KeyEntry> {
    objects(bytes)
        .iter()
        .filter(|e| is_universal(e, SEQUENCE))
        .filter_map(|e| {
            let parts = children(e);
            let common_key = children(parts.get(1)?);
            let id = common_key.iter().find(|c| is_universal(c, OCTET_STRING))?.data.to_vec();
            let key_reference = common_key
                .iter()
                .find(|c| is_universal(c, INTEGER))
                .map(|c| c.data.iter().fold(0u32, |acc, b| acc.wrapping_shl(8) | u32::from(*b)));
            Some(KeyEntry { id, key_reference })
        })
        .collect()
}

/// The PINs of an AODF, in order. PinAttributes ::= SEQUENCE { pinFlags BIT STRING, pinType,
/// minLength, storedLength, maxLength OPTIONAL, pinReference [0] DEFAULT 0, padChar OCTET
/// STRING OPTIONAL, ... }
pub fn parse_aodf(bytes: &[u8]) -> Vec<PinEntry> {
    objects(bytes)
        .iter()
        .filter(|e| is_universal(e, SEQUENCE))
        .filter_map(|e| {
            let parts = children(e);
            let type_attributes =
                parts.iter().find(|p| p.header.class() == Class::ContextSpecific && p.header.tag().0 == 1)?;
            let attrs = children(children(type_attributes).first()?);
            let flags = attrs.first().filter(|a| is_universal(a, 3))?;
            // BIT STRING: unused-bits byte, then bit 0 as the MSB; needs-padding is bit 5.
            let needs_padding = flags.data.get(1).is_some_and(|b| b & (0x80 >> 5) != 0);
            let integers: Vec<u32> = attrs
                .iter()
                .filter(|a| is_universal(a, INTEGER))
                .map(|a| a.data.iter().fold(0u32, |acc, b| acc.wrapping_shl(8) | u32::from(*b)))
                .collect();
            let stored_length = usize::try_from(*integers.get(1)?).ok()?;
            let reference = attrs
                .iter()
                .find(|a| a.header.class() == Class::ContextSpecific && a.header.tag().0 == 0)
                .and_then(|a| a.data.last().copied())
                .unwrap_or(0);
            let pad_char = attrs
                .iter()
                .find(|a| is_universal(a, OCTET_STRING))
                .and_then(|a| a.data.first().copied())
                .unwrap_or(0xFF);
            Some(PinEntry { reference, needs_padding, stored_length, pad_char })
        })
        .collect()
}

pub fn parse_cdf(bytes: &[u8]) -> Vec<CertEntry> {
    objects(bytes)
        .iter()
        .filter(|e| is_universal(e, SEQUENCE))
        .filter_map(|e| {
            let parts = children(e);
            let common_cert = children(parts.get(1)?);
            let id = common_cert.iter().find(|c| is_universal(c, OCTET_STRING))?.data.to_vec();
            let authority = common_cert
                .iter()
                .find(|c| is_universal(c, BOOLEAN))
                .is_some_and(|c| c.data.first().is_some_and(|b| *b != 0));
            let type_attributes =
                parts.iter().find(|p| p.header.class() == Class::ContextSpecific && p.header.tag().0 == 1)?;
            let x509_attributes = children(type_attributes);
            let value = children(x509_attributes.first()?);
            let path = path(value.first()?)?;
            Some(CertEntry { id, authority, path })
        })
        .collect()
}
