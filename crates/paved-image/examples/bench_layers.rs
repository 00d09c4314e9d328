//! Layer analysis throughput, for bench/layers.sh.
//!
//!     bench_layers FILE...
//!
//! Reads each file as one layer blob (gzip, zstd or plain tar), digest
//! checked, through the same code the registry client streams into, and
//! prints per file: compressed MB, tar MB, seconds, tar MB/s, entries, and
//! the process's peak RSS so far.

use std::io::Read;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fail(path: &str, error: &dyn std::fmt::Display) -> ! {
    eprintln!("bench_layers: {path}: {error}");
    std::process::exit(1)
}

fn main() {
    let limits = paved_image::Limits::default();
    for path in std::env::args().skip(1) {
        let started = Instant::now();
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) => fail(&path, &e),
        };
        // Large reads, as from a network stream.
        let reader = std::io::BufReader::with_capacity(256 * 1024, file).take(u64::MAX);
        let layer = match paved_image::layer::read_layer(reader, None, &limits, 0) {
            Ok(layer) => layer,
            Err(e) => fail(&path, &e),
        };
        let (entries, blob_size, tar_size) = (layer.changes.len(), layer.blob_size, layer.size);
        let mut view = paved_image::View::default();
        view.apply(layer);
        let contents = paved_image::Contents::of(&view);
        let secs = started.elapsed().as_secs_f64();
        let mb = |b: u64| b as f64 / 1e6;
        println!(
            "{path}: {:.1} MB blob, {:.1} MB tar, {secs:.3} s, {:.0} MB/s tar, {entries} entries, {} shells, peak RSS {} MiB",
            mb(blob_size),
            mb(tar_size),
            mb(tar_size) / secs,
            contents.shells.len(),
            peak_rss_kib() / 1024
        );
    }
}
