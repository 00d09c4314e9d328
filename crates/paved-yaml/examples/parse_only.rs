//! The parse-only floor for `bench/check.sh`: reads and loads every manifest
//! under the given paths exactly as `paved check` does, on one thread, and
//! evaluates nothing.

use std::path::Path;

// The same allocator as the `paved` binary, so the floor is comparable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn walk(p: &Path, files: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            walk(&e, files);
        }
    } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
        files.push(p.to_path_buf());
    }
}

fn main() {
    let limits = paved_yaml::Limits::default();
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        walk(Path::new(&arg), &mut files);
    }
    let (mut objects, mut errors, mut bytes) = (0usize, 0usize, 0usize);
    for f in &files {
        let Ok(data) = std::fs::read(f) else {
            errors += 1;
            continue;
        };
        bytes += data.len();
        match paved_yaml::decode(&data, &limits).map(|t| paved_yaml::load(t, &limits)) {
            Ok(Ok(items)) => {
                for i in items {
                    match i {
                        paved_yaml::Item::Object(_) => objects += 1,
                        paved_yaml::Item::Error(_) => errors += 1,
                        paved_yaml::Item::Skipped { .. } => {}
                    }
                }
            }
            _ => errors += 1,
        }
    }
    println!("files={} objects={objects} errors={errors} bytes={bytes}", files.len());
}
