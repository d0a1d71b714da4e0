//! Repairs of commands that widely used clients send against the letter of
//! the grammar, so that they decode with the strict codec instead of
//! failing with `BAD`.
//!
//! Every repair here is narrow (one command, one construct), keeps the
//! message's length so literal counts stay right, and is only tried after
//! the strict decode failed. Each names the client that needs it.

/// Where `CHANGEDSINCE 0` was rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The command with `CHANGEDSINCE 1` in place of `CHANGEDSINCE 0`.
    pub bytes: Vec<u8>,
}

/// Thunderbird (153, with `use_condstore`) sends
/// `UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)` for a folder it has never
/// synchronised. RFC 7162 §7 makes the value a `mod-sequence-value`
/// (non-zero), but `CHANGEDSINCE 0` has one obvious meaning (every message,
/// with its MODSEQ) and Dovecot accepts it. The value is rewritten to `1`
/// (same length) so the codec accepts the command; the caller must then
/// treat the decoded `CHANGEDSINCE 1` as 0.
///
/// Only a FETCH (or UID FETCH) whose last parenthesised group is a modifier
/// list holding `CHANGEDSINCE 0` is touched.
pub fn changed_since_zero(message: &[u8]) -> Option<Repaired> {
    let line = message.strip_suffix(b"\r\n").unwrap_or(message);
    let mut words = line.split(|b| *b == b' ');
    words.next()?; // tag
    let command = words.next()?;
    let is_fetch = if command.eq_ignore_ascii_case(b"UID") {
        words.next()?.eq_ignore_ascii_case(b"FETCH")
    } else {
        command.eq_ignore_ascii_case(b"FETCH")
    };
    if !is_fetch || line.last() != Some(&b')') {
        return None;
    }
    // The modifier list is the last group: `... (CHANGEDSINCE 0 VANISHED)`.
    let open = line.iter().rposition(|b| *b == b'(')?;
    if open == 0 || line[open - 1] != b' ' {
        return None;
    }
    let group = &line[open + 1..line.len() - 1];
    // Words of the group with their offsets in `line`.
    let mut parts = Vec::new();
    let mut offset = open + 1;
    for word in group.split(|b| *b == b' ') {
        parts.push((offset, word));
        offset += word.len() + 1;
    }
    let zero = parts.windows(2).find_map(|pair| {
        let [(_, name), (at, value)] = pair else {
            return None;
        };
        (name.eq_ignore_ascii_case(b"CHANGEDSINCE") && *value == b"0").then_some(*at)
    })?;
    let mut bytes = message.to_vec();
    bytes[zero] = b'1';
    Some(Repaired { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunderbird_changedsince_zero_is_repaired() {
        let repaired =
            changed_since_zero(b"27 UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)\r\n").expect("repaired");
        assert_eq!(
            repaired.bytes,
            b"27 UID fetch 1:* (FLAGS) (CHANGEDSINCE 1)\r\n".to_vec()
        );
        let repaired = changed_since_zero(b"a FETCH 1:* FLAGS (vanished changedsince 0)\r\n")
            .expect("repaired");
        assert_eq!(
            repaired.bytes,
            b"a FETCH 1:* FLAGS (vanished changedsince 1)\r\n".to_vec()
        );
    }

    #[test]
    fn other_commands_and_values_are_left_alone() {
        for line in [
            &b"a UID fetch 1:* (FLAGS) (CHANGEDSINCE 10)\r\n"[..],
            b"a UID fetch 1:* (FLAGS) (CHANGEDSINCE 05)\r\n",
            b"a UID store 1:* (UNCHANGEDSINCE 0) +FLAGS (\\Seen)\r\n",
            b"a SEARCH CHANGEDSINCE 0\r\n",
            b"a UID fetch 1:* (FLAGS)\r\n",
            b"a FETCH 1 (BODY[HEADER.FIELDS (CHANGEDSINCE 0)])\r\n",
            b"(CHANGEDSINCE 0)\r\n",
            b"",
        ] {
            assert_eq!(changed_since_zero(line), None, "{line:?}");
        }
    }
}
