//! The SMTP submission side: the bridge's framing layer
//! (`imap_bridge::smtp::framing`, public for this purpose) and smtp-proto's
//! command parser that the session applies to every framed line.
//!
//! Framing must not depend on how TCP happens to cut the stream: the
//! `smtp_framing` target feeds the same bytes once whole and once in
//! fuzzer-chosen pieces and requires identical results.

use bytes::BytesMut;
use imap_bridge::smtp::framing::{DataOutcome, DataReader, Frame, LineFramer, MAX_COMMAND_LINE};

/// What the framing layer produced, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Line(Vec<u8>),
    TooLong,
    Data(DataOutcome),
}

/// Runs a command stream through the framer the way the session does: lines
/// until a `DATA` line, then message content until its end marker, then
/// lines again. `pieces` gives the lengths in which the bytes arrive.
fn frame(stream: &[u8], pieces: &[usize], max_message: usize) -> (Vec<Event>, Vec<u8>) {
    let mut framer = LineFramer::default();
    let mut data: Option<DataReader> = None;
    let mut buffer = BytesMut::new();
    let mut events = Vec::new();
    let mut rest = stream;
    let mut piece = pieces.iter().copied().chain(std::iter::repeat(usize::MAX));
    while !rest.is_empty() {
        let take = piece.next().unwrap_or(usize::MAX).clamp(1, rest.len());
        let (now, later) = rest.split_at(take);
        buffer.extend_from_slice(now);
        rest = later;
        loop {
            if let Some(reader) = data.as_mut() {
                match reader.feed(&mut buffer) {
                    Some(outcome) => {
                        if let DataOutcome::Complete(message) = &outcome {
                            assert_crlf_only(message);
                            assert!(message.len() <= max_message, "message over the limit kept");
                        }
                        events.push(Event::Data(outcome));
                        data = None;
                        continue;
                    }
                    None => break,
                }
            }
            match framer.next_frame(&mut buffer) {
                Some(Frame::Line(line)) => {
                    let content = imap_bridge::smtp::framing::trim_line_ending(&line);
                    assert!(content.len() <= MAX_COMMAND_LINE, "over-long line passed");
                    assert!(!content.contains(&b'\n'), "a line holds two lines");
                    if content.eq_ignore_ascii_case(b"DATA") {
                        data = Some(DataReader::new(max_message));
                    }
                    events.push(Event::Line(line.to_vec()));
                }
                Some(Frame::TooLong) => events.push(Event::TooLong),
                None => {
                    // Rule of the framer: the buffer never grows beyond one
                    // line (plus a CR that may start the line ending).
                    assert!(
                        buffer.len() <= MAX_COMMAND_LINE + 1,
                        "framer buffer grew to {}",
                        buffer.len()
                    );
                    break;
                }
            }
        }
    }
    (events, buffer.to_vec())
}

/// DATA content is handed over with CRLF line endings only (RFC 5321
/// §2.3.8), whatever the client sent.
fn assert_crlf_only(message: &[u8]) {
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' {
            assert!(
                i > 0 && message[i - 1] == b'\r',
                "bare LF at {i} in DATA content"
            );
        }
    }
    assert!(
        message.is_empty() || message.ends_with(b"\r\n"),
        "DATA content does not end with CRLF"
    );
}

/// Target `smtp_framing`. Input: one byte for the message size limit, one
/// byte N, N piece lengths, then the stream.
pub fn smtp_framing(data: &[u8]) {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Some((&count, rest)) = rest.split_first() else {
        return;
    };
    let count = usize::from(count % 32).min(rest.len());
    let (pieces, stream) = rest.split_at(count);
    let pieces: Vec<usize> = pieces.iter().map(|&p| usize::from(p) * 37 + 1).collect();
    // Small limits exercise the overflow path; 255 means "large".
    let max_message = if limit == u8::MAX {
        1 << 20
    } else {
        usize::from(limit) * 4
    };
    let whole = frame(stream, &[], max_message);
    let cut = frame(stream, &pieces, max_message);
    assert_eq!(whole, cut, "framing depends on how the input was cut");
    // Byte at a time is the harshest cut (quadratic in the line length,
    // so only for inputs of ordinary size).
    if stream.len() > 1024 {
        return;
    }
    let single = frame(stream, &vec![1; stream.len()], max_message);
    assert_eq!(
        whole, single,
        "framing differs when bytes arrive one by one"
    );
}

/// Target `smtp_command`: frames the input into lines and parses each as
/// the session does (`smtp_proto::Request::parse` on the line with its
/// ending).
pub fn smtp_command(data: &[u8]) {
    let mut framer = LineFramer::default();
    let mut buffer = BytesMut::from(data);
    if !data.ends_with(b"\n") {
        buffer.extend_from_slice(b"\r\n");
    }
    while let Some(frame) = framer.next_frame(&mut buffer) {
        if let Frame::Line(line) = frame {
            let _ = smtp_proto::Request::parse(&mut line.iter());
        }
    }
}
