//! The pairing code `mailnode device link` shows and `mailnode device join`
//! takes (grammar in `docs/protocol.md`, "Linking a device").
//!
//! One code names where the linking device waits (its session PeerId and
//! up to [`MAX_ADDRS`] dialable addresses) and carries the secret both
//! sides feed into SPAKE2. It is binary, checksummed and written in lower
//! case Crockford base32 in groups of four, so that it can be typed as well
//! as scanned: a mistyped code is caught by the checksum on the joining
//! side, before it reaches the linker, and so does not spend the code.

use libp2p::{Multiaddr, PeerId};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The layout version, the code's first byte.
const VERSION: u8 = 1;
/// Bytes of the shared secret (80 bits).
pub const SECRET_LEN: usize = 10;
/// Addresses a code names at most.
pub const MAX_ADDRS: usize = 4;
/// Bytes of the checksum at the end.
const CHECK_LEN: usize = 4;
/// Domain of the checksum.
const CHECK_DOMAIN: &[u8] = b"mailnode-pair-code-v1\0";
/// Crockford's base32 alphabet, in lower case.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A decoded pairing code.
pub struct PairingCode {
    /// The linking session's PeerId (authenticated by Noise when dialed).
    pub peer: PeerId,
    /// Where the linking device listens.
    pub addrs: Vec<Multiaddr>,
    /// The SPAKE2 password.
    pub secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingCode")
            .field("peer", &self.peer)
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

/// Why a typed code was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    /// A character outside the alphabet.
    #[error("the pairing code holds {0:?}, which is not one of its letters or digits")]
    BadCharacter(char),
    /// The checksum does not match: a typing mistake, or a cut-off code.
    #[error(
        "the pairing code is mistyped or incomplete (its check digits do not match); copy it \
         again from the other device"
    )]
    Checksum,
    /// The checksum matched but the layout is not this version's.
    #[error("the pairing code comes from a mailnode this one does not understand ({0})")]
    Layout(&'static str),
}

impl PairingCode {
    /// A new code with a fresh random secret.
    pub fn new(peer: PeerId, addrs: Vec<Multiaddr>) -> PairingCode {
        use rand::RngCore;
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        rand::thread_rng().fill_bytes(secret.as_mut_slice());
        PairingCode {
            peer,
            addrs: addrs.into_iter().take(MAX_ADDRS).collect(),
            secret,
        }
    }

    /// The code as people type it: groups of four characters joined by `-`.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(vec![VERSION]);
        bytes.extend_from_slice(self.secret.as_slice());
        push_short(&mut bytes, &self.peer.to_bytes());
        bytes.push(self.addrs.len() as u8);
        for addr in &self.addrs {
            push_short(&mut bytes, &addr.to_vec());
        }
        let check = checksum(&bytes);
        bytes.extend_from_slice(&check);
        let plain = encode(&bytes);
        let mut text = Zeroizing::new(String::with_capacity(plain.len() * 5 / 4 + 1));
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                text.push('-');
            }
            text.push(c);
        }
        text
    }

    /// Reads a typed or scanned code: case, spaces and dashes do not
    /// matter, and `o`, `i` and `l` are read as `0`, `1` and `1`.
    pub fn parse(text: &str) -> Result<PairingCode, CodeError> {
        let bytes = Zeroizing::new(decode(text)?);
        if bytes.len() < 1 + SECRET_LEN + CHECK_LEN {
            return Err(CodeError::Checksum);
        }
        let (body, check) = bytes.split_at(bytes.len() - CHECK_LEN);
        if checksum(body).as_slice() != check {
            return Err(CodeError::Checksum);
        }
        if body[0] != VERSION {
            return Err(CodeError::Layout("another layout version"));
        }
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        secret.copy_from_slice(&body[1..=SECRET_LEN]);
        let mut rest = &body[1 + SECRET_LEN..];
        let peer = take_short(&mut rest).ok_or(CodeError::Layout("no PeerId"))?;
        let peer = PeerId::from_bytes(peer).map_err(|_| CodeError::Layout("a bad PeerId"))?;
        let (&count, tail) = rest
            .split_first()
            .ok_or(CodeError::Layout("no addresses"))?;
        rest = tail;
        if count == 0 || usize::from(count) > MAX_ADDRS {
            return Err(CodeError::Layout("a bad number of addresses"));
        }
        let mut addrs = Vec::new();
        for _ in 0..count {
            let addr = take_short(&mut rest).ok_or(CodeError::Layout("a cut-off address"))?;
            addrs.push(
                Multiaddr::try_from(addr.to_vec())
                    .map_err(|_| CodeError::Layout("a bad address"))?,
            );
        }
        if !rest.is_empty() {
            return Err(CodeError::Layout("extra bytes"));
        }
        Ok(PairingCode {
            peer,
            addrs,
            secret,
        })
    }
}

fn push_short(out: &mut Vec<u8>, bytes: &[u8]) {
    // PeerIds and multiaddrs of a code are far below 256 bytes.
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&bytes[..bytes.len().min(255)]);
}

fn take_short<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, tail) = rest.split_first()?;
    let len = usize::from(len);
    if tail.len() < len {
        return None;
    }
    let (field, tail) = tail.split_at(len);
    *rest = tail;
    Some(field)
}

fn checksum(body: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECK_DOMAIN)
        .chain_update(body)
        .finalize();
    let mut check = [0u8; CHECK_LEN];
    check.copy_from_slice(&digest[..CHECK_LEN]);
    check
}

/// Base32 (five bits a character, most significant first; the last
/// character padded with zero bits).
fn encode(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 8 / 5 + 1));
    let (mut acc, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn decode(text: &str) -> Result<Vec<u8>, CodeError> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        };
        let value = ALPHABET
            .iter()
            .position(|&a| char::from(a) == c)
            .ok_or(CodeError::BadCharacter(c))?;
        acc = (acc << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PairingCode {
        PairingCode::new(
            PeerId::random(),
            vec![
                "/ip4/192.0.2.7/tcp/4870".parse().expect("addr"),
                "/ip6/2001:db8::1/tcp/4870".parse().expect("addr"),
            ],
        )
    }

    #[test]
    fn a_code_reads_back_typed_in_any_case_and_spacing() {
        let code = sample();
        let text = code.to_text();
        assert!(
            text.chars()
                .all(|c| c == '-' || ALPHABET.contains(&(c as u8)))
        );
        let typed = text.to_uppercase().replace('-', " ");
        let back = PairingCode::parse(&typed).expect("parses");
        assert_eq!(back.peer, code.peer);
        assert_eq!(back.addrs, code.addrs);
        assert_eq!(*back.secret, *code.secret);
    }

    #[test]
    fn a_typing_mistake_is_caught_by_the_checksum() {
        let text = sample().to_text();
        let mut chars: Vec<char> = text.chars().collect();
        let i = 9;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(
            PairingCode::parse(&typo).expect_err("typo"),
            CodeError::Checksum
        );
        let short = &text[..text.len() - 6];
        assert_eq!(
            PairingCode::parse(short).expect_err("short"),
            CodeError::Checksum
        );
        assert_eq!(
            PairingCode::parse("abcd-u123").expect_err("u"),
            CodeError::BadCharacter('u')
        );
        assert_eq!(
            PairingCode::parse("").expect_err("empty"),
            CodeError::Checksum
        );
    }

    #[test]
    fn every_code_has_its_own_secret() {
        let (a, b) = (sample(), sample());
        assert_ne!(*a.secret, *b.secret);
        assert_ne!(a.to_text(), b.to_text());
    }
}
