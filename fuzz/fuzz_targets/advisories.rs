//! Any bytes as an advisory: an OSV record in JSON or YAML, or a zip dump
//! streamed entry by entry, imported into a fresh index and looked up. It
//! must never panic or hang; an import either refuses the input or writes
//! an index that opens. And the version orderings: any two strings compare
//! without panic, and the same way round both ways.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_advisory::index::{Importer, Index};
use paved_advisory::version::Scheme;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let mut importer = Importer::new(dir.path()).expect("a scratch directory");
    let yaml = data.first().is_some_and(|b| *b != b'{');
    let _ = importer.add_text("fuzz", data, yaml);
    let _ = importer.add_zip("fuzz.zip", data);
    if importer.finish().is_ok() {
        let index = Index::open(dir.path()).expect("a written index opens").expect("and is there");
        let _ = index.lookup("Go", "stdlib");
    }
    let text = String::from_utf8_lossy(data);
    let middle = text.char_indices().nth(text.chars().count() / 2).map_or(text.len(), |(i, _)| i);
    let (a, b) = text.split_at(middle);
    for scheme in [Scheme::Dpkg, Scheme::Apk, Scheme::Semver, Scheme::Go, Scheme::Pep440, Scheme::Maven, Scheme::Rpm] {
        if let (Some(x), Some(y)) = (scheme.compare(a, b), scheme.compare(b, a)) {
            assert_eq!(x, y.reverse(), "{scheme:?}: {a:?} vs {b:?}");
        }
    }
});
