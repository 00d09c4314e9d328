//! `cargo run --release -p paved-gatekeeper --example bench_policies [SECONDS]`
//!
//! Evaluations per second on one thread, per engine: every constraint of the
//! public gatekeeper-library suites (templates compiled once) against every
//! object of those suites, repeated for SECONDS (default 5) per line:
//! Rego over all templates, then Rego and CEL over the templates that carry
//! both (`K8sNativeValidation`), so the last two compare like with like. Each object's review is
//! prepared once, as `paved check` and `paved serve` prepare it; a pair whose
//! `match` does not select the object never reaches Rego and is not counted.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use paved_gatekeeper::constraint::Constraint;
use paved_gatekeeper::suite::{Inventory, Review, find_suites, read_all, violations_of};
use paved_gatekeeper::template::{Compiled, Engine, Template};
use serde_json::Value;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    run("Rego, all templates", Engine::Rego, false, seconds)?;
    run("Rego, templates with CEL", Engine::Rego, true, seconds)?;
    run("CEL, templates with CEL", Engine::Cel, true, seconds)?;
    Ok(())
}

fn run(label: &str, engine: Engine, only_cel: bool, seconds: u64) -> Result<(), Error> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gatekeeper-library");
    let mut pairs = Vec::new();
    let mut objects: Vec<Value> = Vec::new();
    for suite in find_suites(&[root]) {
        let dir = suite.parent().ok_or("suite without directory")?.to_owned();
        let doc = read_all(&suite)?.into_iter().next().ok_or("empty suite")?;
        for test in doc.get("tests").and_then(Value::as_array).into_iter().flatten() {
            let file = |k: &str| test.get(k).and_then(Value::as_str).map(|f| dir.join(f));
            let (Some(t), Some(c)) = (file("template"), file("constraint")) else { continue };
            let template = Template::from_json(&read_all(&t)?[0])?;
            if only_cel && template.cel.is_none() {
                continue;
            }
            let compiled = Compiled::new(template, engine)?;
            let constraint = Constraint::from_json(&read_all(&c)?[0])?;
            pairs.push((compiled, constraint));
            for case in test.get("cases").and_then(Value::as_array).into_iter().flatten() {
                if let Some(o) = case.get("object").and_then(Value::as_str) {
                    objects.extend(read_all(&dir.join(o))?);
                }
            }
        }
    }
    let inventory = Inventory::new(Vec::new());
    let (mut evaluations, mut considered, mut violations) = (0u64, 0u64, 0u64);
    let mut eval_time = Duration::ZERO;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        for object in &objects {
            let review = Review::of(object);
            for (template, constraint) in &pairs {
                considered += 1;
                if !review.matches(constraint, &inventory) {
                    continue;
                }
                let t0 = Instant::now();
                let found = violations_of(template, constraint, &review, &inventory)?;
                eval_time += t0.elapsed();
                evaluations += 1;
                violations += found.len() as u64;
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{label}: {} constraints x {} objects: {considered} pairs in {wall:.2} s; {evaluations} evaluations, {:.0}/s ({:.1} µs each); {violations} violations",
        pairs.len(),
        objects.len(),
        evaluations as f64 / eval_time.as_secs_f64(),
        eval_time.as_secs_f64() * 1e6 / evaluations.max(1) as f64
    );
    Ok(())
}
