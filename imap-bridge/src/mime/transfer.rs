//! Content-Transfer-Encoding (RFC 2045 §6): which encoding a part declares
//! and undoing it, for SEARCH (text parts) and `BINARY[...]` (RFC 3516).
//! The decoding itself is mailparse's.

use mailparse::ParsedContentType;
use mailparse::body::Body;

use super::header;

/// A part's declared transfer encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `7bit`, `8bit`, `binary`, or none declared: the bytes are the content.
    Identity,
    Base64,
    QuotedPrintable,
    /// Anything else (`x-uuencode`, a typo): this server cannot undo it.
    Unknown(String),
}

/// The encoding declared in an entity's header block.
pub(crate) fn declared(header_block: &[u8]) -> Encoding {
    let Some(value) = header::first(header_block, "Content-Transfer-Encoding") else {
        return Encoding::Identity;
    };
    let name = String::from_utf8_lossy(header::trim_wsp(value)).to_ascii_lowercase();
    match name.as_str() {
        "" | "7bit" | "8bit" | "binary" => Encoding::Identity,
        "base64" => Encoding::Base64,
        "quoted-printable" => Encoding::QuotedPrintable,
        _ => Encoding::Unknown(name),
    }
}

/// The content of `raw` with `encoding` undone; `None` when the encoding is
/// unknown or the data is not valid for it.
pub(crate) fn decode(raw: &[u8], encoding: &Encoding) -> Option<Vec<u8>> {
    let name = match encoding {
        Encoding::Identity => return Some(raw.to_vec()),
        Encoding::Unknown(_) => return None,
        Encoding::Base64 => "base64",
        Encoding::QuotedPrintable => "quoted-printable",
    };
    // The content type only matters to mailparse's charset conversion,
    // which is not used here.
    let ctype = ParsedContentType::default();
    match Body::new(raw, &ctype, &Some(name.to_owned())) {
        Body::Base64(body) | Body::QuotedPrintable(body) => body.get_decoded().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_decoding() {
        assert_eq!(declared(b"Subject: x\r\n\r\n"), Encoding::Identity);
        assert_eq!(
            declared(b"Content-Transfer-Encoding:  BASE64 \r\n\r\n"),
            Encoding::Base64
        );
        assert_eq!(
            declared(b"content-transfer-encoding: x-uuencode\r\n\r\n"),
            Encoding::Unknown("x-uuencode".into())
        );
        assert_eq!(
            decode(b"AAEC\r\n/w==\r\n", &Encoding::Base64).as_deref(),
            Some(&[0u8, 1, 2, 0xff][..])
        );
        assert_eq!(
            decode(b"caf=C3=A9 =\r\nend", &Encoding::QuotedPrintable).as_deref(),
            Some("café end".as_bytes())
        );
        assert_eq!(decode(b"!!!", &Encoding::Base64), None);
        assert_eq!(decode(b"x", &Encoding::Unknown("x-uuencode".into())), None);
    }
}
