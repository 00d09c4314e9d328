//! `paved fix` as a user runs it: in place, `--diff`, stdin to stdout, the
//! configuration's switches and values, and files it must not touch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn paved(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const DEPLOYMENT: &str = "\
# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app     # keep this comment
        image: 'nginx:1.27'
        securityContext:
          allowPrivilegeEscalation: true
";

const FIXED: &str = "\
# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app     # keep this comment
        image: 'nginx:1.27'
        securityContext:
          allowPrivilegeEscalation: true
          capabilities:
            drop: [ALL]
      securityContext:
        seccompProfile:
          type: RuntimeDefault
";

#[test]
fn fix_writes_the_defaults_in_place_and_says_each() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("k8s")).unwrap();
    let file = dir.path().join("k8s/web.yaml");
    std::fs::write(&file, DEPLOYMENT).unwrap();
    let run = paved(dir.path(), &["fix", "k8s"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), FIXED, "the user's allowPrivilegeEscalation: true stays");
    assert_eq!(
        run.stdout,
        "k8s/web.yaml:8:5: [paved-road/default-seccomp] paved set the pod's securityContext.seccompProfile.type: RuntimeDefault; write it explicitly to keep another value\n\
         k8s/web.yaml:12:9: [paved-road/default-drop-capabilities] paved set capabilities.drop: [ALL] on container \"app\"; write it explicitly to keep another value\n"
    );
    assert!(run.stderr.contains("set 2 defaults in 1 file"), "{}", run.stderr);
    // And what it wrote passes what it set.
    let again = paved(dir.path(), &["fix", "--diff", "k8s"], None);
    assert_eq!((again.code, again.stdout.as_str()), (0, ""), "{}", again.stderr);
}

#[test]
fn diff_previews_without_writing_and_fails_when_something_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, DEPLOYMENT).unwrap();
    let run = paved(dir.path(), &["fix", "--diff", "web.yaml"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), DEPLOYMENT, "nothing written");
    assert!(run.stdout.starts_with("--- a/web.yaml\n+++ b/web.yaml\n@@ "), "{}", run.stdout);
    let added: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).collect();
    assert_eq!(
        added,
        [
            "+          capabilities:",
            "+            drop: [ALL]",
            "+      securityContext:",
            "+        seccompProfile:",
            "+          type: RuntimeDefault"
        ]
    );
    assert!(!run.stdout.lines().any(|l| l.starts_with('-') && !l.starts_with("---")), "only additions");
}

#[test]
fn stdin_is_fixed_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let run = paved(dir.path(), &["fix", "-"], Some(DEPLOYMENT));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, FIXED);
    assert!(run.stderr.contains("<stdin>:8:5: [paved-road/default-seccomp]"), "{}", run.stderr);
    // Nothing to set: the text as it came.
    let run = paved(dir.path(), &["fix", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"));
    assert_eq!((run.code, run.stdout.as_str()), (0, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"));
}

#[test]
fn the_configuration_turns_defaults_off_and_names_resources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".paved.yaml"),
        "policies:\n  paved-road/default-seccomp: off\ndefaults:\n  resources:\n    requests: {cpu: 100m}\n    limits: {memory: 256Mi}\n",
    )
    .unwrap();
    let run = paved(dir.path(), &["fix", "-"], Some(DEPLOYMENT));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("seccompProfile"), "{}", run.stdout);
    assert!(
        run.stdout.contains("          allowPrivilegeEscalation: true\n          capabilities:\n            drop: [ALL]\n        resources:\n          requests:\n            cpu: 100m\n          limits:\n            memory: 256Mi\n"),
        "{}",
        run.stdout
    );
    // Another profile sets nothing: only the paved road has defaults.
    let run = paved(dir.path(), &["fix", "--profile", "pss-restricted", "-"], Some(DEPLOYMENT));
    assert_eq!((run.code, run.stdout.as_str()), (0, DEPLOYMENT), "{}", run.stderr);
    // An exemption on the object, as at admission.
    let exempt = DEPLOYMENT.replace(
        "  name: web\n",
        "  name: web\n  annotations:\n    paved.dev/exempt: paved-road/*\n    paved.dev/exempt-reason: OPS-7 the legacy agent\n",
    );
    let run = paved(dir.path(), &["fix", "-"], Some(&exempt));
    assert_eq!((run.code, run.stdout.as_str()), (0, exempt.as_str()), "{}", run.stderr);
}

#[test]
fn a_file_that_cannot_be_fixed_safely_is_left_untouched_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let anchored =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - &app {name: a, image: b}\n";
    std::fs::write(dir.path().join("a.yaml"), anchored).unwrap();
    std::fs::write(dir.path().join("b.yaml"), DEPLOYMENT).unwrap();
    std::fs::write(dir.path().join("c.yaml"), "apiVersion: v1\nkind: Pod\nspec: [\n").unwrap();
    let run = paved(dir.path(), &["fix", "."], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("a.yaml")).unwrap(), anchored);
    assert!(
        run.stderr.contains("./a.yaml:1:1: cannot set the defaults in this document: it uses anchors"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("./c.yaml:3:1: while parsing a node"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("b.yaml")).unwrap(), FIXED, "the other files still are");
    let missing = paved(dir.path(), &["fix", "nowhere.yaml"], None);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nowhere.yaml: no such file or directory"), "{}", missing.stderr);
}

const SIDECAR: &str = r#"apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: sidecar-policy}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  matchConditions:
  - name: does-not-already-have-sidecar
    expression: '!object.spec.initContainers.exists(ic, ic.name == "mesh-proxy")'
  failurePolicy: Fail
  reinvocationPolicy: IfNeeded
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{spec: Object.spec{initContainers: [Object.spec.initContainers{
          name: "mesh-proxy", image: "mesh/proxy:v1.0.0", args: ["proxy", "sidecar"], restartPolicy: "Always"}]}}
  - patchType: JSONPatch
    jsonPatch:
      expression: '[JSONPatch{op: "add", path: "/metadata/labels/" + jsonpatch.escapeKey("mesh.example.com/injected"), value: "true"}]'
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: sidecar-binding}
spec: {policyName: sidecar-policy}
"#;

#[test]
fn mutating_admission_policies_are_applied_after_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sidecar.yaml"), SIDECAR).unwrap();
    std::fs::write(dir.path().join(".paved.yaml"), "policies:\n  paved-road/*: off\n").unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: myapp\n  labels:\n    app: myapp   # ours\nspec:\n  initContainers:\n  - name: myapp-initializer\n    image: example/initializer:v1.0.0\n  containers:\n  - name: app\n    image: example/app:v1\n";
    let run = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "-"], Some(pod));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: myapp\n  labels:\n    app: myapp   # ours\n    mesh.example.com/injected: \"true\"\nspec:\n  initContainers:\n  - name: myapp-initializer\n    image: example/initializer:v1.0.0\n  - name: mesh-proxy\n    args: [proxy, sidecar]\n    image: mesh/proxy:v1.0.0\n    restartPolicy: Always\n  containers:\n  - name: app\n    image: example/app:v1\n"
    );
    assert!(
        run.stderr.contains("<stdin>:1:1: [map/sidecar-policy/sidecar-binding] changed Pod \"myapp\""),
        "{}",
        run.stderr
    );
    // Fixed once, fixed for good: the match condition holds it back.
    let again = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "-"], Some(&run.stdout));
    assert_eq!((again.code, again.stdout.as_str()), (0, run.stdout.as_str()), "{}", again.stderr);
    // A policy that fails on an object leaves the file as it was, and says why.
    let broken = SIDECAR.replace(
        r#"'[JSONPatch{op: "add", path: "/metadata/labels/" + jsonpatch.escapeKey("mesh.example.com/injected"), value: "true"}]'"#,
        r#"'[JSONPatch{op: "remove", path: "/spec/nothing"}]'"#,
    );
    assert_ne!(broken, SIDECAR);
    std::fs::write(dir.path().join("sidecar.yaml"), broken).unwrap();
    let failed = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "-"], Some(pod));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert_eq!(failed.stdout, pod);
    assert!(
        failed.stderr.contains("<stdin>:1:1: [map/sidecar-policy/sidecar-binding] mutations[1]: the JSON Patch:"),
        "{}",
        failed.stderr
    );
}

/// A container a policy adds (a sidecar) gets the paved road's defaults
/// too, as the API server's reinvocation of the defaults webhook gives it.
#[test]
fn what_a_policy_adds_gets_the_defaults_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sidecar.yaml"), SIDECAR).unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: myapp\n  labels: {app: myapp}\nspec:\n  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n  initContainers: []\n  containers:\n  - name: app\n    image: example/app:v1\n    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";
    let run = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "-"], Some(pod));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fixed: serde_json::Value = serde_saphyr::from_str(&run.stdout).unwrap();
    assert_eq!(
        fixed["spec"]["initContainers"][0]["securityContext"],
        serde_json::json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("[paved-road/default-no-privilege-escalation] paved set allowPrivilegeEscalation: false on container \"mesh-proxy\""), "{}", run.stderr);
}

/// A loaded mutating policy has the two switches every policy has: `off`
/// in the configuration, and an exemption on the object; and `paved
/// check` knows both ids, so neither exemption is reported as unknown.
#[test]
fn a_mutating_policy_is_turned_off_or_exempted_as_any_policy_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sidecar.yaml"), SIDECAR).unwrap();
    let pod = |annotations: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: myapp\n  labels: {{app: myapp}}\n{annotations}spec:\n  initContainers: []\n  containers:\n  - name: app\n    image: example/app:v1\n"
        )
    };
    let plain = pod("");
    let run = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "-"], Some(&plain));
    assert!(run.stdout.contains("mesh-proxy"), "the policy runs: {}", run.stdout);
    std::fs::write(dir.path().join("off.yaml"), "policies:\n  map/*: off\n").unwrap();
    let off = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "--config", "off.yaml", "-"], Some(&plain));
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert!(!off.stdout.contains("mesh-proxy") && off.stdout.contains("RuntimeDefault"), "{}", off.stdout);
    let listed = paved(dir.path(), &["policies", "--policy", "sidecar.yaml", "--config", "off.yaml"], None);
    assert!(listed.stdout.lines().any(|l| l.starts_with("map/sidecar-policy/sidecar-binding") && l.contains(" off ")));
    let on = paved(dir.path(), &["policies", "--policy", "sidecar.yaml"], None);
    assert!(
        on.stdout.lines().any(|l| l.starts_with("map/sidecar-policy/sidecar-binding") && l.contains(" mutate ")),
        "{}",
        on.stdout
    );
    let exempt = pod(
        "  annotations:\n    paved.dev/exempt: map/sidecar-policy/sidecar-binding, paved-road/default-seccomp\n    paved.dev/exempt-reason: OPS-12 the mesh is injected by the vendor's operator\n",
    );
    let run = paved(dir.path(), &["fix", "--policy", "sidecar.yaml", "-"], Some(&exempt));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("mesh-proxy") && !run.stdout.contains("RuntimeDefault"), "{}", run.stdout);
    assert!(run.stdout.contains("allowPrivilegeEscalation: false"), "the other defaults still apply: {}", run.stdout);
    let checked = paved(dir.path(), &["check", "--policy", "sidecar.yaml", "-"], Some(&exempt));
    assert!(!checked.stdout.contains("exemption-invalid"), "{}", checked.stdout);
}
