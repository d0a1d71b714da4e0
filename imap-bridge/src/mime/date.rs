//! The `Date:` header as a point in time (RFC 5322 §3.3, obsolete forms of
//! §4.3), for SEARCH SENTBEFORE/SENTON/SENTSINCE.
//!
//! chrono reads the standard form; a lenient reader picks the pieces of
//! common deviations (two-digit years, zone names, missing seconds, comments,
//! asctime order). Anything without a day, month, year and time is refused
//! rather than guessed.

use chrono::{DateTime, NaiveDate};

/// Seconds since the Unix epoch for a raw (unfolded) Date value.
pub(crate) fn parse(value: &str) -> Option<i64> {
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.timestamp());
    }
    lenient(value)
}

fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn month(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = token.get(..3)?.to_ascii_lowercase();
    let index = MONTHS.iter().position(|m| *m == prefix)?;
    u32::try_from(index + 1).ok()
}

/// A zone as seconds east of UTC (RFC 5322 §3.3 and §4.3).
fn zone(token: &str) -> Option<i64> {
    let bytes = token.as_bytes();
    if bytes.len() == 5 && matches!(bytes[0], b'+' | b'-') {
        let digits = token.get(1..)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: i64 = digits.parse().ok()?;
        let seconds = (n / 100) * 3600 + (n % 100) * 60;
        return Some(if bytes[0] == b'-' { -seconds } else { seconds });
    }
    let hours = match token.to_ascii_uppercase().as_str() {
        "UT" | "UTC" | "GMT" | "Z" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => return None,
    };
    Some(hours * 3600)
}

/// `hh:mm[:ss]`.
fn time(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let s = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    parts.next().is_none().then_some((h, m, s))
}

fn lenient(value: &str) -> Option<i64> {
    let cleaned = strip_comments(value).replace(',', " ");
    let (mut day, mut mon, mut year, mut hms, mut offset) = (None, None, None, None, None);
    for token in cleaned.split_whitespace() {
        if token.contains(':') {
            hms = hms.or(time(token));
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            let n: i32 = token.parse().ok()?;
            if day.is_none() && token.len() <= 2 {
                day = Some(u32::try_from(n).ok()?);
            } else if year.is_none() {
                // Two- and three-digit years (RFC 5322 §4.3).
                year = Some(match token.len() {
                    1 | 2 if n < 50 => 2000 + n,
                    1..=3 => 1900 + n,
                    _ => n,
                });
            }
        } else if let Some(z) = zone(token) {
            offset = offset.or(Some(z));
        } else if let Some(m) = month(token) {
            // Weekday names never match a month prefix, so they fall through.
            mon = mon.or(Some(m));
        }
    }
    let (h, m, s) = hms?;
    let local = NaiveDate::from_ymd_opt(year?, mon?, day?)?.and_hms_opt(h, m, s)?;
    // An unknown zone is taken as UTC (RFC 5322 §4.3: "-0000").
    Some(local.and_utc().timestamp() - offset.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_obsolete_forms() {
        assert_eq!(parse("Tue, 2 Jan 2024 12:30:00 +0100"), Some(1_704_195_000));
        assert_eq!(
            parse("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"),
            Some(837_595_405)
        );
        assert_eq!(parse("17 Jul 96 02:23:25 PDT"), Some(837_595_405));
        assert_eq!(parse("Wed Jul 17 09:23:25 1996"), Some(837_595_405));
        assert_eq!(parse("17 July 1996 09:23 GMT"), Some(837_595_380));
        assert_eq!(parse("Wed,17 Jul 1996 09:23:25 XYZ"), Some(837_595_405));
    }

    #[test]
    fn refuses_incomplete_or_impossible_dates() {
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("17 Jul 1996"), None);
        assert_eq!(parse("31 Feb 2024 10:00:00 +0000"), None);
        assert_eq!(parse("1 Jan 4000000000 00:00:00 +0000"), None);
        assert_eq!(parse("1 Jan 2024 99:00:00 +0000"), None);
        assert_eq!(parse("((((( 1 Jan"), None);
    }
}
