//! paved's own test format, for native rules, ValidatingAdmissionPolicies and
//! Gatekeeper constraints alike: objects, and the findings expected of them.
//!
//! ```yaml
//! apiVersion: paved.dev/v1alpha1
//! kind: PolicyTest
//! profile: restricted            # optional; the configuration's otherwise
//! policies: [policies/]          # optional; VAP or Gatekeeper files, relative to this file
//! engine: cel                    # optional; for templates with both codes
//! cases:
//! - name: a big deployment is denied
//!   object: big.yaml             # every object of the file, relative to this file
//!   expect:
//!   - policy: vap/max-replicas/* # a glob
//!     action: deny               # optional
//!     message: at most [0-9]+    # optional, a regex
//!     count: 1                   # optional; at least one otherwise
//!   absent: [pss-baseline/*]     # optional: globs that must find nothing
//! ```
//!
//! Exempted findings count as absent: a test states what the user would see.

use std::path::{Path, PathBuf};

use paved_core::config::Config;
use paved_core::eval::Engine;
use paved_core::profile::Mode;
use serde_json::Value;

/// Files holding tests in this format.
pub fn is_test_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n == "paved-test.yaml" || n.ends_with(".paved-test.yaml"))
}

/// One case's outcome: `None` when it passed.
pub struct CaseOutcome {
    pub test: String,
    pub case: String,
    pub failure: Option<String>,
}

/// A finding as a test sees it.
struct Seen {
    policy: String,
    action: String,
    message: String,
}

/// Runs every case of one test file; an unusable file is an error.
pub fn run_file(
    path: &Path,
    config: &Config,
    engine_choice: Option<paved_gatekeeper::template::Engine>,
) -> Result<Vec<CaseOutcome>, String> {
    let docs = paved_gatekeeper::suite::read_all(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut outcomes = Vec::new();
    for doc in docs {
        if doc.get("kind").and_then(Value::as_str) != Some("PolicyTest") {
            return Err(format!("{}: kind must be PolicyTest", path.display()));
        }
        let test = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let engine = engine_for(&doc, dir, config, engine_choice).map_err(|e| format!("{}: {e}", path.display()))?;
        for case in doc.get("cases").and_then(Value::as_array).into_iter().flatten() {
            let name = case.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
            let failure = run_case(case, dir, &engine).err();
            outcomes.push(CaseOutcome { test: test.clone(), case: name, failure });
        }
    }
    Ok(outcomes)
}

fn engine_for(
    doc: &Value,
    dir: &Path,
    config: &Config,
    engine_choice: Option<paved_gatekeeper::template::Engine>,
) -> Result<Engine, String> {
    let profile = doc.get("profile").and_then(Value::as_str);
    let engine = Engine::new(config, profile, Mode::Enforce).map_err(|e| e.to_string())?;
    let paths: Vec<PathBuf> = doc
        .get("policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|p| dir.join(p))
        .collect();
    if paths.is_empty() {
        return Ok(engine);
    }
    let choice = match doc.get("engine").and_then(Value::as_str) {
        Some(e) => e.parse()?,
        None => engine_choice.unwrap_or(config.policy_engine.into()),
    };
    let (policies, problems) = paved_gatekeeper::policies::load(&paths, choice);
    if let Some(p) = problems.first() {
        return Err(format!("policy {p}"));
    }
    Ok(engine.with_foreign(policies.into_foreign()))
}

fn glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::Glob::new(pattern).map(|g| g.compile_matcher()).map_err(|e| format!("policy pattern {pattern:?}: {e}"))
}

fn run_case(case: &Value, dir: &Path, engine: &Engine) -> Result<(), String> {
    let file = case.get("object").and_then(Value::as_str).ok_or("the case names no object file")?;
    let input = crate::check::Input::File(dir.join(file));
    let limits = paved_yaml::Limits::default();
    let (_, bytes) = crate::check::read_input(&input, &limits).map_err(|r| format!("{file}: {:?}", r.problems))?;
    let mut report = crate::check::FileReport::empty(file.to_owned());
    let now = paved_core::Timestamp::now();
    let mut seen = Vec::new();
    crate::check::load_each(&mut report, &bytes, &limits, |node| {
        for f in engine.evaluate(node, now).into_iter().filter(|f| f.exempted.is_none()) {
            seen.push(Seen {
                policy: f.policy.into_owned(),
                action: format!("{:?}", f.action).to_lowercase(),
                message: f.message,
            });
        }
    });
    if let Some(problem) = report.problems.first() {
        return Err(format!("{file}: {}", problem.message));
    }
    for expected in case.get("expect").and_then(Value::as_array).into_iter().flatten() {
        let policy = expected.get("policy").and_then(Value::as_str).ok_or("an expectation names no policy")?;
        let matcher = glob(policy)?;
        let action = expected.get("action").and_then(Value::as_str);
        let message = expected.get("message").and_then(Value::as_str);
        let re = message.map(regex::Regex::new).transpose().map_err(|e| format!("message regex: {e}"))?;
        let count =
            expected.get("count").map(|c| c.as_u64().ok_or(format!("count {c} is not a number"))).transpose()?;
        let matching = seen
            .iter()
            .filter(|s| matcher.is_match(&s.policy))
            .filter(|s| action.is_none_or(|a| a.eq_ignore_ascii_case(&s.action)))
            .filter(|s| re.as_ref().is_none_or(|re| re.is_match(&s.message)))
            .count() as u64;
        let ok = match count {
            Some(n) => matching == n,
            None => matching > 0,
        };
        if !ok {
            let wanted = count.map_or_else(|| "at least one finding".to_owned(), |n| format!("{n} findings"));
            let got: Vec<String> = seen.iter().map(|s| format!("{} ({}): {}", s.policy, s.action, s.message)).collect();
            return Err(format!(
                "expected {wanted} of {policy}{}{}, got {matching}; all findings: {got:?}",
                action.map(|a| format!(" with action {a}")).unwrap_or_default(),
                message.map(|m| format!(" matching /{m}/")).unwrap_or_default(),
            ));
        }
    }
    for pattern in case.get("absent").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let matcher = glob(pattern)?;
        let found: Vec<String> = seen
            .iter()
            .filter(|s| matcher.is_match(&s.policy))
            .map(|s| format!("{}: {}", s.policy, s.message))
            .collect();
        if !found.is_empty() {
            return Err(format!("expected nothing from {pattern}, got {found:?}"));
        }
    }
    Ok(())
}
