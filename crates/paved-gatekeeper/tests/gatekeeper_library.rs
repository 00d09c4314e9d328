//! Acceptance: every suite of the public gatekeeper-library, read in place
//! from `../shared/corpus/gatekeeper-library`, passes with the Rego engine.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use paved_gatekeeper::suite::{Templates, find_suites, run_suite};

#[test]
fn every_gatekeeper_library_case_passes_with_rego() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gatekeeper-library");
    assert!(root.is_dir(), "the corpus is expected at {}", root.display());
    let suites = find_suites(&[root]);
    assert!(suites.len() >= 30, "found only {} suites", suites.len());
    let mut templates = Templates::default();
    let (mut passed, mut failed) = (0, Vec::new());
    for suite in &suites {
        for case in run_suite(suite, &mut templates).unwrap() {
            match case.failure {
                None => passed += 1,
                Some(why) => failed.push(format!("{}: {} / {}: {why}", suite.display(), case.test, case.case)),
            }
        }
    }
    eprintln!("gatekeeper-library with Rego: {} suites, {passed} cases passed, {} failed", suites.len(), failed.len());
    assert!(failed.is_empty(), "{} failed:\n{}", failed.len(), failed.join("\n"));
}
