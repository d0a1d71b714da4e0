//! The encrypted container of a backup file (`docs/backup-format.md`): an
//! authenticated header, then the plaintext cut into chunks, each sealed
//! with AES-256-GCM under a key derived from the passphrase or recovery
//! code with Argon2id.
//!
//! This module knows nothing of what the plaintext holds (`archive` does).
//! It must never hand out a byte that has not been authenticated: the
//! reader decrypts a whole chunk before returning any of it.

use std::io::{self, Read, Write};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::RngCore;
use zeroize::Zeroizing;

/// The first 16 bytes of every backup file.
pub const MAGIC: &[u8; 16] = b"MAILNODE-BACKUP\n";
/// The container format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Plaintext bytes per chunk (the last one may be shorter).
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
/// Length of the header including its check tag.
pub const HEADER_LEN: usize = 16 + 1 + 1 + 1 + 12 + 16 + 4 + 8 + TAG;

/// Largest Argon2 cost a reader accepts, so that a crafted header cannot
/// make restore allocate gigabytes or spin for hours.
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 16;
const MAX_P: u32 = 16;

/// How the key of a backup is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// A passphrase the user chose.
    Passphrase,
    /// A recovery code mailnode generated and printed.
    RecoveryCode,
}

impl Protection {
    fn byte(self) -> u8 {
        match self {
            Protection::Passphrase => 1,
            Protection::RecoveryCode => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Protection> {
        match byte {
            1 => Some(Protection::Passphrase),
            2 => Some(Protection::RecoveryCode),
            _ => None,
        }
    }
}

/// Everything that can be wrong with a backup file, each with the words a
/// user needs.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Not a mailnode backup at all.
    #[error("this is not a mailnode backup file (it does not start with the backup signature)")]
    NotABackup,
    /// A format version this mailnode cannot read.
    #[error(
        "this backup has format version {0}; this mailnode reads version {VERSION}. Restore it \
         with a newer mailnode"
    )]
    UnknownVersion(u8),
    /// The header is malformed.
    #[error("the backup's header is damaged: {0}")]
    BadHeader(String),
    /// The passphrase or code does not open it.
    #[error(
        "wrong {0}: it does not open this backup (or the backup's header was altered). Nothing \
         was restored"
    )]
    WrongSecret(&'static str),
    /// The file is shorter than its header says.
    #[error(
        "the backup is truncated: it has {have} bytes, a complete copy has {want}. Nothing was \
         restored; use a complete copy of the file"
    )]
    Truncated {
        /// Bytes present.
        have: u64,
        /// Bytes a complete file has.
        want: u64,
    },
    /// The file is longer than its header says.
    #[error(
        "the backup is damaged: it has {have} bytes, but its header says {want}. Nothing was \
         restored"
    )]
    TooLong {
        /// Bytes present.
        have: u64,
        /// Bytes a complete file has.
        want: u64,
    },
    /// A chunk failed authentication.
    #[error(
        "the backup is damaged or was altered (part {chunk}, near byte {offset}, does not \
         authenticate). Nothing was restored"
    )]
    Damaged {
        /// Index of the chunk.
        chunk: u64,
        /// File offset where it starts.
        offset: u64,
    },
    /// The KDF failed.
    #[error("{0}")]
    Kdf(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The decoded header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Passphrase or recovery code.
    pub protection: Protection,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: [u8; 16],
    /// Plaintext length.
    pub plain_len: u64,
}

impl Header {
    fn encode_unchecked(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.protection.byte());
        out.push(1); // KDF: Argon2id v0x13
        out.extend_from_slice(&self.m_kib.to_be_bytes());
        out.extend_from_slice(&self.t.to_be_bytes());
        out.extend_from_slice(&self.p.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&(CHUNK as u32).to_be_bytes());
        out.extend_from_slice(&self.plain_len.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<(Header, [u8; TAG]), ContainerError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ContainerError::NotABackup);
        }
        let mut at = MAGIC.len();
        let mut take = |n: usize| {
            let part = &bytes[at..at + n];
            at += n;
            part
        };
        let version = take(1)[0];
        if version != VERSION {
            return Err(ContainerError::UnknownVersion(version));
        }
        let protection = Protection::from_byte(take(1)[0])
            .ok_or_else(|| ContainerError::BadHeader("unknown protection".into()))?;
        if take(1)[0] != 1 {
            return Err(ContainerError::BadHeader("unknown key derivation".into()));
        }
        let mut u32_at = || {
            let mut b = [0u8; 4];
            b.copy_from_slice(take(4));
            u32::from_be_bytes(b)
        };
        let (m_kib, t, p) = (u32_at(), u32_at(), u32_at());
        let mut salt = [0u8; 16];
        salt.copy_from_slice(take(16));
        let mut chunk = [0u8; 4];
        chunk.copy_from_slice(take(4));
        if u32::from_be_bytes(chunk) as usize != CHUNK {
            return Err(ContainerError::BadHeader("unexpected chunk size".into()));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(take(8));
        let mut check = [0u8; TAG];
        check.copy_from_slice(take(TAG));
        if m_kib > MAX_M_KIB || t > MAX_T || p > MAX_P || t == 0 || p == 0 {
            return Err(ContainerError::BadHeader(format!(
                "unreasonable key derivation cost (m={m_kib} KiB, t={t}, p={p})"
            )));
        }
        Ok((
            Header {
                protection,
                m_kib,
                t,
                p,
                salt,
                plain_len: u64::from_be_bytes(len),
            },
            check,
        ))
    }

    /// Number of chunks (at least one, even for an empty plaintext).
    fn chunks(&self) -> u64 {
        self.plain_len.div_ceil(CHUNK as u64).max(1)
    }

    /// Exact length of the file this header describes.
    pub fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + self.plain_len + self.chunks() * TAG as u64
    }

    fn key(&self, secret: &str) -> Result<Aes256Gcm, ContainerError> {
        let key = keys::argon2id(secret, &self.salt, self.m_kib, self.t, self.p)
            .map_err(|err| ContainerError::Kdf(err.to_string()))?;
        Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|err| ContainerError::Kdf(err.to_string()))
    }
}

/// The nonce of chunk `index`: its number and whether it is the last one.
/// Every backup has its own salt, hence its own key, so counters never
/// repeat under one key. The check tag uses a nonce no chunk can have.
fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

const CHECK_NONCE: [u8; 12] = [0xff; 12];

/// Streams plaintext into an encrypted backup. The plaintext length must be
/// known in advance (it is in the authenticated header, which is what lets
/// the reader tell a truncated file from a damaged one).
pub struct Writer<W: Write> {
    out: W,
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    buffer: Zeroizing<Vec<u8>>,
    index: u64,
    written: u64,
    expected: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the header and returns a writer for exactly `plain_len` bytes.
    pub fn new(
        mut out: W,
        protection: Protection,
        secret: &str,
        plain_len: u64,
    ) -> Result<Writer<W>, ContainerError> {
        let (m_kib, t, p) = keys::ARGON2_PARAMS;
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let header = Header {
            protection,
            m_kib,
            t,
            p,
            salt,
            plain_len,
        };
        let cipher = header.key(secret)?;
        let aad = header.encode_unchecked();
        let check = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&CHECK_NONCE), &aad, &mut [])
            .map_err(|_| ContainerError::Kdf("cannot seal the header".into()))?;
        out.write_all(&aad)?;
        out.write_all(&check)?;
        let mut full = aad;
        full.extend_from_slice(&check);
        Ok(Writer {
            out,
            cipher,
            aad: full,
            buffer: Zeroizing::new(Vec::with_capacity(CHUNK)),
            index: 0,
            written: 0,
            expected: plain_len,
        })
    }

    fn seal_buffer(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(self.index, last);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &self.aad, &mut self.buffer)
            .map_err(|_| io::Error::other("cannot encrypt a backup chunk"))?;
        self.out.write_all(&self.buffer)?;
        self.out.write_all(&tag)?;
        self.buffer.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk; fails if the plaintext had another length than
    /// announced. Returns the inner writer.
    pub fn finish(mut self) -> Result<W, ContainerError> {
        if self.written != self.expected {
            return Err(ContainerError::Io(io::Error::other(format!(
                "the backup announced {} bytes but {} were written (a file changed while it \
                 was read?)",
                self.expected, self.written
            ))));
        }
        self.seal_buffer(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.written + data.len() as u64 > self.expected {
            return Err(io::Error::other("more backup data than announced"));
        }
        // A full buffer is sealed only when more data follows, so that the
        // last chunk (full or not) is sealed by `finish` with the last flag.
        if self.buffer.len() == CHUNK && !data.is_empty() {
            self.seal_buffer(false)?;
        }
        let n = data.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads and authenticates a backup chunk by chunk.
pub struct Reader<R: Read> {
    input: R,
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    header: Header,
    index: u64,
    plain: Zeroizing<Vec<u8>>,
    at: usize,
}

/// Reads the header of `input` (which holds `file_len` bytes) and checks
/// `secret` against it, then the file's length. Order matters for the
/// user: a wrong passphrase is reported as that, and only with the right
/// one can a short file be called truncated (the length is authenticated).
pub fn open<R: Read>(
    mut input: R,
    file_len: u64,
    secret: impl FnOnce(Protection) -> Result<Zeroizing<String>, ContainerError>,
) -> Result<Reader<R>, ContainerError> {
    let mut head = vec![0u8; HEADER_LEN];
    let got = read_full(&mut input, &mut head)?;
    if got < MAGIC.len() || &head[..MAGIC.len()] != MAGIC {
        return Err(ContainerError::NotABackup);
    }
    if got < HEADER_LEN {
        return Err(ContainerError::Truncated {
            have: file_len,
            want: HEADER_LEN as u64,
        });
    }
    let (header, check) = Header::decode(&head)?;
    let secret = secret(header.protection)?;
    let cipher = header.key(&secret)?;
    let aad = &head[..HEADER_LEN - TAG];
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&CHECK_NONCE),
            aad,
            &mut [],
            Tag::from_slice(&check),
        )
        .map_err(|_| {
            ContainerError::WrongSecret(match header.protection {
                Protection::Passphrase => "passphrase",
                Protection::RecoveryCode => "recovery code",
            })
        })?;
    let want = header.file_len();
    if file_len < want {
        return Err(ContainerError::Truncated {
            have: file_len,
            want,
        });
    }
    if file_len > want {
        return Err(ContainerError::TooLong {
            have: file_len,
            want,
        });
    }
    Ok(Reader {
        input,
        cipher,
        aad: head,
        header,
        index: 0,
        plain: Zeroizing::new(Vec::new()),
        at: 0,
    })
}

impl<R: Read> Reader<R> {
    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn next_chunk(&mut self) -> Result<bool, ContainerError> {
        let chunks = self.header.chunks();
        if self.index >= chunks {
            return Ok(false);
        }
        let last = self.index + 1 == chunks;
        let len = if last {
            (self.header.plain_len - self.index * CHUNK as u64) as usize
        } else {
            CHUNK
        };
        let offset = HEADER_LEN as u64 + self.index * (CHUNK + TAG) as u64;
        self.plain.resize(len, 0);
        let mut tag = [0u8; TAG];
        let got =
            read_full(&mut self.input, &mut self.plain)? + read_full(&mut self.input, &mut tag)?;
        if got < len + TAG {
            return Err(ContainerError::Truncated {
                have: offset + got as u64,
                want: self.header.file_len(),
            });
        }
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&chunk_nonce(self.index, last)),
                &self.aad,
                &mut self.plain,
                Tag::from_slice(&tag),
            )
            .map_err(|_| ContainerError::Damaged {
                chunk: self.index,
                offset,
            })?;
        self.index += 1;
        self.at = 0;
        Ok(true)
    }

    /// Whether every chunk was read and authenticated.
    pub fn at_end(&self) -> bool {
        self.index >= self.header.chunks() && self.at == self.plain.len()
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(err) => return Err(io::Error::other(err)),
            }
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

/// Turns an I/O error from [`Reader`] back into the container error inside
/// it, if it carries one.
pub fn unwrap_io(err: io::Error) -> ContainerError {
    if err
        .get_ref()
        .is_some_and(|inner| inner.is::<ContainerError>())
    {
        match err
            .into_inner()
            .map(|inner| inner.downcast::<ContainerError>())
        {
            Some(Ok(inner)) => *inner,
            Some(Err(other)) => ContainerError::Io(io::Error::other(other)),
            None => ContainerError::Io(io::Error::other("unknown error")),
        }
    } else {
        ContainerError::Io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(plain: &[u8], secret: &str) -> Vec<u8> {
        let mut writer = Writer::new(
            Vec::new(),
            Protection::Passphrase,
            secret,
            plain.len() as u64,
        )
        .expect("writer");
        writer.write_all(plain).expect("write");
        writer.finish().expect("finish")
    }

    fn unseal(file: &[u8], secret: &str) -> Result<Vec<u8>, ContainerError> {
        let mut reader = open(file, file.len() as u64, |_| {
            Ok(Zeroizing::new(secret.to_string()))
        })?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(unwrap_io)?;
        Ok(out)
    }

    #[test]
    fn round_trip_at_chunk_boundaries() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = seal(&plain, "a passphrase");
            assert_eq!(file.len() as u64, {
                let (header, _) = Header::decode(&file).expect("header");
                header.file_len()
            });
            assert_eq!(unseal(&file, "a passphrase").expect("open"), plain, "{len}");
        }
    }

    #[test]
    fn wrong_secret_truncation_and_tampering_are_told_apart() {
        let plain = vec![42u8; 2 * CHUNK + 100];
        let file = seal(&plain, "a passphrase");
        assert!(matches!(
            unseal(&file, "another one"),
            Err(ContainerError::WrongSecret("passphrase"))
        ));
        for cut in [
            10,
            HEADER_LEN - 1,
            HEADER_LEN + 5,
            CHUNK + 100,
            file.len() - 1,
        ] {
            let err = unseal(&file[..cut], "a passphrase").expect_err("truncated");
            let text = err.to_string();
            assert!(
                text.contains("truncated") || text.contains("not a mailnode backup"),
                "{cut}: {text}"
            );
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(
            unseal(&longer, "a passphrase"),
            Err(ContainerError::TooLong { .. })
        ));
        let mut tampered = file.clone();
        tampered[HEADER_LEN + CHUNK + 40] ^= 1;
        assert!(matches!(
            unseal(&tampered, "a passphrase"),
            Err(ContainerError::Damaged { chunk: 1, .. })
        ));
        let mut header = file.clone();
        header[MAGIC.len() + 20] ^= 1;
        assert!(matches!(
            unseal(&header, "a passphrase"),
            Err(ContainerError::WrongSecret(_))
        ));
        // Swapping two chunks is caught too.
        let mut swapped = file;
        let (a, b) = (HEADER_LEN, HEADER_LEN + CHUNK + TAG);
        let first: Vec<u8> = swapped[a..b].to_vec();
        let second: Vec<u8> = swapped[b..b + CHUNK + TAG].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + CHUNK + TAG].copy_from_slice(&first);
        assert!(matches!(
            unseal(&swapped, "a passphrase"),
            Err(ContainerError::Damaged { chunk: 0, .. })
        ));
    }
}
