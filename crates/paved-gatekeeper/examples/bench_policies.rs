//! `cargo run --release -p paved-gatekeeper --example bench_policies [SECONDS] [PART] [DIR]`
//!
//! PART `corpus` (with DIR, see `bench/policies.sh`) runs every constraint
//! once over every manifest of DIR instead, and, for the rules paved has
//! natively, the native rule and the library template side by side.
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

// As the paved binary allocates.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Error> {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    // An optional second argument runs one part: library, cel, cel-only
    // (the CEL engine alone, for profiling) or same-rule.
    let only = std::env::args().nth(2);
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if part("library") {
        run("Rego, all templates", Engine::Rego, false, seconds)?;
    }
    if part("library") || part("cel") {
        run("Rego, templates with CEL", Engine::Rego, true, seconds)?;
    }
    if part("library") || part("cel") || part("cel-only") {
        run("CEL, templates with CEL", Engine::Cel, true, seconds)?;
    }
    if part("same-rule") {
        same_rule(seconds)?;
    }
    if only.as_deref() == Some("corpus") {
        let dir = std::env::args().nth(3).ok_or("corpus needs a directory of manifests")?;
        corpus(std::path::Path::new(&dir))?;
    }
    Ok(())
}

/// Native rules and the library templates that judge the same thing.
const SAME_RULES: [(&str, &str); 11] = [
    ("pss-baseline/privileged", "k8spspprivilegedcontainer"),
    ("pss-baseline/host-namespaces", "k8spsphostnamespace"),
    ("pss-baseline/host-ports", "k8spsphostnetworkingports"),
    ("pss-baseline/capabilities", "k8spspcapabilities"),
    ("pss-baseline/host-path-volumes", "k8spsphostfilesystem"),
    ("pss-baseline/apparmor", "k8spspapparmor"),
    ("pss-baseline/proc-mount", "k8spspprocmount"),
    ("pss-baseline/seccomp-profile", "k8spspseccomp"),
    ("pss-restricted/privilege-escalation", "k8spspallowprivilegeescalationcontainer"),
    ("pss-restricted/run-as-non-root", "k8spspallowedusers"),
    ("pss-restricted/volume-types", "k8spspvolumetypes"),
];

/// Which of the library's templates a line runs.
#[derive(Clone, Copy, PartialEq)]
enum Subset {
    All,
    WithCel,
    /// Those that judge what a native rule judges ([`SAME_RULES`]).
    Native,
}

/// Every constraint of the library's suites, compiled once, over every
/// object of `dir` (each object's review prepared once, outside the timing);
/// then the native rules of [`SAME_RULES`] over the same objects. One pass,
/// a file at a time, as `paved check` reads them.
fn corpus(dir: &std::path::Path) -> Result<(), Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|f| f.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let each_object = |f: &mut dyn FnMut(&Value) -> Result<(), Error>| -> Result<usize, Error> {
        let mut n = 0;
        for file in &files {
            for object in read_all(file)? {
                f(&object)?;
                n += 1;
            }
        }
        Ok(n)
    };
    println!("corpus: {} objects in {} files", each_object(&mut |_| Ok(()))?, files.len());
    let inventory = Inventory::new(Vec::new());
    let lines = [
        ("Rego, all templates", Engine::Rego, Subset::All),
        ("Rego, templates with CEL", Engine::Rego, Subset::WithCel),
        ("CEL, templates with CEL", Engine::Cel, Subset::WithCel),
        ("Rego, templates paved has natively", Engine::Rego, Subset::Native),
        ("CEL, templates paved has natively", Engine::Cel, Subset::Native),
    ];
    // Each evaluation's verdict (any violation) on the templates with CEL,
    // Rego's then CEL's, to compare the engines.
    let mut verdicts: Vec<Vec<(String, bool)>> = Vec::new();
    for (label, engine, subset) in lines {
        let mut line_verdicts = Vec::new();
        let (pairs, _) = library(engine, |t| match subset {
            Subset::All => true,
            Subset::WithCel => t.cel.is_some(),
            Subset::Native => {
                SAME_RULES.iter().any(|(_, name)| *name == t.name) && (engine == Engine::Rego || t.cel.is_some())
            }
        })?;
        let mut tally = Tally::default();
        each_object(&mut |object| {
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            judge(object, engine, &pairs, &inventory, &mut tally, &mut |constraint, violated| {
                if subset == Subset::WithCel {
                    line_verdicts.push((format!("{} {name}", constraint.name), violated));
                }
            })
        })?;
        if !line_verdicts.is_empty() {
            verdicts.push(line_verdicts);
        }
        println!("{label}: {} constraints; {}", pairs.len(), tally.rates());
    }
    // The same templates' Rego and CEL should judge each object alike.
    let [rego, cel] = verdicts.as_slice() else { return Err("two lines with CEL templates expected".into()) };
    let differ: Vec<&String> = rego.iter().zip(cel).filter(|(r, c)| r != c).map(|(r, _)| &r.0).collect();
    println!(
        "Rego and CEL verdicts (any violation) differ on {} of {} evaluations{}",
        differ.len(),
        rego.len().min(cel.len()),
        differ.first().map(|d| format!(", e.g. {d}")).unwrap_or_default()
    );
    // The native rules, on the objects with a pod (every workload kind).
    let params = paved_core::config::Params::default();
    let rules: Vec<_> = SAME_RULES.iter().filter_map(|(id, _)| paved_core::rules::find(id)).collect();
    let (mut evaluations, mut findings, mut eval_time) = (0u64, 0usize, Duration::ZERO);
    each_object(&mut |object| {
        let node = paved_core::node::Node::from_json(object);
        let kind = node.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let pod = paved_core::object::PodView::of(&node, kind);
        if pod.is_none() {
            return Ok(());
        }
        let cx =
            paved_core::eval::Ctx { obj: &node, kind, pod, pss: 33, params: &params, exemptions: &[], images: None };
        let mut out = Vec::new();
        let t0 = Instant::now();
        for rule in &rules {
            (rule.check)(&cx, &mut out);
        }
        eval_time += t0.elapsed();
        evaluations += rules.len() as u64;
        findings += out.len();
        Ok(())
    })?;
    println!(
        "native, the same rules: {} rules; {evaluations} evaluations, {:.0}/s ({:.2} µs each); {findings} findings",
        rules.len(),
        evaluations as f64 / eval_time.as_secs_f64(),
        eval_time.as_secs_f64() * 1e6 / evaluations.max(1) as f64
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
    println!("peak RSS: {}", peak.trim_start_matches("VmHWM:").trim());
    Ok(())
}

/// One rule three ways on the same Pods: paved's native
/// `pss-baseline/privileged`, and the library's privileged-containers
/// template in CEL and in Rego. Each Pod is prepared once (parsed, review
/// and CEL variables built) outside the timing, as check and serve do.
fn same_rule(seconds: u64) -> Result<(), Error> {
    let dir = paved_corpus::path("gatekeeper-library/pod-security-policy/privileged-containers");
    let template = Template::from_json(&read_all(&dir.join("template.yaml"))?[0])?;
    let constraint_file = dir.join("samples/psp-privileged-container/constraint.yaml");
    let constraint = Constraint::from_json(&read_all(&constraint_file)?[0])?;
    let mut pods: Vec<String> = Vec::new();
    for name in ["example_allowed.yaml", "example_disallowed.yaml", "disallowed_ephemeral.yaml"] {
        for doc in read_all(&dir.join("samples/psp-privileged-container").join(name))? {
            pods.push(serde_json::to_string(&doc)?);
        }
    }
    let rule = paved_core::rules::find("pss-baseline/privileged").ok_or("no native rule")?;
    let params = paved_core::config::Params::default();
    let nodes: Vec<paved_core::node::Node> =
        pods.iter().map(|p| paved_core::json::parse(p)).collect::<Result<_, _>>().map_err(|e| format!("{e:?}"))?;
    let values: Vec<Value> = pods.iter().map(|p| serde_json::from_str(p)).collect::<Result<_, _>>()?;
    let reviews: Vec<Review> = values.iter().map(Review::of).collect();
    let inventory = Inventory::new(Vec::new());
    let timed = |label: &str, f: &mut dyn FnMut(usize) -> Result<usize, Error>| -> Result<(), Error> {
        let (mut n, mut found) = (0u64, 0usize);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            for i in 0..pods.len() {
                found += f(i)?;
                n += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "privileged containers, {label}: {n} evaluations, {:.0}/s ({:.2} µs each); {found} findings",
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
        Ok(())
    };
    timed("native pss-baseline/privileged", &mut |i| {
        let node = &nodes[i];
        let pod = paved_core::object::PodView::of(node, "Pod");
        let cx = paved_core::eval::Ctx {
            obj: node,
            kind: "Pod",
            pod,
            pss: 33,
            params: &params,
            exemptions: &[],
            images: None,
        };
        let mut out = Vec::new();
        (rule.check)(&cx, &mut out);
        Ok(out.len())
    })?;
    // The CEL variables are built once per object in check and serve; do so here too.
    for r in &reviews {
        r.activation();
        r.input();
    }
    for engine in [Engine::Cel, Engine::Rego] {
        let compiled = Compiled::new(template.clone(), engine)?;
        timed(&format!("{engine:?} template"), &mut |i| {
            Ok(violations_of(&compiled, &constraint, &reviews[i], &inventory)?.len())
        })?;
    }
    Ok(())
}

/// The templates of the library's suites that `keep` keeps, compiled for
/// `engine`, each with its constraint, and the objects of their cases.
type Pairs = Vec<(Compiled, Constraint)>;

fn library(engine: Engine, keep: impl Fn(&Template) -> bool) -> Result<(Pairs, Vec<Value>), Error> {
    let root = paved_corpus::path("gatekeeper-library");
    let mut pairs = Vec::new();
    let mut objects: Vec<Value> = Vec::new();
    for suite in find_suites(&[root]) {
        let dir = suite.parent().ok_or("suite without directory")?.to_owned();
        let doc = read_all(&suite)?.into_iter().next().ok_or("empty suite")?;
        for test in doc.get("tests").and_then(Value::as_array).into_iter().flatten() {
            let file = |k: &str| test.get(k).and_then(Value::as_str).map(|f| dir.join(f));
            let (Some(t), Some(c)) = (file("template"), file("constraint")) else { continue };
            let template = Template::from_json(&read_all(&t)?[0])?;
            if !keep(&template) {
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
    Ok((pairs, objects))
}

fn run(label: &str, engine: Engine, only_cel: bool, seconds: u64) -> Result<(), Error> {
    let (pairs, objects) = library(engine, |t| !only_cel || t.cel.is_some())?;
    let inventory = Inventory::new(Vec::new());
    let mut tally = Tally::default();
    let start = Instant::now();
    // SECONDS 0 is one pass, for counting instructions (callgrind).
    let mut first = true;
    while std::mem::take(&mut first) || start.elapsed() < Duration::from_secs(seconds) {
        for object in &objects {
            judge(object, engine, &pairs, &inventory, &mut tally, &mut |_, _| {})?;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{label}: {} constraints x {} objects: {} pairs in {wall:.2} s; {}",
        pairs.len(),
        objects.len(),
        tally.considered,
        tally.rates()
    );
    Ok(())
}

/// Evaluations counted and timed.
#[derive(Default)]
struct Tally {
    considered: u64,
    evaluations: u64,
    violations: u64,
    time: Duration,
}

impl Tally {
    fn rates(&self) -> String {
        format!(
            "{} evaluations, {:.0}/s ({:.1} µs each); {} violations",
            self.evaluations,
            self.evaluations as f64 / self.time.as_secs_f64(),
            self.time.as_secs_f64() * 1e6 / self.evaluations.max(1) as f64,
            self.violations
        )
    }
}

/// Every constraint that selects `object`, timed; `verdict` hears whether
/// each found a violation. The review is prepared once per object, outside
/// the timing, as check and serve prepare it.
fn judge(
    object: &Value,
    engine: Engine,
    pairs: &Pairs,
    inventory: &Inventory,
    tally: &mut Tally,
    verdict: &mut dyn FnMut(&Constraint, bool),
) -> Result<(), Error> {
    let review = Review::of(object);
    match engine {
        Engine::Rego => _ = review.input(),
        Engine::Cel => _ = review.activation(),
    }
    for (template, constraint) in pairs {
        tally.considered += 1;
        if !review.matches(constraint, inventory) {
            continue;
        }
        let t0 = Instant::now();
        let found = violations_of(template, constraint, &review, inventory)?;
        tally.time += t0.elapsed();
        tally.evaluations += 1;
        tally.violations += found.len() as u64;
        verdict(constraint, !found.is_empty());
    }
    Ok(())
}
