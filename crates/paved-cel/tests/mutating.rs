//! MutatingAdmissionPolicy and its binding, unchanged, as the API server
//! applies them: apply configurations merged as server-side apply merges,
//! JSON Patches built in CEL, match conditions, variables and params.
#![allow(clippy::unwrap_used, clippy::panic)]

use paved_cel::vap::Vaps;
use serde_json::{Value, json};

fn load(docs: &[Value]) -> Vaps {
    let (vaps, errors) = Vaps::from_docs(docs, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    vaps
}

fn policy(version: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("admissionregistration.k8s.io/{version}"), "kind": "MutatingAdmissionPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn binding(version: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("admissionregistration.k8s.io/{version}"), "kind": "MutatingAdmissionPolicyBinding",
           "metadata": {"name": name}, "spec": spec})
}

fn pods() -> Value {
    json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]})
}

fn pod(init: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "myapp", "namespace": "default"},
           "spec": {"initContainers": init, "containers": [{"name": "app", "image": "example/app:v1"}]}})
}

/// The documentation's sidecar: an init container added unless there.
fn sidecar(version: &str) -> Vec<Value> {
    vec![
        policy(
            version,
            "sidecar-policy",
            json!({
                "matchConstraints": pods(),
                "matchConditions": [{"name": "does-not-already-have-sidecar",
                    "expression": "!object.spec.initContainers.exists(ic, ic.name == \"mesh-proxy\")"}],
                "failurePolicy": "Fail",
                "reinvocationPolicy": "IfNeeded",
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                    "Object{spec: Object.spec{initContainers: [Object.spec.initContainers{name: \"mesh-proxy\", image: \"mesh/proxy:v1.0.0\", args: [\"proxy\", \"sidecar\"], restartPolicy: \"Always\"}]}}"}}],
            }),
        ),
        binding(version, "sidecar-binding", json!({"policyName": "sidecar-policy"})),
    ]
}

#[test]
fn an_apply_configuration_adds_the_sidecar_once_in_every_api_version() {
    for version in ["v1alpha1", "v1beta1", "v1"] {
        let vaps = load(&sidecar(version));
        assert!(vaps.mutates());
        let before = pod(json!([{"name": "myapp-initializer", "image": "example/initializer:v1.0.0"}]));
        let out = vaps.mutate(&before, &Value::Null, None);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.by, ["map/sidecar-policy/sidecar-binding"]);
        assert_eq!(
            out.object["spec"]["initContainers"],
            json!([{"name": "myapp-initializer", "image": "example/initializer:v1.0.0"},
                   {"name": "mesh-proxy", "image": "mesh/proxy:v1.0.0", "args": ["proxy", "sidecar"], "restartPolicy": "Always"}]),
            "{version}: appended, by name, after what was there"
        );
        // Reinvoked on its own output: the match condition stops it.
        let again = vaps.mutate(&out.object, &Value::Null, None);
        assert!(again.by.is_empty() && again.object == out.object);
        // It judges nothing.
        use paved_core::eval::Foreign as _;
        let node = paved_core::node::Node::from_json(&before);
        assert!(vaps.evaluate(&node, None).is_empty());
    }
}

#[test]
fn json_patches_are_built_in_cel_with_escaped_keys_and_typed_values() {
    let vaps = load(&[
        policy(
            "v1beta1",
            "label",
            json!({
                "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]},
                "variables": [{"name": "env", "expression": "\"test\""}],
                "mutations": [
                    {"patchType": "JSONPatch", "jsonPatch": {"expression":
                        "[JSONPatch{op: \"add\", path: \"/metadata/labels/\" + jsonpatch.escapeKey(\"example.com/environment\"), value: variables.env}]"}},
                    {"patchType": "JSONPatch", "jsonPatch": {"expression":
                        "has(object.spec.selector) ? [] : [JSONPatch{op: \"add\", path: \"/spec/selector\", value: Object.spec.selector{matchLabels: {\"environment\": variables.env}}}]"}},
                    {"patchType": "JSONPatch", "jsonPatch": {"expression":
                        "[JSONPatch{op: \"test\", path: \"/metadata/labels/example.com~1environment\", value: \"test\"}, JSONPatch{op: \"replace\", path: \"/spec/replicas\", value: object.spec.replicas + 1}]"}},
                ],
            }),
        ),
        binding("v1beta1", "label", json!({"policyName": "label"})),
    ]);
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "labels": {}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}});
    let out = vaps.mutate(&deploy, &Value::Null, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.object["metadata"]["labels"], json!({"example.com/environment": "test"}));
    assert_eq!(out.object["spec"]["selector"], json!({"matchLabels": {"environment": "test"}}));
    assert_eq!(out.object["spec"]["replicas"], 2, "each mutation sees the ones before");
}

#[test]
fn params_come_from_the_binding_and_failures_follow_the_failure_policy() {
    let params = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "default"},
        "data": {"team": "payments"}});
    let docs = vec![
        policy(
            "v1",
            "owner",
            json!({
                "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": pods(),
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                    "Object{metadata: Object.metadata{labels: {\"team\": params.data.team}}}"}}],
            }),
        ),
        binding(
            "v1",
            "owner",
            json!({"policyName": "owner", "paramRef": {"name": "owner", "namespace": "default",
            "parameterNotFoundAction": "Deny"}}),
        ),
        params,
    ];
    let (vaps, errors) = Vaps::from_docs(&docs, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    let out = vaps.mutate(&pod(json!([])), &Value::Null, None);
    assert_eq!(out.object["metadata"]["labels"], json!({"team": "payments"}), "{:?}", out.errors);
    // An atomic list changed: the API server refuses (Fail) or skips (Ignore).
    for (failure_policy, refuses) in [("Fail", true), ("Ignore", false)] {
        let vaps = load(&[
            policy(
                "v1",
                "args",
                json!({"matchConstraints": pods(), "failurePolicy": failure_policy,
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                    "Object{spec: Object.spec{containers: [Object.spec.containers{name: \"app\", args: [\"--debug\"]}]}}"}}]}),
            ),
            binding("v1", "args", json!({"policyName": "args"})),
        ]);
        let mut with_args = pod(json!([]));
        with_args["spec"]["containers"][0]["args"] = json!(["--quiet"]);
        let out = vaps.mutate(&with_args, &Value::Null, None);
        assert_eq!(out.object, with_args, "a failed binding changes nothing");
        let (id, why, refused) = &out.errors[0];
        assert_eq!((id.as_str(), *refused), ("map/args/args", refuses));
        assert!(why.contains("atomic list"), "{why}");
    }
}

#[test]
fn what_cannot_be_loaded_names_its_field() {
    let (_, errors) = Vaps::from_docs(
        &[
            policy("v1", "empty", json!({"matchConstraints": pods(), "mutations": []})),
            policy("v1", "typo", json!({"matchConstraints": pods(), "mutations": [{"patchType": "StrategicMerge"}]})),
            policy(
                "v1",
                "broken",
                json!({"matchConstraints": pods(), "mutations": [{"patchType": "JSONPatch",
                "jsonPatch": {"expression": "[JSONPatch{op: "}}]}),
            ),
            binding("v1", "orphan", json!({"policyName": "nowhere"})),
        ],
        &[],
    );
    let fields: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(fields.len(), 4, "{fields:#?}");
    assert!(fields[0].contains("spec.mutations must have at least one entry"), "{fields:#?}");
    assert!(fields[1].contains("spec.mutations[0].patchType"), "{fields:#?}");
    assert!(fields[2].contains("spec.mutations[0].jsonPatch.expression"), "{fields:#?}");
    assert!(fields[3].contains("no such MutatingAdmissionPolicy loaded"), "{fields:#?}");
}

/// `reinvocationPolicy: IfNeeded` runs a policy once more when a policy
/// after it changed the object; `Never` does not.
#[test]
fn a_policy_that_asks_is_reinvoked_after_a_later_change() {
    for (reinvocation, counted) in [("IfNeeded", "2"), ("Never", "1")] {
        let vaps = load(&[
            policy(
                "v1",
                "a-count",
                json!({"matchConstraints": pods(), "reinvocationPolicy": reinvocation,
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                    "Object{metadata: Object.metadata{annotations: {\"containers\": string(size(object.spec.containers))}}}"}}]}),
            ),
            binding("v1", "a-count", json!({"policyName": "a-count"})),
            policy(
                "v1",
                "b-sidecar",
                json!({"matchConstraints": pods(),
                "matchConditions": [{"name": "once", "expression": "!object.spec.containers.exists(c, c.name == \"proxy\")"}],
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                    "Object{spec: Object.spec{containers: [Object.spec.containers{name: \"proxy\", image: \"proxy:1\"}]}}"}}]}),
            ),
            binding("v1", "b-sidecar", json!({"policyName": "b-sidecar"})),
        ]);
        let out = vaps.mutate(&pod(json!([])), &Value::Null, None);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.object["metadata"]["annotations"]["containers"], counted, "{reinvocation}");
        assert_eq!(out.object["spec"]["containers"].as_array().unwrap().len(), 2);
    }
}

/// A Kyverno PolicyException lifts a MutatingPolicy for the objects it
/// selects, as it lifts a validation: a Pod it names is left as it is, and
/// a Deployment it names keeps its pod template (autogen), while others
/// are mutated.
#[test]
fn a_kyverno_policy_exception_lifts_a_mutating_policy() {
    let docs = [
        json!({"apiVersion": "policies.kyverno.io/v1alpha1", "kind": "MutatingPolicy", "metadata": {"name": "add-label"},
            "spec": {"matchConstraints": pods(), "mutations": [{"patchType": "ApplyConfiguration",
                "applyConfiguration": {"expression": "Object{metadata: Object.metadata{labels: {\"team\": \"web\"}}}"}}]}}),
        json!({"apiVersion": "policies.kyverno.io/v1alpha1", "kind": "PolicyException",
            "metadata": {"name": "legacy", "namespace": "policies"},
            "spec": {"policyRefs": [{"name": "add-label", "kind": "MutatingPolicy"}],
                "matchConditions": [{"name": "legacy", "expression": "object.metadata.name.startsWith('legacy-')"}]}}),
        // A ref to a ValidatingPolicy of the same name lifts no mutation.
        json!({"apiVersion": "policies.kyverno.io/v1alpha1", "kind": "PolicyException",
            "metadata": {"name": "other-kind", "namespace": "policies"},
            "spec": {"policyRefs": [{"name": "add-label", "kind": "ValidatingPolicy"}],
                "matchConditions": [{"name": "all", "expression": "true"}]}}),
    ];
    let vaps = load(&docs);
    let labelled =
        |object: &Value| vaps.mutate(object, &Value::Null, None).object.pointer("/metadata/labels/team").cloned();
    let mut legacy = pod(json!([]));
    legacy["metadata"]["name"] = json!("legacy-app");
    assert_eq!(labelled(&legacy), None, "excepted");
    assert_eq!(labelled(&pod(json!([]))), Some(json!("web")));
    let deployment = |name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "app", "image": "example/app:v1"}]}}}})
    };
    let template_label = |object: &Value| {
        vaps.mutate(object, &Value::Null, None).object.pointer("/spec/template/metadata/labels/team").cloned()
    };
    assert_eq!(template_label(&deployment("legacy-web")), None, "the controller's exception covers its template");
    assert_eq!(template_label(&deployment("web")), Some(json!("web")), "autogen");
}
