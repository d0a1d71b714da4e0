//! IMAP server (placeholder, being written).
