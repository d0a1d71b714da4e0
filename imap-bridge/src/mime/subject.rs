//! The base subject of RFC 5256 §2.1 and the `i;unicode-casemap`
//! collation of RFC 5051, which SORT SUBJECT and THREAD compare.
//!
//! Input is the decoded subject (RFC 2047 words already turned into UTF-8);
//! output is what two messages of one conversation have in common.

use icu_normalizer::DecomposingNormalizerBorrowed;

/// A base subject and whether the original was a reply or a forward
/// (RFC 5256 §2.1 steps 2, 3 and 6 removed something), which THREAD
/// REFERENCES uses when it merges threads by subject (§2.3 step 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseSubject {
    /// The base subject, white space collapsed, case kept.
    pub text: String,
    /// A `Re:`, `Fwd:`, `(fwd)` or `[fwd: ...]` was removed.
    pub is_reply: bool,
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 5256 §2.1 step 1: every run of white space (tabs, folding) becomes
/// one space.
fn collapse_wsp(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut space = false;
    for c in subject.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    if space && !out.is_empty() {
        // A trailing run is removed by step 2 anyway; keep it one space.
        out.push(' ');
    }
    out
}

/// Step 2: removes trailing `(fwd)` and white space; whether a `(fwd)` went.
fn strip_trailers(s: &mut String) -> bool {
    let mut removed = false;
    loop {
        let trimmed = s.trim_end_matches(is_wsp).len();
        if trimmed < s.len() {
            s.truncate(trimmed);
            continue;
        }
        if s.len() >= 5
            && s.is_char_boundary(s.len() - 5)
            && s[s.len() - 5..].eq_ignore_ascii_case("(fwd)")
        {
            s.truncate(s.len() - 5);
            removed = true;
            continue;
        }
        return removed;
    }
}

/// Length of a `subj-blob` (`"[" *BLOBCHAR "]" *WSP`) at the start of `s`.
fn blob_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find([']', '['])?;
    if !rest[close..].starts_with(']') {
        return None;
    }
    let after = 1 + close + 1;
    let spaces = s[after..].len() - s[after..].trim_start_matches(is_wsp).len();
    Some(after + spaces)
}

/// Length of a `subj-refwd` (`("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`)
/// at the start of `s`.
fn refwd_len(s: &str) -> Option<usize> {
    let lower = s.get(..3).map(str::to_ascii_lowercase);
    let word = match lower.as_deref() {
        Some("fwd") => 3,
        _ => {
            let two = s.get(..2)?.to_ascii_lowercase();
            match two.as_str() {
                "re" | "fw" => 2,
                _ => return None,
            }
        }
    };
    let mut at = word;
    at += s[at..].len() - s[at..].trim_start_matches(is_wsp).len();
    if let Some(blob) = blob_len(&s[at..]) {
        at += blob;
    }
    s[at..].starts_with(':').then_some(at + 1)
}

/// Step 3: removes leading `subj-leader`s (`*subj-blob subj-refwd` or
/// white space); whether a `subj-refwd` went.
fn strip_leaders(s: &mut String) -> bool {
    let mut removed = false;
    loop {
        let spaces = s.len() - s.trim_start_matches(is_wsp).len();
        if spaces > 0 {
            s.drain(..spaces);
            continue;
        }
        let mut at = 0;
        while let Some(blob) = blob_len(&s[at..]) {
            at += blob;
        }
        match refwd_len(&s[at..]) {
            Some(refwd) => {
                s.drain(..at + refwd);
                removed = true;
            }
            None => return removed,
        }
    }
}

/// Step 4: removes one leading `subj-blob` if something is left after it.
fn strip_blob(s: &mut String) -> bool {
    match blob_len(s) {
        Some(blob) if !s[blob..].trim_matches(is_wsp).is_empty() => {
            s.drain(..blob);
            true
        }
        _ => false,
    }
}

/// The base subject of a decoded subject (RFC 5256 §2.1).
pub(crate) fn base_subject(subject: &str) -> BaseSubject {
    let mut s = collapse_wsp(subject);
    let mut is_reply = false;
    loop {
        is_reply |= strip_trailers(&mut s);
        loop {
            let leaders = strip_leaders(&mut s);
            is_reply |= leaders;
            let blob = strip_blob(&mut s);
            if !leaders && !blob {
                break;
            }
        }
        // Step 6: `[fwd: subject]`.
        let wrapped = s.len() >= 6
            && s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("[fwd:"))
            && s.ends_with(']');
        if !wrapped {
            break;
        }
        s = s[5..s.len() - 1].to_string();
        is_reply = true;
    }
    BaseSubject { text: s, is_reply }
}

/// The `i;unicode-casemap` key of `text` (RFC 5051 §2): every character
/// mapped to its titlecase (upper case here: they differ only for a few
/// digraphs), then fully decomposed (NFKD). Keys compare as octets.
pub(crate) fn casemap(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_uppercase();
    }
    let upper: String = text
        .chars()
        .flat_map(|c| {
            let mut mapped = c.to_uppercase();
            // Characters whose upper case is several (ß -> SS) keep their
            // own title case in RFC 5051; use the upper case all the same.
            let first = mapped.next().unwrap_or(c);
            std::iter::once(first).chain(mapped)
        })
        .collect();
    DecomposingNormalizerBorrowed::new_nfkd()
        .normalize(&upper)
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> (String, bool) {
        let b = base_subject(s);
        (b.text, b.is_reply)
    }

    #[test]
    fn plain_subject_is_its_own_base() {
        assert_eq!(base("Quarterly report"), ("Quarterly report".into(), false));
        assert_eq!(base("  spaced \t  out  "), ("spaced out".into(), false));
        assert_eq!(base(""), (String::new(), false));
    }

    #[test]
    fn reply_and_forward_prefixes_go() {
        assert_eq!(base("Re: lunch"), ("lunch".into(), true));
        assert_eq!(base("RE: re: Fwd: lunch"), ("lunch".into(), true));
        assert_eq!(base("Fw: lunch"), ("lunch".into(), true));
        assert_eq!(base("Re[2]: lunch"), ("lunch".into(), true));
        assert_eq!(base("Re [2]: lunch"), ("lunch".into(), true));
        assert_eq!(base("lunch (fwd)"), ("lunch".into(), true));
        assert_eq!(base("lunch (FWD) (fwd) "), ("lunch".into(), true));
        // Not a prefix: no colon, or a word that merely starts with re.
        assert_eq!(base("Regarding lunch"), ("Regarding lunch".into(), false));
        assert_eq!(base("Re lunch"), ("Re lunch".into(), false));
    }

    #[test]
    fn list_blobs_go_unless_they_are_all_there_is() {
        assert_eq!(base("[list] Re: lunch"), ("lunch".into(), true));
        assert_eq!(base("Re: [list] lunch"), ("lunch".into(), true));
        assert_eq!(base("[list] [other] lunch"), ("lunch".into(), false));
        assert_eq!(base("[list]"), ("[list]".into(), false));
        assert_eq!(base("[unclosed lunch"), ("[unclosed lunch".into(), false));
    }

    #[test]
    fn fwd_wrapper_goes() {
        assert_eq!(base("[Fwd: Re: lunch]"), ("lunch".into(), true));
        assert_eq!(base("[fwd: [list] lunch] (fwd)"), ("lunch".into(), true));
    }

    #[test]
    fn casemap_folds_case_and_accents_apart() {
        assert_eq!(casemap("Lunch"), casemap("LUNCH"));
        assert_eq!(casemap("grüße"), casemap("GRÜSSE"));
        // Decomposed: an accented letter sorts right after its base letter.
        assert!(casemap("é") > casemap("e"));
        assert!(casemap("é") < casemap("f"));
    }
}
