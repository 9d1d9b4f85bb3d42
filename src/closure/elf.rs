//! TODO: owned by the closure work.
