//! Matches an image of N distribution packages against an advisory index,
//! warm, and prints the time per image: `bench/advisories.sh` runs it.
//!
//!   cargo run --release -p paved-advisory --example bench_match -- INDEX_DIR [PACKAGES]

use paved_advisory::index::Index;

// The allocator the paved binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use paved_advisory::matching::{Installed, match_packages};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: bench_match INDEX_DIR [PACKAGES]")?;
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let index = Index::open(std::path::Path::new(&dir))?.ok_or("no index there")?;
    // The generator's Debian packages are pkg0..pkg3999: every other one of
    // the image's is known to the index, as in a real image most are not.
    let packages: Vec<Installed> = (0..n)
        .map(|i| Installed {
            ecosystem: "Debian".into(),
            release: Some("12".into()),
            name: format!("pkg{}", i * 2),
            version: "1.25-1".into(),
            installed_as: None,
        })
        .collect();
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..21 {
        let start = std::time::Instant::now();
        let matched = match_packages(&index, &packages)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        found = matched.vulnerabilities.len();
    }
    // The first run warms the page cache; the rest are what a server sees.
    times.remove(0);
    times.sort_by(f64::total_cmp);
    println!(
        "match {n} packages against {} records: median {:.2} ms, min {:.2} ms, {found} vulnerabilities",
        index.header().records,
        times[times.len() / 2],
        times[0]
    );
    Ok(())
}
