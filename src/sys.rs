//! Raw system calls and kernel interfaces, kept in one place.
