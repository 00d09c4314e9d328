//! An apply configuration merged into an object as server-side apply merges
//! it (structured-merge-diff), for MutatingAdmissionPolicy's
//! `ApplyConfiguration` mutations: structs and maps merge field by field,
//! a list with merge keys (`containers` by `name`, `ports` by
//! `containerPort` and `protocol`, …) merges item by item, a set (a list
//! of scalars such as `finalizers`) gains the missing values, and any other
//! list, like an atomic struct (a `LabelSelector`), may not be changed:
//! the API server refuses that, because applying it would drop what the
//! configuration does not name.
//!
//! The merge keys are those of Kubernetes' built-in types. A custom
//! resource's schema is not known here, so a list in one is refused with
//! that said, rather than merged by a guess.

use serde_json::{Map, Value};

/// Why a configuration cannot be applied, at which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {why}")]
pub struct ApplyError {
    pub path: String,
    pub why: String,
}

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListType {
    /// Items are matched by these key fields.
    Map(&'static [&'static str]),
    /// Scalars, merged as a set.
    Set,
    /// Replaced whole: an apply configuration may not change it.
    Atomic,
}

/// The API groups of Kubernetes' built-in types, whose merge keys are known.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "admissionregistration.k8s.io",
    "certificates.k8s.io",
];

/// A list's merge semantics by the field that holds it (and, where the
/// same name means different lists, its parent's).
fn list_type(field: &str, parent: &str) -> ListType {
    match (field, parent) {
        ("containers" | "initContainers" | "ephemeralContainers", _) => ListType::Map(&["name"]),
        ("env" | "volumes" | "resourceClaims" | "schedulingGates" | "imagePullSecrets", _) => ListType::Map(&["name"]),
        ("ports", "spec") => ListType::Map(&["port", "protocol"]),
        ("ports", _) => ListType::Map(&["containerPort", "protocol"]),
        ("volumeMounts", _) => ListType::Map(&["mountPath"]),
        ("volumeDevices", _) => ListType::Map(&["devicePath"]),
        ("hostAliases", _) => ListType::Map(&["ip"]),
        ("topologySpreadConstraints", _) => ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
        ("ownerReferences", _) => ListType::Map(&["uid"]),
        ("conditions", _) => ListType::Map(&["type"]),
        ("finalizers", _) => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Structs that are atomic in the built-in types: replaced whole.
fn atomic_struct(field: &str) -> bool {
    matches!(field, "selector" | "labelSelector" | "namespaceSelector")
}

/// `config` merged into `object`, which has the `apiVersion` of `kind`'s group.
pub fn apply_configuration(object: &Value, config: &Value) -> Result<Value, ApplyError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let built_in = BUILT_IN_GROUPS.contains(&group);
    let mut out = object.clone();
    let Value::Object(config) = config else {
        return Err(ApplyError { path: String::new(), why: "an apply configuration must be an Object{…}".into() });
    };
    merge_map(&mut out, config, "", "", built_in)?;
    Ok(out)
}

fn merge_map(
    target: &mut Value,
    config: &Map<String, Value>,
    path: &str,
    field: &str,
    built_in: bool,
) -> Result<(), ApplyError> {
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return Ok(()) };
    for (key, value) in config {
        let at = format!("{path}.{key}");
        match value {
            // A null in an apply configuration removes the field.
            Value::Null => {
                map.remove(key);
            }
            Value::Object(inner) => {
                if built_in && atomic_struct(key) && map.get(key).is_some_and(|v| v != value) {
                    return Err(ApplyError {
                        path: at,
                        why: "an atomic struct may not be changed by an apply configuration".into(),
                    });
                }
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                merge_map(slot, inner, &at, key, built_in)?;
            }
            Value::Array(items) => {
                let list = match map.get(key) {
                    Some(Value::Array(existing)) => existing.clone(),
                    _ => Vec::new(),
                };
                let merged = merge_list(list, items, &at, key, field, built_in)?;
                map.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                map.insert(key.clone(), scalar.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(
    mut list: Vec<Value>,
    items: &[Value],
    path: &str,
    field: &str,
    parent: &str,
    built_in: bool,
) -> Result<Vec<Value>, ApplyError> {
    if !built_in {
        if list.is_empty() || list == items {
            // Nothing there to lose: the list as configured.
            return Ok(items.to_vec());
        }
        return Err(ApplyError {
            path: path.to_owned(),
            why: "the merge keys of this list are in its custom resource's schema, which paved does not know; \
                  it was not merged by a guess"
                .into(),
        });
    }
    match list_type(field, parent) {
        ListType::Atomic => {
            if list.is_empty() || list == items {
                Ok(items.to_vec())
            } else {
                Err(ApplyError {
                    path: path.to_owned(),
                    why: "an atomic list may not be changed by an apply configuration".into(),
                })
            }
        }
        ListType::Set => {
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
            Ok(list)
        }
        ListType::Map(keys) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Object(fields) = item else {
                    return Err(ApplyError {
                        path: format!("{path}[{i}]"),
                        why: "a list item must be an object".into(),
                    });
                };
                let key_of = |v: &Value| -> Vec<Value> {
                    keys.iter()
                        .map(|k| match (v.get(*k), *k) {
                            // The API server's default for a port's protocol.
                            (None, "protocol") => Value::String("TCP".into()),
                            (found, _) => found.cloned().unwrap_or(Value::Null),
                        })
                        .collect()
                };
                let wanted = key_of(item);
                if wanted.iter().all(Value::is_null) {
                    return Err(ApplyError {
                        path: format!("{path}[{i}]"),
                        why: format!("an item of this list needs its key: {}", keys.join(", ")),
                    });
                }
                let at = format!("{path}[{}]", wanted.iter().map(Value::to_string).collect::<Vec<_>>().join(","));
                match list.iter_mut().find(|existing| key_of(existing) == wanted) {
                    Some(existing) => merge_map(existing, fields, &at, field, built_in)?,
                    None => {
                        let mut fresh = Value::Object(Map::new());
                        merge_map(&mut fresh, fields, &at, field, built_in)?;
                        list.push(fresh);
                    }
                }
            }
            Ok(list)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn merges_as_server_side_apply_does() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"initContainers": [{"name": "init", "image": "i"}],
                     "containers": [{"name": "app", "image": "a", "ports": [{"containerPort": 80}], "args": ["x"]}]}});
        let config = json!({"metadata": {"labels": {"b": "2"}, "finalizers": ["y", "x"]},
            "spec": {"initContainers": [{"name": "mesh-proxy", "image": "mesh/proxy:v1.0.0", "args": ["proxy", "sidecar"], "restartPolicy": "Always"}],
                     "containers": [{"name": "app", "imagePullPolicy": "Always", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]}});
        let out = apply_configuration(&pod, &config).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
                "spec": {"initContainers": [{"name": "init", "image": "i"},
                                            {"name": "mesh-proxy", "image": "mesh/proxy:v1.0.0", "args": ["proxy", "sidecar"], "restartPolicy": "Always"}],
                         "containers": [{"name": "app", "image": "a", "imagePullPolicy": "Always",
                                         "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}], "args": ["x"]}]}})
        );
    }

    #[test]
    fn atomic_lists_and_structs_and_custom_resources_are_refused() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"spec": {"containers": [{"name": "app", "args": ["x"]}]}}}});
        let err = apply_configuration(
            &deploy,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["y"]}]}}}}),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            ".spec.template.spec.containers[\"app\"].args: an atomic list may not be changed by an apply configuration"
        );
        let err = apply_configuration(&deploy, &json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}}));
        assert!(err.unwrap_err().why.contains("atomic struct"));
        // The same list, or one where there was none, is fine.
        assert!(
            apply_configuration(
                &deploy,
                &json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["x"]}]}}}})
            )
            .is_ok()
        );
        let crd = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"items": [{"a": 1}]}});
        let err = apply_configuration(&crd, &json!({"spec": {"items": [{"a": 2}]}})).unwrap_err();
        assert!(err.why.contains("custom resource's schema"), "{err}");
        assert_eq!(apply_configuration(&crd, &json!({"spec": {"size": 3}})).unwrap()["spec"]["size"], 3);
    }
}
