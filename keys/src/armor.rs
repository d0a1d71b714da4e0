//! A fast path for the ASCII armor (RFC 9580 §6) of an OpenPGP message.
//!
//! Every message a node receives is armored (RFC 3156 puts the armored form
//! in the PGP/MIME part). sequoia's armor reader filters its input byte by
//! byte through a copy-on-write buffer, and was the largest single cost of
//! the receiving node in the delivery profile (issue 7, `docs/benchmarks.md`).
//! This module decodes the common, canonical shape in one pass with the
//! `base64` crate and hands sequoia the binary message.
//!
//! It accepts only that shape: the `BEGIN PGP MESSAGE` line, armor headers
//! (`Key: value`), an empty line, base64 lines, an optional `=` checksum
//! line, the `END PGP MESSAGE` line, and whitespace around them. Anything
//! else returns `None` and the caller gives the text to sequoia unchanged,
//! which knows every other form and words the errors. Decoding only removes
//! the transport encoding: sequoia then parses, decrypts and verifies the
//! binary message exactly as before. The CRC-24 line is not checked, as
//! RFC 9580 §6.1 requires ("MUST NOT reject ... when the CRC24 footer is
//! present, missing, malformed, or disagrees"); the message's integrity is
//! the encryption's (SEIPD) and the signature's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END: &[u8] = b"-----END PGP MESSAGE-----";

/// The binary OpenPGP message in `text`, if `text` is a canonically
/// armored message; `None` for anything else (binary input included).
pub(crate) fn binary_message(text: &[u8]) -> Option<Vec<u8>> {
    let mut lines = text.split(|&b| b == b'\n').map(trim);
    // Leading blank lines, then the armor header line.
    if lines.by_ref().find(|line| !line.is_empty())? != BEGIN {
        return None;
    }
    // Armor headers up to the empty line that ends them.
    loop {
        let line = lines.next()?;
        if line.is_empty() {
            break;
        }
        if !line.windows(2).any(|pair| pair == b": ") {
            return None;
        }
    }
    let mut base64 = Vec::with_capacity(text.len());
    let mut ended = false;
    for line in lines.by_ref() {
        if line == END {
            ended = true;
            break;
        }
        if line.first() == Some(&b'=') {
            // The checksum: only the END line may follow.
            ended = lines.next() == Some(END);
            break;
        }
        base64.extend_from_slice(line);
    }
    if !ended || lines.any(|line| !line.is_empty()) {
        return None;
    }
    B64.decode(&base64).ok().filter(|binary| !binary.is_empty())
}

/// A line without its trailing `\r`, spaces and tabs (RFC 9580 §6.2: trailing
/// whitespace is ignored).
fn trim(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| !matches!(b, b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use sequoia_openpgp as openpgp;

    use openpgp::armor::{Kind, Reader, ReaderMode, Writer};

    use super::*;

    fn armored(data: &[u8], headers: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = Writer::with_headers(Vec::new(), Kind::Message, headers.to_vec())
            .expect("armor writer");
        writer.write_all(data).expect("write");
        writer.finalize().expect("finalize")
    }

    fn sequoia_decodes(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Reader::from_bytes(text, ReaderMode::Tolerant(Some(Kind::Message)))
            .read_to_end(&mut out)
            .expect("sequoia decodes");
        out
    }

    #[test]
    fn decodes_what_sequoia_writes_at_every_length() {
        for len in [1usize, 2, 3, 47, 48, 49, 64, 1000, 10 * 1024 + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for headers in [&[][..], &[("Comment", "made by a test")][..]] {
                let text = armored(&data, headers);
                assert_eq!(binary_message(&text).as_deref(), Some(&data[..]), "{len}");
                assert_eq!(sequoia_decodes(&text), data);
            }
        }
    }

    #[test]
    fn crlf_lines_surrounding_blank_lines_and_no_checksum_are_fine() {
        let data = b"\xc1\x5e some binary \x00\xff".repeat(20);
        let text = String::from_utf8(armored(&data, &[])).expect("ascii");
        let crlf = format!("\r\n\r\n{}\r\n", text.replace('\n', "\r\n"));
        assert_eq!(binary_message(crlf.as_bytes()), Some(data.clone()));
        let without_checksum: String = text
            .lines()
            .filter(|line| !line.starts_with('='))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(binary_message(without_checksum.as_bytes()), Some(data));
    }

    /// Whichever way the armor is read, the message is decrypted and its
    /// signature checked by sequoia: every form opens to the same text, and
    /// a changed byte is refused.
    #[test]
    fn every_armor_form_opens_and_a_changed_byte_is_refused() {
        let alice = crate::Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = crate::Identity::generate("Bob", "bob@example.org").expect("bob");
        let plaintext = b"Subject: hi\r\n\r\nhello".repeat(50);
        let sealed = alice.seal(&plaintext, bob.card()).expect("seal");
        let text = String::from_utf8(sealed.clone()).expect("armored");
        let binary = binary_message(&sealed).expect("canonical armor");
        let forms = [
            sealed.clone(),
            text.replace('\n', "\r\n").into_bytes(),
            // Not the fast path's shape (no empty line): sequoia's reader.
            text.replacen("-----\n\n", "-----\n", 1).into_bytes(),
            binary.clone(),
        ];
        for form in &forms {
            let opened = bob.open(form, alice.card()).expect("opens");
            assert_eq!(opened.plaintext, plaintext);
        }
        let mut changed = binary;
        let last = changed.len() - 20;
        changed[last] ^= 1;
        let rearmored = armored(&changed, &[]);
        assert!(binary_message(&rearmored).is_some());
        assert!(bob.open(&rearmored, alice.card()).is_err());
    }

    #[test]
    fn anything_unusual_is_left_to_sequoia() {
        let data = b"abcdefgh".repeat(10);
        let text = String::from_utf8(armored(&data, &[])).expect("ascii");
        let cases = [
            // Binary input.
            "\u{c1}\u{5e}binary".to_string(),
            // Another kind of armor.
            text.replace("PGP MESSAGE", "PGP SIGNATURE"),
            // No empty line after the header line.
            text.replacen("-----\n\n", "-----\n", 1),
            // A header line that is not `Key: value`.
            text.replacen("-----\n\n", "-----\nnot a header\n\n", 1),
            // Cut off before the END line.
            text.lines().take(3).collect::<Vec<_>>().join("\n"),
            // Text after the END line.
            format!("{text}trailing words\n"),
            // A character outside base64.
            text.replacen("-----\n\n", "-----\n\n*", 1),
            // Nothing inside.
            "-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----\n".to_string(),
        ];
        for case in cases {
            assert_eq!(binary_message(case.as_bytes()), None, "{case:?}");
        }
    }
}
