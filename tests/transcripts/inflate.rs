//! A small raw-DEFLATE decoder (RFC 1951) for the replay client's side of
//! COMPRESS=DEFLATE (RFC 4978), written for the tests because the
//! end-to-end test crate has no compression library among its
//! dependencies.
//!
//! The server flushes with a sync flush after every response, so its output
//! arrives as whole blocks, but TCP may split a block anywhere: a block that
//! cannot be finished with the bytes at hand is decoded again from its start
//! once more bytes arrive.

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The stream is corrupt (or not raw DEFLATE).
    Invalid(&'static str),
}

/// More input is needed to finish the current block.
struct NeedMore;

/// Longest Huffman code (RFC 1951 §3.2.7).
const MAX_BITS: usize = 15;
/// What back-references may reach (RFC 1951 §2).
const WINDOW: usize = 32 * 1024;

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// Order of the code length code lengths (RFC 1951 §3.2.7).
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// A canonical Huffman code: how many codes of each length, and the
/// symbols in code order.
struct Huffman {
    counts: [u16; MAX_BITS + 1],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Result<Huffman, InflateError> {
        let mut counts = [0u16; MAX_BITS + 1];
        for &length in lengths {
            counts[usize::from(length)] += 1;
        }
        counts[0] = 0;
        // Over-subscribed code sets are corrupt (incomplete ones are legal,
        // e.g. a single distance code).
        let mut left: i32 = 1;
        for &count in &counts[1..] {
            left = left * 2 - i32::from(count);
            if left < 0 {
                return Err(InflateError::Invalid("over-subscribed Huffman code"));
            }
        }
        let mut offsets = [0u16; MAX_BITS + 2];
        for length in 1..=MAX_BITS {
            offsets[length + 1] = offsets[length] + counts[length];
        }
        let mut symbols = vec![0u16; usize::from(offsets[MAX_BITS + 1])];
        for (symbol, &length) in lengths.iter().enumerate() {
            if length != 0 {
                let slot = &mut offsets[usize::from(length)];
                symbols[usize::from(*slot)] = symbol as u16;
                *slot += 1;
            }
        }
        Ok(Huffman { counts, symbols })
    }

    fn fixed_literals() -> Huffman {
        let mut lengths = [0u8; 288];
        for (symbol, length) in lengths.iter_mut().enumerate() {
            *length = match symbol {
                0..=143 => 8,
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
        }
        Huffman::new(&lengths).expect("the fixed code is complete")
    }

    fn fixed_distances() -> Huffman {
        Huffman::new(&[5u8; 30]).expect("the fixed code is complete")
    }
}

/// Reads bits least-significant first (RFC 1951 §3.1.1).
struct Bits<'a> {
    input: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, NeedMore> {
        let byte = *self.input.get(self.pos / 8).ok_or(NeedMore)?;
        let bit = (byte >> (self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, count: u8) -> Result<u32, NeedMore> {
        let mut value = 0;
        for index in 0..count {
            value |= self.bit()? << index;
        }
        Ok(value)
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }

    /// Decodes one symbol: codes are packed most-significant bit first.
    fn symbol(&mut self, code: &Huffman) -> Result<Result<u16, InflateError>, NeedMore> {
        let (mut value, mut first, mut index) = (0i32, 0i32, 0i32);
        for length in 1..=MAX_BITS {
            value |= self.bit()? as i32;
            let count = i32::from(code.counts[length]);
            if value - first < count {
                let at = (index + value - first) as usize;
                return Ok(code
                    .symbols
                    .get(at)
                    .copied()
                    .ok_or(InflateError::Invalid("bad Huffman symbol")));
            }
            index += count;
            first = (first + count) << 1;
            value <<= 1;
        }
        Ok(Err(InflateError::Invalid("no such Huffman code")))
    }
}

/// A streaming raw-DEFLATE decoder.
#[derive(Default)]
pub struct Inflater {
    /// Compressed bytes not yet decoded into whole blocks.
    input: Vec<u8>,
    /// Bits of `input[0]` already used by finished blocks.
    bit_offset: usize,
    /// Decoded bytes: the last [`WINDOW`] already handed out, then new ones.
    history: Vec<u8>,
    /// Where the bytes not yet handed out start in `history`.
    handed_out: usize,
    /// The final block was seen.
    done: bool,
}

impl Inflater {
    /// Adds compressed bytes and returns everything that can be decoded.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<u8>, InflateError> {
        self.input.extend_from_slice(bytes);
        while !self.done {
            let start = self.history.len();
            let input = std::mem::take(&mut self.input);
            let mut reader = Bits {
                input: &input,
                pos: self.bit_offset,
            };
            let block = self.block(&mut reader);
            let consumed_bits = reader.pos;
            self.input = input;
            match block {
                Ok(Ok(last)) => {
                    self.done = last;
                    self.input.drain(..consumed_bits / 8);
                    self.bit_offset = consumed_bits % 8;
                }
                Ok(Err(error)) => return Err(error),
                Err(NeedMore) => {
                    // Decode this block again when more bytes came.
                    self.history.truncate(start);
                    break;
                }
            }
        }
        let fresh = self.history[self.handed_out..].to_vec();
        let keep_from = self.history.len().saturating_sub(WINDOW);
        self.history.drain(..keep_from);
        self.handed_out = self.history.len();
        Ok(fresh)
    }

    /// Decodes one block into `history`; returns whether it was the last.
    fn block(&mut self, bits: &mut Bits<'_>) -> Result<Result<bool, InflateError>, NeedMore> {
        let last = bits.bit()? == 1;
        let outcome = match bits.bits(2)? {
            0 => self.stored(bits)?,
            1 => self.codes(
                bits,
                &Huffman::fixed_literals(),
                &Huffman::fixed_distances(),
            )?,
            2 => match dynamic_codes(bits)? {
                Ok((literals, distances)) => self.codes(bits, &literals, &distances)?,
                Err(error) => Err(error),
            },
            _ => Err(InflateError::Invalid("reserved block type")),
        };
        Ok(outcome.map(|()| last))
    }

    fn stored(&mut self, bits: &mut Bits<'_>) -> Result<Result<(), InflateError>, NeedMore> {
        bits.align();
        let length = bits.bits(16)?;
        let complement = bits.bits(16)?;
        if length != !complement & 0xffff {
            return Ok(Err(InflateError::Invalid("stored block length check")));
        }
        let start = bits.pos / 8;
        let end = start + length as usize;
        let data = bits.input.get(start..end).ok_or(NeedMore)?;
        self.history.extend_from_slice(data);
        bits.pos = end * 8;
        Ok(Ok(()))
    }

    fn codes(
        &mut self,
        bits: &mut Bits<'_>,
        literals: &Huffman,
        distances: &Huffman,
    ) -> Result<Result<(), InflateError>, NeedMore> {
        loop {
            let symbol = match bits.symbol(literals)? {
                Ok(symbol) => usize::from(symbol),
                Err(error) => return Ok(Err(error)),
            };
            match symbol {
                0..=255 => self.history.push(symbol as u8),
                256 => return Ok(Ok(())),
                257..=285 => {
                    let index = symbol - 257;
                    let length =
                        usize::from(LENGTH_BASE[index]) + bits.bits(LENGTH_EXTRA[index])? as usize;
                    let code = match bits.symbol(distances)? {
                        Ok(code) => usize::from(code),
                        Err(error) => return Ok(Err(error)),
                    };
                    if code >= DIST_BASE.len() {
                        return Ok(Err(InflateError::Invalid("bad distance code")));
                    }
                    let distance =
                        usize::from(DIST_BASE[code]) + bits.bits(DIST_EXTRA[code])? as usize;
                    if distance > self.history.len() {
                        return Ok(Err(InflateError::Invalid("distance too far back")));
                    }
                    let from = self.history.len() - distance;
                    // Byte by byte: the copy may overlap what it writes.
                    for offset in 0..length {
                        let byte = self.history[from + offset];
                        self.history.push(byte);
                    }
                }
                _ => return Ok(Err(InflateError::Invalid("bad literal/length code"))),
            }
        }
    }
}

/// Reads the code tables of a dynamic block (RFC 1951 §3.2.7).
fn dynamic_codes(
    bits: &mut Bits<'_>,
) -> Result<Result<(Huffman, Huffman), InflateError>, NeedMore> {
    let literal_count = bits.bits(5)? as usize + 257;
    let distance_count = bits.bits(5)? as usize + 1;
    let clen_count = bits.bits(4)? as usize + 4;
    let mut clen_lengths = [0u8; 19];
    for &slot in &CLEN_ORDER[..clen_count] {
        clen_lengths[slot] = bits.bits(3)? as u8;
    }
    let clen = match Huffman::new(&clen_lengths) {
        Ok(code) => code,
        Err(error) => return Ok(Err(error)),
    };
    let mut lengths = vec![0u8; literal_count + distance_count];
    let mut index = 0;
    while index < lengths.len() {
        let symbol = match bits.symbol(&clen)? {
            Ok(symbol) => symbol,
            Err(error) => return Ok(Err(error)),
        };
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => match index.checked_sub(1) {
                Some(previous) => (lengths[previous], 3 + bits.bits(2)? as usize),
                None => return Ok(Err(InflateError::Invalid("repeat without a length"))),
            },
            17 => (0, 3 + bits.bits(3)? as usize),
            _ => (0, 11 + bits.bits(7)? as usize),
        };
        if index + repeat > lengths.len() {
            return Ok(Err(InflateError::Invalid("too many code lengths")));
        }
        lengths[index..index + repeat].fill(value);
        index += repeat;
    }
    let literals = match Huffman::new(&lengths[..literal_count]) {
        Ok(code) => code,
        Err(error) => return Ok(Err(error)),
    };
    let distances = match Huffman::new(&lengths[literal_count..]) {
        Ok(code) => code,
        Err(error) => return Ok(Err(error)),
    };
    Ok(Ok((literals, distances)))
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
