//! `paved` as a user runs it: the real binary, real files, every format and exit code.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn paved_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paved"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("paved runs");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    }
    let out = child.wait_with_output().expect("paved exits");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn paved(args: &[&str]) -> Run {
    paved_in(&repo(), args, None)
}

fn json(run: &Run) -> serde_json::Value {
    support::paved_json(&run.stdout)
}

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: nginx:1.27
    securityContext:
      privileged: true
";

#[test]
fn good_examples_pass() {
    let run = paved(&["check", "examples/good"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("0 denied, 0 warnings"), "{}", run.stdout);
}

#[test]
fn bad_examples_fail_with_exact_positions() {
    let run = paved(&["check", "--format", "json", "examples/bad/node-agent.yaml"]);
    assert_eq!(run.code, 1);
    let v = json(&run);
    let privileged = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["policy"] == "pss-baseline/privileged")
        .expect("privileged finding");
    assert_eq!(privileged["action"], "deny");
    assert_eq!((privileged["line"].as_u64(), privileged["column"].as_u64()), (Some(21), Some(11)));
    assert_eq!(privileged["path"], "spec.template.spec.containers[0].securityContext.privileged");
    assert_eq!(privileged["object"]["kind"], "DaemonSet");
    assert!(privileged["message"].as_str().expect("message").len() <= 120 * 4);
}

#[test]
fn text_output_underlines_the_field() {
    let run = paved(&["check", "examples/bad/node-agent.yaml"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("examples/bad/node-agent.yaml:21:11"), "{}", run.stdout);
    assert!(run.stdout.contains("privileged: true"), "snippet missing:\n{}", run.stdout);
    assert!(run.stdout.contains("spec.template.spec.containers[0].securityContext.privileged"));
    assert!(!run.stdout.contains('\x1b'), "no colour when not on a terminal");
}

#[test]
fn warnings_fail_only_with_fail_on_warn() {
    let run = paved(&["check", "examples/bad/sloppy-pod.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let run = paved(&["check", "--fail-on", "warn", "examples/bad/sloppy-pod.yaml"]);
    assert_eq!(run.code, 1);
}

#[test]
fn stdin_is_checked() {
    let run = paved_in(&repo(), &["check", "--format", "json", "-"], Some(PRIVILEGED_POD.as_bytes()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(v["findings"][0]["file"], "<stdin>");
}

#[test]
fn helm_templates_are_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("svc.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n",
    )
    .expect("write");
    let run = paved_in(dir.path(), &["check", "."], None);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("svc.yaml:4:1"), "{}", run.stdout);
    assert!(run.stdout.contains("helm template"), "{}", run.stdout);
}

#[test]
fn bad_input_is_reported_and_the_rest_still_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mixed = format!("apiVersion: v1\nkind: [broken\n---\n{PRIVILEGED_POD}");
    std::fs::write(dir.path().join("a-mixed.yaml"), mixed).expect("write");
    std::fs::write(dir.path().join("b-binary.yaml"), b"\x00\x01\x02garbage").expect("write");
    std::fs::write(dir.path().join("c-latin1.yaml"), b"apiVersion: v1\nkind: ConfigMap\ndata: {a: caf\xe9}\n")
        .expect("write");
    std::fs::write(dir.path().join("d-pod.yaml"), PRIVILEGED_POD).expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").expect("write");
    let run = paved_in(dir.path(), &["check", "--format", "json", ".", "missing.yaml"], None);
    assert_eq!(run.code, 2, "bad input wins over findings");
    let v = json(&run);
    let errors = v["errors"].as_array().expect("errors");
    let messages: Vec<String> =
        errors.iter().map(|e| format!("{} {} {}", e["file"], e["line"], e["message"])).collect();
    assert_eq!(errors.len(), 4, "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("a-mixed.yaml") && m.contains(" 2 ")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("b-binary.yaml") && m.contains("binary")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("c-latin1.yaml") && m.contains("UTF-8")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("missing.yaml")), "{messages:#?}");
    // both privileged pods were still checked, the one after the broken document too
    let privileged =
        v["findings"].as_array().expect("findings").iter().filter(|f| f["policy"] == "pss-baseline/privileged");
    assert_eq!(privileged.count(), 2);
}

#[test]
fn sarif_is_valid_against_the_2_1_0_schema() {
    let run = paved(&["check", "--format", "sarif", "examples"]);
    assert_eq!(run.code, 1);
    let log = json(&run);
    let validator = support::sarif_validator();
    let errors = support::sarif_errors(&validator, &log);
    assert!(errors.is_empty(), "{errors:#?}");
    // the validator is live: a level outside the enum is caught
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert!(results.iter().any(|r| r["ruleId"] == "pss-baseline/privileged" && r["level"] == "error"));
    assert!(results.iter().any(|r| r["suppressions"][0]["kind"] == "inSource"), "exempted findings are suppressed");
    let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(rules.iter().all(|r| r["help"]["text"].as_str().is_some_and(|t| t.contains("Fix:"))));
    assert!(rules.iter().all(|r| r["help"]["markdown"].as_str().is_some_and(|t| t.contains("**How to fix.**"))));
}

/// Documentation links go to a page the project publishes, at an anchor
/// that page has, unless the configuration's `docs-url` names another page
/// (or, empty, none): never a placeholder address.
#[test]
fn documentation_links_resolve_or_are_left_out() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policies.md")).unwrap();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pod.yaml"), PRIVILEGED_POD).expect("write");
    let help_uris = |config: Option<&str>| -> Vec<String> {
        match config {
            Some(text) => std::fs::write(dir.path().join(".paved.yaml"), text).expect("write"),
            None => {
                let _ = std::fs::remove_file(dir.path().join(".paved.yaml"));
            }
        }
        let run = paved_in(dir.path(), &["check", "--format", "sarif", "pod.yaml"], None);
        let log = json(&run);
        let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().expect("rules").clone();
        rules.iter().filter_map(|r| r["helpUri"].as_str().map(str::to_owned)).collect()
    };
    let default = help_uris(None);
    assert!(!default.is_empty());
    for uri in &default {
        let (page, anchor) = uri.split_once('#').expect("an anchor");
        assert_eq!(page, "https://github.com/paved-dev/paved/blob/main/docs/policies.md");
        assert!(docs.contains(&format!("<a id=\"{anchor}\"></a>")), "docs/policies.md has no anchor {anchor}");
    }
    let own = help_uris(Some("docs-url: https://wiki.example.com/paved\n"));
    assert!(own.iter().all(|u| u.starts_with("https://wiki.example.com/paved#")), "{own:?}");
    assert!(help_uris(Some("docs-url: ''\n")).is_empty());
}

/// The (object, policy) pairs of a check's JSON findings that fail a run:
/// Deny, and Warn with `--fail-on warn`; exempted ones never.
fn failing_pairs(dir: &str, fail_on_warn: bool) -> std::collections::BTreeSet<String> {
    let run = paved(&["check", "--format", "json", dir]);
    let doc = json(&run);
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["exempted"].is_null() && (f["action"] == "deny" || (fail_on_warn && f["action"] == "warn")))
        .map(|f| format!("{}|{}|{}|{}", f["file"], f["object"]["kind"], f["object"]["name"], f["policy"]))
        .collect()
}

#[test]
fn junit_is_well_formed_and_counts_as_the_findings() {
    for (fail_on_warn, args) in [(false, vec![]), (true, vec!["--fail-on", "warn"])] {
        let mut all = vec!["check", "--format", "junit", "examples"];
        all.extend(args);
        let run = paved(&all);
        assert_eq!(run.code, 1);
        let doc = roxmltree::Document::parse(&run.stdout).expect("well-formed XML");
        let suites: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testsuite")).collect();
        assert!(suites.len() >= 6);
        let mut failures = 0;
        for suite in &suites {
            let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
            let count = |tag: &str| cases.iter().filter(|c| c.children().any(|n| n.has_tag_name(tag))).count();
            let attribute = |name: &str| suite.attribute(name).and_then(|v| v.parse::<usize>().ok()).expect(name);
            // What a suite says of itself is what it holds.
            assert_eq!(attribute("tests"), cases.len());
            assert_eq!(attribute("failures"), count("failure"));
            assert_eq!(attribute("errors"), count("error"));
            assert_eq!(attribute("skipped"), count("skipped"));
            for case in &cases {
                let failed = case.children().filter(|n| n.has_tag_name("failure")).count();
                assert!(failed <= 1, "one failure a case, which every reader counts alike");
            }
            failures += count("failure");
        }
        assert_eq!(failures, failing_pairs("examples", fail_on_warn).len(), "fail on warn: {fail_on_warn}");
    }
}

/// Two independent JUnit readers (Python's junitparser and xunitparser)
/// count the same tests, failures, errors and skips, and as many failures
/// as the findings that fail the run.
#[test]
#[ignore = "needs Python's junitparser and xunitparser; .ci/run installs them and runs the ignored tests"]
fn junit_readers_count_alike() {
    let python = std::env::var("PAVED_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().expect("tempdir");
    for (fail_on_warn, extra) in [(false, None), (true, Some("warn"))] {
        let mut args = vec!["check", "--format", "junit", "examples"];
        if let Some(level) = extra {
            args.extend(["--fail-on", level]);
        }
        let report = dir.path().join("report.xml");
        std::fs::write(&report, paved(&args).stdout).expect("write");
        let script = r#"
import sys, junitparser, xunitparser
xml = junitparser.JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, junitparser.TestSuite) else list(xml)
a = [sum(s.tests for s in suites), sum(s.failures for s in suites), sum(s.errors for s in suites), sum(s.skipped for s in suites)]
with open(sys.argv[1]) as f:
    _, result = xunitparser.parse(f)
b = [result.testsRun, len(result.failures), len(result.errors), len(result.skipped)]
print(" ".join(map(str, a)), "|", " ".join(map(str, b)))
"#;
        let out = Command::new(&python).args(["-c", script, report.to_str().unwrap()]).output().expect("python runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let (junitparser, xunitparser) = text.trim().split_once(" | ").expect("two readings");
        assert_eq!(junitparser, xunitparser, "the readers disagree");
        let failures: usize = junitparser.split(' ').nth(1).and_then(|n| n.parse().ok()).expect("a count");
        assert_eq!(failures, failing_pairs("examples", fail_on_warn).len(), "fail on warn: {fail_on_warn}");
    }
}

#[test]
fn github_annotations() {
    let run = paved(&["check", "--format", "github", "examples/bad/public-db.yaml"]);
    assert_eq!(run.code, 1);
    let first = run.stdout.lines().find(|l| l.starts_with("::error ")).expect("an error annotation");
    assert!(first.starts_with("::error file=examples/bad/public-db.yaml,line="), "{first}");
    assert!(first.contains("title=best-practices/"), "{first}");
    // Columns only where the annotation stays on one line, as the runner reads them.
    let property = |line: &str, key: &str| -> Option<u32> {
        let props = line.split("::").nth(1)?;
        props.split(',').find_map(|p| p.strip_prefix(&format!("{key}="))?.parse().ok())
    };
    let agent = paved(&["check", "--format", "github", "examples/bad/node-agent.yaml"]);
    let annotations: Vec<&str> =
        run.stdout.lines().chain(agent.stdout.lines()).filter(|l| l.starts_with("::")).collect();
    let (mut one_line, mut several) = (0, 0);
    for a in &annotations {
        let (Some(line), Some(end)) = (property(a, "line"), property(a, "endLine")) else { continue };
        if line == end {
            one_line += 1;
            assert!(property(a, "col").is_some() && property(a, "endColumn").is_some(), "{a}");
        } else {
            several += 1;
            assert!(property(a, "col").is_none() && property(a, "endColumn").is_none(), "{a}");
        }
    }
    assert!(one_line > 0 && several > 0, "both kinds are covered: {annotations:#?}");
}

#[test]
fn configuration_is_found_upwards_and_overrides_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("deploy/prod");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::write(
        dir.path().join(".paved.yaml"),
        "profile: pss-baseline\npolicies:\n  pss-baseline/privileged: warn\n",
    )
    .expect("write");
    std::fs::write(nested.join("pod.yaml"), PRIVILEGED_POD).expect("write");
    let run = paved_in(&nested, &["check", "--format", "json", "."], None);
    assert_eq!(run.code, 0, "privileged is only a warning now: {}", run.stdout);
    assert_eq!(json(&run)["findings"][0]["action"], "warn");
    // the command line wins over the configuration's profile
    let run = paved_in(&nested, &["check", "--profile", "best-practices", "--format", "json", "."], None);
    // ... and an explicit override switches its policy on even outside the profile
    let v = json(&run);
    let findings = v["findings"].as_array().expect("findings");
    assert!(findings.iter().any(|f| f["policy"] == "pss-baseline/privileged" && f["action"] == "warn"));
    assert!(findings.iter().any(|f| f["policy"] == "best-practices/require-resources" && f["action"] == "deny"));
    assert!(!findings.iter().any(|f| f["policy"].as_str().is_some_and(|p| p.starts_with("pss-restricted/"))));
}

#[test]
fn bad_configuration_exits_2_and_points_at_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".paved.yaml"), "profile: paved-road\npolices:\n  x: off\n").expect("write");
    let run = paved_in(dir.path(), &["check", "."], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains(".paved.yaml") && run.stderr.contains("polices"), "{}", run.stderr);
    std::fs::write(dir.path().join(".paved.yaml"), "policies:\n  pss-restriced/*: off\n").expect("write");
    let run = paved_in(dir.path(), &["check", "."], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("matches no policy"), "{}", run.stderr);
}

#[test]
fn pinned_pss_versions_apply_their_own_rules() {
    // runAsUser=0 is forbidden from v1.23 on
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 0\n    seccompProfile: {type: RuntimeDefault}\n  containers:\n  - name: c\n    image: nginx:1\n    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities: {drop: [ALL]}\n";
    let old = paved_in(&repo(), &["check", "--profile", "pss-restricted:v1.22", "-"], Some(pod.as_bytes()));
    assert_eq!(old.code, 0, "{}", old.stdout);
    let new = paved_in(&repo(), &["check", "--profile", "pss-restricted:v1.23", "-"], Some(pod.as_bytes()));
    assert_eq!(new.code, 1);
    assert!(new.stdout.contains("runAsUser=0"));
}

#[test]
fn exemptions_are_listed_and_expired_ones_do_not_count() {
    let run = paved(&["check", "--format", "json", "examples/exempted"]);
    assert_eq!(run.code, 0);
    let v = json(&run);
    assert!(v["summary"]["exempted"].as_u64().is_some_and(|n| n > 0));
    assert!(v["findings"].as_array().expect("findings").iter().all(|f| f["exempted"]["reason"].is_string()));

    let expired = PRIVILEGED_POD.replace(
        "  name: p\n",
        "  name: p\n  annotations:\n    paved.dev/exempt: pss-baseline/privileged\n    paved.dev/exempt-reason: INC-7\n    paved.dev/exempt-until: \"2020-01-31\"\n",
    );
    let run = paved_in(&repo(), &["check", "--format", "json", "-"], Some(expired.as_bytes()));
    assert_eq!(run.code, 1, "an expired exemption no longer exempts");
    let v = json(&run);
    let policies: Vec<&str> =
        v["findings"].as_array().expect("findings").iter().filter_map(|f| f["policy"].as_str()).collect();
    assert!(policies.contains(&"paved/exemption-expired"), "{policies:?}");
    assert!(policies.contains(&"pss-baseline/privileged"));

    let no_reason = PRIVILEGED_POD
        .replace("  name: p\n", "  name: p\n  annotations:\n    paved.dev/exempt: pss-baseline/privileged\n");
    let run = paved_in(&repo(), &["check", "--format", "json", "-"], Some(no_reason.as_bytes()));
    assert_eq!(run.code, 1, "an exemption without a reason is not honoured");
    assert!(run.stdout.contains("paved/exemption-invalid"));
}

#[test]
fn policies_and_explain() {
    let run = paved(&["policies"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("profile: paved-road:latest"));
    assert!(run.stdout.lines().any(|l| l.starts_with("pss-baseline/privileged") && l.contains("deny")));
    assert!(run.stdout.lines().any(|l| l.starts_with("pss-restricted/run-as-non-root") && l.contains("warn")));
    let run = paved(&["explain", "pss-restricted/run-as-non-root"]);
    assert_eq!(run.code, 0);
    for section in ["What it checks", "Why", "How to fix", "How to get an exception", "paved.dev/exempt-reason"] {
        assert!(run.stdout.contains(section), "missing {section}:\n{}", run.stdout);
    }
    let run = paved(&["explain", "no/such-policy"]);
    assert_eq!(run.code, 2);
}

#[test]
fn lists_and_json_files_are_checked() {
    let list = format!(
        "{{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{}]}}",
        serde_json::to_string(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"hostIPC": true, "containers": [{"name": "c", "image": "nginx:1"}]}
        }))
        .expect("json")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("list.json"), list).expect("write");
    let run = paved_in(dir.path(), &["check", "--format", "json", "."], None);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("host namespaces"));
}

#[test]
fn documents_that_are_not_objects_are_noted_with_verbose() {
    let text = format!("just: data\n---\n{PRIVILEGED_POD}");
    let quiet = paved_in(&repo(), &["check", "-"], Some(text.as_bytes()));
    assert!(!quiet.stdout.contains("skipped"), "{}", quiet.stdout);
    let verbose = paved_in(&repo(), &["check", "-v", "-"], Some(text.as_bytes()));
    assert!(verbose.stdout.contains("<stdin>:1:1: skipped: no apiVersion or kind"), "{}", verbose.stdout);
    assert_eq!(verbose.code, 1, "the pod after it is still checked");
}

#[test]
fn colour_is_opt_in_off_a_terminal() {
    let plain = paved_in(&repo(), &["check", "-"], Some(PRIVILEGED_POD.as_bytes()));
    assert!(!plain.stdout.contains('\x1b'));
    let coloured = paved_in(&repo(), &["check", "--color", "always", "-"], Some(PRIVILEGED_POD.as_bytes()));
    assert!(coloured.stdout.contains("\x1b[1;31merror\x1b[0m"), "{}", coloured.stdout);
}

#[test]
fn hostile_yaml_is_refused_and_the_rest_still_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut laughs =
        String::from("apiVersion: v1\nkind: ConfigMap\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        laughs
            .push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    std::fs::write(dir.path().join("a-laughs.yaml"), laughs).expect("write");
    let deep = format!("apiVersion: v1\nkind: ConfigMap\ndata: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(dir.path().join("b-deep.yaml"), deep).expect("write");
    std::fs::write(dir.path().join("c-pod.yaml"), PRIVILEGED_POD).expect("write");
    let run = paved_in(dir.path(), &["check", "--format", "json", "."], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let v = json(&run);
    let messages: Vec<String> =
        v["errors"].as_array().expect("errors").iter().map(|e| e["message"].to_string()).collect();
    assert!(messages.iter().any(|m| m.contains("alias expansion")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("nesting")), "{messages:?}");
    assert!(v["findings"].as_array().expect("findings").iter().any(|f| f["policy"] == "pss-baseline/privileged"));
}

#[test]
fn symlinked_files_and_directories_are_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real");
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&real).expect("mkdir");
    std::fs::create_dir_all(&scan).expect("mkdir");
    std::fs::write(real.join("pod.yaml"), PRIVILEGED_POD).expect("write");
    std::os::unix::fs::symlink(real.join("pod.yaml"), scan.join("linked.yaml")).expect("symlink");
    std::os::unix::fs::symlink(&real, scan.join("linked-dir")).expect("symlink");
    std::os::unix::fs::symlink(&scan, scan.join("loop")).expect("symlink");
    let run = paved_in(dir.path(), &["check", "--format", "json", "scan"], None);
    let v = json(&run);
    let files: Vec<&str> =
        v["findings"].as_array().expect("findings").iter().filter_map(|f| f["file"].as_str()).collect();
    assert!(files.iter().any(|f| f.ends_with("linked.yaml")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("linked-dir/pod.yaml")), "{files:?}");
    // the loop is reported, not followed forever
    assert_eq!(run.code, 2);
    assert!(v["errors"].to_string().contains("loop"), "{}", v["errors"]);
}

#[test]
fn every_third_party_manifest_loads() {
    // Real YAML nobody on this project wrote: Gatekeeper templates (Rego in
    // block scalars, quoted continuations), suites, Kubernetes' own fixtures.
    let corpus = paved_corpus::path("");
    let run = paved_in(&repo(), &["check", "--format", "json", corpus.to_str().expect("path")], None);
    let v = json(&run);
    assert_eq!(v["errors"], serde_json::json!([]), "{}", v["errors"]);
    assert!(v["summary"]["objects"].as_u64().is_some_and(|n| n > 1500));
}

#[test]
fn images_lists_the_examples_images_with_pinning_and_registries() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".paved.yaml"), "params:\n  allowed-registries: [registry.example.com]\n").unwrap();
    let examples = repo().join("examples");
    let run = paved_in(dir.path(), &["images", "--format", "json", examples.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let images = json(&run)["images"].as_array().cloned().unwrap_or_default();
    let web = images.iter().find(|i| i["repository"] == "shop/web").unwrap_or_else(|| panic!("{images:?}"));
    assert_eq!((web["pinned"].as_bool(), web["allowed"].as_bool()), (Some(true), Some(true)));
    assert_eq!(web["usedBy"][0]["workload"], "Deployment/web");
    let busybox = images.iter().find(|i| i["image"] == "busybox").unwrap();
    assert_eq!((busybox["pinned"].as_bool(), busybox["allowed"].as_bool()), (Some(false), Some(false)));
    let csv = paved_in(dir.path(), &["images", "--format", "csv", examples.to_str().unwrap()], None);
    assert!(
        csv.stdout
            .starts_with("image,registry,repository,tag,digest,pinned,allowed,running,namespace,workload,container\n")
    );
    assert_eq!(
        csv.stdout.lines().count(),
        1 + images.iter().map(|i| i["usedBy"].as_array().map_or(0, Vec::len)).sum::<usize>()
    );
    // Bad input is reported with its file, and the rest is still listed.
    std::fs::write(dir.path().join("broken.yaml"), "kind: [\n").unwrap();
    let run = paved_in(dir.path(), &["images", "--format", "json", examples.to_str().unwrap(), "broken.yaml"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("broken.yaml"), "{}", run.stderr);
    assert!(!json(&run)["images"].as_array().unwrap().is_empty());
    // check refuses csv, naming what it writes.
    let run = paved_in(dir.path(), &["check", "--format", "csv", examples.to_str().unwrap()], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("[possible values: text, json, sarif, junit, github]"), "{}", run.stderr);
}

/// An `--inventory` that is not there, or does not parse, is an error naming
/// it (exit 2): policies silently without the objects they read would judge
/// differently.
#[test]
fn an_unreadable_inventory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pod.yaml"), PRIVILEGED_POD).expect("write");
    let run = paved_in(dir.path(), &["check", "--inventory", "nowhere.yaml", "pod.yaml"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--inventory nowhere.yaml"), "{}", run.stderr);
    std::fs::write(dir.path().join("broken.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n")
        .expect("write");
    let run = paved_in(dir.path(), &["check", "--inventory", "broken.yaml", "pod.yaml"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--inventory broken.yaml:3:"), "the line and column: {}", run.stderr);
    std::fs::write(dir.path().join("fine.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
        .expect("write");
    let run = paved_in(dir.path(), &["check", "--inventory", "fine.yaml", "pod.yaml"], None);
    assert_eq!(run.code, 1, "judged as usual: {}", run.stderr);
}

/// A broken `.paved.yaml` in the working directory does not stop the
/// commands that do not use it (`config view` reads kubeconfig files), while
/// those that do say where it breaks.
#[test]
fn a_broken_configuration_stops_only_the_commands_that_read_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".paved.yaml"), "profile: [\n").expect("write");
    std::fs::write(dir.path().join("kubeconfig"), "apiVersion: v1\nkind: Config\ncurrent-context: a\n").expect("write");
    let view = paved_in(dir.path(), &["config", "view", "--kubeconfig", "kubeconfig"], None);
    assert_eq!(view.code, 0, "{}", view.stderr);
    assert!(view.stdout.contains("\"current-context\": \"a\""), "{}", view.stdout);
    let check = paved_in(dir.path(), &["check", "-"], Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"));
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert!(check.stderr.contains(".paved.yaml"), "{}", check.stderr);
}

/// Each command's `--format` takes only what it writes: clap refuses the
/// rest (exit 2) and `--help` lists only those.
#[test]
fn each_command_takes_only_the_formats_it_writes() {
    for (args, refused) in [
        (&["policies", "--format", "sarif"][..], "sarif"),
        (&["audit", "--format", "junit"][..], "junit"),
        (&["images", "--format", "sarif", "examples"][..], "sarif"),
        (&["check", "--format", "csv", "examples"][..], "csv"),
        (&["test", "--format", "github", "."][..], "github"),
        (&["install", "--format", "json"][..], "--format"),
        // Options of other commands: image flags where no image is read, policies where none run.
        (&["install", "--pull-secret", "/nonexistent"][..], "--pull-secret"),
        (&["install", "--platform", "foo/bar"][..], "--platform"),
        (&["policies", "--offline"][..], "--offline"),
        (&["images", "--policy", "p.yaml"][..], "--policy"),
        (&["uninstall", "--config", "c.yaml"][..], "--config"),
        (&["config", "view", "--profile", "x"][..], "--profile"),
        (&["--profile", "pss-baseline", "check", "examples"][..], "--profile"),
    ] {
        let run = paved(args);
        assert_eq!(run.code, 2, "{args:?} must be refused: {}", run.stdout);
        assert!(run.stderr.contains(refused), "{args:?}: {}", run.stderr);
    }
    let help = paved(&["audit", "--help"]);
    assert!(help.stdout.contains("[possible values: text, json, sarif]"), "{}", help.stdout);
}

/// `--namespace` (`-n`) means one thing, as in kubectl: the namespace the
/// command acts in. The webhook's own namespace is another flag.
#[test]
fn namespace_always_names_the_namespace_a_command_acts_in() {
    for command in ["audit", "images", "install", "uninstall"] {
        let help = paved(&[command, "--help"]);
        assert!(help.stdout.contains("-n, --namespace <NAME>"), "{command}: {}", help.stdout);
    }
    let serve = paved(&["serve", "--namespace", "x"]);
    assert_eq!(serve.code, 2, "{}", serve.stderr);
    assert!(serve.stderr.contains("--own-namespace"), "{}", serve.stderr);
    let install = paved(&["install", "-n", "guard"]);
    assert_eq!(install.code, 0, "{}", install.stderr);
    assert!(install.stdout.contains("name: guard\n"), "installs into the namespace -n names");
}

/// Completions and manual pages come from the parser's own definitions: every
/// command is there, with the options it takes and not those it refuses.
#[test]
fn completions_and_man_pages_follow_the_parser() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = paved(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        // fish writes options as `-l inventory`, the others as `--inventory`.
        for word in ["check", "audit", "install", "inventory", "fail-on"] {
            assert!(run.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let fish = paved(&["completions", "fish"]).stdout;
    let install: Vec<&str> = fish.lines().filter(|l| l.contains("__fish_paved_using_subcommand install\"")).collect();
    assert!(install.iter().any(|l| l.contains("-l apply")), "{install:#?}");
    assert!(!install.iter().any(|l| l.contains("-l pull-secret")), "install takes no image flags: {install:#?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let run = paved(&["man", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let check = std::fs::read_to_string(dir.path().join("paved-check.1")).expect("a page for check");
    assert!(check.contains(".TH paved-check 1") && check.contains("fail\\-on"), "{check}");
    for command in ["paved", "paved-audit", "paved-serve", "paved-install", "paved-test", "paved-lsp"] {
        assert!(dir.path().join(format!("{command}.1")).is_file(), "{command}.1");
    }
}

/// A pull secret or registry CA that cannot be read is an error naming it,
/// even on a run that reads no image.
#[test]
fn unreadable_registry_files_are_errors_even_when_no_image_is_read() {
    for flag in ["--pull-secret", "--registry-ca"] {
        let run = paved(&["check", flag, "/nonexistent/secret.yaml", "examples"]);
        assert_eq!(run.code, 2, "{flag}: {}", run.stdout);
        assert!(run.stderr.contains(&format!("{flag} /nonexistent/secret.yaml")), "{}", run.stderr);
    }
}

#[test]
fn json_columns_count_code_points_as_the_schema_says() {
    // Multi-byte text before the finding on its line: "é" is two bytes, "✓" three.
    let line = r#"  containers: [{name: "é✓é", image: nginx, securityContext: {privileged: true}}]"#;
    let pod = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{line}\n");
    let run = paved_in(&repo(), &["check", "--format", "json", "-"], Some(pod.as_bytes()));
    let v = json(&run);
    let finding = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["policy"] == "pss-baseline/privileged")
        .unwrap_or_else(|| panic!("no privileged finding: {v}"));
    let byte_at = line.find("privileged").expect("in the line");
    let code_points = line[..byte_at].chars().count() as u64 + 1;
    assert_ne!(code_points, byte_at as u64 + 1, "the line must have multi-byte text before the field");
    assert_eq!((finding["line"].as_u64(), finding["column"].as_u64()), (Some(6), Some(code_points)), "{finding}");
    let schema = std::fs::read_to_string(support::schema_dir().join("finding.schema.json")).expect("schema");
    assert!(schema.contains("Unicode code points"), "the schema says what a column counts");
}

#[test]
fn every_schema_is_valid_json_schema_and_versioned_as_the_outputs_are() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(support::schema_dir()).expect("docs/schemas") {
        let path = entry.expect("entry").path();
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("schema is JSON");
        assert!(jsonschema::meta::is_valid(&schema), "{} is not a valid JSON Schema", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").trim_end_matches(".schema.json").to_owned();
        assert_eq!(
            schema["$id"].as_str().map(|id| id.ends_with(&format!("/docs/schemas/{name}.schema.json"))),
            Some(true),
            "{name}: its $id names where it is published"
        );
        if name != "finding" {
            assert_eq!(schema["properties"]["schemaVersion"]["const"], 1, "{name}");
            support::paved_schema(&name);
        }
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["audit", "check", "finding", "images", "policies", "test"]);
    let run = paved(&["policies", "--format", "json"]);
    assert_eq!(json(&run)["schemaVersion"], 1);
}

/// The paved road's defaults are listed, on or off, and explained, as the
/// rules are: a default is in your face, and deliberate to turn off.
#[test]
fn policies_lists_the_defaults_and_explain_says_how_to_turn_one_off() {
    let listed = json(&paved(&["policies", "--format", "json"]));
    let defaults = listed["defaults"].as_array().unwrap();
    assert_eq!(defaults.len(), 4, "{listed}");
    assert!(defaults.iter().all(|d| d["on"] == true), "{defaults:?}");
    let other = json(&paved(&["policies", "--format", "json", "--profile", "pss-restricted"]));
    assert!(other["defaults"].as_array().unwrap().iter().all(|d| d["on"] == false), "only the paved road sets them");
    let text = paved(&["policies"]);
    assert!(
        text.stdout.lines().any(|l| l.starts_with("paved-road/default-seccomp") && l.contains(" on ")),
        "{}",
        text.stdout
    );
    let explained = paved(&["explain", "paved-road/default-drop-capabilities"]);
    assert_eq!(explained.code, 0, "{}", explained.stderr);
    assert!(
        explained.stdout.contains("`policies: {\"paved-road/default-drop-capabilities\": off}`"),
        "{}",
        explained.stdout
    );
}
