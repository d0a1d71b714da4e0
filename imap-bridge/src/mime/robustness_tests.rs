//! Every public function on mangled input: no panic, and sections stay
//! slices of the input. A deterministic generator keeps runs reproducible.

use super::*;

const SEEDS: [&[u8]; 3] = [
    b"From: \"A\" <a@x>\r\nTo: g: b@y, (c) <c@z>;\r\nSubject: =?utf-8?q?x?=\r\n\
Date: 1 Jan 2024 10:00 +0000\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n\
--q\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
aGVsbG8=\r\n--q\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\
Content-Type: multipart/alternative; boundary=r\r\n\r\n--r\r\n\r\nx\r\n--r--\r\n--q--\r\n",
    b"Subject: plain\nContent-Type: text/html; charset=\"iso-8859-1\"\n\
Content-Transfer-Encoding: quoted-printable\n\n=E9t=E9=\n\n",
    b"Content-Type: multipart/digest; boundary=\"d d\"\r\n\r\n--d d\r\n\r\nSubject: 1\r\n\r\nx\r\n--d d--",
];

/// xorshift64*: small, deterministic, good enough to scramble bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"\r\n:;<>@\"()\\-= \t\x00\xff/,";
    let mut msg = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(msg.len() + 1);
        match rng.below(4) {
            0 if at < msg.len() => {
                msg.remove(at);
            }
            1 => msg.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < msg.len() => msg[at] = rng.next().to_le_bytes()[0],
            _ => {
                let end = (at + rng.below(16)).min(msg.len());
                let chunk = msg[at.min(end)..end].to_vec();
                msg.splice(at..at, chunk);
            }
        }
    }
    msg
}

#[test]
fn mangled_messages_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds = [
        SectionKind::Full,
        SectionKind::Header,
        SectionKind::Text,
        SectionKind::Mime,
        SectionKind::HeaderFields(vec!["subject".into(), "to".into()]),
        SectionKind::HeaderFieldsNot(vec!["from".into()]),
    ];
    let paths: [&[u32]; 6] = [&[], &[1], &[2], &[2, 1], &[2, 1, 1], &[1, 1]];
    for round in 0..1500 {
        let msg = mutate(&mut rng, SEEDS[round % SEEDS.len()]);
        let _ = envelope(&msg);
        let _ = body_structure(&msg, true);
        let _ = body_structure(&msg, false);
        for path in paths {
            for kind in &kinds {
                if let Some(bytes) = section(&msg, path, kind) {
                    let synthesized = matches!(
                        kind,
                        SectionKind::HeaderFields(_) | SectionKind::HeaderFieldsNot(_)
                    );
                    assert!(
                        synthesized
                            || bytes.is_empty()
                            || msg.windows(bytes.len()).any(|w| w == bytes),
                        "section {path:?} {kind:?} is not a slice of the message"
                    );
                }
            }
        }
        let _ = header_contains(&msg, "subject", "x");
        let _ = body_contains(&msg, "é");
        let _ = text_contains(&msg, "in");
        let _ = sent_date(&msg);
    }
}
