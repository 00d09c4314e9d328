//! `paved audit`, `paved images --cluster` and `paved config view` end to end:
//! the binary reaches a fixture API server through a kubeconfig, as it would a
//! cluster. The fixture answers discovery with recorded documents, paginates,
//! refuses a kind with 403 and expires a continue token with 410.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::Command;

mod support;

use paved_cluster::fixture::FixtureCluster;
use serde_json::{Value, json};

fn namespace(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

fn deployment(ns: &str, name: &str, annotations: Value, privileged: bool) -> Value {
    json!({"metadata": {"name": name, "namespace": ns, "annotations": annotations},
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                          "securityContext": {"privileged": privileged}}]}}}})
}

fn pod(ns: &str, name: &str, owner: Option<(&str, &str)>, hash: &str) -> Value {
    let owners = owner
        .map(|(kind, n)| json!([{"apiVersion": "apps/v1", "kind": kind, "name": n, "uid": "u", "controller": true}]));
    json!({"metadata": {"name": name, "namespace": ns, "labels": {"pod-template-hash": hash}, "ownerReferences": owners},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": true}}],
                    "initContainers": [{"name": "init", "image": "busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"}]},
           "status": {"containerStatuses": [{"name": "app", "image": "nginx:1.27",
                         "imageID": "docker.io/library/nginx@sha256:2222222222222222222222222222222222222222222222222222222222222222"}],
                      "initContainerStatuses": [{"name": "init", "imageID": "docker.io/library/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"}]}})
}

/// A small cluster: `strict` chooses pss-restricted, `lenient` pss-baseline in
/// audit mode, `plain` has no labels (the default profile).
fn cluster() -> FixtureCluster {
    let mut f = FixtureCluster::default();
    f.add("/api/v1/namespaces", namespace("strict", json!({"paved.dev/profile": "pss-restricted"})));
    f.add(
        "/api/v1/namespaces",
        namespace("lenient", json!({"paved.dev/profile": "pss-baseline", "paved.dev/mode": "audit"})),
    );
    f.add("/api/v1/namespaces", namespace("plain", json!({})));
    f.add("/api/v1/namespaces", namespace("kube-system", json!({})));
    for i in 0..7 {
        f.add("/apis/apps/v1/deployments", deployment("strict", &format!("web-{i}"), json!({}), i == 0));
    }
    f.add("/apis/apps/v1/deployments", deployment("lenient", "priv", json!({"paved.dev/lock": "delete"}), true));
    f.add(
        "/apis/apps/v1/deployments",
        deployment(
            "strict",
            "vendor",
            json!({"paved.dev/exempt": "pss-restricted/*", "paved.dev/exempt-reason": "vendor chart, OPS-1",
                   "paved.dev/exempt-until": "2099-01-01"}),
            false,
        ),
    );
    f.add(
        "/apis/apps/v1/deployments",
        deployment(
            "plain",
            "old",
            json!({"paved.dev/exempt": "pss-baseline/privileged", "paved.dev/exempt-reason": "migration",
                   "paved.dev/exempt-until": "2020-01-01"}),
            false,
        ),
    );
    f.add("/apis/apps/v1/deployments", deployment("kube-system", "coredns", json!({}), true));
    f.add("/api/v1/pods", pod("strict", "web-0-6b7f9c-abcde", Some(("ReplicaSet", "web-0-6b7f9c")), "6b7f9c"));
    f.add("/api/v1/pods", pod("plain", "bare", None, "x"));
    f.add(
        "/api/v1/configmaps",
        json!({"metadata": {"name": "settings", "namespace": "plain", "annotations": {"paved.dev/lock": "delete"}}}),
    );
    f
}

fn report(run: &support::Run) -> Value {
    assert!(!run.stdout.is_empty(), "{}", run.stderr);
    support::paved_json(&run.stdout)
}

#[test]
fn audit_judges_each_namespace_with_its_profile_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let _fx = support::start_cluster(cluster(), dir.path());
    let run = support::paved(dir.path(), &["audit", "--format", "json", "--page-size", "3"]);
    assert_eq!(run.code, 1, "Deny findings exit 1: {}", run.stderr);
    let doc = report(&run);
    let r = &doc["report"];
    let ns = &r["namespaces"];
    // pss-restricted: every one of the 7 web deployments misses restricted fields.
    assert_eq!(ns["strict"]["profile"], "pss-restricted");
    assert_eq!(ns["strict"]["objectsAtFault"], 7, "{}", ns["strict"]);
    assert!(ns["strict"]["findings"]["deny"].as_u64().unwrap() > 7);
    assert!(ns["strict"]["findings"]["exempted"].as_u64().unwrap() > 0, "the vendor exemption covers its findings");
    // pss-baseline in audit mode: the privileged deployment is an Audit finding, not a Deny.
    assert_eq!(ns["lenient"]["mode"], "audit");
    assert_eq!(ns["lenient"]["findings"]["deny"], 0);
    assert_eq!(ns["lenient"]["findings"]["audit"], 1, "{}", ns["lenient"]);
    // kube-system is left alone, as paved serve leaves it; pods made by a ReplicaSet are judged at the controller.
    assert!(ns.get("kube-system").is_none());
    assert_eq!(r["skipped"]["excludedNamespaces"], 1);
    assert_eq!(r["skipped"]["controlled"], 1);
    // The bare pod in `plain` is judged with the default profile.
    assert!(ns["plain"]["faults"].as_array().unwrap().iter().any(|f| f["object"]["name"] == "bare"));

    // Exemptions: expired first; locks listed.
    let ex = r["exemptions"].as_array().unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!((ex[0]["state"].as_str(), ex[0]["object"]["name"].as_str()), (Some("expired"), Some("old")));
    assert_eq!(ex[1]["reason"], "vendor chart, OPS-1");
    let locks: Vec<&str> =
        r["locks"].as_array().unwrap().iter().map(|l| l["object"]["name"].as_str().unwrap()).collect();
    assert_eq!(locks, ["priv", "settings"]);

    // Lists were paginated (page size 3 over 10 deployments: 4 pages).
    let deployment_lists =
        _fx.fixture.requests().iter().filter(|s| s.path_and_query.starts_with("/apis/apps/v1/deployments?")).count();
    assert_eq!(deployment_lists, 4);
    let kinds = doc["kinds"].as_array().unwrap();
    let deployments = kinds.iter().find(|k| k["resource"] == "deployments.apps").unwrap();
    assert_eq!(deployments["objects"], 11);
}

#[test]
fn forbidden_and_expired_lists_are_reported_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = cluster();
    fixture.forbidden.insert("/api/v1/configmaps".into());
    fixture.expire_from_page.insert("/apis/apps/v1/deployments".into(), 2);
    let _fx = support::start_cluster(fixture, dir.path());
    let run = support::paved(dir.path(), &["audit", "--page-size", "3"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("forbidden configmaps: "), "{}", run.stdout);
    assert!(run.stdout.contains("inconsistent deployments.apps"), "{}", run.stdout);
    assert!(run.stdout.contains("discovery of metrics.k8s.io/v1beta1 failed"), "{}", run.stdout);
    // Every deployment still counted once despite the 410.
    let json_run = support::paved(dir.path(), &["audit", "--format", "json", "--page-size", "3"]);
    let kinds = report(&json_run)["kinds"].as_array().cloned().unwrap();
    let deployments = kinds.iter().find(|k| k["resource"] == "deployments.apps").unwrap();
    assert_eq!(deployments["objects"], 11);
    assert_eq!(deployments["outcome"], "inconsistent");
}

#[test]
fn write_reports_applies_capped_policy_reports() {
    let dir = tempfile::tempdir().unwrap();
    let fx = support::start_cluster(cluster(), dir.path());
    let run = support::paved(dir.path(), &["audit", "--write-reports", "--max-listed", "2", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let writes: Vec<_> = fx.fixture.requests().into_iter().filter(|s| s.method == "PATCH").collect();
    let strict = writes
        .iter()
        .find(|w| w.path_and_query.starts_with("/apis/wgpolicyk8s.io/v1alpha2/namespaces/strict/policyreports/paved?"))
        .unwrap_or_else(|| panic!("no PolicyReport for strict in {writes:?}"));
    assert!(strict.path_and_query.contains("fieldManager=paved"));
    let body: Value = serde_json::from_slice(&strict.body).unwrap();
    assert_eq!(body["kind"], "PolicyReport");
    assert_eq!(body["metadata"]["namespace"], "strict");
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "capped at --max-listed");
    let summary = &body["summary"];
    assert!(summary["fail"].as_u64().unwrap() > 2, "the summary counts everything: {summary}");
    assert_eq!(body["results"][0]["result"], "fail");
    assert_eq!(body["results"][0]["resources"][0]["kind"], "Deployment");
    assert!(writes.iter().any(|w| w.path_and_query.contains("clusterpolicyreports/paved")));
}

#[test]
fn write_reports_without_the_policy_report_crd_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = cluster();
    fixture.absent.insert("/apis/wgpolicyk8s.io/v1alpha2".into());
    let fx = support::start_cluster(fixture, dir.path());
    let run = support::paved(dir.path(), &["audit", "--write-reports"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    // miette wraps long lines: the words, in order, without the frame.
    let words: Vec<&str> = run.stderr.split_whitespace().filter(|w| *w != "│").collect();
    let said = words.join(" ");
    assert!(
        said.contains(
            "--write-reports: context fx has no PolicyReport kind: the wgpolicyk8s.io/ v1alpha2 CRD is not installed"
        ) || said.contains(
            "--write-reports: context fx has no PolicyReport kind: the wgpolicyk8s.io/v1alpha2 CRD is not installed"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("ApiError") && !run.stderr.contains("Failed to parse"), "{}", run.stderr);
    assert!(fx.fixture.requests().iter().all(|s| s.method == "GET" && !s.path_and_query.contains("/pods")));
    // Without --write-reports the same cluster is audited as ever.
    assert_eq!(support::paved(dir.path(), &["audit"]).code, 1);
}

#[test]
fn namespace_flag_audits_one_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let _fx = support::start_cluster(cluster(), dir.path());
    let run = support::paved(dir.path(), &["audit", "-n", "lenient", "--format", "json"]);
    assert_eq!(run.code, 0, "only Audit findings in lenient: {}", run.stderr);
    let ns = report(&run)["report"]["namespaces"].as_object().cloned().unwrap();
    assert_eq!(ns.keys().collect::<Vec<_>>(), ["lenient"]);
}

#[test]
fn images_from_the_cluster_name_workloads_and_running_digests() {
    let dir = tempfile::tempdir().unwrap();
    let _fx = support::start_cluster(cluster(), dir.path());
    let run = support::paved(dir.path(), &["images", "--cluster", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let images = report(&run)["images"].as_array().cloned().unwrap();
    let nginx = images.iter().find(|i| i["image"] == "nginx:1.27").unwrap();
    assert_eq!(nginx["pinned"], false);
    assert_eq!(nginx["running"], json!(["sha256:2222222222222222222222222222222222222222222222222222222222222222"]));
    let workloads: Vec<&str> =
        nginx["usedBy"].as_array().unwrap().iter().map(|u| u["workload"].as_str().unwrap()).collect();
    assert_eq!(workloads, ["Pod/bare", "Deployment/web-0"], "a ReplicaSet's pods belong to its Deployment");
    let busybox = images.iter().find(|i| i["repository"] == "library/busybox").unwrap();
    assert_eq!(busybox["pinned"], true);
    assert_eq!(busybox["usedBy"][0]["container"], "init");
    let table = support::paved(dir.path(), &["images", "--cluster"]);
    assert!(table.stdout.contains("RUNNING") && table.stdout.contains("222222222222"), "{}", table.stdout);
}

#[test]
fn sarif_report_is_valid_and_names_objects() {
    let dir = tempfile::tempdir().unwrap();
    let _fx = support::start_cluster(cluster(), dir.path());
    let run = support::paved(dir.path(), &["audit", "--format", "sarif"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let log = report(&run);
    let errors = support::sarif_errors(&support::sarif_validator(), &log);
    assert!(errors.is_empty(), "{errors:#?}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    let privileged = results
        .iter()
        .find(|r| r["ruleId"] == "pss-baseline/privileged" && r["properties"]["object"]["name"] == "web-0")
        .unwrap_or_else(|| panic!("{results:#?}"));
    assert_eq!(privileged["level"], "error");
    let name = privileged["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].as_str().unwrap();
    assert!(name.starts_with("Deployment strict/web-0#spec.template.spec.containers[0]"), "{name}");
}

#[test]
fn no_cluster_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = support::paved(dir.path(), &["audit"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no cluster to talk to"), "{}", run.stderr);
}

#[test]
fn config_view_prints_the_merge_as_kubectl_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a"),
        "current-context: \"\"\nclusters:\n- name: c\n  cluster: {server: https://a, certificate-authority: ca.crt}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b"), "current-context: b\nclusters:\n- name: c\n  cluster: {server: https://b}\n")
        .unwrap();
    let list = std::env::join_paths([dir.path().join("a"), dir.path().join("missing"), dir.path().join("b")]).unwrap();
    let ours =
        Command::new(env!("CARGO_BIN_EXE_paved")).args(["config", "view"]).env("KUBECONFIG", &list).output().unwrap();
    assert!(ours.status.success());
    let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();
    assert_eq!(ours["current-context"], "b");
    assert_eq!(ours["clusters"][0]["cluster"]["server"], "https://a", "the first file wins a name");
    assert_eq!(ours["clusters"][0]["cluster"]["certificate-authority"], "ca.crt");
    let Ok(kubectl) = Command::new("kubectl")
        .args(["config", "view", "--merge", "--raw", "-o", "json"])
        .env("KUBECONFIG", &list)
        .output()
    else {
        eprintln!("kubectl not installed: skipping the comparison");
        return;
    };
    let theirs: Value = serde_json::from_slice(&kubectl.stdout).unwrap();
    assert_eq!(ours, theirs);
}

/// A Kyverno policy audited against the cluster reads the cluster as it
/// would at admission: `resource.Get` finds the ConfigMap the cluster holds,
/// and a PolicyException in the cluster lifts its failures and is listed
/// among the exemptions.
#[test]
fn kyverno_policies_read_the_cluster_and_its_policy_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: replica-limit}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  variables:
  - name: limit
    expression: int(resource.Get('v1', 'configmaps', 'plain', 'limits').data.replicas)
  validations:
  - expression: object.spec.replicas <= variables.limit
    messageExpression: \"'at most ' + string(variables.limit) + ' replicas'\"
---
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: admission-only}
spec:
  evaluation: {background: {enabled: false}}
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: 'false'
",
    )
    .unwrap();
    std::fs::write(dir.path().join(".paved.yaml"), "policy-paths: [policy.yaml]\nprofile: pss-baseline\n").unwrap();
    let mut fixture = cluster();
    let with_replicas = |ns: &str, name: &str, replicas: i64| {
        let mut d = deployment(ns, name, json!({}), false);
        d["spec"]["replicas"] = json!(replicas);
        d
    };
    fixture.add("/apis/apps/v1/deployments", with_replicas("plain", "big", 9));
    fixture.add("/apis/apps/v1/deployments", with_replicas("plain", "excused", 9));
    fixture.add(
        "/api/v1/configmaps",
        json!({"metadata": {"name": "limits", "namespace": "plain"}, "data": {"replicas": "2"}}),
    );
    fixture.add(
        "/apis/kyverno.io/v2/policyexceptions",
        json!({"metadata": {"name": "batch-jobs", "namespace": "plain",
                            "annotations": {"policies.kyverno.io/description": "the nightly batch, OPS-7"}},
               "spec": {"exceptions": [{"policyName": "replica-limit"}],
                        "match": {"any": [{"resources": {"kinds": ["Deployment"], "names": ["excused"]}}]}}}),
    );
    let _fx = support::start_cluster(fixture, dir.path());
    let run = support::paved(dir.path(), &["audit", "--format", "json"]);
    let doc = report(&run);
    let r = &doc["report"];
    let faults = r["namespaces"]["plain"]["faults"].as_array().unwrap();
    let limited: Vec<&str> = faults
        .iter()
        .filter(|f| f["policy"] == "kyverno/replica-limit")
        .map(|f| f["object"]["name"].as_str().unwrap())
        .collect();
    assert!(limited.contains(&"big"), "{faults:#?}\n{}", run.stderr);
    let big = faults.iter().find(|f| f["policy"] == "kyverno/replica-limit" && f["object"]["name"] == "big").unwrap();
    assert!(big["message"].as_str().unwrap().contains("at most 2 replicas"), "the limit came from the cluster: {big}");
    assert!(!limited.contains(&"excused"), "the PolicyException lifts it: {faults:#?}");
    assert!(
        !r["policies"].as_object().unwrap().contains_key("kyverno/admission-only"),
        "a policy without background evaluation does not judge what exists: {:#?}",
        r["policies"]
    );
    let exceptions: Vec<&Value> =
        r["exemptions"].as_array().unwrap().iter().filter(|e| e["state"] == "kyverno").collect();
    assert_eq!(exceptions.len(), 1, "{:#?}", r["exemptions"]);
    assert_eq!(exceptions[0]["object"]["name"], "batch-jobs");
    assert_eq!(exceptions[0]["policies"], json!(["kyverno/replica-limit"]));
    assert_eq!(exceptions[0]["reason"], "the nightly batch, OPS-7");
}
