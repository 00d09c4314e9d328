//! Layer blobs come from registries nobody vetted: any bytes must give a
//! layer or an error, never a panic, a hang or an allocation beyond the
//! limits; what loads must apply to a filesystem view and be analysed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_image::layer::{Limits, read_layer};

fuzz_target!(|data: &[u8]| {
    // Small limits, so the fuzzer reaches them quickly.
    let limits = Limits { max_layer_bytes: 4 << 20, max_entries: 10_000, max_path: 4096, max_database: 64 << 10 };
    // The readers of what files carry, on the raw bytes too: an rpm
    // database (SQLite, headers), a Go binary's build information.
    let _ = paved_image::rpm::read_sqlite(data);
    if let Ok(Some(paved_image::gobuild::Found::Inline { modinfo, .. })) = paved_image::gobuild::scan(data, data.len() as u64) {
        let _ = paved_image::gobuild::modules(&modinfo);
    }
    let Ok(layer) = read_layer(data, None, &limits, 0) else { return };
    assert!(layer.size <= limits.max_layer_bytes);
    assert_eq!(layer.blob_size, data.len() as u64);
    let mut view = paved_image::View::default();
    view.apply(layer);
    let contents = paved_image::Contents::of(&view);
    assert!(contents.files as usize == view.len());
});
