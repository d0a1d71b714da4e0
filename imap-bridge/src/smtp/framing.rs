//! Splitting the SMTP input stream into command lines and message data,
//! before any parsing.
//!
//! Like a "fragmentizer" in an IMAP codec, this layer decides which bytes are
//! commands and which are message content, so that message bytes can never be
//! read as commands (and the other way round). It owns line-length limits,
//! bare-LF tolerance, and DATA's end marker and dot-unstuffing
//! (RFC 5321 §4.1.1.4 and §4.5.2). It does no I/O: bytes in, lines or "need
//! more input" out.

use bytes::{Buf, BytesMut};

/// Longest command line accepted outside DATA, excluding the line ending.
/// RFC 5321 §4.5.3.1.4 asks for at least 512 octets; AUTH lines (RFC 4954
/// §4) and parameters make more useful, and the brief of this bridge fixes
/// 4096.
pub const MAX_COMMAND_LINE: usize = 4096;

/// One unit cut from the command stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, including its terminating LF (and CR, if the
    /// client sent one).
    Line(BytesMut),
    /// A line longer than [`MAX_COMMAND_LINE`] was received and thrown away
    /// up to and including its LF.
    TooLong,
}

/// Cuts command lines from the input buffer.
#[derive(Debug, Default)]
pub struct LineFramer {
    /// Set while the rest of an over-long line is being thrown away.
    discarding: bool,
}

impl LineFramer {
    /// Takes the next frame from the front of `input`, or `None` when more
    /// input is needed. Bytes of an over-long line are dropped as they
    /// arrive, so the buffer never grows beyond about one line.
    pub fn next_frame(&mut self, input: &mut BytesMut) -> Option<Frame> {
        match input.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let line = input.split_to(lf + 1);
                if std::mem::take(&mut self.discarding) {
                    return Some(Frame::TooLong);
                }
                if content_len(&line) > MAX_COMMAND_LINE {
                    return Some(Frame::TooLong);
                }
                Some(Frame::Line(line))
            }
            None => {
                // A CR may still be followed by its LF, hence the +1.
                if self.discarding || input.len() > MAX_COMMAND_LINE + 1 {
                    self.discarding = true;
                    input.clear();
                }
                None
            }
        }
    }
}

/// Length of a line without its LF or CRLF ending.
fn content_len(line: &[u8]) -> usize {
    trim_line_ending(line).len()
}

/// The line without its trailing LF or CRLF.
pub fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Collects the message after `354` up to the end marker, undoing dot
/// stuffing and turning bare LF line endings into CRLF (local clients are
/// not always strict). Keeps at most `max` bytes: beyond that it goes on
/// reading to the end marker but drops the content, so the client's next
/// command is read correctly and the message can be refused as a whole.
#[derive(Debug)]
pub struct DataReader {
    max: usize,
    message: Vec<u8>,
    /// Bytes of (normalised) message seen, kept or not.
    seen: usize,
    overflow: bool,
    /// Whether the next byte starts a line (the end marker and dot
    /// stuffing are only recognised there).
    at_line_start: bool,
}

/// What DATA produced once its end marker arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// The complete message, CRLF line endings, dot-unstuffed.
    Complete(Vec<u8>),
    /// The message was larger than the limit; its content was dropped.
    TooLarge {
        /// How many bytes were received (after unstuffing).
        seen: usize,
    },
}

impl DataReader {
    /// A reader for one message of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        DataReader {
            max,
            message: Vec::new(),
            seen: 0,
            overflow: false,
            at_line_start: true,
        }
    }

    /// Consumes message bytes from the front of `input`. Returns the outcome
    /// once the end marker (a line holding only `.`) was consumed; bytes
    /// after it stay in `input` (they are the next commands). Returns `None`
    /// when more input is needed.
    pub fn feed(&mut self, input: &mut BytesMut) -> Option<DataOutcome> {
        loop {
            if input.is_empty() {
                return None;
            }
            if let Some(lf) = input.iter().position(|&b| b == b'\n') {
                let line = input.split_to(lf + 1);
                let mut content = trim_line_ending(&line);
                if self.at_line_start {
                    if content == b"." {
                        return Some(self.finish());
                    }
                    // RFC 5321 §4.5.2: a line starting with a period had
                    // one more period added by the client.
                    if let Some(rest) = content.strip_prefix(b".") {
                        content = rest;
                    }
                }
                self.append(content);
                self.append(b"\r\n");
                self.at_line_start = true;
                continue;
            }
            // A partial line. At a line start, "." and ".\r" may still become
            // the end marker: wait for the rest.
            if self.at_line_start && (&input[..] == b"." || &input[..] == b".\r") {
                return None;
            }
            if self.at_line_start && input.first() == Some(&b'.') {
                input.advance(1);
            }
            // A trailing CR may be the first half of CRLF: keep it back.
            let keep = usize::from(input.last() == Some(&b'\r'));
            let take = input.len() - keep;
            if take == 0 {
                return None;
            }
            let chunk = input.split_to(take);
            self.append(&chunk);
            self.at_line_start = false;
            return None;
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        self.seen = self.seen.saturating_add(bytes.len());
        if self.overflow {
            return;
        }
        if self.message.len() + bytes.len() > self.max {
            self.overflow = true;
            self.message = Vec::new();
        } else {
            self.message.extend_from_slice(bytes);
        }
    }

    fn finish(&mut self) -> DataOutcome {
        if self.overflow {
            DataOutcome::TooLarge { seen: self.seen }
        } else {
            DataOutcome::Complete(std::mem::take(&mut self.message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> (Vec<Frame>, BytesMut) {
        let mut framer = LineFramer::default();
        let mut buffer = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = framer.next_frame(&mut buffer) {
            frames.push(frame);
        }
        (frames, buffer)
    }

    #[test]
    fn splits_crlf_and_bare_lf_lines_and_keeps_the_rest() {
        let (frames, rest) = lines(b"EHLO a\r\nNOOP\nMAIL FR");
        assert_eq!(
            frames,
            vec![
                Frame::Line(BytesMut::from(&b"EHLO a\r\n"[..])),
                Frame::Line(BytesMut::from(&b"NOOP\n"[..])),
            ]
        );
        assert_eq!(&rest[..], b"MAIL FR");
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut input = vec![b'A'; MAX_COMMAND_LINE + 10];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let (frames, rest) = lines(&input);
        assert_eq!(
            frames,
            vec![
                Frame::TooLong,
                Frame::Line(BytesMut::from(&b"NOOP\r\n"[..]))
            ]
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn overlong_line_arriving_in_pieces_does_not_grow_the_buffer() {
        let mut framer = LineFramer::default();
        let mut buffer = BytesMut::new();
        for _ in 0..10 {
            buffer.extend_from_slice(&[b'x'; 1000]);
            assert_eq!(framer.next_frame(&mut buffer), None);
            assert!(buffer.len() <= MAX_COMMAND_LINE + 1);
        }
        buffer.extend_from_slice(b"tail\r\nQUIT\r\n");
        assert_eq!(framer.next_frame(&mut buffer), Some(Frame::TooLong));
        assert_eq!(
            framer.next_frame(&mut buffer),
            Some(Frame::Line(BytesMut::from(&b"QUIT\r\n"[..])))
        );
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let mut input = vec![b'A'; MAX_COMMAND_LINE];
        input.extend_from_slice(b"\r\n");
        let (frames, _) = lines(&input);
        assert!(matches!(frames.as_slice(), [Frame::Line(_)]));
    }

    fn read_data(chunks: &[&[u8]], max: usize) -> (Option<DataOutcome>, BytesMut) {
        let mut reader = DataReader::new(max);
        let mut buffer = BytesMut::new();
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            if let Some(outcome) = reader.feed(&mut buffer) {
                return (Some(outcome), buffer);
            }
        }
        (None, buffer)
    }

    #[test]
    fn data_ends_at_dot_line_and_leaves_the_next_command() {
        let (outcome, rest) = read_data(&[b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"], 1000);
        assert_eq!(
            outcome,
            Some(DataOutcome::Complete(
                b"Subject: x\r\n\r\nbody\r\n".to_vec()
            ))
        );
        assert_eq!(&rest[..], b"QUIT\r\n");
    }

    #[test]
    fn data_is_dot_unstuffed() {
        let (outcome, _) = read_data(&[b"..leading dot\r\n...\r\n. \r\n.\r\n"], 1000);
        assert_eq!(
            outcome,
            Some(DataOutcome::Complete(
                b".leading dot\r\n..\r\n \r\n".to_vec()
            ))
        );
    }

    #[test]
    fn bare_lf_is_normalised_to_crlf() {
        let (outcome, _) = read_data(&[b"a\nb\r\n.\n"], 1000);
        assert_eq!(outcome, Some(DataOutcome::Complete(b"a\r\nb\r\n".to_vec())));
    }

    #[test]
    fn end_marker_split_across_reads_is_found() {
        let (outcome, rest) = read_data(&[b"hello\r", b"\n.", b"\r", b"\nNOOP\r\n"], 1000);
        assert_eq!(outcome, Some(DataOutcome::Complete(b"hello\r\n".to_vec())));
        assert_eq!(&rest[..], b"NOOP\r\n");
    }

    #[test]
    fn stuffed_dot_split_across_reads_is_removed() {
        let (outcome, _) = read_data(&[b"x\r\n.", b".y\r\n.\r\n"], 1000);
        assert_eq!(
            outcome,
            Some(DataOutcome::Complete(b"x\r\n.y\r\n".to_vec()))
        );
        let (outcome, _) = read_data(&[b"x\r\n..", b"y\r\n.\r\n"], 1000);
        assert_eq!(
            outcome,
            Some(DataOutcome::Complete(b"x\r\n.y\r\n".to_vec()))
        );
    }

    #[test]
    fn dot_inside_a_line_is_not_an_end_marker() {
        let (outcome, _) = read_data(&[b"a.\r\nb\r.\r\n.\r\n"], 1000);
        assert_eq!(
            outcome,
            Some(DataOutcome::Complete(b"a.\r\nb\r.\r\n".to_vec()))
        );
    }

    #[test]
    fn long_line_in_pieces_is_kept_whole() {
        let (outcome, _) = read_data(&[b"abc", b"def", b"\r\n.\r\n"], 1000);
        assert_eq!(outcome, Some(DataOutcome::Complete(b"abcdef\r\n".to_vec())));
    }

    #[test]
    fn oversized_message_is_dropped_but_read_to_the_end() {
        let (outcome, rest) = read_data(
            &[b"0123456789\r\n", b"0123456789\r\n", b".\r\nRSET\r\n"],
            15,
        );
        assert_eq!(outcome, Some(DataOutcome::TooLarge { seen: 24 }));
        assert_eq!(&rest[..], b"RSET\r\n");
    }

    #[test]
    fn empty_message() {
        let (outcome, _) = read_data(&[b".\r\n"], 10);
        assert_eq!(outcome, Some(DataOutcome::Complete(Vec::new())));
    }
}
