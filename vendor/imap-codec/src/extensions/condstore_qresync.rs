use core::num::NonZeroU64;

use abnf_core::streaming::sp;
#[cfg(feature = "ext_condstore_qresync")]
use imap_types::extensions::condstore_qresync::{AttributeFlag, EntryTypeReq};
use nom::{
    branch::alt,
    bytes::streaming::{tag, tag_no_case},
    character::streaming::char,
    combinator::{map, map_res, opt, value},
    sequence::{delimited, preceded, tuple},
};

use crate::{
    core::{atom, number64},
    decode::IMAPResult,
};

/// ```abnf
/// mod-sequence-valzer = "0" / mod-sequence-value
/// ```
pub(crate) fn mod_sequence_valzer(input: &[u8]) -> IMAPResult<&[u8], u64> {
    number64(input)
}

/// Positive unsigned 64-bit integer (mod-sequence) (1 <= n < 18,446,744,073,709,551,615)
///
/// ```abnf
/// mod-sequence-value  = 1*DIGIT
/// ```
pub(crate) fn mod_sequence_value(input: &[u8]) -> IMAPResult<&[u8], NonZeroU64> {
    map_res(number64, NonZeroU64::try_from)(input)
}

/// ```abnf
/// search-sort-mod-seq = "(" "MODSEQ" SP mod-sequence-value ")"
/// ```
pub(crate) fn search_sort_mod_seq(input: &[u8]) -> IMAPResult<&[u8], NonZeroU64> {
    delimited(
        char('('),
        preceded(tag_no_case("MODSEQ "), mod_sequence_value),
        char(')'),
    )(input)
}

/// ```abnf
/// search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
/// ```
#[allow(clippy::type_complexity)]
pub(crate) fn search_modsequence(
    input: &[u8],
) -> IMAPResult<&[u8], (Option<(AttributeFlag, EntryTypeReq)>, u64)> {
    preceded(
        tag_no_case("MODSEQ"),
        tuple((opt(search_modseq_ext), preceded(sp, mod_sequence_valzer))),
    )(input)
}

/// ```abnf
/// search-modseq-ext = SP entry-name SP entry-type-req
/// ```
pub(crate) fn search_modseq_ext(input: &[u8]) -> IMAPResult<&[u8], (AttributeFlag, EntryTypeReq)> {
    tuple((preceded(sp, entry_name), preceded(sp, entry_type_req)))(input)
}

/// ```abnf
/// entry-name = entry-flag-name
/// ```
#[inline]
pub(crate) fn entry_name(input: &[u8]) -> IMAPResult<&[u8], AttributeFlag> {
    entry_flag_name(input)
}

/// Each system or user-defined flag \<flag\> is mapped to "/flags/\<flag\>".
///
/// \<entry-flag-name\> follows the escape rules used by "quoted" string as described in
/// Section 4.3 of \[RFC3501\]; e.g., for the flag \Seen, the corresponding \<entry-name\>
/// is "/flags/\\seen", and for the flag $MDNSent, the corresponding \<entry-name\>
/// is "/flags/$mdnsent".
///
/// ```abnf
/// entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE
/// ```
pub(crate) fn entry_flag_name(input: &[u8]) -> IMAPResult<&[u8], AttributeFlag> {
    delimited(tag_no_case("\"/flags/"), attr_flag, char('"'))(input)
}

/// ```abnf
/// attr-flag = "\\Answered" /
///             "\\Flagged" /
///             "\\Deleted" /
///             "\\Seen" /
///             "\\Draft" /
///             attr-flag-keyword /
///             attr-flag-extension
///             ;; Does not include "\\Recent".
/// ```
pub(crate) fn attr_flag(input: &[u8]) -> IMAPResult<&[u8], AttributeFlag> {
    alt((
        map(preceded(tag("\\\\"), atom), AttributeFlag::system),
        map(atom, AttributeFlag::Keyword),
    ))(input)
}

// /// ```abnf
// /// attr-flag-keyword = atom
// /// ```
// #[inline]
// pub(crate) fn attr_flag_keyword(input: &[u8]) -> IMAPResult<&[u8], Atom> {
//     atom(input)
// }

// /// Future expansion.
// /// Client implementations MUST accept flag-extension flags.
// /// Server implementations MUST NOT generate flag-extension flags, except as defined by future
// /// standards or Standards Track revisions of [RFC3501].
// ///
// /// ```abnf
// /// attr-flag-extension = "\\" atom
// /// ```
// pub(crate) fn attr_flag_extension(input: &[u8]) -> IMAPResult<&[u8], Atom> {
//     preceded(tag("\\\\"), atom)(input)
// }

/// ```abnf
/// ;; Perform SEARCH operation on a private metadata item,
/// ;; shared metadata item, or both.
/// entry-type-req = entry-type-resp / "all"
///
/// ;; Metadata item type.
/// entry-type-resp = "priv" / "shared"
/// ```
pub(crate) fn entry_type_req(input: &[u8]) -> IMAPResult<&[u8], EntryTypeReq> {
    alt((
        value(EntryTypeReq::Private, tag_no_case("priv")),
        value(EntryTypeReq::Shared, tag_no_case("shared")),
        value(EntryTypeReq::All, tag_no_case("all")),
    ))(input)
}

#[cfg(test)]
mod tests {
    use alloc::{vec, vec::Vec};
    use core::num::NonZeroU32;

    use imap_types::{
        command::{Command, CommandBody, FetchModifier, StoreModifier},
        core::Vec1,
        fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName},
        flag::{Flag, StoreResponse, StoreType},
        response::{Data, Response},
        search::SearchKey,
        sequence::SequenceSet,
    };

    use super::*;
    use crate::{
        response::resp_text,
        testing::{kat_inverse_command, kat_inverse_response, known_answer_test_encode},
    };

    /// `<tag> UID FETCH 1:* (FLAGS) (<modifiers>)`.
    fn uid_fetch_flags(tag: &'static str, modifiers: Vec<FetchModifier>) -> Command<'static> {
        let body = CommandBody::Fetch {
            sequence_set: SequenceSet::try_from("1:*").unwrap(),
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(vec![
                MessageDataItemName::Flags,
            ]),
            uid: true,
            modifiers,
        };
        Command::new(tag, body).unwrap()
    }

    /// The example of RFC 7162, Section 3.1.4.1, and `CHANGEDSINCE 0`, which
    /// clients send for a mailbox they never synchronised.
    #[test]
    fn test_kat_inverse_command_fetch_changedsince() {
        kat_inverse_command(&[
            (
                b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n".as_ref(),
                b"".as_ref(),
                uid_fetch_flags("s100", vec![FetchModifier::ChangedSince(12345)]),
            ),
            (
                b"27 UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)\r\n".as_ref(),
                b"".as_ref(),
                uid_fetch_flags("27", vec![FetchModifier::ChangedSince(0)]),
            ),
            (
                b"A UID FETCH 1:* (FLAGS) (changedsince 0 VANISHED)\r\n".as_ref(),
                b"".as_ref(),
                uid_fetch_flags(
                    "A",
                    vec![FetchModifier::ChangedSince(0), FetchModifier::Vanished],
                ),
            ),
        ]);
    }

    #[test]
    fn test_encode_fetch_modifier_changedsince_zero() {
        known_answer_test_encode((FetchModifier::ChangedSince(0), b"CHANGEDSINCE 0".as_ref()));
    }

    /// The other two mod-sequence arguments of commands take
    /// `mod-sequence-valzer`, so 0 is valid there by the grammar.
    #[test]
    fn test_kat_inverse_command_modseq_zero_in_store_and_search() {
        kat_inverse_command(&[
            (
                b"A UID STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    CommandBody::Store {
                        sequence_set: SequenceSet::try_from(1u32).unwrap(),
                        kind: StoreType::Add,
                        response: StoreResponse::Answer,
                        flags: vec![Flag::Seen],
                        uid: true,
                        modifiers: vec![StoreModifier::UnchangedSince(0)],
                    },
                )
                .unwrap(),
            ),
            (
                b"A SEARCH MODSEQ 0\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::from(SearchKey::ModSequence {
                            entry: None,
                            modseq: 0,
                        }),
                        uid: false,
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_condstore_qresync_codes() {
        assert!(resp_text(b"[MODIFIED 7,9] Conditional STORE failed\r\n").is_ok());
        assert!(
            resp_text(b"[NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n")
                .is_ok()
        );
        assert!(resp_text(b"[HIGHESTMODSEQ 715194045007] Highest\r\n").is_ok());
    }

    #[test]
    fn test_encode_message_data_item_modseq() {
        known_answer_test_encode((
            MessageDataItem::ModSeq(NonZeroU64::try_from(624140003).unwrap()),
            b"MODSEQ (624140003)".as_ref(),
        ));
    }

    /// RFC 7162, Section 3.1.4.2, Example 13.
    #[test]
    fn test_kat_inverse_response_fetch_modseq() {
        kat_inverse_response(&[(
            b"* 1 FETCH (MODSEQ (624140003))\r\n".as_ref(),
            b"".as_ref(),
            Response::Data(Data::Fetch {
                seq: NonZeroU32::new(1).unwrap(),
                items: Vec1::from(MessageDataItem::ModSeq(
                    NonZeroU64::try_from(624140003).unwrap(),
                )),
            }),
        )]);
    }
}
