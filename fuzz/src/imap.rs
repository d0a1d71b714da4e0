//! The IMAP command decoders the bridge's session uses, fed one client
//! message at a time.
//!
//! The bridge's fragmentizer (`imap_bridge::imap::fragment`) and session are
//! private, so this target covers the decode step they delegate to
//! imap-codec: `CommandCodec` for commands, `AuthenticateDataCodec` for SASL
//! continuation lines and `IdleDoneCodec` for the line that ends IDLE. The
//! framing, the dispatch and the bridge's own LIST-EXTENDED parser are
//! covered end to end by [`crate::loopback::imap_session`].

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{AuthenticateDataCodec, CommandCodec, IdleDoneCodec};

/// Target `imap_command`: decodes `data` the way the session does and
/// checks what the session relies on.
pub fn imap_command(data: &[u8]) {
    // A literal announcement or an undecodable message is answered by the
    // session with a continuation or BAD; nothing to check beyond not
    // panicking.
    if let Ok((rest, command)) = CommandCodec::default().decode(data) {
        // The session treats a decode that leaves bytes over as
        // undecodable; the remainder must be a suffix of the input.
        assert!(rest.len() < data.len(), "a command consumed nothing");
        // What the codec decoded must encode again to something that
        // decodes and encodes to the same bytes (the session echoes
        // parts of commands, such as tags and mailbox names, into its
        // replies). Bytes, not values, are compared: the codec may
        // normalise (`2:2` is read as a range and written as `2`).
        let encoded = CommandCodec::default().encode(&command).dump();
        match CommandCodec::default().decode(&encoded) {
            Ok((rest2, again)) => {
                assert!(rest2.is_empty(), "re-encoded command has a remainder");
                let encoded_again = CommandCodec::default().encode(&again).dump();
                assert!(
                    encoded_again == encoded,
                    "encode -> decode -> encode changed the command: {:?} became {:?}",
                    String::from_utf8_lossy(&encoded),
                    String::from_utf8_lossy(&encoded_again)
                );
            }
            Err(error) => panic!(
                "re-encoded command does not decode ({error:?}): {:?}",
                String::from_utf8_lossy(&encoded)
            ),
        }
    }
    let _ = AuthenticateDataCodec::default().decode(data);
    let _ = IdleDoneCodec::default().decode(data);
}

/// Target `imap_search_return`: the bridge's rewrite of ESEARCH `RETURN`
/// options and SEARCHRES `$` (`imap_bridge::imap::esearch`, which
/// imap-codec does not parse), with the saved result the session would
/// pass, then the decode the session runs on its output.
pub fn imap_search_return(data: &[u8]) {
    use imap_bridge::imap::esearch::{Dollar, rewrite};
    for dollar in [
        Dollar::default(),
        Dollar {
            uids: "3:5,9".into(),
            seqs: "1:3,4".into(),
        },
    ] {
        let Ok(Some(rewritten)) = rewrite(data, &dollar) else {
            continue;
        };
        // Only text before literals changes: the input's tail (its last
        // literal, or its final CRLF) is the output's tail.
        if data.ends_with(b"\r\n") {
            assert!(
                rewritten.bytes.ends_with(b"\r\n"),
                "the rewrite lost the CRLF"
            );
        }
        let _ = CommandCodec::default().decode(&rewritten.bytes);
    }
}
