//! Fuzzes both image readers: xray's tar/whiteout reader (arbitrary bytes as one layer tar, and
//! as a whole `docker save` archive) and the one `build` writes slim images from (the same bytes
//! spooled as a `docker save` archive, flattened, every entry written to a slim layer; and
//! replayed as a layer store's tar-split). Any input must end in Ok or a typed error, never a
//! panic.
//! Run: `cargo +nightly fuzz run layer_reader fuzz/corpus/layer_reader`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minify::image::layerstore::SplitReader;
use minify::image::{retain, spool_docker_archive, write_layer, ImageFs};
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
    if let Ok(image) = spool_docker_archive(data, None) {
        if let Ok((fs, _)) = ImageFs::new(image) {
            let entries = retain(&fs.index, |_| true);
            let _ = write_layer(&fs, &entries, std::io::sink());
        }
    }
    let mut replay = SplitReader::new(data);
    let _ = tar::Archive::new(&mut replay)
        .entries_with_seek()
        .map(|entries| entries.count());
});
