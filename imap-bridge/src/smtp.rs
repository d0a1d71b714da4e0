//! SMTP server (placeholder, being written).
