//! Store tests on temporary directories.
