//! Acceptance: every suite of the public gatekeeper-library, read in place
//! from `../shared/corpus/gatekeeper-library`, passes with the Rego engine,
//! and every case of a template with `K8sNativeValidation` code passes with
//! the CEL engine too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use paved_gatekeeper::suite::{Templates, find_suites, run_suite};
use paved_gatekeeper::template::Engine;

/// `(suites, passed, failed)` counted over the cases `engine` ran.
fn run_library(engine: Engine) -> (usize, usize, Vec<String>) {
    let (suites, passed, failed, _) = run_library_with(engine);
    (suites, passed, failed)
}

fn run_library_with(engine: Engine) -> (usize, usize, Vec<String>, Templates) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gatekeeper-library");
    assert!(root.is_dir(), "the corpus is expected at {}", root.display());
    let suites = find_suites(&[root]);
    assert!(suites.len() >= 30, "found only {} suites", suites.len());
    let mut templates = Templates::new(engine);
    let (mut passed, mut failed, mut ran_suites) = (0, Vec::new(), 0);
    for suite in &suites {
        let mut ran = false;
        for case in run_suite(suite, &mut templates).unwrap() {
            // A template without CEL code runs Rego under either engine;
            // set-up failures (engine None) count as failures everywhere.
            if case.engine.is_some_and(|e| e != engine) {
                continue;
            }
            ran = true;
            match case.failure {
                None => passed += 1,
                Some(why) => failed.push(format!("{}: {} / {}: {why}", suite.display(), case.test, case.case)),
            }
        }
        ran_suites += usize::from(ran);
    }
    (ran_suites, passed, failed, templates)
}

#[test]
fn every_gatekeeper_library_case_passes_with_rego() {
    let (suites, passed, failed, templates) = run_library_with(Engine::Rego);
    eprintln!("gatekeeper-library with Rego: {suites} suites, {passed} cases passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{} failed:\n{}", failed.len(), failed.join("\n"));
    // All of them on regorus's virtual machine, which is several times faster
    // than its interpreter: the fallback is for code its compiler refuses.
    let interpreted: Vec<&str> =
        templates.compiled().filter(|t| !t.on_virtual_machine()).map(|t| t.template.name.as_str()).collect();
    assert!(interpreted.is_empty(), "interpreted, not compiled: {interpreted:?}");
}

#[test]
fn every_case_of_a_template_with_cel_code_passes_with_cel() {
    let (suites, passed, failed) = run_library(Engine::Cel);
    eprintln!("gatekeeper-library with CEL: {suites} suites, {passed} cases passed, {} failed", failed.len());
    // Ten templates carry K8sNativeValidation code; each has one suite.
    assert!(suites >= 10 && passed >= 40, "CEL ran only {suites} suites, {passed} cases");
    assert!(failed.is_empty(), "{} failed:\n{}", failed.len(), failed.join("\n"));
}
