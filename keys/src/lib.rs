//! mailnode identity (being written).
