//! Acceptance: every suite of the public gatekeeper-library, read in place
//! from `../shared/corpus/gatekeeper-library`, passes with the Rego engine,
//! and every case of a template with `K8sNativeValidation` code passes with
//! the CEL engine too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use paved_gatekeeper::suite::{Templates, find_suites, run_suite};
use paved_gatekeeper::template::Engine;

/// `(suites, passed, failed)` counted over the cases `engine` ran.
fn run_library(engine: Engine) -> (usize, usize, Vec<String>) {
    let (suites, passed, failed, _) = run_library_with(engine);
    (suites, passed, failed)
}

fn run_library_with(engine: Engine) -> (usize, usize, Vec<String>, Templates) {
    let root = paved_corpus::path("gatekeeper-library");
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

/// Every template with CEL code runs on paved's own CEL evaluator, and on
/// every object of every suite (not only its own cases) it judges exactly as
/// the cel crate's interpreter does, without handing the object back to it.
#[test]
fn the_library_cel_runs_compiled_and_agrees_with_the_interpreter() {
    use paved_gatekeeper::constraint::Constraint;
    use paved_gatekeeper::suite::{Inventory, Review, read_all};
    use paved_gatekeeper::template::{Compiled, Template};
    use serde_json::Value;

    let root = paved_corpus::path("gatekeeper-library");
    let mut pairs = Vec::new();
    let mut objects = Vec::new();
    for suite in find_suites(&[root]) {
        let dir = suite.parent().unwrap().to_owned();
        let doc = read_all(&suite).unwrap().remove(0);
        for test in doc["tests"].as_array().unwrap() {
            let file = |k: &str| dir.join(test[k].as_str().unwrap());
            let template = Template::from_json(&read_all(&file("template")).unwrap()[0]).unwrap();
            if template.cel.is_some() {
                let constraint = Constraint::from_json(&read_all(&file("constraint")).unwrap()[0]).unwrap();
                pairs.push((Compiled::new(template, Engine::Cel).unwrap(), constraint));
            }
            for case in test["cases"].as_array().unwrap() {
                objects.extend(read_all(&dir.join(case["object"].as_str().unwrap())).unwrap());
            }
        }
    }
    let not_compiled: Vec<&str> =
        pairs.iter().filter(|(t, _)| !t.cel().unwrap().is_compiled()).map(|(t, _)| t.template.name.as_str()).collect();
    assert!(not_compiled.is_empty(), "left to the interpreter: {not_compiled:?}");

    let inventory = Inventory::new(Vec::new());
    let (mut judged, mut failures) = (0, 0);
    for object in &objects {
        let review = Review::of(object);
        for (template, constraint) in &pairs {
            if !review.matches(constraint, &inventory) {
                continue;
            }
            let validator = template.cel().unwrap();
            let interpreted = validator.evaluate_interpreted(review.activation(), &constraint.cel_params);
            let compiled = validator.evaluate_without_interpreter(review.activation(), &constraint.cel_params);
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
            let what = format!("{} on {name}", template.template.name);
            assert!(interpreted.errors.is_empty(), "{what}: {:?}", interpreted.errors);
            assert_eq!(compiled.as_ref(), Some(&interpreted), "{what}");
            judged += 1;
            failures += interpreted.failures.len();
        }
    }
    eprintln!(
        "{} CEL templates, {judged} evaluations compiled and interpreted alike, {failures} failures",
        pairs.len()
    );
    assert!(
        pairs.len() >= 16 && judged >= 500 && failures >= 100,
        "{} pairs, {judged} judged, {failures}",
        pairs.len()
    );
}
