//! Pure building blocks of the inbound side ([`super::fetch`] uses them):
//! the UIDVALIDITY/UID cursor decision, the marking of a fetched message
//! before it is filed, and the message made of a decrypted PGP/MIME one.
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
    mark_received_as(raw, "")
}

/// [`mark_received`] with `detail` after `received` in the mark (e.g.
/// `; decrypted; signature=none`).
pub fn mark_received_as(raw: &[u8], detail: &str) -> Vec<u8> {
    let mark = &RECEIVED_MARK[..RECEIVED_MARK.len() - 2];
    let mut out = Vec::with_capacity(raw.len() + RECEIVED_MARK.len() + detail.len());
    out.extend_from_slice(mark);
    out.extend_from_slice(crate::bounce::one_line(detail).as_bytes());
    out.extend_from_slice(b"\r\n");
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

/// The header lines of `raw` (each with its folds and line end) and the
/// rest (the blank line and the body).
fn header_fields(raw: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut rest = raw;
    let mut start = 0;
    let mut at = 0;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) && at > start {
            fields.push(&raw[start..at]);
            start = at;
        }
        at += end;
        rest = &rest[end..];
    }
    if at > start {
        fields.push(&raw[start..at]);
    }
    (fields, &raw[at..])
}

fn field_name(field: &[u8]) -> String {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    String::from_utf8_lossy(&field[..colon])
        .trim()
        .to_ascii_lowercase()
}

/// The message a user reads after decrypting a PGP/MIME `outer` message
/// whose plaintext is `inner`: the inner header and body, and before them
/// the outer fields the inner header does not have (an Autocrypt client's
/// plaintext is often one MIME part without From or Date; a protected
/// Subject inside wins over the outer `...`). The outer MIME fields
/// describe the encryption and are dropped.
pub fn merge_decrypted(outer: &[u8], inner: &[u8]) -> Vec<u8> {
    let (outer_fields, _) = header_fields(outer);
    let (inner_fields, _) = header_fields(inner);
    let inner_names: Vec<String> = inner_fields.iter().map(|f| field_name(f)).collect();
    let mut out = Vec::with_capacity(outer.len().min(4096) + inner.len());
    for field in outer_fields {
        let name = field_name(field);
        if name.starts_with("content-") || name == "mime-version" || inner_names.contains(&name) {
            continue;
        }
        out.extend_from_slice(field);
        if !field.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(inner);
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
    fn decrypted_plaintext_gets_the_outer_fields_it_lacks() {
        let outer =
            b"From: carol@example.net\r\nSubject: ...\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n\
            Content-Type: multipart/encrypted;\r\n boundary=x\r\nMIME-Version: 1.0\r\n\r\n--x\r\n";
        let inner = b"Content-Type: text/plain\r\nSubject: the real one\r\n\r\nsecret\r\n";
        assert_eq!(
            merge_decrypted(outer, inner),
            b"From: carol@example.net\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n\
              Content-Type: text/plain\r\nSubject: the real one\r\n\r\nsecret\r\n"
        );
    }

    #[test]
    fn marks_carry_their_detail() {
        assert_eq!(
            mark_received_as(b"Subject: x\r\n\r\nb", "; decrypted; signature=none"),
            b"X-Mailnode-Gateway: received; decrypted; signature=none\r\nSubject: x\r\n\r\nb"
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
