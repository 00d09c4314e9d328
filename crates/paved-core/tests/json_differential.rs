//! paved-core's JSON reader against serde_json on every JSON file of the
//! shared corpora (kubernetes/api's canonical objects among them): same
//! acceptance, same values. The admission fuzz target does the same on
//! arbitrary input.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn reads_every_corpus_json_file_as_serde_json_does() {
    let corpus = paved_corpus::path("");
    let mut files = Vec::new();
    json_files(&corpus, &mut files);
    assert!(files.len() >= 14, "corpus JSON files not found under {}", corpus.display());
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let theirs: Result<serde_json::Value, _> = serde_json::from_str(&text);
        let ours = paved_core::json::parse(&text);
        match (ours, theirs) {
            (Ok(node), Ok(value)) => assert_eq!(serde_json::to_value(&node).unwrap(), value, "{}", path.display()),
            (ours, theirs) => panic!("{}: ours {:?}, serde_json {:?}", path.display(), ours.err(), theirs.err()),
        }
    }
    eprintln!("{} JSON files read alike", files.len());
}
