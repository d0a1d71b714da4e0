//! Tests of the mailbox service and client.
