//! TLS helper (being written).
