//! Mutations: changes to an object computed without I/O, which become a
//! JSON Patch at admission and an edit in a file. And the paved road's
//! defaults, the safe settings paved sets where the object says nothing.
//!
//! A change never alters what the user wrote: `SetIfAbsent` only fills a
//! field that is absent (or `null`, which Kubernetes reads as absent),
//! `AddToList` only adds an item whose key is not there yet.

use serde_json::{Map, Value, json};

use crate::Timestamp;
use crate::exempt::{exemptions_of, honoured};
use crate::node::{FieldPath, Node, Seg};
use crate::object::PodView;

/// One change to an object.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Sets the field where it is absent; missing parents become objects.
    SetIfAbsent { path: FieldPath, value: Value },
    /// Adds `item` to the list at `path` (made when absent) unless an item
    /// with the same `key` field is there.
    AddToList { path: FieldPath, key: &'static str, item: Value },
    /// Removes the field, when present.
    Remove { path: FieldPath },
}

/// A change a policy makes, and what it tells the user.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub policy: &'static str,
    pub change: Change,
    /// Said as an admission warning and beside the edit: what was set and
    /// how to keep another value.
    pub announce: String,
}

/// One RFC 6902 operation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The JSON Patch that makes `mutations` on `object`, in order, each seeing
/// the ones before it; and the object as patched. A change with nothing to
/// do (the field is set, the item is there) gives no operation.
pub fn patch(object: &Value, mutations: &[Mutation]) -> (Vec<PatchOp>, Value, Vec<usize>) {
    let mut doc = object.clone();
    let mut ops = Vec::new();
    // Which mutations did something (their announcements are said).
    let mut applied = Vec::new();
    for (i, m) in mutations.iter().enumerate() {
        let before = ops.len();
        match &m.change {
            Change::SetIfAbsent { path, value } => set_if_absent(&mut doc, &path.0, value, &mut ops),
            Change::AddToList { path, key, item } => add_to_list(&mut doc, &path.0, key, item, &mut ops),
            Change::Remove { path } => remove(&mut doc, &path.0, &mut ops),
        }
        if ops.len() > before {
            applied.push(i);
        }
    }
    (ops, doc, applied)
}

/// The RFC 6902 operations that turn `from` into `to` (made by the
/// `json-patch` crate), for mutations that come as a new object: a
/// MutatingAdmissionPolicy's.
pub fn diff(from: &Value, to: &Value) -> Vec<PatchOp> {
    json_patch::diff(from, to)
        .0
        .into_iter()
        .filter_map(|op| match op {
            json_patch::PatchOperation::Add(a) => {
                Some(PatchOp { op: "add", path: a.path.to_string(), value: Some(a.value) })
            }
            json_patch::PatchOperation::Replace(r) => {
                Some(PatchOp { op: "replace", path: r.path.to_string(), value: Some(r.value) })
            }
            json_patch::PatchOperation::Remove(r) => {
                Some(PatchOp { op: "remove", path: r.path.to_string(), value: None })
            }
            // `diff` writes only add, replace and remove.
            _ => None,
        })
        .collect()
}

/// A field path as a JSON Pointer (RFC 6901), `~` and `/` escaped.
pub fn pointer(segments: &[Seg]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        match s {
            Seg::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// The value at `segments`, or where the path first goes missing: the
/// number of segments that exist.
fn existing<'v>(doc: &'v Value, segments: &[Seg]) -> (usize, &'v Value) {
    let mut at = doc;
    for (n, s) in segments.iter().enumerate() {
        let next = match (s, at) {
            (Seg::Key(k), Value::Object(map)) => map.get(k.as_ref()),
            (Seg::Index(i), Value::Array(items)) => items.get(*i as usize),
            _ => None,
        };
        match next {
            Some(Value::Null) | None => return (n, at),
            Some(v) => at = v,
        }
    }
    (segments.len(), at)
}

fn get_mut<'v>(doc: &'v mut Value, segments: &[Seg]) -> Option<&'v mut Value> {
    let mut at = doc;
    for s in segments {
        at = match (s, at) {
            (Seg::Key(k), Value::Object(map)) => map.get_mut(k.as_ref())?,
            (Seg::Index(i), Value::Array(items)) => items.get_mut(*i as usize)?,
            _ => return None,
        };
    }
    Some(at)
}

/// `value` under the keys of `rest` (which must all be keys: arrays are
/// never made up by index).
fn nested(rest: &[Seg], value: &Value) -> Option<Value> {
    let mut v = value.clone();
    for s in rest.iter().rev() {
        let Seg::Key(k) = s else { return None };
        let mut map = Map::new();
        map.insert(k.to_string(), v);
        v = Value::Object(map);
    }
    Some(v)
}

fn set_if_absent(doc: &mut Value, segments: &[Seg], value: &Value, ops: &mut Vec<PatchOp>) {
    let (found, parent) = existing(doc, segments);
    if found == segments.len() {
        return; // the user wrote it
    }
    // The parent of the first missing segment must be an object (a key) to add to.
    let Seg::Key(_) = &segments[found] else { return };
    if !parent.is_object() {
        return;
    }
    let Some(v) = nested(&segments[found + 1..], value) else { return };
    let target = &segments[..=found];
    // A `null` there is replaced; an absent key added.
    let is_null = get_mut(doc, target).is_some_and(|v| v.is_null());
    let op = if is_null { "replace" } else { "add" };
    apply_add(doc, target, v.clone());
    ops.push(PatchOp { op, path: pointer(target), value: Some(v) });
}

fn apply_add(doc: &mut Value, target: &[Seg], v: Value) {
    let Some((last, parent)) = target.split_last() else { return };
    if let (Some(Value::Object(map)), Seg::Key(k)) = (get_mut(doc, parent), last) {
        map.insert(k.to_string(), v);
    }
}

fn add_to_list(doc: &mut Value, segments: &[Seg], key: &str, item: &Value, ops: &mut Vec<PatchOp>) {
    let (found, at) = existing(doc, segments);
    if found < segments.len() {
        // No list: made with the item.
        set_if_absent(doc, segments, &json!([item]), ops);
        return;
    }
    let Value::Array(items) = at else { return };
    let wanted = item.get(key);
    if wanted.is_some() && items.iter().any(|i| i.get(key) == wanted) {
        return;
    }
    if let Some(Value::Array(items)) = get_mut(doc, segments) {
        items.push(item.clone());
    }
    ops.push(PatchOp { op: "add", path: format!("{}/-", pointer(segments)), value: Some(item.clone()) });
}

fn remove(doc: &mut Value, segments: &[Seg], ops: &mut Vec<PatchOp>) {
    let (found, _) = existing(doc, segments);
    let Some((last, parent)) = segments.split_last() else { return };
    if found < segments.len() {
        return;
    }
    match (get_mut(doc, parent), last) {
        (Some(Value::Object(map)), Seg::Key(k)) => {
            map.remove(k.as_ref());
        }
        (Some(Value::Array(items)), Seg::Index(i)) if (*i as usize) < items.len() => {
            items.remove(*i as usize);
        }
        _ => return,
    }
    ops.push(PatchOp { op: "remove", path: pointer(segments), value: None });
}

/// Resource requests and limits the paved road sets on containers that have
/// none, by resource name (`cpu: 100m`); none unless the configuration's
/// `defaults.resources` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDefaults {
    #[serde(default)]
    pub requests: std::collections::BTreeMap<ResourceName, QuantityText>,
    #[serde(default)]
    pub limits: std::collections::BTreeMap<ResourceName, QuantityText>,
}

/// A resource's name as Kubernetes accepts it in `resources`: `cpu`,
/// `memory`, `ephemeral-storage`, `hugepages-2Mi` or an extended resource
/// (`example.com/gpu`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceName(pub String);

impl<'de> serde::Deserialize<'de> for ResourceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/'))
            && name.matches('/').count() <= 1;
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "{name:?} is not a resource name (cpu, memory, ephemeral-storage, hugepages-<size> or domain/name)"
            )));
        }
        Ok(ResourceName(name))
    }
}

/// A quantity as written (`100m`, `256Mi`), checked to be one when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityText {
    pub text: String,
    pub value: crate::quantity::Quantity,
}

impl<'de> serde::Deserialize<'de> for QuantityText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A number in YAML (`cpu: 1`) is a quantity too.
        let text = match serde_json::Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a quantity such as 100m or 256Mi, got {other}"
                )));
            }
        };
        match text.parse::<crate::quantity::Quantity>() {
            Ok(value) if value.nanos > 0 => Ok(QuantityText { text, value }),
            Ok(_) => Err(serde::de::Error::custom(format!("{text:?}: a default request or limit must be above zero"))),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

/// The paved road's defaults, by id (each can be turned off in
/// `.paved.yaml` like a policy, and an object opts out with an exemption).
pub const DEFAULTS: [(&str, &str); 4] = [
    ("paved-road/default-no-privilege-escalation", "securityContext.allowPrivilegeEscalation: false on each container"),
    ("paved-road/default-seccomp", "securityContext.seccompProfile.type: RuntimeDefault on the pod"),
    (
        "paved-road/default-drop-capabilities",
        "securityContext.capabilities.drop: [ALL] on each container that adds none",
    ),
    ("paved-road/default-resources", "the configured resource requests and limits on each container"),
];

/// What the paved road sets on `obj` (a Pod or a controller's template):
/// the defaults `enabled` names (a [`crate::profile::PolicySet`]'s, compiled
/// once with the configuration's overrides), less those a valid exemption
/// on the object covers.
pub fn paved_road_defaults(
    obj: &Node,
    kind: &str,
    enabled: &[&str],
    resources: &ResourceDefaults,
    now: Timestamp,
) -> Vec<Mutation> {
    if enabled.is_empty() {
        return Vec::new();
    }
    let Some(pod) = PodView::of(obj, kind) else { return Vec::new() };
    let exemptions = exemptions_of(obj, Some(&pod), now);
    // The API server refuses seccompProfile, allowPrivilegeEscalation and
    // capabilities on a pod whose spec.os.name is windows, and they mean
    // nothing on a Windows node: only resources are set there.
    let windows = pod.is_windows()
        || pod.spec.at(&["nodeSelector", "kubernetes.io/os"]).and_then(Node::as_str) == Some("windows");
    let on =
        |id: &str| enabled.contains(&id) && honoured(&exemptions, id).is_none() && (!windows || id == DEFAULTS[3].0);
    let mut out = Vec::new();
    let template: Vec<Seg> = pod.template.iter().map(|k| Seg::Key((*k).into())).collect();
    let pod_path = |keys: &[&'static str]| FieldPath(template.clone()).key("spec").keys(keys);
    // The pod's seccomp written the old way, in an annotation, is a choice
    // too (and the API server refuses a field that disagrees with it).
    let seccomp_annotated = pod
        .meta
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("seccomp.security.alpha.kubernetes.io/pod"))
        .is_some();
    if on(DEFAULTS[1].0)
        && !seccomp_annotated
        && pod.spec.at(&["securityContext", "seccompProfile"]).is_none_or(Node::is_null)
    {
        out.push(Mutation {
            policy: DEFAULTS[1].0,
            change: Change::SetIfAbsent {
                path: pod_path(&["securityContext", "seccompProfile"]),
                value: json!({"type": "RuntimeDefault"}),
            },
            announce: "paved set the pod's securityContext.seccompProfile.type: RuntimeDefault; write it explicitly to keep another value".into(),
        });
    }
    for c in pod.containers().filter(|c| c.list != "ephemeralContainers") {
        let name = c.node.get("name").and_then(Node::as_str).unwrap_or("");
        let sc = c.node.get("securityContext");
        let privileged = sc.and_then(|s| s.get("privileged")).is_some_and(Node::is_true);
        let adds: Vec<&str> = sc
            .and_then(|s| s.at(&["capabilities", "add"]))
            .map(|a| a.as_seq().iter().filter_map(Node::as_str).collect())
            .unwrap_or_default();
        // The API server refuses allowPrivilegeEscalation: false beside
        // privileged or CAP_SYS_ADMIN: never set what cannot be admitted.
        let sys_admin =
            adds.iter().any(|a| a.eq_ignore_ascii_case("SYS_ADMIN") || a.eq_ignore_ascii_case("CAP_SYS_ADMIN"));
        if on(DEFAULTS[0].0) && !privileged && !sys_admin {
            out.push(Mutation {
                policy: DEFAULTS[0].0,
                change: Change::SetIfAbsent {
                    path: c.field(&["securityContext", "allowPrivilegeEscalation"]),
                    value: json!(false),
                },
                announce: format!(
                    "paved set allowPrivilegeEscalation: false on container {name:?}; write it explicitly to keep another value"
                ),
            });
        }
        if on(DEFAULTS[2].0) && adds.is_empty() && !privileged {
            out.push(Mutation {
                policy: DEFAULTS[2].0,
                change: Change::SetIfAbsent { path: c.field(&["securityContext", "capabilities", "drop"]), value: json!(["ALL"]) },
                announce: format!(
                    "paved set capabilities.drop: [ALL] on container {name:?}; write it explicitly to keep another value"
                ),
            });
        }
        if on(DEFAULTS[3].0) {
            resource_defaults(&c, name, resources, &mut out);
        }
    }
    out
}

/// The configured requests and limits for one container, less those the
/// API server would refuse or that would change what it does: no request
/// where the container sets a limit for that resource (the API server takes
/// the request from the limit), no limit below the container's own request.
fn resource_defaults(
    c: &crate::object::Container<'_>,
    name: &str,
    resources: &ResourceDefaults,
    out: &mut Vec<Mutation>,
) {
    let written = |kind: &str, resource: &str| {
        c.node.at(&["resources", kind]).and_then(|m| m.get(resource)).filter(|v| !v.is_null()).map(|v| {
            // A quantity the API server would refuse is not compared: the pod fails anyway.
            let text = match &v.value {
                crate::node::Value::Str(s) => s.to_string(),
                crate::node::Value::Int(i) => i.to_string(),
                crate::node::Value::Float(f) => f.to_string(),
                _ => return None,
            };
            text.parse::<crate::quantity::Quantity>().ok()
        })
    };
    for (resource, quantity) in &resources.requests {
        if written("limits", &resource.0).is_some() {
            continue;
        }
        out.push(resource_mutation(c, name, "requests", resource, quantity));
    }
    for (resource, quantity) in &resources.limits {
        if let Some(Some(request)) = written("requests", &resource.0)
            && request > quantity.value
        {
            continue;
        }
        // Nor below the request this default is about to set.
        if written("requests", &resource.0).is_none()
            && written("limits", &resource.0).is_none()
            && resources.requests.get(resource).is_some_and(|r| r.value > quantity.value)
        {
            continue;
        }
        out.push(resource_mutation(c, name, "limits", resource, quantity));
    }
}

fn resource_mutation(
    c: &crate::object::Container<'_>,
    name: &str,
    kind: &'static str,
    resource: &ResourceName,
    quantity: &QuantityText,
) -> Mutation {
    let (resource, quantity) = (&resource.0, &quantity.text);
    Mutation {
        policy: DEFAULTS[3].0,
        change: Change::SetIfAbsent {
            path: c.field(&["resources"]).key(kind).key(resource.clone()),
            value: json!(quantity),
        },
        announce: format!(
            "paved set resources.{kind}.{resource}: {quantity} on container {name:?}; write it explicitly to keep another value"
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(path: &[&'static str], value: Value) -> Mutation {
        Mutation {
            policy: "t",
            change: Change::SetIfAbsent { path: FieldPath::root().keys(path), value },
            announce: String::new(),
        }
    }

    /// RFC 6902's `add`/`replace`/`remove`, applied as the API server would.
    fn apply(doc: &Value, ops: &[PatchOp]) -> Value {
        let mut doc = doc.clone();
        for op in ops {
            let parts: Vec<String> =
                op.path.split('/').skip(1).map(|p| p.replace("~1", "/").replace("~0", "~")).collect();
            let (last, parents) = parts.split_last().unwrap();
            let mut at = &mut doc;
            for p in parents {
                at = match at {
                    Value::Object(m) => m.get_mut(p).unwrap(),
                    Value::Array(a) => a.get_mut(p.parse::<usize>().unwrap()).unwrap(),
                    _ => panic!("not a container at {p}"),
                };
            }
            match (op.op, at) {
                ("add" | "replace", Value::Object(m)) => {
                    m.insert(last.clone(), op.value.clone().unwrap());
                }
                ("add", Value::Array(a)) if last == "-" => a.push(op.value.clone().unwrap()),
                ("remove", Value::Object(m)) => {
                    m.remove(last);
                }
                ("remove", Value::Array(a)) => {
                    a.remove(last.parse::<usize>().unwrap());
                }
                (op, _) => panic!("unexpected {op}"),
            }
        }
        doc
    }

    #[test]
    fn changes_fill_what_is_absent_and_never_what_is_written() {
        let obj = json!({"spec": {"a": {"x": 1}, "n": null, "list": [{"name": "one"}], "k": {"a/b~c": 2}}});
        let mutations = vec![
            set(&["spec", "a", "x"], json!(9)),
            set(&["spec", "a", "y"], json!(2)),
            set(&["spec", "b", "c", "d"], json!(true)),
            set(&["spec", "b", "c", "e"], json!(false)),
            set(&["spec", "n", "m"], json!("x")),
            Mutation {
                policy: "t",
                change: Change::AddToList {
                    path: FieldPath::root().keys(&["spec", "list"]),
                    key: "name",
                    item: json!({"name": "one"}),
                },
                announce: String::new(),
            },
            Mutation {
                policy: "t",
                change: Change::AddToList {
                    path: FieldPath::root().keys(&["spec", "list"]),
                    key: "name",
                    item: json!({"name": "two"}),
                },
                announce: String::new(),
            },
            Mutation {
                policy: "t",
                change: Change::Remove { path: FieldPath::root().keys(&["spec", "k"]).key("a/b~c") },
                announce: String::new(),
            },
        ];
        let (ops, patched, applied) = patch(&obj, &mutations);
        assert_eq!(
            patched,
            json!({"spec": {"a": {"x": 1, "y": 2}, "n": {"m": "x"}, "list": [{"name": "one"}, {"name": "two"}],
                            "k": {}, "b": {"c": {"d": true, "e": false}}}})
        );
        assert_eq!(apply(&obj, &ops), patched, "the patch gives exactly the object");
        assert_eq!(applied, [1, 2, 3, 4, 6, 7]);
        let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["/spec/a/y", "/spec/b", "/spec/b/c/e", "/spec/n", "/spec/list/-", "/spec/k/a~1b~0c"]);
        assert_eq!(ops[3].op, "replace", "null is replaced");
    }

    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn the_paved_road_sets_safe_defaults_and_leaves_what_it_must() {
        let resources: ResourceDefaults =
            serde_json::from_value(json!({"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}})).unwrap();
        let obj = pod(json!([
            {"name": "app", "image": "x", "resources": {"requests": {"cpu": "2"}}},
            {"name": "net", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
            {"name": "root", "image": "x", "securityContext": {"privileged": true}},
        ]));
        let node = Node::from_json(&obj);
        let now = "2026-12-01T00:00:00Z".parse().unwrap();
        let all: Vec<&str> = DEFAULTS.iter().map(|(id, _)| *id).collect();
        let mutations = paved_road_defaults(&node, "Pod", &all, &resources, now);
        let (ops, patched, _) = patch(&obj, &mutations);
        assert_eq!(patched["spec"]["securityContext"], json!({"seccompProfile": {"type": "RuntimeDefault"}}));
        let c = &patched["spec"]["containers"];
        assert_eq!(
            c[0]["securityContext"],
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
        );
        assert_eq!(
            c[0]["resources"],
            json!({"requests": {"cpu": "2"}, "limits": {"memory": "256Mi"}}),
            "the user's cpu stays"
        );
        assert_eq!(c[1]["securityContext"]["allowPrivilegeEscalation"], json!(false));
        assert!(c[1]["securityContext"]["capabilities"].get("drop").is_none(), "it adds capabilities");
        assert_eq!(
            c[2]["securityContext"],
            json!({"privileged": true}),
            "privileged: nothing the API server would refuse"
        );
        assert_eq!(apply(&obj, &ops), patched);
        // Never what the API server would refuse or decide otherwise: no
        // request beside the container's own limit (the API server copies
        // the limit), no limit below the container's own request.
        let resources: ResourceDefaults = serde_json::from_value(
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "256Mi"}}),
        )
        .unwrap();
        let obj = pod(json!([
            {"name": "limited", "image": "x", "resources": {"limits": {"cpu": "50m"}}},
            {"name": "hungry", "image": "x", "resources": {"requests": {"memory": "1Gi", "cpu": 2}}},
        ]));
        let node = Node::from_json(&obj);
        let (_, patched, _) = patch(&obj, &paved_road_defaults(&node, "Pod", &all, &resources, now));
        let c = &patched["spec"]["containers"];
        assert_eq!(
            c[0]["resources"],
            json!({"limits": {"cpu": "50m", "memory": "256Mi"}, "requests": {"memory": "128Mi"}})
        );
        assert_eq!(c[1]["resources"], json!({"requests": {"memory": "1Gi", "cpu": 2}}));
        for bad in [
            json!({"requests": {"cpu": "lots"}}),
            json!({"limits": {"memory": "0"}}),
            json!({"requests": {"a b": "1"}}),
        ] {
            assert!(serde_json::from_value::<ResourceDefaults>(bad.clone()).is_err(), "{bad}");
        }
        // Which defaults are on comes from the compiled policy set: the paved
        // road's, less what the configuration turns off, by id or glob.
        let on = |config: serde_json::Value, profile: Option<&str>| {
            let config: crate::config::Config = serde_json::from_value(config).unwrap();
            crate::eval::Engine::new(&config, profile, crate::profile::Mode::Enforce)
                .unwrap()
                .policies()
                .defaults
                .clone()
        };
        assert_eq!(on(json!({}), None), all);
        assert!(on(json!({"policies": {"paved-road/default-*": "off"}}), None).is_empty());
        assert_eq!(
            on(json!({"policies": {"paved-road/default-*": "off", "paved-road/default-seccomp": "warn"}}), None),
            ["paved-road/default-seccomp"],
            "the most specific override wins"
        );
        assert!(on(json!({}), Some("pss-baseline")).is_empty(), "only the paved road sets defaults");
        assert!(paved_road_defaults(&node, "Pod", &[], &resources, now).is_empty());
        // And an exemption on the object.
        let mut exempt = obj.clone();
        exempt["metadata"]["annotations"] = json!({
            "paved.dev/exempt": "paved-road/default-seccomp", "paved.dev/exempt-reason": "TICKET-12 the node's profile"});
        let exempt_node = Node::from_json(&exempt);
        let ids: Vec<&str> =
            paved_road_defaults(&exempt_node, "Pod", &all, &resources, now).iter().map(|m| m.policy).collect();
        assert!(!ids.contains(&"paved-road/default-seccomp") && ids.contains(&"paved-road/default-drop-capabilities"));
    }

    /// Nothing the API server would refuse: on a Windows pod (spec.os.name,
    /// or a Deployment's template bound to Windows nodes) only resources;
    /// beside the old seccomp annotation, no seccomp field.
    #[test]
    fn the_paved_road_sets_nothing_the_api_server_refuses() {
        let resources: ResourceDefaults = serde_json::from_value(json!({"requests": {"memory": "64Mi"}})).unwrap();
        let all: Vec<&str> = DEFAULTS.iter().map(|(id, _)| *id).collect();
        let now = "2026-12-01T00:00:00Z".parse().unwrap();
        let ids = |obj: &Value, kind: &str| -> Vec<&'static str> {
            let node = Node::from_json(obj);
            paved_road_defaults(&node, kind, &all, &resources, now).iter().map(|m| m.policy).collect()
        };
        let mut windows = pod(json!([{"name": "iis", "image": "mcr.microsoft.com/windows/servercore/iis"}]));
        windows["spec"]["os"] = json!({"name": "windows"});
        assert_eq!(ids(&windows, "Pod"), ["paved-road/default-resources"]);
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iis"},
            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "windows"},
                "containers": [{"name": "iis", "image": "iis"}]}}}});
        assert_eq!(ids(&deployment, "Deployment"), ["paved-road/default-resources"]);
        let mut linux = pod(json!([{"name": "app", "image": "x"}]));
        assert_eq!(ids(&linux, "Pod").len(), 4);
        linux["metadata"]["annotations"] = json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"});
        assert!(!ids(&linux, "Pod").contains(&"paved-road/default-seccomp"));
    }
}
