//! Acceptance: every Pod Security Standards fixture of Kubernetes' own
//! conformance suite (`../shared/corpus/pod-security/`, read in place) gives
//! the outcome its README defines, for the pod itself and for the same pod
//! wrapped in a Deployment. One test case per fixture and wrapping; and, as
//! `between/…`, each fixture again at a version that has no fixtures of its
//! own (the next minor, or `latest`), which must use the rules below it.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use paved_core::config::Config;
use paved_core::eval::Engine;
use paved_core::node::{Entry, Map, Node, Span, Value};
use paved_core::profile::Mode;
use paved_yaml::{Item, Limits};

/// The corpus root; fails, saying how to fetch it, when the fixtures are not there.
fn corpus() -> PathBuf {
    paved_corpus::path("pod-security");
    paved_corpus::root()
}

/// The substring a rejection must contain, by fixture prefix (corpus README).
fn expected_substring(check: &str) -> Option<&'static str> {
    Some(match check {
        "allowprivilegeescalation" => "allowPrivilegeEscalation",
        "apparmorprofile" => "forbidden AppArmor profile",
        "capabilities_baseline" => "capabilities",
        "capabilities_restricted" => "unrestricted capabilities",
        "hostnamespaces" => "host namespaces",
        "hostpathvolumes" => "hostPath",
        "hostports" => "hostPort",
        "hostprobesandhostlifecycle" => "probe or lifecycle host",
        "privileged" => "privileged",
        "procmount" | "procmount_restricted" => "procMount",
        "restrictedvolumes" => "restricted volume types",
        "runasnonroot" => "runAsNonRoot",
        "runasuser" => "runAsUser",
        "selinuxoptions" => "seLinuxOptions",
        "seccompprofile_baseline" | "seccompprofile_restricted" => "seccompProfile",
        "sysctls" => "forbidden sysctl",
        "windowshostprocess" => "hostProcess",
        _ => return None,
    })
}

#[derive(Clone)]
struct Fixture {
    path: PathBuf,
    level: String,
    version: String,
    pass: bool,
    check: String,
}

/// The profile version to run a fixture at when checking that a version
/// between two fixture versions uses the rules of the newest one below it:
/// the next minor when no fixtures exist for it, and `latest` for the newest.
fn in_between(f: &Fixture, versions: &[u32]) -> Option<String> {
    let minor: u32 = f.version.strip_prefix("v1.")?.parse().ok()?;
    let newest = *versions.iter().max()?;
    if minor == newest {
        return Some("latest".into());
    }
    let next = minor + 1;
    (!versions.contains(&next)).then(|| format!("v1.{next}"))
}

fn fixtures(root: &Path) -> Vec<Fixture> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root.join("pod-security")).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let parts: Vec<String> = path.iter().rev().take(4).map(|p| p.to_string_lossy().into_owned()).collect();
        let [file, outcome, version, level] = &parts[..] else { continue };
        let check = file.trim_end_matches(".yaml").trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
        out.push(Fixture {
            path: path.to_path_buf(),
            level: level.clone(),
            version: version.clone(),
            pass: outcome == "pass",
            check,
        });
    }
    out
}

fn entry<'a>(key: &'static str, value: Node<'a>) -> Entry<'a> {
    Entry { key: key.into(), key_span: Span::NONE, value }
}

fn map(entries: Vec<Entry<'_>>) -> Node<'_> {
    Node::new(Value::Map(Map { entries }))
}

/// The pod as a Deployment's template, keeping its nodes (and their spans).
fn wrap_in_deployment<'a>(pod: &Node<'a>) -> Node<'a> {
    let mut template = Vec::new();
    if let Some(meta) = pod.get("metadata") {
        template.push(entry("metadata", meta.clone()));
    }
    if let Some(spec) = pod.get("spec") {
        template.push(entry("spec", spec.clone()));
    }
    map(vec![
        entry("apiVersion", Node::new(Value::Str("apps/v1".into()))),
        entry("kind", Node::new(Value::Str("Deployment".into()))),
        entry("metadata", map(vec![entry("name", Node::new(Value::Str("wrapped".into())))])),
        entry("spec", map(vec![entry("template", map(template))])),
    ])
}

fn run_case(f: &Fixture, wrap: bool) -> Result<(), Failed> {
    run_at(f, &f.version, wrap)
}

fn run_at(f: &Fixture, version: &str, wrap: bool) -> Result<(), Failed> {
    let text = std::fs::read_to_string(&f.path).map_err(|e| format!("{}: {e}", f.path.display()))?;
    let items = paved_yaml::load(&text, &Limits::default()).map_err(|e| e.to_string())?;
    let Some(Item::Object(pod)) = items.into_iter().next() else {
        return Err("fixture did not load as an object".into());
    };
    let object = if wrap { wrap_in_deployment(&pod) } else { pod };
    let profile = format!("pss-{}:{}", f.level, version);
    let engine = Engine::new(&Config::default(), Some(&profile), Mode::Enforce).map_err(|e| e.to_string())?;
    let now = "2026-01-01T00:00:00Z".parse().map_err(|e: jiff::Error| e.to_string())?;
    let findings = engine.evaluate(&object, now);
    let outside = findings.iter().find(|f| wrap && !f.path.to_string().starts_with("spec.template."));
    if let Some(f) = outside {
        return Err(format!("finding outside the pod template: {} at {}", f.message, f.path).into());
    }
    let messages: Vec<String> =
        findings.iter().map(|x| format!("[{}] {} at {}", x.policy, x.message, x.path)).collect();
    if f.pass {
        if !findings.is_empty() {
            return Err(format!("{profile}: expected no violation, got:\n  {}", messages.join("\n  ")).into());
        }
        return Ok(());
    }
    let want = expected_substring(&f.check).ok_or_else(|| format!("unknown check prefix {:?}", f.check))?;
    if !findings.iter().any(|x| x.message.contains(want)) {
        return Err(
            format!("{profile}: expected a violation containing {want:?}, got:\n  {}", messages.join("\n  ")).into()
        );
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let root = corpus();
    let all = fixtures(&root);
    let mut trials = Vec::new();
    for f in all.iter().cloned() {
        let rel = f.path.strip_prefix(root.join("pod-security")).unwrap_or(&f.path).display().to_string();
        let f = std::sync::Arc::new(f);
        for wrap in [false, true] {
            let name = format!("{}/{rel}", if wrap { "deployment" } else { "pod" });
            let f = std::sync::Arc::clone(&f);
            trials.push(Trial::test(name, move || run_case(&f, wrap)));
        }
    }
    // The corpus must be there: an empty run would prove nothing.
    let expected = 1286 * 2;
    let found = trials.len();
    // A version between two fixture versions behaves as the one below it.
    for f in all {
        let versions: Vec<u32> = std::fs::read_dir(root.join("pod-security").join(&f.level))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("v1.")?.parse().ok())
            .collect();
        let Some(version) = in_between(&f, &versions) else { continue };
        let rel = f.path.strip_prefix(root.join("pod-security")).unwrap_or(&f.path).display().to_string();
        trials.push(Trial::test(format!("between/{version}/{rel}"), move || run_at(&f, &version, false)));
    }
    eprintln!("pod-security corpus: {} fixtures at {}", found / 2, root.display());
    trials.push(Trial::test("corpus_is_complete", move || {
        if found == expected {
            Ok(())
        } else {
            Err(format!("expected {} fixtures, found {}", expected / 2, found / 2).into())
        }
    }));
    libtest_mimic::run(&args, trials).exit();
}
