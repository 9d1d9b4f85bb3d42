//! TODO: owned by the image plumbing work.
