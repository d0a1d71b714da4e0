//! Encrypted SQLite mail store (being written).
