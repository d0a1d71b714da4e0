//! Safety numbers: what two people compare, aloud or by scanning a QR code,
//! to know that each holds the other's real key (`mailnode contacts
//! verify`).
//!
//! Each party's half is 30 digits derived from their primary key
//! fingerprint alone: SHA-512 iterated 5,200 times over the fingerprint
//! (so that grinding for a key whose number looks alike costs ~5,200
//! hashes per try), the first 30 bytes read as six 5-byte numbers, each
//! reduced mod 100,000. The two halves are put in the order of their
//! fingerprints, so both sides see the same 60 digits. The scheme follows
//! the shape of Signal's; the domain string and the use of OpenPGP
//! fingerprints are ours (`docs/protocol.md`, "Safety numbers").

use sha2::{Digest, Sha512};

use crate::KeyError;

const DOMAIN: &[u8] = b"mailnode safety number v1\0";
const ITERATIONS: usize = 5200;

/// The 60-digit number two contacts compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
}

impl SafetyNumber {
    /// The number for the two primary key fingerprints (hex, any case), in
    /// either order.
    pub fn new(ours: &str, theirs: &str) -> Result<SafetyNumber, KeyError> {
        let a = fingerprint_bytes(ours)?;
        let b = fingerprint_bytes(theirs)?;
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        Ok(SafetyNumber {
            digits: format!("{}{}", half(&first), half(&second)),
        })
    }

    /// The 60 digits.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// Twelve groups of five digits.
    pub fn groups(&self) -> Vec<&str> {
        (0..12).map(|i| &self.digits[i * 5..i * 5 + 5]).collect()
    }

    /// Three lines of four groups, as people read it aloud.
    pub fn for_reading(&self) -> String {
        self.groups()
            .chunks(4)
            .map(|line| line.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// What the QR code encodes.
    pub fn qr_text(&self) -> String {
        format!("mailnode-safety-number:1:{}", self.digits)
    }
}

fn fingerprint_bytes(hex_text: &str) -> Result<Vec<u8>, KeyError> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean)
        .ok()
        .filter(|b| b.len() >= 20)
        .ok_or_else(|| KeyError::InvalidCard(format!("{hex_text:?} is not a key fingerprint")))
}

fn half(fingerprint: &[u8]) -> String {
    let mut hash = Sha512::new()
        .chain_update(DOMAIN)
        .chain_update(fingerprint)
        .finalize();
    for _ in 1..ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(fingerprint)
            .finalize();
    }
    hash[..30]
        .chunks(5)
        .map(|chunk| {
            let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", value % 100_000)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
    const BOB: &str = "FEDCBA9876543210FEDCBA9876543210FEDCBA98";

    #[test]
    fn both_sides_see_the_same_number() {
        let one = SafetyNumber::new(ALICE, BOB).expect("number");
        let other = SafetyNumber::new(BOB, &ALICE.to_lowercase()).expect("number");
        assert_eq!(one, other);
        assert_eq!(one.digits().len(), 60);
        assert!(one.digits().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(one.groups().len(), 12);
        assert_eq!(one.for_reading().lines().count(), 3);
    }

    #[test]
    fn the_number_is_stable_and_depends_on_both_keys() {
        // Fixed so that a change of the derivation cannot go unnoticed:
        // users compare numbers made by different versions.
        let number = SafetyNumber::new(ALICE, BOB).expect("number");
        assert_eq!(number.digits(), STABLE);
        let carol = "00000000000000000000000000000000000000AA";
        let changed = SafetyNumber::new(ALICE, carol).expect("number");
        assert_ne!(changed, number);
        // Each half is one party's: Alice's half is the same with anyone.
        assert!(
            changed
                .digits()
                .contains(&half(&fingerprint_bytes(ALICE).expect("hex")))
        );
    }

    #[test]
    fn a_bad_fingerprint_is_an_error() {
        assert!(SafetyNumber::new("xyz", BOB).is_err());
        assert!(SafetyNumber::new("ABCD", BOB).is_err());
    }

    // Computed independently (Python hashlib) from the description above.
    const STABLE: &str = "928576843190534642237212341934803484437934844135494553289317";
}
