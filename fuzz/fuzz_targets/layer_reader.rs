//! Fuzzes the xray tar/whiteout reader: arbitrary bytes as one layer tar, and as a whole
//! `docker save` archive. Any input must end in Ok or a typed error, never a panic.
//! Run: `cargo +nightly fuzz run layer_reader fuzz/corpus/layer_reader`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minify::xray::scan::{scan_layer, HashPolicy};
use minify::xray::source::read_archive;

fuzz_target!(|data: &[u8]| {
    let mut warnings = Vec::new();
    if let Ok(scan) = scan_layer(data, "fuzz", HashPolicy::AtLeast(1), &mut warnings) {
        for entry in &scan.entries {
            let _ = entry.whiteout_target();
        }
    }
    if let Ok(raw) = read_archive(data, HashPolicy::Skip) {
        let _ = minify::xray::analyze("fuzz", raw, std::time::Instant::now());
    }
});
