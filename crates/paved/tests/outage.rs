//! What the API server does with the webhook configurations `paved install`
//! prints (and the Helm chart renders, which `install.rs` proves identical)
//! while paved is unreachable. An evaluator decides, as the API server does,
//! which webhooks a request is sent to: rules (groups, versions, resources
//! and subresources, operations, scope), the namespace and object
//! selectors, and the match conditions, evaluated with paved-cel; then the
//! failure policy of each webhook called. Requests are shaped as kubectl,
//! the controllers and the scheduler send them.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const CONFIG: &str = r#"
profile: paved-road
exceptions:
  authority: {groups: [platform-admins]}
locks:
  authority: {groups: [sre]}
  protect:
  - {kinds: [PersistentVolumeClaim, ConfigMap], namespaces: ["prod-*"]}
  - {labelSelector: {tier: data}}
"#;

/// The webhooks of what `paved install` prints with `config`.
fn printed_webhooks(config: &str) -> Vec<Value> {
    generated_webhooks(config, |path| {
        let mut install = Command::new(env!("CARGO_BIN_EXE_paved"));
        install.args(["install", "--config", path.to_str().unwrap()]).stdin(Stdio::null());
        install
    })
}

/// The webhooks in what `command` prints for a configuration file holding `config`.
fn generated_webhooks(config: &str, command: impl FnOnce(&Path) -> Command) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paved.yaml");
    std::fs::write(&path, config).unwrap();
    let out = command(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Option<Value>> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    docs.into_iter()
        .flatten()
        .filter(|d| d["kind"] == "ValidatingWebhookConfiguration" || d["kind"] == "MutatingWebhookConfiguration")
        .flat_map(|d| d["webhooks"].as_array().unwrap().clone())
        .collect()
}

/// One request, as the API server knows it before calling webhooks.
#[derive(Clone)]
struct Request {
    operation: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
    /// The kind of the object sent (Binding, Eviction, Scale, or the resource's own).
    kind: &'static str,
    namespace: &'static str,
    name: &'static str,
    /// Labels of the request's namespace; for a Namespace, its own.
    namespace_labels: Value,
    user: (&'static str, &'static [&'static str]),
    object: Value,
    old_object: Value,
}

const DEV: (&str, &[&str]) = ("dev@example.com", &["developers", "system:authenticated"]);
const ADMIN: (&str, &[&str]) = ("root@example.com", &["system:masters", "system:authenticated"]);
const RS_CONTROLLER: (&str, &[&str]) =
    ("system:serviceaccount:kube-system:replicaset-controller", &["system:serviceaccounts"]);
const DEPLOYMENT_CONTROLLER: (&str, &[&str]) =
    ("system:serviceaccount:kube-system:deployment-controller", &["system:serviceaccounts"]);
const GC: (&str, &[&str]) =
    ("system:serviceaccount:kube-system:generic-garbage-collector", &["system:serviceaccounts"]);
const NAMESPACE_CONTROLLER: (&str, &[&str]) =
    ("system:serviceaccount:kube-system:namespace-controller", &["system:serviceaccounts"]);
const SCHEDULER: (&str, &[&str]) = ("system:kube-scheduler", &["system:authenticated"]);
const KUBELET: (&str, &[&str]) = ("system:node:worker-1", &["system:nodes", "system:authenticated"]);

impl Request {
    fn cluster_scoped(&self) -> bool {
        self.namespace.is_empty() || self.kind == "Namespace"
    }

    /// `request` as CEL sees it: the AdmissionRequest without the objects.
    fn cel_request(&self) -> Value {
        let mut request = json!({
            "uid": "c3f3e0b6-0b4a-4e57-8f0e-3b8f0d6b1f2e",
            "kind": {"group": self.group, "version": self.version, "kind": self.kind},
            "resource": {"group": self.group, "version": self.version, "resource": self.resource},
            "requestKind": {"group": self.group, "version": self.version, "kind": self.kind},
            "requestResource": {"group": self.group, "version": self.version, "resource": self.resource},
            "name": self.name,
            "operation": self.operation,
            "userInfo": {"username": self.user.0, "groups": self.user.1},
            "dryRun": false,
        });
        if !self.subresource.is_empty() {
            request["subResource"] = json!(self.subresource);
            request["requestSubResource"] = json!(self.subresource);
        }
        if !self.namespace.is_empty() {
            request["namespace"] = json!(self.namespace);
        }
        request
    }
}

fn listed(list: &Value, value: &str) -> bool {
    list.as_array().unwrap().iter().any(|v| v == "*" || v == value)
}

/// A rule's resource pattern against `resource[/subresource]`, as the API server matches it.
fn resource_matches(pattern: &str, resource: &str, subresource: &str) -> bool {
    let (p_res, p_sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    let res_ok = p_res == "*" || p_res == resource;
    let sub_ok = if subresource.is_empty() { p_sub.is_empty() } else { p_sub == "*" || p_sub == subresource };
    res_ok && sub_ok
}

fn rule_matches(rule: &Value, r: &Request) -> bool {
    let scope = rule["scope"].as_str().unwrap_or("*");
    let scope_ok = match scope {
        "*" => true,
        "Namespaced" => !r.cluster_scoped(),
        "Cluster" => r.cluster_scoped(),
        other => panic!("scope {other}"),
    };
    listed(&rule["operations"], r.operation)
        && listed(&rule["apiGroups"], r.group)
        && listed(&rule["apiVersions"], r.version)
        && rule["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| resource_matches(p.as_str().unwrap(), r.resource, r.subresource))
        && scope_ok
}

/// A label selector (`matchLabels`, `matchExpressions`) against labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let labels_ok = selector["matchLabels"].as_object().is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let expressions_ok = selector["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e["key"].as_str().unwrap();
            let values: Vec<&str> =
                e["values"].as_array().map(|v| v.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            match e["operator"].as_str().unwrap() {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                other => panic!("operator {other}"),
            }
        })
    });
    labels_ok && expressions_ok
}

/// Whether the API server calls `webhook` for `r`; an error where a match
/// condition could not be evaluated (the API server then applies the
/// failure policy even while paved is up).
fn called(webhook: &Value, r: &Request) -> Result<bool, String> {
    if !webhook["rules"].as_array().unwrap().iter().any(|rule| rule_matches(rule, r)) {
        return Ok(false);
    }
    // The namespace selector: a namespaced request by its namespace's labels,
    // a Namespace by its own, any other cluster-scoped request always matches.
    if let Some(selector) = webhook.get("namespaceSelector")
        && (r.kind == "Namespace" || !r.cluster_scoped())
    {
        let mut labels = r.namespace_labels.clone();
        let name = if r.kind == "Namespace" { r.name } else { r.namespace };
        labels["kubernetes.io/metadata.name"] = json!(name);
        if !selects(selector, &labels) {
            return Ok(false);
        }
    }
    if let Some(selector) = webhook.get("objectSelector") {
        let labels = |o: &Value| o["metadata"]["labels"].clone();
        if !(selects(selector, &labels(&r.object)) || selects(selector, &labels(&r.old_object))) {
            return Ok(false);
        }
    }
    let Some(conditions) = webhook.get("matchConditions") else { return Ok(true) };
    let validator = paved_cel::Validator::compile(&json!({"matchConditions": conditions}), &[], "webhook")
        .map_err(|e| format!("{e:?}"))?;
    let activation = paved_cel::Activation::new(&r.object, &r.old_object, &r.cel_request(), &Value::Null);
    let outcome = validator.evaluate(&activation, &paved_cel::Params::none());
    if !outcome.errors.is_empty() {
        return Err(format!("{:?}", outcome.errors));
    }
    Ok(outcome.matched)
}

/// The webhooks that would refuse `r` while paved is unreachable: those
/// called with `failurePolicy: Fail`. A match condition error is a failure.
fn refused_while_down(webhooks: &[Value], r: &Request) -> Vec<String> {
    let mut refused = Vec::new();
    for w in webhooks {
        let name = w["name"].as_str().unwrap().to_owned();
        match called(w, r) {
            Ok(false) => {}
            Ok(true) if w["failurePolicy"] == "Ignore" => {}
            Ok(true) => refused.push(name),
            Err(e) => panic!("{name}: a match condition errs on {} {}: {e}", r.operation, r.resource),
        }
    }
    refused
}

/// The webhooks `r` is sent to while paved is up.
fn sent_to(webhooks: &[Value], r: &Request) -> Vec<String> {
    webhooks
        .iter()
        .filter(|w| called(w, r).unwrap_or_else(|e| panic!("match condition error: {e}")))
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect()
}

fn meta(name: &str, namespace: &str, labels: Value, annotations: Value) -> Value {
    let mut m = json!({"name": name, "labels": labels, "annotations": annotations});
    if !namespace.is_empty() {
        m["namespace"] = json!(namespace);
    }
    m
}

fn deployment(ns: &str, annotations: Value, template_annotations: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web", ns, json!({"app": "web"}), annotations),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}, "annotations": template_annotations},
                "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": true}}]}}},
        "status": {"replicas": 2}})
}

fn owned_by(mut obj: Value, kind: &str, api_version: &str, name: &str) -> Value {
    obj["metadata"]["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind, "name": name,
        "uid": "6b7c0c2e-1d3b-4a8e-9a8b-2c1f9e0d7a11", "controller": true, "blockOwnerDeletion": true}]);
    obj
}

fn replicaset(ns: &str, annotations: Value) -> Value {
    let mut rs = deployment(ns, annotations, json!({}));
    rs["kind"] = json!("ReplicaSet");
    rs["metadata"]["name"] = json!("web-7d4b9");
    owned_by(rs, "Deployment", "apps/v1", "web")
}

fn pod(ns: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("web-7d4b9-x2x9q", ns, json!({"app": "web"}), annotations),
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}, "status": {"phase": "Running"}})
}

fn namespace(name: &str, labels: Value, annotations: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/metadata.name"] = json!(name);
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name, "", labels, annotations),
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn configmap(ns: &str, labels: Value, annotations: Value, data: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings", ns, labels, annotations), "data": {"k": data}})
}

fn secret(annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("db", "shop", json!({}), annotations), "type": "Opaque"})
}

fn pvc(ns: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data", ns, labels, json!({})),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

const LOCKED: &str = r#"{"paved.dev/lock": "delete"}"#;
fn locked() -> Value {
    serde_json::from_str(LOCKED).unwrap()
}
fn exempt() -> Value {
    json!({"paved.dev/exempt": "pss-baseline/privileged", "paved.dev/exempt-reason": "BILL-1423"})
}

/// A request on an object: group, version and resource from its kind.
fn on(
    op: &'static str,
    who: (&'static str, &'static [&'static str]),
    new: Option<Value>,
    old: Option<Value>,
) -> Request {
    let obj = new.as_ref().or(old.as_ref()).unwrap().clone();
    let kind = obj["kind"].as_str().unwrap().to_owned();
    let (group, version, resource): (&'static str, &'static str, &'static str) = match kind.as_str() {
        "Pod" => ("", "v1", "pods"),
        "Namespace" => ("", "v1", "namespaces"),
        "ConfigMap" => ("", "v1", "configmaps"),
        "Secret" => ("", "v1", "secrets"),
        "PersistentVolumeClaim" => ("", "v1", "persistentvolumeclaims"),
        "Deployment" => ("apps", "v1", "deployments"),
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        "PolicyException" if obj["apiVersion"] == "kyverno.io/v2" => ("kyverno.io", "v2", "policyexceptions"),
        "PolicyException" => ("policies.kyverno.io", "v1", "policyexceptions"),
        other => panic!("no resource for {other}"),
    };
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let name = leak(obj["metadata"]["name"].as_str().unwrap());
    let namespace = if kind == "Namespace" { name } else { leak(obj["metadata"]["namespace"].as_str().unwrap_or("")) };
    let namespace_labels = if kind == "Namespace" { obj["metadata"]["labels"].clone() } else { json!({}) };
    Request {
        operation: op,
        group,
        version,
        resource,
        subresource: "",
        kind: leak(&kind),
        namespace,
        name,
        namespace_labels,
        user: who,
        object: new.unwrap_or(Value::Null),
        old_object: old.unwrap_or(Value::Null),
    }
}

fn sub(mut r: Request, subresource: &'static str) -> Request {
    r.subresource = subresource;
    r
}

/// Every kind of request an ordinary day sends, and the controllers' own:
/// none may be refused while paved is down.
fn ordinary() -> Vec<(&'static str, Request)> {
    let ns_shop = namespace("shop", json!({}), json!({}));
    let ns_shop_team = namespace("shop", json!({"team": "a"}), json!({}));
    let locked_deploy = deployment("shop", locked(), exempt());
    let mut scaled = locked_deploy.clone();
    scaled["status"]["replicas"] = json!(3);
    let scale = |n: i64| json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": n}});
    let mut copied_rs = replicaset("shop", locked());
    copied_rs["spec"]["template"]["metadata"]["annotations"] = exempt();
    let mut terminating = ns_shop.clone();
    terminating["spec"]["finalizers"] = json!([]);
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-7d4b9-x2x9q", "namespace": "shop"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "worker-1"}});
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-7d4b9-x2x9q", "namespace": "shop"}});
    let mut ready_pod = pod("shop", locked());
    ready_pod["status"]["phase"] = json!("Succeeded");
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "worker-1", "namespace": "kube-node-lease"}});
    let mut lease_update = on("UPDATE", KUBELET, Some(configmap("kube-node-lease", json!({}), json!({}), "x")), None);
    (lease_update.group, lease_update.resource, lease_update.kind) = ("coordination.k8s.io", "leases", "Lease");
    lease_update.object = lease.clone();
    lease_update.old_object = lease;
    let exception = json!({"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
        "metadata": {"name": "old", "namespace": "shop"}, "spec": {"exceptions": [{"policyName": "p"}]}});
    vec![
        ("delete a Kyverno PolicyException", on("DELETE", DEV, None, Some(exception))),
        ("kubectl create namespace", on("CREATE", DEV, Some(ns_shop.clone()), None)),
        ("delete a namespace that holds no lock", on("DELETE", ADMIN, None, Some(ns_shop.clone()))),
        ("kubectl label namespace team=a", on("UPDATE", DEV, Some(ns_shop_team.clone()), Some(ns_shop.clone()))),
        (
            "namespace controller finalizes",
            sub(on("UPDATE", NAMESPACE_CONTROLLER, Some(terminating), Some(ns_shop.clone())), "finalize"),
        ),
        (
            "namespace status update",
            sub(on("UPDATE", NAMESPACE_CONTROLLER, Some(ns_shop_team.clone()), Some(ns_shop_team)), "status"),
        ),
        (
            "create a ConfigMap in a protected namespace",
            on("CREATE", DEV, Some(configmap("prod-eu", json!({}), json!({}), "a")), None),
        ),
        (
            "edit a ConfigMap in a protected namespace",
            on(
                "UPDATE",
                DEV,
                Some(configmap("prod-eu", json!({}), json!({}), "b")),
                Some(configmap("prod-eu", json!({}), json!({}), "a")),
            ),
        ),
        ("delete a ConfigMap elsewhere", on("DELETE", DEV, None, Some(configmap("dev", json!({}), json!({}), "a")))),
        ("create a PVC in a protected namespace", on("CREATE", DEV, Some(pvc("prod-eu", json!({}))), None)),
        ("create a Deployment with a lock", on("CREATE", DEV, Some(deployment("shop", locked(), json!({}))), None)),
        ("create a Secret", on("CREATE", DEV, Some(secret(json!({}))), None)),
        ("update a locked Secret's data", on("UPDATE", DEV, Some(secret(locked())), Some(secret(locked())))),
        (
            "a privileged Deployment (policies fail open)",
            on("CREATE", DEV, Some(deployment("shop", json!({}), json!({}))), None),
        ),
        (
            "deployment controller status of a locked Deployment",
            sub(on("UPDATE", DEPLOYMENT_CONTROLLER, Some(scaled), Some(locked_deploy.clone())), "status"),
        ),
        ("kubectl scale a locked Deployment", {
            let mut r = sub(on("UPDATE", DEV, Some(locked_deploy.clone()), Some(locked_deploy.clone())), "scale");
            (r.kind, r.object, r.old_object) = ("Scale", scale(3), scale(2));
            r
        }),
        (
            "deployment controller creates a ReplicaSet copying lock and exemption",
            on("CREATE", DEPLOYMENT_CONTROLLER, Some(copied_rs.clone()), None),
        ),
        (
            "replicaset controller creates a Pod with its template's exemption",
            on(
                "CREATE",
                RS_CONTROLLER,
                Some(owned_by(pod("shop", exempt()), "ReplicaSet", "apps/v1", "web-7d4b9")),
                None,
            ),
        ),
        (
            "deployment controller prunes an old ReplicaSet",
            on("DELETE", DEPLOYMENT_CONTROLLER, None, Some(copied_rs.clone())),
        ),
        ("garbage collector deletes a ReplicaSet after its Deployment", on("DELETE", GC, None, Some(copied_rs))),
        ("scheduler binds a pod", {
            let mut r = sub(on("CREATE", SCHEDULER, Some(pod("shop", json!({}))), None), "binding");
            r.kind = "Binding";
            r.object = binding;
            r
        }),
        ("kubectl drain evicts a pod", {
            let mut r = sub(on("CREATE", ADMIN, Some(pod("shop", locked())), None), "eviction");
            (r.kind, r.object) = ("Eviction", eviction);
            r
        }),
        (
            "kubelet updates a locked pod's status",
            sub(on("UPDATE", KUBELET, Some(ready_pod), Some(pod("shop", locked()))), "status"),
        ),
        ("delete a pod", on("DELETE", DEV, None, Some(pod("shop", json!({}))))),
        ("a node lease in kube-node-lease", lease_update),
    ]
}

/// Lock gestures and grants: each refused while paved is down.
fn gestures() -> Vec<(&'static str, Request)> {
    let locked_deploy = deployment("shop", locked(), json!({}));
    let unlocked_deploy = deployment("shop", json!({}), json!({}));
    let off = deployment("shop", json!({"paved.dev/lock": "off"}), json!({}));
    let exempted = deployment("shop", exempt(), json!({}));
    let ns = namespace("shop", json!({}), json!({}));
    let marked = namespace("shop", json!({}), json!({"paved.dev/holds-locks": "true"}));
    let ns_audit = namespace("shop", json!({"paved.dev/mode": "audit"}), json!({}));
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-7d4b9-x2x9q", "namespace": "shop",
        "annotations": {"paved.dev/lock": "off"}}, "target": {"apiVersion": "v1", "kind": "Node", "name": "worker-1"}});
    let mut exempt_binding = binding.clone();
    exempt_binding["metadata"]["annotations"] = exempt();
    vec![
        ("delete a locked Deployment", on("DELETE", DEV, None, Some(locked_deploy.clone()))),
        ("remove the lock", on("UPDATE", DEV, Some(unlocked_deploy.clone()), Some(locked_deploy.clone()))),
        (
            "remove the lock through /status",
            sub(on("UPDATE", DEV, Some(unlocked_deploy), Some(locked_deploy.clone())), "status"),
        ),
        ("change the lock to off", on("UPDATE", DEV, Some(off.clone()), Some(locked_deploy))),
        ("create with the lock off", on("CREATE", DEV, Some(off), None)),
        (
            "create a Secret with a lock (paved checks its namespace is locked)",
            on("CREATE", DEV, Some(secret(locked())), None),
        ),
        ("delete a locked Secret", on("DELETE", DEV, None, Some(secret(locked())))),
        (
            "remove a pod's lock through /status",
            sub(on("UPDATE", DEV, Some(pod("shop", json!({}))), Some(pod("shop", locked()))), "status"),
        ),
        ("lift a pod's lock through a Binding", {
            let mut r = sub(on("CREATE", DEV, Some(pod("shop", json!({}))), None), "binding");
            (r.kind, r.object) = ("Binding", binding);
            r
        }),
        ("delete a protected PVC", on("DELETE", ADMIN, None, Some(pvc("prod-eu", json!({}))))),
        (
            "delete a protected ConfigMap",
            on("DELETE", ADMIN, None, Some(configmap("prod-us", json!({}), json!({}), "a"))),
        ),
        (
            "relabel an object out of protection",
            on(
                "UPDATE",
                DEV,
                Some(configmap("dev", json!({}), json!({}), "a")),
                Some(configmap("dev", json!({"tier": "data"}), json!({}), "a")),
            ),
        ),
        (
            "delete an object protected by labels",
            on("DELETE", DEV, None, Some(configmap("dev", json!({"tier": "data"}), json!({}), "a"))),
        ),
        ("delete a namespace that holds locks", on("DELETE", ADMIN, None, Some(marked.clone()))),
        ("remove the holds-locks marker", on("UPDATE", DEV, Some(ns.clone()), Some(marked.clone()))),
        ("delete a locked namespace", on("DELETE", ADMIN, None, Some(namespace("shop", json!({}), locked())))),
        (
            "grant an exemption",
            on("UPDATE", DEV, Some(exempted.clone()), Some(deployment("shop", json!({}), json!({})))),
        ),
        (
            "create a Kyverno PolicyException",
            on(
                "CREATE",
                DEV,
                Some(json!({"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
                "metadata": {"name": "mine", "namespace": "shop"},
                "spec": {"exceptions": [{"policyName": "disallow-privileged", "ruleNames": ["privileged"]}]}})),
                None,
            ),
        ),
        (
            "widen a Kyverno PolicyException",
            on(
                "UPDATE",
                DEV,
                Some(json!({"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
                    "metadata": {"name": "mine", "namespace": "shop"}, "spec": {"policyRefs": [{"name": "a"}, {"name": "b"}]}})),
                Some(json!({"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
                    "metadata": {"name": "mine", "namespace": "shop"}, "spec": {"policyRefs": [{"name": "a"}]}})),
            ),
        ),
        (
            "grant an exemption through /status",
            sub(on("UPDATE", DEV, Some(exempted.clone()), Some(deployment("shop", json!({}), json!({})))), "status"),
        ),
        ("create with an exemption", on("CREATE", DEV, Some(exempted), None)),
        (
            "grant an exemption in a pod template",
            on("CREATE", DEV, Some(deployment("shop", json!({}), exempt())), None),
        ),
        (
            "grant a pod an exemption through /status",
            sub(on("UPDATE", DEV, Some(pod("shop", exempt())), Some(pod("shop", json!({})))), "status"),
        ),
        ("grant a pod an exemption through a Binding", {
            let mut r = sub(on("CREATE", DEV, Some(pod("shop", json!({}))), None), "binding");
            (r.kind, r.object) = ("Binding", exempt_binding);
            r
        }),
        ("label a namespace paved.dev/mode=audit", on("UPDATE", DEV, Some(ns_audit.clone()), Some(ns.clone()))),
        (
            "the same through namespaces/status",
            sub(on("UPDATE", DEV, Some(ns_audit.clone()), Some(ns.clone())), "status"),
        ),
        ("the same through namespaces/finalize", sub(on("UPDATE", DEV, Some(ns_audit.clone()), Some(ns)), "finalize")),
        ("create a namespace in audit mode", on("CREATE", DEV, Some(ns_audit), None)),
    ]
}

/// The same configurations as the Helm chart renders them, with the same
/// configuration. Needs helm (`HELM`, or on the PATH).
fn rendered_webhooks(config: &str) -> Vec<Value> {
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    assert!(Command::new(&helm).arg("version").output().is_ok(), "helm not found at {helm:?}: set HELM");
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/paved");
    generated_webhooks(config, |path| {
        let mut template = Command::new(&helm);
        template
            .args(["template", "paved", chart.to_str().unwrap(), "--namespace", "paved-system"])
            .args(["--set-file", &format!("config={}", path.display())]);
        template
    })
}

#[test]
fn while_paved_is_down_only_lock_gestures_and_grants_are_refused() {
    only_gestures_are_refused(&printed_webhooks(CONFIG));
}

#[test]
#[ignore = "needs helm; .ci/run installs it and runs the ignored tests"]
fn the_helm_chart_refuses_the_same_while_paved_is_down() {
    only_gestures_are_refused(&rendered_webhooks(CONFIG));
}

fn only_gestures_are_refused(webhooks: &[Value]) {
    // Helm renders kinds in its own order.
    let mut names: Vec<&str> = webhooks.iter().map(|w| w["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["defaults.paved.dev", "evictions.paved.dev", "grants.paved.dev", "locks.paved.dev", "policies.paved.dev"]
    );
    let mut failures = Vec::new();
    for (what, request) in ordinary() {
        let refused = refused_while_down(webhooks, &request);
        if !refused.is_empty() {
            failures.push(format!("ordinary request refused while paved is down: {what} (by {refused:?})"));
        }
    }
    for (what, request) in gestures() {
        if refused_while_down(webhooks, &request).is_empty() {
            failures.push(format!("gesture let through while paved is down: {what}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The defaults webhook is asked about what it can set defaults on, as the
/// controllers send it: a Deployment made or its template changed, the
/// Pods the ReplicaSet controller makes; never the ReplicaSet the deployment
/// controller makes (it carries its owner's template), a running Pod, a
/// scale or a status write.
#[test]
fn the_defaults_webhook_is_asked_only_about_what_it_sets() {
    let webhooks = printed_webhooks(CONFIG);
    let defaults = |r: &Request| sent_to(&webhooks, r).iter().any(|w| w == "defaults.paved.dev");
    let deploy = deployment("shop", json!({}), json!({}));
    let mut rolled = deploy.clone();
    rolled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let rs = replicaset("shop", json!({}));
    let mut own_rs = rs.clone();
    own_rs["metadata"].as_object_mut().unwrap().remove("ownerReferences");
    let running = pod("shop", json!({}));
    let made = owned_by(running.clone(), "ReplicaSet", "apps/v1", "web-7d4b9");
    let asked = [
        ("a Deployment made", on("CREATE", DEV, Some(deploy.clone()), None)),
        ("a Deployment's template changed", on("UPDATE", DEV, Some(rolled), Some(deploy.clone()))),
        ("a ReplicaSet a user makes", on("CREATE", DEV, Some(own_rs), None)),
        ("a Pod the ReplicaSet controller makes", on("CREATE", RS_CONTROLLER, Some(made.clone()), None)),
        ("a Pod a user makes", on("CREATE", DEV, Some(running.clone()), None)),
    ];
    for (what, r) in asked {
        assert!(defaults(&r), "not asked about {what}");
    }
    let mut bound = on("CREATE", SCHEDULER, Some(made.clone()), None);
    bound.subresource = "binding";
    bound.kind = "Binding";
    let mut scale = on("UPDATE", DEV, Some(deploy.clone()), Some(deploy.clone()));
    scale.subresource = "scale";
    scale.kind = "Scale";
    let not_asked = [
        ("the deployment controller's ReplicaSet", on("CREATE", DEPLOYMENT_CONTROLLER, Some(rs.clone()), None)),
        ("the ReplicaSet controller scaling its ReplicaSet", on("UPDATE", RS_CONTROLLER, Some(rs.clone()), Some(rs))),
        ("a running Pod's update", on("UPDATE", KUBELET, Some(made.clone()), Some(made.clone()))),
        ("a Pod's status", sub(on("UPDATE", KUBELET, Some(made.clone()), Some(made.clone())), "status")),
        ("a Pod's binding", bound),
        ("a Deployment's scale", scale),
        ("a Pod's deletion", on("DELETE", GC, None, Some(made))),
        ("a Deployment in kube-system", {
            let mut r = on("CREATE", DEV, Some(deployment("kube-system", json!({}), json!({}))), None);
            r.namespace = "kube-system";
            r
        }),
    ];
    for (what, r) in not_asked {
        assert!(!defaults(&r), "asked about {what}");
    }
    let mutating: Vec<&Value> = webhooks.iter().filter(|w| w["name"] == "defaults.paved.dev").collect();
    assert_eq!(mutating[0]["failurePolicy"], "Ignore", "defaults are a convenience, never a lock-out");
    assert_eq!(mutating[0]["reinvocationPolicy"], "IfNeeded");
    assert_eq!(mutating[0]["clientConfig"]["service"]["path"], "/mutate");
}

#[test]
fn excluded_namespaces_are_never_sent_anything() {
    let webhooks = printed_webhooks(CONFIG);
    for ns in ["kube-system", "kube-node-lease", "paved-system"] {
        let mut r = on("DELETE", DEV, None, Some(configmap(ns, json!({"tier": "data"}), locked(), "a")));
        r.namespace = ns;
        assert_eq!(sent_to(&webhooks, &r), Vec::<String>::new(), "{ns}");
        let r = on(
            "UPDATE",
            DEV,
            Some(namespace(ns, json!({"paved.dev/mode": "audit"}), json!({}))),
            Some(namespace(ns, json!({}), json!({}))),
        );
        assert_eq!(sent_to(&webhooks, &r), Vec::<String>::new(), "the Namespace {ns} itself");
    }
}

#[test]
fn without_protect_rules_no_configmap_or_secret_request_is_sent() {
    let webhooks = printed_webhooks("profile: paved-road\n");
    for op in ["CREATE", "UPDATE", "DELETE"] {
        let cm = configmap("prod-eu", json!({}), json!({}), "a");
        let (new, old) = match op {
            "CREATE" => (Some(cm), None),
            "UPDATE" => (Some(cm.clone()), Some(cm)),
            _ => (None, Some(cm)),
        };
        assert_eq!(sent_to(&webhooks, &on(op, DEV, new, old)), Vec::<String>::new(), "{op}");
    }
}

/// How a subresource can change an object's metadata or existence.
#[derive(Debug, PartialEq)]
enum Route {
    /// The request carries the whole object (status, finalize, ephemeral
    /// containers, resize, approval): its metadata changes with it.
    WholeObject,
    /// A Binding: its annotations are written onto the pod.
    Binding,
    /// An Eviction: deletes the pod.
    Eviction,
    /// Cannot change metadata: Scale applies only `spec.replicas`; the
    /// options kinds (exec, attach, proxy, log, port-forward, checkpoint)
    /// store nothing; a TokenRequest makes a token.
    NoMetadata,
}

fn route_of(parent_kind: &str, kind: &str) -> Route {
    match kind {
        k if k == parent_kind => Route::WholeObject,
        "Binding" => Route::Binding,
        "Eviction" => Route::Eviction,
        "Scale" | "TokenRequest" => Route::NoMetadata,
        k if k.ends_with("Options") => Route::NoMetadata,
        other => panic!("subresource kind {other} is not classified: decide how it can change metadata"),
    }
}

#[test]
fn every_subresource_that_can_change_metadata_is_covered() {
    let webhooks = printed_webhooks(CONFIG);
    let discovery: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/discovery/builtin.json")).unwrap(),
    )
    .unwrap();
    let mut checked = BTreeMap::new();
    for list in discovery["items"].as_array().unwrap() {
        let group_version = list["groupVersion"].as_str().unwrap();
        let (group, version) = group_version.split_once('/').unwrap_or(("", group_version));
        let resources = list["resources"].as_array().unwrap();
        for r in resources {
            let Some((resource, subresource)) = r["name"].as_str().unwrap().split_once('/') else { continue };
            let parent = resources.iter().find(|p| p["name"] == resource).unwrap();
            let parent_kind = parent["kind"].as_str().unwrap();
            let verbs: Vec<&str> = r["verbs"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            let writes = verbs.iter().any(|v| matches!(*v, "create" | "update" | "patch" | "delete"));
            let route = route_of(parent_kind, r["kind"].as_str().unwrap());
            let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
            let namespaced = r["namespaced"] == true;
            let base = Request {
                operation: "UPDATE",
                group: leak(group),
                version: leak(version),
                resource: leak(resource),
                subresource: leak(subresource),
                kind: leak(parent_kind),
                // A Namespace's request carries its own name as namespace.
                namespace: if namespaced || parent_kind == "Namespace" { "shop" } else { "" },
                name: "shop",
                namespace_labels: json!({}),
                user: DEV,
                object: Value::Null,
                old_object: Value::Null,
            };
            let object = |annotations: Value, labels: Value| json!({"apiVersion": group_version, "kind": parent_kind, "metadata": meta("shop", if namespaced { "shop" } else { "" }, labels, annotations)});
            let expect = |r: &Request, webhook: &str, what: &str| {
                let sent = sent_to(&webhooks, r);
                assert!(
                    sent.iter().any(|w| w == webhook),
                    "{group_version} {resource}/{subresource}: {what} is not sent to {webhook} ({sent:?})"
                );
            };
            match route {
                Route::WholeObject if writes => {
                    let mut lift = base.clone();
                    (lift.object, lift.old_object) = (object(json!({}), json!({})), object(locked(), json!({})));
                    expect(&lift, "locks.paved.dev", "removing a lock");
                    let mut grant = base.clone();
                    (grant.object, grant.old_object) = (object(exempt(), json!({})), object(json!({}), json!({})));
                    expect(&grant, "grants.paved.dev", "adding an exemption");
                    if parent_kind == "Namespace" {
                        let mut label = base.clone();
                        (label.object, label.old_object) =
                            (object(json!({}), json!({"paved.dev/mode": "audit"})), object(json!({}), json!({})));
                        expect(&label, "grants.paved.dev", "labelling the namespace");
                    }
                }
                Route::Binding => {
                    let mut binding = base.clone();
                    (binding.operation, binding.kind) = ("CREATE", "Binding");
                    binding.object = json!({"apiVersion": "v1", "kind": "Binding",
                        "metadata": meta("shop", "shop", json!({}), json!({"paved.dev/lock": "off", "paved.dev/exempt": "x"}))});
                    expect(&binding, "locks.paved.dev", "a Binding lifting a lock");
                    expect(&binding, "grants.paved.dev", "a Binding granting an exemption");
                }
                Route::Eviction => {
                    let mut eviction = base.clone();
                    (eviction.operation, eviction.kind) = ("CREATE", "Eviction");
                    eviction.object = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": meta("shop", "shop", json!({}), json!({}))});
                    expect(&eviction, "evictions.paved.dev", "an eviction");
                }
                Route::WholeObject | Route::NoMetadata => {}
            }
            checked.insert(format!("{group_version} {resource}/{subresource}"), route);
        }
    }
    // The routes the tester used are among those proven.
    for (name, route) in [
        ("apps/v1 deployments/status", Route::WholeObject),
        ("v1 pods/status", Route::WholeObject),
        ("v1 pods/binding", Route::Binding),
        ("v1 pods/eviction", Route::Eviction),
        ("v1 namespaces/finalize", Route::WholeObject),
        ("v1 namespaces/status", Route::WholeObject),
        ("apps/v1 deployments/scale", Route::NoMetadata),
    ] {
        assert_eq!(checked.get(name), Some(&route), "{name}");
    }
    assert!(checked.len() > 40, "{} subresources", checked.len());
}

/// Without paved, a webhook rule that names no subresource lets them all by.
#[test]
fn the_evaluator_tells_subresources_apart() {
    let rule = json!({"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"], "scope": "*"});
    let mut r = on("UPDATE", DEV, Some(pod("shop", json!({}))), Some(pod("shop", locked())));
    assert!(rule_matches(&rule, &r));
    r.subresource = "status";
    assert!(!rule_matches(&rule, &r), "'*' does not cover subresources");
    let all =
        json!({"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"], "operations": ["*"], "scope": "*"});
    assert!(rule_matches(&all, &r));
    let status_only = json!({"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/status"], "operations": ["UPDATE"], "scope": "Namespaced"});
    assert!(rule_matches(&status_only, &r));
    assert!(!selects(
        &json!({"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}),
        &json!({"k": "b"})
    ));
}
