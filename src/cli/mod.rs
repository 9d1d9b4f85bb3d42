//! Command-line flags and their validation; thin over the library.
