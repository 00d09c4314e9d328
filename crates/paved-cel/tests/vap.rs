#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use paved_cel::vap::{Vaps, resource_of};
use paved_core::policy::Action;
use serde_json::{Value, json};

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn binding(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
           "metadata": {"name": name}, "spec": spec})
}

fn deployments_rule() -> Value {
    json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                              "resources": ["deployments"]}]})
}

fn deployment(name: &str, namespace: &str, replicas: i64, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": namespace, "labels": labels},
           "spec": {"replicas": replicas}})
}

fn create_request(object: &Value) -> Value {
    json!({"operation": "CREATE", "userInfo": {"username": "alice"},
           "kind": {"group": "apps", "version": "v1", "kind": object["kind"]},
           "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"]})
}

fn judge(vaps: &Vaps, object: &Value) -> Vec<(String, Action, String)> {
    vaps.judge(object, &Value::Null, &create_request(object))
        .into_iter()
        .map(|f| (f.policy, f.action, f.message))
        .collect()
}

fn load(docs: &[Value]) -> Vaps {
    let (vaps, errors) = Vaps::from_docs(docs, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    vaps
}

fn max_replicas(limit: i64) -> Value {
    policy(
        "max-replicas",
        json!({
            "matchConstraints": deployments_rule(),
            "validations": [{"expression": format!("object.spec.replicas <= {limit}"),
                             "messageExpression": format!("'replicas must be at most {limit}, got ' + string(object.spec.replicas)")}]
        }),
    )
}

#[test]
fn a_binding_applies_its_policy_with_its_validation_actions() {
    let vaps =
        load(&[max_replicas(5), binding("deny", json!({"policyName": "max-replicas", "validationActions": ["Deny"]}))]);
    assert_eq!(
        judge(&vaps, &deployment("web", "shop", 10, json!({}))),
        [("vap/max-replicas/deny".to_owned(), Action::Deny, "replicas must be at most 5, got 10".to_owned())]
    );
    assert!(judge(&vaps, &deployment("web", "shop", 3, json!({}))).is_empty());

    let vaps = load(&[
        max_replicas(5),
        binding("warn", json!({"policyName": "max-replicas", "validationActions": ["Warn", "Audit"]})),
        binding("audit", json!({"policyName": "max-replicas", "validationActions": ["Audit"]})),
    ]);
    let actions: Vec<Action> =
        judge(&vaps, &deployment("web", "shop", 10, json!({}))).into_iter().map(|f| f.1).collect();
    assert_eq!(actions, [Action::Warn, Action::Audit]);
}

#[test]
fn match_constraints_and_match_resources_both_select() {
    let vaps = load(&[
        policy(
            "replicas",
            json!({
                "matchConstraints": {
                    "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["deployments"]}],
                    "excludeResourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["*"],
                                              "resources": ["deployments"], "resourceNames": ["legacy"]}],
                    "objectSelector": {"matchExpressions": [{"key": "paved.dev/skip", "operator": "DoesNotExist"}]}
                },
                "validations": [{"expression": "object.spec.replicas <= 5", "message": "too many"}]
            }),
        ),
        binding(
            "prod-only",
            json!({"policyName": "replicas", "validationActions": ["Deny"],
                   "matchResources": {"namespaceSelector": {"matchLabels": {"env": "prod"}},
                                      "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]}}),
        ),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"env": "prod"}}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab", "labels": {"env": "dev"}}}),
    ]);
    assert_eq!(judge(&vaps, &deployment("web", "shop", 10, json!({}))).len(), 1);
    assert!(judge(&vaps, &deployment("web", "lab", 10, json!({}))).is_empty(), "namespaceSelector");
    assert!(judge(&vaps, &deployment("legacy", "shop", 10, json!({}))).is_empty(), "excludeResourceRules");
    assert!(judge(&vaps, &deployment("web", "shop", 10, json!({"paved.dev/skip": "y"}))).is_empty(), "objectSelector");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}, "spec": {}});
    assert!(judge(&vaps, &pod).is_empty(), "resources");
}

/// A binding's `matchResources` may narrow by selectors alone; a Namespace
/// is selected by `namespaceSelector` through its own labels.
#[test]
fn a_binding_without_resource_rules_narrows_by_its_selectors() {
    let vaps = load(&[
        policy(
            "labelled",
            json!({
                "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE"],
                                                         "resources": ["deployments", "namespaces"]}]},
                "validations": [{"expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
                                 "message": "needs a team"}]
            }),
        ),
        binding(
            "prod-only",
            json!({"policyName": "labelled", "validationActions": ["Deny"],
                   "matchResources": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}),
        ),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"env": "prod"}}}),
    ]);
    assert_eq!(judge(&vaps, &deployment("web", "shop", 1, json!({}))).len(), 1);
    assert!(judge(&vaps, &deployment("web", "lab", 1, json!({}))).is_empty(), "lab is not labelled env=prod");
    let namespace = |labels: Value| {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new", "labels": labels}});
        let request = json!({"operation": "CREATE", "userInfo": {},
                             "kind": {"group": "", "version": "v1", "kind": "Namespace"}, "name": "new"});
        vaps.judge(&ns, &Value::Null, &request)
    };
    assert_eq!(namespace(json!({"env": "prod"})).len(), 1, "a Namespace is selected by its own labels");
    assert!(namespace(json!({"env": "dev"})).is_empty());
}

#[test]
fn params_by_name_by_selector_and_when_missing() {
    let limit_policy = policy(
        "limit",
        json!({
            "paramKind": {"apiVersion": "example.com/v1", "kind": "ReplicaLimit"},
            "matchConstraints": deployments_rule(),
            "validations": [{"expression": "object.spec.replicas <= params.max",
                             "messageExpression": "'at most ' + string(params.max)"}]
        }),
    );
    let limit = |name: &str, max: i64, tier: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "ReplicaLimit",
               "metadata": {"name": name, "namespace": "policies", "labels": {"tier": tier}}, "max": max})
    };
    let by_name = binding(
        "by-name",
        json!({"policyName": "limit", "validationActions": ["Deny"],
               "paramRef": {"name": "small", "namespace": "policies"}}),
    );
    let vaps = load(&[limit_policy.clone(), by_name, limit("small", 2, "a"), limit("large", 50, "a")]);
    let messages: Vec<String> =
        judge(&vaps, &deployment("web", "shop", 10, json!({}))).into_iter().map(|f| f.2).collect();
    assert_eq!(messages, ["at most 2"]);

    // A selector evaluates the policy once per param object selected.
    let by_selector = binding(
        "by-selector",
        json!({"policyName": "limit", "validationActions": ["Deny"],
               "paramRef": {"selector": {"matchLabels": {"tier": "a"}}, "namespace": "policies",
                            "parameterNotFoundAction": "Deny"}}),
    );
    let vaps =
        load(&[limit_policy.clone(), by_selector, limit("two", 2, "a"), limit("five", 5, "a"), limit("one", 1, "b")]);
    let mut messages: Vec<String> =
        judge(&vaps, &deployment("web", "shop", 4, json!({}))).into_iter().map(|f| f.2).collect();
    messages.sort();
    assert_eq!(messages, ["at most 2"]);

    let missing = |action: &str| {
        binding(
            "missing",
            json!({"policyName": "limit", "validationActions": ["Warn"],
                   "paramRef": {"name": "nope", "parameterNotFoundAction": action}}),
        )
    };
    let vaps = load(&[limit_policy.clone(), missing("Deny")]);
    let found = judge(&vaps, &deployment("web", "shop", 1, json!({})));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, Action::Deny, "a missing param with parameterNotFoundAction Deny denies");
    assert!(found[0].2.contains("no params found"), "{}", found[0].2);
    let vaps = load(&[limit_policy, missing("Allow")]);
    assert!(judge(&vaps, &deployment("web", "shop", 100, json!({}))).is_empty());
}

/// A `paramRef` without a namespace looks where the API server looks: in
/// the namespace of the object judged, and at cluster-scoped params; a
/// cluster-scoped object finds only cluster-scoped params.
#[test]
fn a_param_ref_without_a_namespace_reads_the_params_of_the_objects_namespace() {
    let limit_policy = policy(
        "limit",
        json!({
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                "operations": ["CREATE"], "resources": ["deployments", "namespaces"]}]},
            "validations": [{"expression": "!has(object.spec) || object.spec.replicas <= int(params.data.max)",
                             "messageExpression": "'at most ' + params.data.max"}]
        }),
    );
    let bind = binding(
        "per-namespace",
        json!({"policyName": "limit", "validationActions": ["Deny"], "paramRef": {"name": "limits"}}),
    );
    let limits = |namespace: &str, max: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "limits", "namespace": namespace}, "data": {"max": max}})
    };
    let vaps = load(&[limit_policy.clone(), bind.clone(), limits("shop", "2"), limits("lab", "50")]);
    let messages = |vaps: &Vaps, ns: &str, replicas: i64| -> Vec<String> {
        judge(vaps, &deployment("web", ns, replicas, json!({}))).into_iter().map(|f| f.2).collect()
    };
    assert_eq!(messages(&vaps, "shop", 10), ["at most 2"]);
    assert!(messages(&vaps, "lab", 10).is_empty(), "lab's own limit is 50");
    let none = messages(&vaps, "elsewhere", 1);
    assert_eq!(none.len(), 1, "no params in that namespace: parameterNotFoundAction Deny");
    assert!(none[0].contains("no params found"), "{none:?}");

    // A cluster-scoped object finds no namespaced params.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}});
    let request = json!({"operation": "CREATE", "userInfo": {}, "kind": {"group": "", "version": "v1", "kind": "Namespace"},
                         "name": "new"});
    let found = vaps.judge(&namespace, &Value::Null, &request);
    assert!(found.len() == 1 && found[0].message.contains("no params found"), "{found:?}");

    // Objects added later (a server's watches, `--inventory`) are read
    // beside the policy files'; a change of them changes the verdict.
    let vaps = load(&[limit_policy, bind]);
    assert!(messages(&vaps, "shop", 10)[0].contains("no params found"));
    vaps.objects().set(&[limits("shop", "20")]);
    assert!(messages(&vaps, "shop", 10).is_empty());
    vaps.objects().set(&[limits("shop", "5")]);
    assert_eq!(messages(&vaps, "shop", 10), ["at most 5"]);
    assert_eq!(vaps.objects().kinds(), [("v1".to_owned(), "ConfigMap".to_owned())]);
}

#[test]
fn failure_policy_decides_what_an_evaluation_error_does() {
    let spec = |failure: &str| {
        json!({"failurePolicy": failure, "matchConstraints": deployments_rule(),
               "validations": [{"expression": "object.spec.template.spec.hostNetwork == false"}]})
    };
    let bind = binding("b", json!({"policyName": "p", "validationActions": ["Deny"]}));
    let vaps = load(&[policy("p", spec("Fail")), bind.clone()]);
    let found = judge(&vaps, &deployment("web", "shop", 1, json!({})));
    assert_eq!(found.len(), 1);
    assert!(found[0].2.starts_with("policy error:"), "{}", found[0].2);
    let vaps = load(&[policy("p", spec("Ignore")), bind]);
    assert!(judge(&vaps, &deployment("web", "shop", 1, json!({}))).is_empty());
}

#[test]
fn a_policy_that_does_not_compile_names_its_field_and_the_others_still_judge() {
    let broken = policy(
        "broken",
        json!({"matchConstraints": deployments_rule(), "validations": [{"expression": "object.spec.replicas <="}]}),
    );
    let (vaps, errors) = Vaps::from_docs(
        &[
            broken,
            binding("b1", json!({"policyName": "broken", "validationActions": ["Deny"]})),
            max_replicas(5),
            binding("b2", json!({"policyName": "max-replicas", "validationActions": ["Deny"]})),
            binding("b3", json!({"policyName": "absent", "validationActions": ["Deny"]})),
        ],
        &[],
    );
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{text:?}");
    assert!(text[0].starts_with("ValidatingAdmissionPolicy broken: spec.validations[0].expression:"), "{}", text[0]);
    assert!(text[1].contains("b1") && text[1].contains("no such ValidatingAdmissionPolicy"), "{}", text[1]);
    assert!(text[2].contains("b3"), "{}", text[2]);
    assert_eq!(judge(&vaps, &deployment("web", "shop", 10, json!({}))).len(), 1);
}

#[test]
fn the_canonical_serialisations_load_with_errors_naming_their_fields() {
    let dir = paved_corpus::path("k8s-api/HEAD");
    let read =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    let docs = [
        read("admissionregistration.k8s.io.v1.ValidatingAdmissionPolicy.json"),
        read("admissionregistration.k8s.io.v1.ValidatingAdmissionPolicyBinding.json"),
    ];
    let (vaps, errors) = Vaps::from_docs(&docs, &[]);
    assert!(vaps.is_empty());
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|e| e.contains("failurePolicy") && e.contains("failurePolicyValue")), "{text:?}");
    assert!(text.iter().any(|e| e.contains("policyNameValue")), "{text:?}");
}

#[test]
fn resources_are_guessed_from_kinds_as_the_api_server_does() {
    assert_eq!(resource_of("Deployment"), "deployments");
    assert_eq!(resource_of("Ingress"), "ingresses");
    assert_eq!(resource_of("NetworkPolicy"), "networkpolicies");
    assert_eq!(resource_of("Pod"), "pods");
}
