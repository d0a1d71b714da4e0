//! The replay client's side of COMPRESS=DEFLATE (RFC 4978): raw DEFLATE
//! (RFC 1951) decoding with flate2, and stored blocks for what the client
//! sends (a sync-flushed stored block is valid DEFLATE and needs no
//! compressor state).

use flate2::{Decompress, FlushDecompress, Status};

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// The stream is corrupt (or not raw DEFLATE).
    Invalid(String),
}

/// A streaming raw-DEFLATE decoder.
pub struct Inflater {
    inner: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            // Raw DEFLATE: no zlib header (RFC 4978 §4).
            inner: Decompress::new(false),
        }
    }
}

impl Inflater {
    /// Adds compressed bytes and returns everything that can be decoded.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::with_capacity(bytes.len() * 4 + 64);
        let mut input = bytes;
        loop {
            if out.capacity() - out.len() < 4096 {
                out.reserve(out.capacity().max(4096));
            }
            let before_in = self.inner.total_in();
            let before_out = self.inner.total_out();
            let status = self
                .inner
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
                .map_err(|err| InflateError::Invalid(err.to_string()))?;
            let used = (self.inner.total_in() - before_in) as usize;
            let produced = self.inner.total_out() - before_out;
            input = &input[used..];
            match status {
                Status::StreamEnd => return Ok(out),
                _ if input.is_empty() && out.len() < out.capacity() => return Ok(out),
                _ if used == 0 && produced == 0 && out.len() < out.capacity() => return Ok(out),
                _ => {}
            }
        }
    }
}

/// Wraps bytes as one stored (uncompressed) block that is not the last,
/// which any DEFLATE decoder accepts and which ends byte-aligned like a
/// sync flush (RFC 1951 §3.2.4). Longer input becomes several blocks.
pub fn stored_blocks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 5 * (bytes.len() / 65535 + 1));
    for chunk in bytes.chunks(65535) {
        let length = chunk.len() as u16;
        out.push(0); // BFINAL 0, BTYPE 00, then padding to the byte boundary
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&(!length).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_blocks_round_trip_in_pieces() {
        let text: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let wire = stored_blocks(&text);
        let mut inflater = Inflater::default();
        let mut out = Vec::new();
        for piece in wire.chunks(777) {
            out.extend(inflater.push(piece).expect("inflate"));
        }
        assert_eq!(out, text);
    }

    #[test]
    fn fixed_huffman_block() {
        // `printf 'abcabcabc\n'` through zlib level 1, raw, final block.
        let wire = [0x4b, 0x4c, 0x4a, 0x4e, 0x04, 0x23, 0x2e, 0x00];
        let mut inflater = Inflater::default();
        assert_eq!(
            inflater.push(&wire).expect("inflate"),
            b"abcabcabc\n".to_vec()
        );
    }

    #[test]
    fn dynamic_blocks_with_sync_flushes_split_anywhere() {
        // Python: zlib.compressobj(9, DEFLATED, -15), 39 FETCH lines then a
        // tagged OK, each followed by Z_SYNC_FLUSH (as the server does).
        let first = hex(
            "7cd4ad4e43411884614fc23dac6cab76e6db5f495a0e90e00aae8684931ad2fb97d81d33fe754f\
             664e09697bfd3abfa7c3f7c725f5b47dbebc5dd3e176ddf747ba6d7f3ff7fbfe7b3c3e3f9d12d7\
             12c5a5b1a6844b8ba4c3a5754da3bab4ad69a14bbba4d3a5634d6b73e95cd3162e4516826c5be5\
             b25e10b061c12062d38a41c8a6258398215b34881a60d9d035b6701039d0d241ec10168f595761\
             f5088dfddc746fd5fa51fcd02c208bc656902ad8ad2055705841aae0b08254c169052982cc5630\
             b29e95150c686c054304497f99fa996105435f33ac6088208b150c1164b582d135b68221826c56\
             3054b01bc17f000000ffff",
        );
        let second = hex(
            "4a3454f0f756880e727574d10d0ff20c718d550876f571750e5148cecf2dc8492d494de1e50200\
             0000ffff",
        );
        let expected: String = (1..40)
            .map(|i| format!("* {i} FETCH (UID {} FLAGS (\\Seen \\Flagged))\r\n", i * 7))
            .collect::<String>()
            + "a1 OK [READ-WRITE] SELECT completed\r\n";
        for split in [1, 2, 13, 100, 244] {
            let mut inflater = Inflater::default();
            let mut out = inflater.push(&first[..split]).expect("inflate");
            out.extend(inflater.push(&first[split..]).expect("inflate"));
            out.extend(inflater.push(&second).expect("inflate"));
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                expected,
                "split {split}"
            );
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).expect("ascii");
                u8::from_str_radix(pair, 16).expect("hex digit")
            })
            .collect()
    }
}
