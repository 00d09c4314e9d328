//! From admission, foreign policies see the request: its operation, user and
//! old object, as Gatekeeper and the API server give them.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use paved_core::node::Node;
use paved_gatekeeper::policies::load;
use paved_gatekeeper::template::Engine;
use serde_json::json;

fn privileged_pod() -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root", "namespace": "shop"},
           "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": true}}]}})
}

#[test]
fn templates_see_the_operation_and_skip_updates_as_written() {
    let dir = paved_corpus::path("gatekeeper-library/pod-security-policy/privileged-containers");
    let paths = [dir.join("template.yaml"), dir.join("samples/psp-privileged-container/constraint.yaml")];
    for engine in [Engine::Rego, Engine::Cel] {
        let (policies, problems) = load(&paths, engine);
        assert!(problems.is_empty(), "{problems:?}");
        let foreign = policies.into_foreign();
        let pod = privileged_pod();
        let node = Node::from_json(&pod);
        let found = |request: Option<&serde_json::Value>| {
            foreign.iter().map(|f| f.evaluate(&node, request).len()).sum::<usize>()
        };
        assert_eq!(found(None), 1, "{engine:?}: a manifest is judged as created");
        let request = |operation: &str| {
            json!({"uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": operation,
                   "name": "root", "namespace": "shop", "userInfo": {"username": "alice"},
                   "object": pod, "oldObject": if operation == "UPDATE" { pod.clone() } else { serde_json::Value::Null }})
        };
        assert_eq!(found(Some(&request("CREATE"))), 1, "{engine:?}");
        // The template exempts updates (the spec of a running pod cannot change).
        assert_eq!(found(Some(&request("UPDATE"))), 0, "{engine:?}: the operation reached the template");
    }
}

/// Loads a template of `kind` whose Rego is `rego`, with a constraint per
/// `(name, parameters)`, and judges the privileged pod with them: the
/// findings.
fn judge_with_template(kind: &str, rego: &str, constraints: &[(&str, &str)]) -> Vec<paved_core::eval::ForeignFinding> {
    let dir = tempfile::tempdir().unwrap();
    let name = kind.to_lowercase();
    let rego: String = rego.lines().map(|l| format!("      {l}\n")).collect();
    std::fs::write(
        dir.path().join("template.yaml"),
        format!(
            "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {{name: {name}}}\nspec:\n  crd: {{spec: {{names: {{kind: {kind}}}}}}}\n  targets:\n  - target: admission.k8s.gatekeeper.sh\n    rego: |\n{rego}"
        ),
    )
    .unwrap();
    for (constraint, parameters) in constraints {
        std::fs::write(
            dir.path().join(format!("{constraint}.yaml")),
            format!("apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\nmetadata: {{name: {constraint}}}\nspec:\n  parameters: {parameters}\n"),
        )
        .unwrap();
    }
    let (policies, problems) = load(&[dir.path().to_owned()], Engine::Rego);
    assert!(problems.is_empty(), "{problems:?}");
    let pod = privileged_pod();
    let node = Node::from_json(&pod);
    policies.into_foreign().iter().flat_map(|f| f.evaluate(&node, None)).collect()
}

#[test]
fn an_undefined_assignment_ends_the_body_as_in_opa() {
    // `t := <undefined>` must stop the body: then `not f(t)` never runs.
    // regorus's virtual machine went on past it; paved guards the assignment.
    let rego = r#"package k8sundefined
violation[{"msg": msg}] {
  container := input.review.object.spec.containers[_]
  ranges := input.parameters.ranges
  not allowed(container, ranges)
  msg := sprintf("%v is not allowed", [container.name])
}
allowed(container, ranges) {
  ranges[_] == container.name
}"#;
    let found = judge_with_template("K8sUndefined", rego, &[("no-ranges", "{}"), ("ranges", "{ranges: [web]}")]);
    let policies: Vec<&str> = found.iter().map(|f| f.policy.as_str()).collect();
    // Without ranges the body stops at the assignment; with them, `app` is not among them.
    assert_eq!(policies, ["gatekeeper/k8sundefined/ranges"]);
}

#[test]
fn a_runaway_template_is_stopped_and_reported_not_passed() {
    let rego = r#"package k8sforever
violation[{"msg": "never"}] {
  xs := numbers.range(1, count(input.review.object.spec.containers) * 1000000)
  xs[a] + xs[b] + xs[c] < 0
}"#;
    let started = std::time::Instant::now();
    let found = judge_with_template("K8sForever", rego, &[("forever", "{}")]);
    // 10^18 steps unbounded; the limits stop it well within an admission timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.starts_with("policy error:"), "{}", found[0].message);
}

#[test]
fn validating_admission_policies_see_the_user_and_the_old_object() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vap.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-shrinking}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [UPDATE], resources: [deployments]}
  matchConditions:
  - {name: not-the-operator, expression: \"request.userInfo.username != 'system:serviceaccount:ops:scaler'\"}
  validations:
  - expression: object.spec.replicas >= oldObject.spec.replicas
    messageExpression: \"'replicas may not go down from ' + string(oldObject.spec.replicas)\"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-shrinking}
spec: {policyName: no-shrinking, validationActions: [Deny]}
",
    )
    .unwrap();
    let (policies, problems) = load(&[dir.path().to_owned()], Engine::Rego);
    assert!(problems.is_empty(), "{problems:?}");
    let foreign = policies.into_foreign();
    let deploy = |replicas: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": replicas}})
    };
    let request = |user: &str| {
        json!({"uid": "1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
               "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
               "operation": "UPDATE", "name": "web", "namespace": "shop", "userInfo": {"username": user},
               "object": deploy(2), "oldObject": deploy(5)})
    };
    let object = deploy(2);
    let node = Node::from_json(&object);
    let messages = |request: Option<&serde_json::Value>| -> Vec<String> {
        foreign.iter().flat_map(|f| f.evaluate(&node, request)).map(|f| f.message).collect()
    };
    assert_eq!(messages(Some(&request("alice"))), ["replicas may not go down from 5"]);
    assert!(messages(Some(&request("system:serviceaccount:ops:scaler"))).is_empty(), "matchConditions read the user");
    assert!(messages(None).is_empty(), "a manifest is a CREATE, which the policy does not match");
}

/// What a server must watch for `data.inventory`: the kinds each template's
/// `requires-sync-data` names, a Gatekeeper `Config`'s `syncOnly`, and
/// Namespaces once a constraint selects by namespace labels.
#[test]
fn synced_kinds_come_from_templates_configs_and_namespace_selectors() {
    let dir = tempfile::tempdir().unwrap();
    let library = paved_corpus::path("gatekeeper-library/general");
    let kinds = |paths: &[PathBuf]| -> Vec<String> {
        let (policies, problems) = load(paths, Engine::Rego);
        assert!(problems.is_empty(), "{problems:?}");
        policies.synced_kinds().iter().map(|k| format!("{}/{}", k.api_version(), k.kind)).collect()
    };
    let pdb = library.join("poddisruptionbudget");
    let pdb_paths = [pdb.join("template.yaml"), pdb.join("samples/poddisruptionbudget/constraint.yaml")];
    assert_eq!(kinds(&pdb_paths), ["policy/v1/PodDisruptionBudget"]);

    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: gatekeeper-system}\n\
         spec:\n  sync:\n    syncOnly:\n    - {group: '', version: v1, kind: Service}\n    - {group: apps, version: v1, kind: Deployment}\n",
    )
    .unwrap();
    let selecting = dir.path().join("selecting.yaml");
    std::fs::write(
        &selecting,
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sPodDisruptionBudget\nmetadata: {name: prod-only}\n\
         spec:\n  match:\n    namespaceSelector: {matchLabels: {env: prod}}\n",
    )
    .unwrap();
    let mut paths = pdb_paths.to_vec();
    paths.extend([config, selecting]);
    assert_eq!(kinds(&paths), ["v1/Namespace", "v1/Service", "apps/v1/Deployment", "policy/v1/PodDisruptionBudget"]);

    // Without constraints nothing is evaluated, so nothing is watched.
    assert!(kinds(&[pdb.join("template.yaml")]).is_empty());
}
