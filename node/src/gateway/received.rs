//! Pure building blocks of the inbound side (issue 11; the fetch loop that
//! uses them is not built yet): the UIDVALIDITY/UID cursor decision, and
//! the marking of a fetched message before it is filed.
//!
//! No I/O here. Gateway mail is not peer-authenticated, so [`mark_received`]
//! removes every mailnode-internal field a sender could forge before adding
//! its own mark.

/// The fetch position at the provider, persisted only after the local
/// commit of the message with `last_uid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The INBOX UIDVALIDITY the UIDs belong to (RFC 9051 §2.3.1.1).
    pub uidvalidity: u32,
    /// The highest UID already filed locally.
    pub last_uid: u32,
}

/// What to fetch after SELECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPlan {
    /// `UID FETCH from:*`; everything is new.
    From(u32),
    /// UIDVALIDITY changed (or first run): fetch all, skipping messages
    /// already filed (dedupe by Message-ID + content hash).
    RefetchAll,
}

/// Decides what to fetch given the stored cursor and the server's
/// UIDVALIDITY.
pub fn plan(stored: Option<Cursor>, server_uidvalidity: u32) -> FetchPlan {
    match stored {
        Some(cursor) if cursor.uidvalidity == server_uidvalidity => {
            FetchPlan::From(cursor.last_uid.saturating_add(1))
        }
        _ => FetchPlan::RefetchAll,
    }
}

/// The mark on gateway mail filed locally.
pub const RECEIVED_MARK: &[u8] = b"X-Mailnode-Gateway: received\r\n";

/// Fields only mailnode itself may set; dropped from what arrives.
const INTERNAL_FIELDS: [&str; 2] = ["x-mailnode-gateway", "x-mailnode-verified-signer"];

/// Returns the message with forged internal fields (folded continuation
/// lines included) removed from its header and [`RECEIVED_MARK`] prepended.
/// The body is untouched.
pub fn mark_received(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + RECEIVED_MARK.len());
    out.extend_from_slice(RECEIVED_MARK);
    let mut rest = raw;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if line == b"\r\n" || line == b"\n" {
            // End of the header: copy the separator and the body as is.
            out.extend_from_slice(rest);
            return out;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = is_internal(line);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

fn is_internal(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = String::from_utf8_lossy(&line[..colon]);
    let name = name.trim().to_ascii_lowercase();
    INTERNAL_FIELDS.contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_uidvalidity_continues_after_last_uid() {
        let cursor = Cursor {
            uidvalidity: 7,
            last_uid: 41,
        };
        assert_eq!(plan(Some(cursor), 7), FetchPlan::From(42));
        assert_eq!(plan(Some(cursor), 8), FetchPlan::RefetchAll);
        assert_eq!(plan(None, 1), FetchPlan::RefetchAll);
    }

    #[test]
    fn forged_internal_fields_are_dropped_with_their_folds() {
        let raw = b"From: carol@example.org\r\nX-Mailnode-Verified-Signer: bob\r\n  folded\r\nx-mailnode-gateway: encrypted\r\nSubject: hi\r\n\r\nX-Mailnode-Gateway: body stays\r\n";
        let marked = mark_received(raw);
        assert_eq!(
            marked,
            b"X-Mailnode-Gateway: received\r\nFrom: carol@example.org\r\nSubject: hi\r\n\r\nX-Mailnode-Gateway: body stays\r\n"
        );
    }

    #[test]
    fn header_only_message_is_kept() {
        assert_eq!(
            mark_received(b"Subject: x"),
            b"X-Mailnode-Gateway: received\r\nSubject: x"
        );
    }
}
