//! Turning message bytes into IMAP strings (RFC 3501 §4.3, §9 `nstring`).
//!
//! imap-types picks a quoted string when the bytes allow it and a literal
//! otherwise (8-bit data, CR/LF). The one thing no IMAP string may hold is
//! NUL, so NUL bytes from broken messages are dropped here; that is the only
//! way construction can fail, so the builders below are infallible.

use std::io::Write;

use imap_codec::imap_types::core::{IString, NString, Quoted};

/// Removes NUL bytes (not representable in IMAP, RFC 3501 §4.3).
fn without_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.contains(&0) {
        bytes.retain(|&b| b != 0);
    }
    bytes
}

/// An IMAP string (quoted if possible, else a literal) holding `bytes`.
pub(crate) fn istring(bytes: impl Into<Vec<u8>>) -> IString<'static> {
    match IString::try_from(without_nul(bytes.into())) {
        Ok(s) => s,
        // Unreachable: only NUL is rejected, and it was removed above.
        Err(_) => IString::Quoted(Quoted::unvalidated("")),
    }
}

/// A non-NIL nstring holding `bytes`.
pub(crate) fn nstring(bytes: impl Into<Vec<u8>>) -> NString<'static> {
    NString(Some(istring(bytes)))
}

/// `NIL` for `None`, else the string.
pub(crate) fn nstring_opt(bytes: Option<Vec<u8>>) -> NString<'static> {
    bytes.map_or(NString(None), nstring)
}

/// Appends `bytes`, less NUL and the bytes `skip` drops, as [`istring`]
/// makes it and imap-codec writes it: quoted (with `\\` and `"` escaped)
/// when every byte left is a TEXT-CHAR (7-bit, no CR or LF), else a
/// synchronizing literal. Nothing is allocated.
pub(crate) fn write_istring(bytes: &[u8], skip: impl Fn(u8) -> bool, out: &mut Vec<u8>) {
    let kept = || bytes.iter().copied().filter(|&b| b != 0 && !skip(b));
    if kept().all(|b| b.is_ascii() && b != b'\r' && b != b'\n') {
        out.push(b'"');
        for b in kept() {
            if b == b'\\' || b == b'"' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{{{}}}\r\n", kept().count());
        out.extend(kept());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_quoted_for_plain_text() {
        assert!(matches!(istring("hello"), IString::Quoted(_)));
    }

    #[test]
    fn picks_literal_for_eight_bit_and_drops_nul() {
        let s = istring(b"a\0\xff".to_vec());
        assert!(matches!(s, IString::Literal(_)));
        assert_eq!(s.into_inner().as_ref(), b"a\xff");
    }

    #[test]
    fn none_is_nil() {
        assert_eq!(nstring_opt(None), NString(None));
    }
}
