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
    match CommandCodec::default().decode(data) {
        Ok((rest, command)) => {
            // The session treats a decode that leaves bytes over as
            // undecodable; the remainder must be a suffix of the input.
            assert!(rest.len() < data.len(), "a command consumed nothing");
            // What the codec decoded must encode again and decode to the
            // same command: the session echoes parts of it (tags, mailbox
            // names) into its replies.
            let encoded = CommandCodec::default().encode(&command).dump();
            match CommandCodec::default().decode(&encoded) {
                Ok((rest2, again)) => {
                    assert!(rest2.is_empty(), "re-encoded command has a remainder");
                    assert_eq!(
                        again, command,
                        "decode -> encode -> decode changed the command"
                    );
                }
                Err(error) => panic!("re-encoded command does not decode: {error:?}"),
            }
        }
        // A literal announcement is answered by the session with BAD or a
        // continuation; nothing to check beyond not panicking.
        Err(_) => {}
    }
    let _ = AuthenticateDataCodec::default().decode(data);
    let _ = IdleDoneCodec::default().decode(data);
}
