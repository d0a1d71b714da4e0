//! Structured MIME header values: `Content-Type` (RFC 2045 §5.1),
//! `Content-Disposition` (RFC 2183) and `Content-Language` (RFC 3282).
//!
//! Parameter values are kept raw (quotes removed, RFC 2231 and RFC 2047
//! encodings left alone): BODYSTRUCTURE passes them through and clients
//! decode them. Invalid syntax yields `None` so that callers fall back to
//! the RFC 2045 §5.2 default.

/// A parsed `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// The top-level media type, lower case (`text`).
    pub r#type: String,
    /// The subtype, lower case (`plain`).
    pub subtype: String,
    /// Parameters in header order: (attribute, raw value).
    pub params: Vec<(String, Vec<u8>)>,
}

impl ContentType {
    /// `text/plain; charset=us-ascii`, the default of RFC 2045 §5.2.
    pub fn text_plain() -> Self {
        ContentType {
            r#type: "text".into(),
            subtype: "plain".into(),
            params: vec![("charset".into(), b"us-ascii".to_vec())],
        }
    }

    /// `message/rfc822`, the default inside `multipart/digest`
    /// (RFC 2046 §5.1.5).
    pub fn message_rfc822() -> Self {
        ContentType {
            r#type: "message".into(),
            subtype: "rfc822".into(),
            params: Vec::new(),
        }
    }

    /// Parses a raw `Content-Type` value; `None` if it has no valid
    /// `type/subtype`.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let (head, params) = split_params(value);
        let slash = head.iter().position(|&b| b == b'/')?;
        let (r#type, subtype) = (&head[..slash], &head[slash + 1..]);
        if !is_token(r#type) || !is_token(subtype) {
            return None;
        }
        Some(ContentType {
            r#type: String::from_utf8_lossy(r#type).to_ascii_lowercase(),
            subtype: String::from_utf8_lossy(subtype).to_ascii_lowercase(),
            params,
        })
    }

    /// Whether this is `type/subtype` (both given in lower case).
    pub fn is(&self, r#type: &str, subtype: &str) -> bool {
        self.r#type == r#type && self.subtype == subtype
    }

    /// The raw value of the first parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        param(&self.params, name)
    }
}

/// A parsed `Content-Disposition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Disposition {
    /// The disposition type as written (`attachment`, `inline`...).
    pub kind: Vec<u8>,
    /// Parameters in header order: (attribute, raw value).
    pub params: Vec<(String, Vec<u8>)>,
}

impl Disposition {
    /// Parses a raw `Content-Disposition` value; `None` if it has no valid
    /// disposition type.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let (head, params) = split_params(value);
        if !is_token(&head) {
            return None;
        }
        Some(Disposition { kind: head, params })
    }
}

/// The language tags of a raw `Content-Language` value (RFC 3282 §2).
pub(crate) fn languages(value: &[u8]) -> Vec<Vec<u8>> {
    strip_comments(value)
        .split(|&b| b == b',')
        .map(|tag| {
            tag.iter()
                .copied()
                .filter(|b| !is_space(*b))
                .collect::<Vec<u8>>()
        })
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// The raw value of the first parameter called `name` (case-insensitive).
pub(crate) fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(attr, _)| attr.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_slice())
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 2045 §5.1 `tspecials`.
fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

/// A non-empty RFC 2045 token. 8-bit bytes are tolerated: they only occur in
/// broken mail, and refusing them would lose the whole header.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| b > 32 && b != 127 && !is_tspecial(b))
}

/// `value` with RFC 5322 comments removed (quoted strings are respected).
fn strip_comments(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut iter = value.iter().copied();
    while let Some(b) = iter.next() {
        match b {
            b'\\' if quoted || depth > 0 => {
                let next = iter.next();
                if depth == 0 {
                    out.push(b);
                    out.extend(next);
                }
            }
            b'"' if depth == 0 => {
                quoted = !quoted;
                out.push(b);
            }
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(b),
            _ => {}
        }
    }
    out
}

/// Splits `head *(";" attribute "=" value)` into the head (white space
/// removed) and the parameters.
fn split_params(value: &[u8]) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let value = strip_comments(value);
    let mut pos = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let head: Vec<u8> = value[..pos]
        .iter()
        .copied()
        .filter(|&b| !is_space(b))
        .collect();
    let mut params = Vec::new();
    while pos < value.len() {
        // `pos` is at a ';'.
        pos += 1;
        let (param, next) = parse_param(&value, pos);
        params.extend(param);
        pos = next;
    }
    (head, params)
}

/// Parses one `attribute "=" value` starting at `pos`; returns it (if valid)
/// and the position of the next `;` (or the end).
fn parse_param(value: &[u8], mut pos: usize) -> (Option<(String, Vec<u8>)>, usize) {
    let next_semicolon = |from: usize| {
        value
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b';'))
            .map_or(value.len(), |i| from + i)
    };
    let attr_start = pos;
    while pos < value.len() && !matches!(value[pos], b'=' | b';') {
        pos += 1;
    }
    if value.get(pos) != Some(&b'=') {
        return (None, pos);
    }
    let attr: Vec<u8> = value[attr_start..pos]
        .iter()
        .copied()
        .filter(|&b| !is_space(b))
        .collect();
    pos += 1;
    while pos < value.len() && is_space(value[pos]) {
        pos += 1;
    }
    let mut raw = Vec::new();
    if value.get(pos) == Some(&b'"') {
        pos += 1;
        while pos < value.len() {
            match value[pos] {
                b'"' => {
                    pos += 1;
                    break;
                }
                b'\\' if pos + 1 < value.len() => {
                    raw.push(value[pos + 1]);
                    pos += 2;
                }
                // Unfolding inside a quoted string (RFC 5322 §2.2.3).
                b'\r' | b'\n' => pos += 1,
                b => {
                    raw.push(b);
                    pos += 1;
                }
            }
        }
    } else {
        while pos < value.len() && !is_space(value[pos]) && value[pos] != b';' {
            raw.push(value[pos]);
            pos += 1;
        }
    }
    let end = next_semicolon(pos);
    if !is_token(&attr) {
        return (None, end);
    }
    (
        Some((String::from_utf8_lossy(&attr).into_owned(), raw)),
        end,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_type_and_params() {
        let ct = ContentType::parse(b" Text/HTML; charset=\"UTF-8\"; format=flowed")
            .expect("valid content type");
        assert!(ct.is("text", "html"));
        assert_eq!(ct.param("CHARSET"), Some(&b"UTF-8"[..]));
        assert_eq!(ct.param("format"), Some(&b"flowed"[..]));
    }

    #[test]
    fn folded_value_with_comments_and_escapes() {
        let ct = ContentType::parse(
            b"multipart/mixed (a comment);\r\n boundary=\"b\\\"1; x\" ; other = tok",
        )
        .expect("valid content type");
        assert!(ct.is("multipart", "mixed"));
        assert_eq!(ct.param("boundary"), Some(&b"b\"1; x"[..]));
        assert_eq!(ct.param("other"), Some(&b"tok"[..]));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(ContentType::parse(b"text"), None);
        assert_eq!(ContentType::parse(b"/plain"), None);
        assert_eq!(ContentType::parse(b""), None);
        assert_eq!(ContentType::parse(b"te xt/pl@in"), None);
    }

    #[test]
    fn tolerates_broken_params() {
        let ct =
            ContentType::parse(b"text/plain; ; junk; =x; name=\"unterminated").expect("valid head");
        assert_eq!(
            ct.params,
            vec![("name".to_string(), b"unterminated".to_vec())]
        );
    }

    #[test]
    fn rfc2231_params_stay_raw() {
        let d = Disposition::parse(b"attachment; filename*=UTF-8''%E2%82%AC.txt")
            .expect("valid disposition");
        assert_eq!(d.kind, b"attachment");
        assert_eq!(d.params[0].0, "filename*");
        assert_eq!(d.params[0].1, b"UTF-8''%E2%82%AC.txt");
    }

    #[test]
    fn language_list() {
        assert_eq!(
            languages(b" en, de-CH (Swiss) ,"),
            vec![b"en".to_vec(), b"de-CH".to_vec()]
        );
    }
}
