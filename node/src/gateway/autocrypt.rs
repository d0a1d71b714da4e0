//! Autocrypt Level 1 for gateway mail: parsing a received `Autocrypt:`
//! header (§2.1) and the per-sender peer state update (§2.3).
//!
//! This module only decides; it does no I/O. The records are kept by
//! [`super::peers`]; the fetch loop ([`super::fetch`]) feeds them.

/// A valid `Autocrypt:` header of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutocryptHeader {
    /// The `addr` attribute, lower-cased.
    pub addr: String,
    /// `prefer-encrypt=mutual` was present.
    pub prefer_mutual: bool,
    /// The `keydata` attribute, base64 with all whitespace removed.
    pub keydata: String,
}

/// Why a header was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// `addr` or `keydata` is missing.
    Missing(&'static str),
    /// An attribute not starting with `_` that Level 1 does not know
    /// (§2.1: the whole header must then be ignored).
    UnknownCritical(String),
    /// `addr` is not the message's From address.
    AddrMismatch,
    /// More than one `Autocrypt:` header (§2.3: treat as none).
    Several,
}

/// Parses one header value and checks `addr` against the From address.
pub fn parse_header(value: &str, from: &str) -> Result<AutocryptHeader, HeaderError> {
    let mut addr = None;
    let mut prefer_mutual = false;
    let mut keydata = None;
    for attribute in value.split(';') {
        let attribute = attribute.trim();
        if attribute.is_empty() {
            continue;
        }
        let (name, val) = match attribute.split_once('=') {
            Some((name, val)) => (name.trim(), val.trim()),
            None => (attribute, ""),
        };
        match name.to_ascii_lowercase().as_str() {
            "addr" => addr = Some(val.to_ascii_lowercase()),
            "prefer-encrypt" => prefer_mutual = val.eq_ignore_ascii_case("mutual"),
            "keydata" => keydata = Some(val.chars().filter(|c| !c.is_ascii_whitespace()).collect()),
            other if other.starts_with('_') => {}
            other => return Err(HeaderError::UnknownCritical(other.to_string())),
        }
    }
    let addr: String = addr.ok_or(HeaderError::Missing("addr"))?;
    let keydata: String = keydata.ok_or(HeaderError::Missing("keydata"))?;
    if keydata.is_empty() {
        return Err(HeaderError::Missing("keydata"));
    }
    if !addr.eq_ignore_ascii_case(from.trim()) {
        return Err(HeaderError::AddrMismatch);
    }
    Ok(AutocryptHeader {
        addr,
        prefer_mutual,
        keydata,
    })
}

/// The single valid header among all `Autocrypt:` values of a message.
pub fn pick_header(values: &[&str], from: &str) -> Result<AutocryptHeader, HeaderError> {
    match values {
        [] => Err(HeaderError::Missing("Autocrypt")),
        [one] => parse_header(one, from),
        _ => Err(HeaderError::Several),
    }
}

/// What we know about one sender (Autocrypt Level 1 §2.3). Times are Unix
/// seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerState {
    /// Effective date of the newest message seen from this sender.
    pub last_seen: i64,
    /// Effective date of the newest message with a valid header.
    pub autocrypt_timestamp: i64,
    /// The key from that header (base64), if any.
    pub keydata: Option<String>,
    /// Its `prefer-encrypt=mutual`.
    pub prefer_mutual: bool,
}

impl PeerState {
    /// Applies one message: `date` is its Date (clamped to `now`, since a
    /// future Date must not pin a key), `header` its valid header if any.
    /// Newer (or as new) wins; an older message changes nothing. Returns
    /// whether it was taken.
    pub fn update(&mut self, date: i64, now: i64, header: Option<&AutocryptHeader>) -> bool {
        let date = date.min(now);
        // §2.3: only an *older* message changes nothing; Date has one
        // second of resolution, so two messages of the same second are
        // both taken, in the order they arrive.
        if date < self.last_seen {
            return false;
        }
        self.last_seen = date;
        let Some(header) = header else {
            return true;
        };
        if date >= self.autocrypt_timestamp {
            self.autocrypt_timestamp = date;
            self.keydata = Some(header.keydata.clone());
            self.prefer_mutual = header.prefer_mutual;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_level1_header_with_folded_keydata() {
        let header = parse_header(
            "addr=Carol@Example.org; prefer-encrypt=mutual; keydata=\r\n xsBN\r\n AQAB",
            "carol@example.org",
        )
        .expect("valid");
        assert_eq!(header.addr, "carol@example.org");
        assert!(header.prefer_mutual);
        assert_eq!(header.keydata, "xsBNAQAB");
    }

    #[test]
    fn unknown_critical_attribute_voids_header_but_underscore_is_ignored() {
        assert_eq!(
            parse_header("addr=a@b; type=2; keydata=xx", "a@b"),
            Err(HeaderError::UnknownCritical("type".into()))
        );
        assert!(parse_header("addr=a@b; _extra=1; keydata=xx", "a@b").is_ok());
    }

    #[test]
    fn addr_must_match_from_and_keydata_is_required() {
        assert_eq!(
            parse_header("addr=mallory@b; keydata=xx", "carol@b"),
            Err(HeaderError::AddrMismatch)
        );
        assert_eq!(
            parse_header("addr=carol@b", "carol@b"),
            Err(HeaderError::Missing("keydata"))
        );
        assert_eq!(
            pick_header(&["addr=a@b; keydata=x", "addr=a@b; keydata=y"], "a@b"),
            Err(HeaderError::Several)
        );
    }

    #[test]
    fn newer_message_wins_older_changes_nothing() {
        let key = |k: &str| AutocryptHeader {
            addr: "a@b".into(),
            prefer_mutual: false,
            keydata: k.into(),
        };
        let mut state = PeerState::default();
        assert!(state.update(100, 1000, Some(&key("one"))));
        assert!(!state.update(50, 1000, Some(&key("old"))));
        assert_eq!(state.keydata.as_deref(), Some("one"));
        // A newer message without a header moves last_seen only.
        assert!(state.update(200, 1000, None));
        assert_eq!((state.last_seen, state.autocrypt_timestamp), (200, 100));
        // The same second as the last message: taken.
        assert!(state.update(200, 1000, Some(&key("same second"))));
        assert_eq!(state.keydata.as_deref(), Some("same second"));
        // A future Date is clamped to now.
        assert!(state.update(5000, 1000, Some(&key("two"))));
        assert_eq!(state.autocrypt_timestamp, 1000);
        assert_eq!(state.keydata.as_deref(), Some("two"));
    }
}
