//! `paved test` on Gatekeeper suites: the public library passes in place, and
//! a wrong expectation fails with its reason and exit 1.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

fn paved_test(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paved")).arg("test").args(args).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_gatekeeper_library_passes_in_place() {
    let library = paved_corpus::path("gatekeeper-library");
    let (code, stdout, stderr) = paved_test(Path::new("."), &["--format", "json", library.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let doc = support::paved_json(&stdout);
    assert!(doc["suites"].as_u64().unwrap() >= 30);
    assert!(doc["passed"].as_u64().unwrap() >= 150);
    assert_eq!(doc["failed"], 0);
}

#[test]
fn a_wrong_expectation_fails_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let library = paved_corpus::path("gatekeeper-library/general/requiredlabels");
    let template = library.join("template.yaml");
    let constraint = library.join("samples/all-must-have-owner/constraint.yaml");
    let allowed = library.join("samples/all-must-have-owner/example_allowed.yaml");
    let disallowed = library.join("samples/all-must-have-owner/example_disallowed.yaml");
    std::fs::write(
        dir.path().join("suite.yaml"),
        format!(
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: owner\n  template: {}\n  constraint: {}\n  cases:\n  - name: right\n    object: {}\n    assertions:\n    - violations: no\n  - name: wrong\n    object: {}\n    assertions:\n    - violations: 0\n",
            template.display(),
            constraint.display(),
            allowed.display(),
            disallowed.display()
        ),
    )
    .unwrap();
    let (code, stdout, _) = paved_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("PASS ./suite.yaml: owner / right"), "{stdout}");
    assert!(stdout.contains("FAIL ./suite.yaml: owner / wrong: expected 0 violations, got 1"), "{stdout}");
    assert!(stdout.contains("1 suites: 1 cases passed, 1 failed"), "{stdout}");
}

fn paved(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_paved")).args(args).current_dir(dir).env("NO_COLOR", "1").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `paved check --policy policies --format json FILE` in `dir`, which must
/// exit 1 (a Deny); the findings of `policy`.
fn checked_json(dir: &Path, file: &str, policy: &str) -> Vec<serde_json::Value> {
    let (code, stdout, stderr) = paved(dir, &["check", "--policy", "policies", "--format", "json", file]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let doc = support::paved_json(&stdout);
    let findings = doc["findings"].as_array().unwrap_or_else(|| panic!("{doc}"));
    findings.iter().filter(|f| f["policy"] == policy).cloned().collect()
}

/// A policy directory with the library's required-labels template and a constraint of `action`.
fn policies(dir: &Path, action: &str) {
    let library = paved_corpus::path("gatekeeper-library/general/requiredlabels");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::copy(library.join("template.yaml"), dir.join("policies/template.yaml")).unwrap();
    std::fs::write(
        dir.join("policies/constraint.yaml"),
        format!("apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata:\n  name: need-owner\nspec:\n  enforcementAction: {action}\n  match:\n    kinds: [{{apiGroups: [\"\"], kinds: [ConfigMap]}}]\n  parameters:\n    labels: [{{key: owner}}]\n"),
    )
    .unwrap();
}

const CONFIGMAPS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bare\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  labels: {owner: me}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: excused\n  annotations:\n    paved.dev/exempt: gatekeeper/k8srequiredlabels/*\n    paved.dev/exempt-reason: legacy, OPS-9\n";

#[test]
fn check_runs_gatekeeper_constraints_beside_native_rules() {
    let dir = tempfile::tempdir().unwrap();
    policies(dir.path(), "deny");
    std::fs::write(dir.path().join("cms.yaml"), CONFIGMAPS).unwrap();
    let findings = checked_json(dir.path(), "cms.yaml", "gatekeeper/k8srequiredlabels/need-owner");
    assert_eq!(findings.len(), 2, "bare is denied, excused is exempted, owned is clean: {findings:#?}");
    assert_eq!(findings[0]["object"]["name"], "bare");
    assert_eq!(findings[0]["action"], "deny");
    assert!(findings[0]["message"].as_str().unwrap().contains("you must provide labels"));
    assert_eq!(findings[1]["object"]["name"], "excused");
    assert_eq!(findings[1]["exempted"]["reason"], "legacy, OPS-9");

    // The same policies from the configuration file's policy-paths, with warn: exit 0.
    policies(dir.path(), "warn");
    std::fs::write(dir.path().join(".paved.yaml"), "policy-paths: [policies]\n").unwrap();
    let (code, stdout, _) = paved(dir.path(), &["check", "cms.yaml"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("warning[gatekeeper/k8srequiredlabels/need-owner]"), "{stdout}");
}

#[test]
fn a_broken_template_is_named_and_the_rest_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    policies(dir.path(), "deny");
    std::fs::write(
        dir.path().join("policies/broken.yaml"),
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: broken}\nspec:\n  crd: {spec: {names: {kind: Broken}}}\n  targets:\n  - target: admission.k8s.gatekeeper.sh\n    rego: |\n      package broken\n      violation[{\"msg\": msg}] {\n        msg := nosuch(input.x)\n      }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policies/vap.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: v}\nspec:\n  matchConstraints: {resourceRules: [{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]}\n  validations:\n  - expression: \"object.x ===\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policies/orphan.yaml"),
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: NoSuchKind\nmetadata: {name: orphan}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("cms.yaml"), CONFIGMAPS).unwrap();
    let (code, stdout, stderr) = paved(dir.path(), &["check", "--policy", "policies", "cms.yaml"]);
    assert_eq!(code, 2, "bad configuration: {stderr}");
    // Each problem names its file, and the line and column in it: the Rego
    // line inside the block scalar, the character inside the CEL expression.
    for expected in [
        "broken.yaml:11:22: ConstraintTemplate broken: Rego does not compile: could not find function nosuch",
        "vap.yaml:7:29: ValidatingAdmissionPolicy v: spec.validations[0].expression: ERROR: <input>:1:12",
        "orphan.yaml:2:7: constraint orphan of kind NoSuchKind: no ConstraintTemplate defines that kind",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    assert!(stdout.contains("gatekeeper/k8srequiredlabels/need-owner"), "the other policies still ran: {stdout}");
    // Listing the bundle fails the same way, and still lists what loaded.
    let (code, stdout, stderr) = paved(dir.path(), &["policies", "--policy", "policies"]);
    assert_eq!(code, 2, "bad configuration: {stderr}");
    assert!(stderr.contains("ConstraintTemplate broken: Rego does not compile"), "{stderr}");
    assert!(stdout.contains("gatekeeper/k8srequiredlabels"), "{stdout}");
}

#[test]
fn inventory_templates_see_the_checked_files_and_stdin_is_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let library = paved_corpus::path("gatekeeper-library/general/uniqueingresshost");
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::copy(library.join("template.yaml"), dir.path().join("policies/template.yaml")).unwrap();
    let sample = library.join("samples").read_dir().unwrap().next().unwrap().unwrap().path();
    std::fs::copy(sample.join("constraint.yaml"), dir.path().join("policies/constraint.yaml")).unwrap();
    // The inventory (another Ingress with the same host) comes from a checked file.
    std::fs::copy(sample.join("example_inventory_disallowed.yaml"), dir.path().join("existing.yaml")).unwrap();
    let ingress = std::fs::read(sample.join("example_disallowed.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["check", "--policy", "policies", "--format", "json", "existing.yaml", "-"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &ingress).unwrap();
    let out = child.wait_with_output().unwrap();
    let doc = support::paved_json(&String::from_utf8_lossy(&out.stdout));
    let from_stdin: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == "gatekeeper/k8suniqueingresshost/unique-ingress-host" && f["file"] == "<stdin>")
        .collect();
    assert!(!from_stdin.is_empty(), "the Ingress on stdin was checked against the file's: {doc:#}");
}

#[test]
fn the_cel_engine_runs_the_library_templates_that_have_cel() {
    let library = paved_corpus::path("gatekeeper-library/pod-security-policy");
    let (code, stdout, stderr) =
        paved_test(Path::new("."), &["--engine", "cel", "--format", "json", library.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let doc = support::paved_json(&stdout);
    let by_cel = doc["cases"].as_array().unwrap().iter().filter(|c| c["engine"] == "cel").count();
    assert!(by_cel >= 40, "only {by_cel} cases ran with CEL");
    assert_eq!(doc["failed"], 0);

    // check too: the CEL of required-labels judges the config maps.
    let dir = tempfile::tempdir().unwrap();
    policies(dir.path(), "deny");
    std::fs::write(dir.path().join("cms.yaml"), CONFIGMAPS).unwrap();
    let (code, stdout, stderr) = paved(dir.path(), &["check", "--engine", "cel", "--policy", "policies", "cms.yaml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    // The CEL message of the template, not the Rego one.
    assert!(stdout.contains("missing required label, requires all of: owner"), "{stdout}");
}

const VAP: &str = "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: object.spec.replicas <= int(params.data.max)
    messageExpression: \"'replicas must be at most ' + params.data.max\"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas-prod}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {name: replica-limit, namespace: policies}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: replica-limit, namespace: policies}
data: {max: \"3\"}
";

/// Two pinned Deployments in `shop`: `big` (10 replicas) and `small` (2).
fn deployments() -> String {
    let deployment = |name: &str, replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: registry.example/app@sha256:{}}}]\n",
            "0".repeat(64)
        )
    };
    format!("{}---\n{}", deployment("big", 10), deployment("small", 2))
}

#[test]
fn check_runs_validating_admission_policies_with_their_bindings_and_params() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/vap.yaml"), VAP).unwrap();
    std::fs::write(dir.path().join("deploys.yaml"), deployments()).unwrap();
    let findings = checked_json(dir.path(), "deploys.yaml", "vap/max-replicas/max-replicas-prod");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["object"]["name"], "big");
    assert_eq!(findings[0]["action"], "deny");
    assert_eq!(findings[0]["message"], "replicas must be at most 3");

    // A binding to a policy that is not there is named, and exit 2.
    std::fs::write(
        dir.path().join("policies/orphan.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: orphan}\nspec: {policyName: nowhere, validationActions: [Warn]}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = paved(dir.path(), &["check", "--policy", "policies", "deploys.yaml"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("orphan.yaml") && stderr.contains("ValidatingAdmissionPolicyBinding orphan"), "{stderr}");
    assert!(stdout.contains("vap/max-replicas/max-replicas-prod"), "the others still ran: {stdout}");
}

/// A binding whose `paramRef` names no namespace reads the params of the
/// namespace of each object, wherever paved was shown them: in the checked
/// manifests themselves, or in `--inventory` files.
#[test]
fn check_finds_params_among_the_checked_manifests_and_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    let per_namespace = VAP.replace(
        "paramRef: {name: replica-limit, namespace: policies}",
        "paramRef: {name: replica-limit, parameterNotFoundAction: Allow}",
    );
    std::fs::write(dir.path().join("policies/vap.yaml"), per_namespace).unwrap();
    let limit = |max: u32| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: replica-limit, namespace: shop}}\ndata: {{max: \"{max}\"}}\n"
        )
    };
    std::fs::write(dir.path().join("deploys.yaml"), deployments()).unwrap();
    let policy = "vap/max-replicas/max-replicas-prod";
    let (code, stdout, stderr) = paved(dir.path(), &["check", "--policy", "policies", "deploys.yaml"]);
    assert_eq!(code, 0, "no params in shop, parameterNotFoundAction Allow: {stdout}{stderr}");

    std::fs::write(dir.path().join("limit.yaml"), limit(1)).unwrap();
    let (_, stdout, stderr) = paved(
        dir.path(),
        &["check", "--policy", "policies", "--inventory", "limit.yaml", "--format", "json", "deploys.yaml"],
    );
    let doc = {
        assert!(!stdout.is_empty(), "{stderr}");
        support::paved_json(&stdout)
    };
    let names: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == policy)
        .map(|f| f["object"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["big", "small"], "the --inventory limit of 1 applies in shop");

    std::fs::write(dir.path().join("deploys.yaml"), format!("{}---\n{}", deployments(), limit(5))).unwrap();
    let findings = checked_json(dir.path(), "deploys.yaml", policy);
    assert_eq!(findings.len(), 1, "the limit of 5 beside the Deployments: {findings:#?}");
    assert_eq!(findings[0]["message"], "replicas must be at most 5");
}

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: root, namespace: shop}
spec:
  containers:
  - name: app
    image: registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
    securityContext: {privileged: true}
";

#[test]
fn paved_test_files_cover_native_rules_and_validating_admission_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/vap.yaml"), VAP).unwrap();
    std::fs::write(dir.path().join("deploys.yaml"), deployments()).unwrap();
    std::fs::write(dir.path().join("pod.yaml"), PRIVILEGED_POD).unwrap();
    let test = "apiVersion: paved.dev/v1alpha1
kind: PolicyTest
metadata: {name: replicas-and-privilege}
policies: [policies]
cases:
- name: the big deployment is denied, the small one is not
  object: deploys.yaml
  expect:
  - {policy: vap/max-replicas/*, action: deny, message: 'at most [0-9]+', count: 1}
- name: a privileged pod breaks the baseline
  object: pod.yaml
  expect:
  - {policy: pss-baseline/privileged, action: deny}
  absent: [vap/*]
- name: a wrong expectation
  object: pod.yaml
  absent: [pss-baseline/*]
";
    std::fs::write(dir.path().join("replicas.paved-test.yaml"), test).unwrap();
    let (code, stdout, stderr) = paved_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("PASS ./replicas.paved-test.yaml: replicas-and-privilege / the big deployment is denied"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("PASS ./replicas.paved-test.yaml: replicas-and-privilege / a privileged pod breaks the baseline"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL ./replicas.paved-test.yaml: replicas-and-privilege / a wrong expectation: expected nothing from pss-baseline/*"),
        "{stdout}"
    );
    assert!(stdout.contains("1 suites: 2 cases passed, 1 failed"), "{stdout}");

    // A count that does not hold fails with what was found.
    std::fs::write(
        dir.path().join("replicas.paved-test.yaml"),
        test.replace("count: 1", "count: 2")
            .replace("- name: a wrong expectation\n  object: pod.yaml\n  absent: [pss-baseline/*]\n", ""),
    )
    .unwrap();
    let (code, stdout, _) = paved_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("expected 2 findings of vap/max-replicas/* with action deny"), "{stdout}");
    assert!(stdout.contains("got 1"), "{stdout}");
}

/// `paved policies` lists the loaded Gatekeeper constraints and VAP
/// bindings beside the native rules, with the action the configuration
/// leaves them; `paved explain` shows what each checks.
#[test]
fn policies_and_explain_cover_foreign_policies() {
    let dir = tempfile::tempdir().unwrap();
    policies(dir.path(), "deny");
    std::fs::write(dir.path().join("policies/vap.yaml"), VAP).unwrap();
    std::fs::write(dir.path().join(".paved.yaml"), "policy-paths: [policies]\npolicies:\n  \"vap/*\": warn\n").unwrap();
    let (code, stdout, stderr) = paved(dir.path(), &["policies", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let doc = support::paved_json(&stdout);
    let listed = |id: &str| {
        doc["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id}: {doc}"))
    };
    let gatekeeper = listed("gatekeeper/k8srequiredlabels/need-owner");
    assert_eq!((gatekeeper["group"].as_str(), gatekeeper["action"].as_str()), (Some("gatekeeper"), Some("deny")));
    assert_eq!(gatekeeper["title"], "Required Labels");
    let vap = listed("vap/max-replicas/max-replicas-prod");
    assert_eq!((vap["group"].as_str(), vap["action"].as_str()), (Some("vap"), Some("warn")), "the override applies");
    assert_eq!(listed("pss-baseline/privileged")["action"], "deny", "the native rules are still there");

    let (code, text, _) = paved(dir.path(), &["policies"]);
    assert_eq!(code, 0);
    assert!(
        text.lines().any(|l| l.starts_with("gatekeeper/k8srequiredlabels/need-owner") && l.contains("deny")),
        "{text}"
    );

    let (code, text, stderr) = paved(dir.path(), &["explain", "gatekeeper/k8srequiredlabels/need-owner"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("Requires resources to contain specified labels"), "the template's description: {text}");
    assert!(text.contains("evaluated with Rego") && text.contains("{\"labels\":[{\"key\":\"owner\"}]}"), "{text}");
    assert!(text.contains("paved.dev/exempt: \"gatekeeper/k8srequiredlabels/need-owner\""), "{text}");

    let (code, text, stderr) = paved(dir.path(), &["explain", "vap/max-replicas/max-replicas-prod"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("object.spec.replicas <= int(params.data.max)"), "{text}");
    assert!(
        text.contains("ConfigMap (v1) named \"replica-limit\", in namespace \"policies\"; when none: Deny"),
        "{text}"
    );
    assert!(text.contains("its own action: deny; action in paved-road:latest: warn"), "{text}");

    let (code, _, stderr) = paved(dir.path(), &["explain", "gatekeeper/nope/none"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no policy"), "{stderr}");
}

/// `paved test` runs Kyverno's own `kyverno test` suites unchanged: every
/// suite of the library whose policies are ValidatingPolicies or
/// ClusterPolicies with `validate.cel`, autogen included (results name
/// Deployments and CronJobs, and rules `autogen-<rule>`, for policies
/// written for Pods), and those that read a `context` (`resource.Get`,
/// `image.GetMetadata`) or call `parseServiceAccount`. Every case must
/// give Kyverno's answer. Suites whose resources the corpus holds back
/// (`.chainsaw-test/`) cannot run.
#[test]
fn kyverno_cel_suites_pass_unchanged() {
    let corpus = paved_corpus::path("kyverno-policies");
    let mut categories: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-cel") || n.ends_with("-vpol"))
        .collect();
    categories.sort();
    let mut passed = 0;
    for dir in &categories {
        let (_, stdout, stderr) = paved_test(Path::new("."), &["--format", "json", corpus.join(dir).to_str().unwrap()]);
        let doc = {
            assert!(!stdout.is_empty(), "{stderr}");
            support::paved_json(&stdout)
        };
        let failures: Vec<_> = doc["cases"].as_array().unwrap().iter().filter(|c| c["passed"] == false).collect();
        assert!(failures.is_empty(), "{dir}: {failures:#?}");
        passed += doc["passed"].as_u64().unwrap();
    }
    eprintln!("kyverno suites ({} categories): {passed} cases passed", categories.len());
    assert!(passed >= 1_811, "{passed} passed");
}

/// `check` loads a Kyverno ValidatingPolicy like any policy: its findings
/// carry `kyverno/<policy>`, with its `validationActions`, and autogen puts
/// a Pod policy's finding on a Deployment's and a CronJob's pod template.
#[test]
fn check_runs_kyverno_validating_policies_with_autogen() {
    let dir = paved_corpus::path("kyverno-policies/pod-security-vpol/baseline/disallow-capabilities");
    let policy = dir.join("disallow-capabilities.yaml");
    let resources = dir.join(".kyverno-test/resource.yaml");
    let (_, stdout, stderr) = paved(
        Path::new("."),
        &["check", "--format", "json", "--policy", policy.to_str().unwrap(), resources.to_str().unwrap()],
    );
    let doc = {
        assert!(!stdout.is_empty(), "{stderr}");
        support::paved_json(&stdout)
    };
    let kyverno: Vec<&serde_json::Value> =
        doc["findings"].as_array().unwrap().iter().filter(|f| f["policy"] == "kyverno/disallow-capabilities").collect();
    let on = |kind: &str, name: &str| {
        kyverno.iter().find(|f| f["object"]["kind"] == kind && f["object"]["name"] == name).copied()
    };
    let deployment = on("Deployment", "baddeployment01").expect("autogen judged the Deployment's template");
    assert_eq!(deployment["path"], "spec.template");
    assert_eq!(deployment["action"], "audit", "validationActions: [Audit]");
    assert!(deployment["message"].as_str().unwrap().contains("Any capabilities added beyond the allowed list"));
    assert_eq!(on("CronJob", "badcronjob01").expect("and the CronJob's")["path"], "spec.jobTemplate.spec.template");
    assert!(on("Pod", "badpod01").is_some());
    assert!(on("Deployment", "gooddeployment01").is_none() && on("Pod", "goodpod01").is_none());
}

/// `check --inventory` answers a Kyverno policy's `resource.Get` from the
/// inventory's objects (and from the files checked), as a server answers it
/// from the cluster; without the object, the policy cannot judge and says why.
#[test]
fn check_answers_resource_get_from_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: allowed-registries}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}
  variables:
  - name: allowed
    expression: resource.Get('v1', 'configmaps', 'platform', 'registries').data.allowed.split(',')
  validations:
  - expression: object.spec.containers.all(c, image(c.image).registry() in variables.allowed)
    messageExpression: \"'images must come from ' + variables.allowed.join(', ')\"
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: registries, namespace: platform}\ndata: {allowed: ghcr.io}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pods.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hub, namespace: team}\nspec: {containers: [{name: a, image: nginx}]}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: ghcr, namespace: team}\nspec: {containers: [{name: a, image: ghcr.io/a/b:1}]}\n",
    )
    .unwrap();
    let findings = |extra: &[&str]| {
        let mut args = vec!["check", "--format", "json", "--policy", "policy.yaml"];
        args.extend_from_slice(extra);
        args.push("pods.yaml");
        let (_, stdout, stderr) = paved(dir.path(), &args);
        let doc = {
            assert!(!stdout.is_empty(), "{stderr}");
            support::paved_json(&stdout)
        };
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["policy"] == "kyverno/allowed-registries")
            .map(|f| (f["object"]["name"].as_str().unwrap().to_owned(), f["message"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let with = findings(&["--inventory", "inventory.yaml"]);
    assert_eq!(with.len(), 1, "{with:?}");
    assert_eq!(with[0].0, "hub");
    assert!(with[0].1.contains("images must come from ghcr.io"), "{with:?}");
    let without = findings(&[]);
    assert_eq!(without.len(), 2, "neither pod can be judged without the ConfigMap: {without:?}");
    assert!(without.iter().all(|(_, m)| m.contains("configmaps \"registries\" not found")), "{without:?}");
}

/// A ClusterPolicy's `validate.cel` rules run with their `match` and
/// `exclude`; a rule of another type is reported by name and file, and the
/// policy's other rules still run.
#[test]
fn cluster_policy_cel_rules_run_and_other_rule_types_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: team-label}
spec:
  validationFailureAction: Enforce
  rules:
  - name: old-style
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate: {pattern: {metadata: {labels: {team: '?*'}}}}
  - name: needs-team
    match: {any: [{resources: {kinds: [ConfigMap], operations: [CREATE]}}]}
    exclude: {any: [{resources: {namespaces: [kube-*]}}]}
    validate:
      cel:
        expressions:
        - expression: \"has(object.metadata.labels) && 'team' in object.metadata.labels\"
          message: every ConfigMap names its team
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cms.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: kube-public}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop, labels: {team: x}}\n",
    )
    .unwrap();
    let (code, stdout, stderr) =
        paved(dir.path(), &["check", "--format", "json", "--policy", "policy.yaml", "cms.yaml"]);
    assert_eq!(code, 2, "a rule that cannot run is bad configuration: {stderr}");
    assert!(stderr.contains("rule \"old-style\": validate.pattern rules are not supported"), "{stderr}");
    assert!(stderr.contains("policy.yaml"), "{stderr}");
    let doc = support::paved_json(&stdout);
    let denied: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == "kyverno/team-label/needs-team")
        .map(|f| {
            assert_eq!(f["action"], "deny");
            assert_eq!(f["message"], "every ConfigMap names its team");
            f["object"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(denied, ["a"], "b is excluded by namespace, c has its label");
}

/// A Kyverno PolicyException among the policy files lifts the policies and
/// rules it names for the objects it selects, by a rule-style `match`
/// (`kyverno.io/v2`) or CEL `matchConditions` (`policies.kyverno.io`): the
/// finding is listed as exempted, naming the exception, and not counted.
#[test]
fn kyverno_policy_exceptions_lift_findings_they_select() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policies.yaml"),
        "apiVersion: policies.kyverno.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: needs-team}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations:
  - expression: \"'team' in object.metadata.?labels.orValue({})\"
    message: name your team
---
apiVersion: policies.kyverno.io/v1alpha1
kind: PolicyException
metadata: {name: legacy, namespace: policies}
spec:
  policyRefs: [{name: needs-team, kind: ValidatingPolicy}]
  matchConditions:
  - {name: legacy, expression: \"object.metadata.name.startsWith('legacy-')\"}
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: no-latest}
spec:
  validationFailureAction: Enforce
  rules:
  - name: pinned
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      cel:
        expressions:
        - {expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\", message: pin the image}
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: tools, namespace: policies}
spec:
  exceptions: [{policyName: no-latest, ruleNames: [pinned, autogen-pinned]}]
  match: {any: [{resources: {kinds: [Pod, Deployment], names: ['tool-*']}}]}
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("objects.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: legacy-a, namespace: shop}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new-b, namespace: shop}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: tool-1, namespace: shop}\nspec: {containers: [{name: c, image: 'x:latest'}]}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {containers: [{name: c, image: 'x:latest'}]}\n",
    )
    .unwrap();
    let (_, stdout, stderr) = paved(
        dir.path(),
        &["check", "--profile", "pss-baseline", "--format", "json", "--policy", "policies.yaml", "objects.yaml"],
    );
    let doc = {
        assert!(!stdout.is_empty(), "{stderr}");
        support::paved_json(&stdout)
    };
    let findings = doc["findings"].as_array().unwrap();
    let of =
        |name: &str| findings.iter().find(|f| f["object"]["name"] == name).unwrap_or_else(|| panic!("{name}: {doc:#}"));
    assert_eq!(of("legacy-a")["exempted"]["reason"], "Kyverno PolicyException policies/legacy");
    assert!(of("new-b")["exempted"].is_null());
    assert_eq!(of("tool-1")["exempted"]["reason"], "Kyverno PolicyException policies/tools");
    assert!(of("web")["exempted"].is_null());
    assert_eq!(of("web")["policy"], "kyverno/no-latest/pinned");
}

/// A `kyverno test` Values file's `namespaceSelector` gives the namespaces
/// their labels, which a rule's `namespaceSelector` then selects on.
#[test]
fn kyverno_test_values_label_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "policy.yaml",
        "apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: prod-images}
spec:
  rules:
  - name: pinned
    match:
      any:
      - resources:
          kinds: [Pod]
          namespaceSelector: {matchLabels: {env: production}}
    validate:
      failureAction: Enforce
      cel: {expressions: [{expression: \"object.spec.containers.all(c, c.image.contains('@'))\"}]}
",
    );
    write(
        "resources.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: in-prod, namespace: shop}\nspec: {containers: [{name: a, image: nginx}]}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: in-dev, namespace: lab}\nspec: {containers: [{name: a, image: nginx}]}\n",
    );
    write(
        "values.yaml",
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\nnamespaceSelector:\n- {name: shop, labels: {env: production}}\n- {name: lab, labels: {env: dev}}\n",
    );
    write(
        "kyverno-test.yaml",
        "apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: prod-images}
policies: [policy.yaml]
resources: [resources.yaml]
variables: values.yaml
results:
- {policy: prod-images, rule: pinned, kind: Pod, resources: [in-prod], result: fail}
- {policy: prod-images, rule: pinned, kind: Pod, resources: [in-dev], result: skip}
",
    );
    let (code, stdout, stderr) = paved_test(dir.path(), &["--format", "json", "."]);
    let doc = {
        assert!(!stdout.is_empty(), "{stderr}");
        support::paved_json(&stdout)
    };
    assert_eq!((doc["passed"].as_u64(), doc["failed"].as_u64()), (Some(2), Some(0)), "{doc:#}");
    assert_eq!(code, 0);
}

/// The configuration and exemptions address Kyverno policies by their ids,
/// `kyverno/<policy>[/<rule>]`, as they do native rules and other loaded policies.
#[test]
fn overrides_and_exemptions_address_kyverno_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: no-latest}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pods.yaml"),
        "apiVersion: v1
kind: Pod
metadata:
  name: excused
  annotations: {paved.dev/exempt: kyverno/no-latest, paved.dev/exempt-reason: OPS-1, paved.dev/exempt-until: '2099-01-01'}
spec: {containers: [{name: a, image: 'nginx:latest'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec: {containers: [{name: a, image: 'nginx:latest'}]}
",
    )
    .unwrap();
    let findings = |config: &str| {
        std::fs::write(dir.path().join(".paved.yaml"), config).unwrap();
        let (_, stdout, stderr) =
            paved(dir.path(), &["check", "--format", "json", "--policy", "policy.yaml", "pods.yaml"]);
        let doc = {
            assert!(!stdout.is_empty(), "{stderr}");
            support::paved_json(&stdout)
        };
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["policy"] == "kyverno/no-latest" || f["policy"] == "paved/exemption-invalid")
            .map(|f| {
                format!("{} {} {}", f["object"]["name"].as_str().unwrap(), f["policy"].as_str().unwrap(), f["action"])
            })
            .collect::<Vec<_>>()
    };
    let plain = findings("profile: pss-baseline\n");
    assert!(plain.contains(&"plain kyverno/no-latest \"deny\"".to_owned()), "{plain:?}");
    assert!(!plain.iter().any(|f| f.contains("exemption-invalid")), "the exemption names a known policy: {plain:?}");
    let warned = findings("profile: pss-baseline\npolicies:\n  kyverno/no-latest: warn\n");
    assert!(warned.contains(&"plain kyverno/no-latest \"warn\"".to_owned()), "{warned:?}");
    let off = findings("profile: pss-baseline\npolicies:\n  kyverno/*: 'off'\n");
    assert!(!off.iter().any(|f| f.starts_with("plain")), "{off:?}");
}

/// Every MutatingPolicy suite of Kyverno's library (`*-mpol`), unchanged:
/// each resource mutated by the policy alone must be its `patchedResources`
/// entry, as the Kyverno CLI compares them; the counts are printed.
#[test]
fn kyverno_mutating_policy_suites_pass_unchanged() {
    let corpus = paved_corpus::path("kyverno-policies");
    let mut categories: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-mpol"))
        .collect();
    categories.sort();
    let (mut passed, mut suites) = (0, 0);
    for dir in &categories {
        let (_, stdout, stderr) = paved_test(Path::new("."), &["--format", "json", corpus.join(dir).to_str().unwrap()]);
        assert!(!stdout.is_empty(), "{stderr}");
        let doc = support::paved_json(&stdout);
        let failures: Vec<_> = doc["cases"].as_array().unwrap().iter().filter(|c| c["passed"] == false).collect();
        assert!(failures.is_empty(), "{dir}: {failures:#?}");
        passed += doc["passed"].as_u64().unwrap();
        suites += doc["suites"].as_u64().unwrap_or(0);
    }
    eprintln!(
        "kyverno MutatingPolicy suites ({} categories, {suites} suites): {passed} cases passed",
        categories.len()
    );
    assert!(passed >= 49, "{passed} passed");
}

/// A patched resource that is not what the policy makes fails its case,
/// saying what differs; the same case expecting `fail` passes.
#[test]
fn a_kyverno_mutating_case_fails_when_the_patched_resource_differs() {
    let source = paved_corpus::path("kyverno-policies/other-mpol/add-labels");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(source.join("add-labels.yaml"), dir.path().join("add-labels.yaml")).unwrap();
    let tests = dir.path().join(".kyverno-test");
    std::fs::create_dir(&tests).unwrap();
    for f in ["kyverno-test.yaml", "resource.yaml", "patchedResource.yaml", "patchedResource1.yaml"] {
        std::fs::copy(source.join(".kyverno-test").join(f), tests.join(f)).unwrap();
    }
    let patched = std::fs::read_to_string(tests.join("patchedResource.yaml")).unwrap();
    std::fs::write(tests.join("patchedResource.yaml"), patched.replace("foo: bar", "foo: baz")).unwrap();
    let (code, stdout, _) = paved_test(dir.path(), &["."]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("the patched resource differs from the suite's: replace /metadata/labels/foo \"bar\""),
        "{stdout}"
    );
    let suite = std::fs::read_to_string(tests.join("kyverno-test.yaml")).unwrap();
    std::fs::write(tests.join("kyverno-test.yaml"), suite.replacen("result: pass", "result: fail", 1)).unwrap();
    let (code, stdout, _) = paved_test(dir.path(), &["."]);
    assert_eq!(code, 0, "{stdout}");
}
