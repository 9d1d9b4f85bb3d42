//! Any bytes, read as a Dockerfile: parsing, linting and fixing must not panic, and findings
//! must point inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minify_lint::{self as lint, Context, Options};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ctx = Context {
        known: true,
        dockerignore: None,
        entries: vec![".env".into()],
    };
    let (_, findings) = lint::lint_text(&text, &ctx, &Options::default());
    let lines = text.lines().count().max(1) + 1;
    for f in &findings {
        assert!(f.start.line >= 1 && f.start.line <= lines && f.start.column >= 1);
    }
    let _ = lint::fix::fix(&text, &ctx, &Options::default());
});
