//! Constraints (`constraints.gatekeeper.sh`): which objects a template judges
//! (`spec.match`, Gatekeeper's semantics in full), with what parameters, and
//! what a violation does (`enforcementAction`, `scopedEnforcementActions`).

use paved_core::policy::Action;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ConstraintError {
    #[error("not a Gatekeeper constraint: {0}")]
    NotAConstraint(String),
    #[error("constraint {name}: {message}")]
    Invalid { name: String, message: String },
}

#[derive(Clone)]
pub struct Constraint {
    /// The template's kind, e.g. `K8sRequiredLabels`.
    pub kind: String,
    pub name: String,
    /// `spec.parameters`, converted to regorus's values once.
    pub parameters: regorus::Value,
    /// The constraint as CEL's `params` (`spec.parameters` always set), converted once.
    pub cel_params: std::sync::Arc<paved_cel::Params>,
    pub matcher: Value,
    /// What a violation does at admission (`deny`, `warn`, `dryrun` → Deny, Warn, Audit).
    pub action: Action,
    /// `spec.parameters` as written, for people.
    pub parameters_json: Value,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint").field("kind", &self.kind).field("name", &self.name).finish_non_exhaustive()
    }
}

impl Constraint {
    /// Whether `match.namespaceSelector` is set: then the Namespace objects
    /// (with their labels) must be known.
    pub fn selects_namespaces(&self) -> bool {
        self.matcher.get("namespaceSelector").is_some_and(|s| !s.is_null())
    }

    pub fn from_json(doc: &Value) -> Result<Constraint, ConstraintError> {
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if !api_version.starts_with("constraints.gatekeeper.sh/") {
            return Err(ConstraintError::NotAConstraint(api_version.to_owned()));
        }
        let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let action = action_of(&spec).map_err(|message| ConstraintError::Invalid { name: name.clone(), message })?;
        let parameters = spec.get("parameters").cloned().unwrap_or_else(|| Value::Object(Default::default()));
        let cel_params = std::sync::Arc::new(paved_cel::Params::new(&serde_json::json!({
            "apiVersion": api_version, "kind": kind, "metadata": doc.get("metadata"),
            "spec": {"parameters": parameters},
        })));
        Ok(Constraint {
            kind,
            name,
            cel_params,
            parameters: regorus::Value::from(parameters.clone()),
            parameters_json: parameters,
            matcher: spec.get("match").cloned().unwrap_or(Value::Null),
            action,
        })
    }

    /// Whether `spec.match` selects `object` (of `kind` group/kind), with
    /// `namespace` the Namespace object it lives in, when known.
    pub fn matches(&self, object: &Value, group: &str, kind: &str, namespace: Option<&Value>) -> bool {
        matches(&self.matcher, object, group, kind, namespace)
    }
}

/// `enforcementAction`, or for `scoped`, the action of the `webhook` enforcement point.
fn action_of(spec: &Value) -> Result<Action, String> {
    let parse = |s: &str| match s.to_ascii_lowercase().as_str() {
        "deny" => Ok(Action::Deny),
        "warn" => Ok(Action::Warn),
        "dryrun" => Ok(Action::Audit),
        other => Err(format!("enforcementAction {other:?} is not deny, warn, dryrun or scoped")),
    };
    match spec.get("enforcementAction").and_then(Value::as_str).unwrap_or("deny") {
        "scoped" => {
            // The strongest action any admission-facing enforcement point asks for.
            let mut best: Option<Action> = None;
            for scoped in spec.get("scopedEnforcementActions").and_then(Value::as_array).into_iter().flatten() {
                let points = scoped.get("enforcementPoints").and_then(Value::as_array);
                let for_admission = points.is_none_or(|ps| {
                    ps.iter().any(|p| {
                        matches!(p.get("name").and_then(Value::as_str), Some("validation.gatekeeper.sh" | "*"))
                    })
                });
                if for_admission {
                    let action = parse(scoped.get("action").and_then(Value::as_str).unwrap_or("deny"))?;
                    best = Some(best.map_or(action, |b| strongest(b, action)));
                }
            }
            Ok(best.unwrap_or(Action::Audit))
        }
        other => parse(other),
    }
}

fn strongest(a: Action, b: Action) -> Action {
    let rank = |x: Action| match x {
        Action::Deny => 2,
        Action::Warn => 1,
        Action::Audit => 0,
    };
    if rank(a) >= rank(b) { a } else { b }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Gatekeeper's wildcard: a leading and/or trailing `*` (`kube-*`, `*-system`).
fn wildcard(pattern: &str, s: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(rest), _) if rest.ends_with('*') => s.contains(&rest[..rest.len() - 1]),
        (Some(suffix), _) => s.ends_with(suffix),
        (None, Some(prefix)) => s.starts_with(prefix),
        (None, None) => pattern == s,
    }
}

fn matches(m: &Value, object: &Value, group: &str, kind: &str, namespace: Option<&Value>) -> bool {
    if m.is_null() {
        return true;
    }
    if let Some(kinds) = m.get("kinds").and_then(Value::as_array) {
        let any = kinds.iter().any(|k| {
            let groups = strings(k.get("apiGroups"));
            let names = strings(k.get("kinds"));
            (groups.is_empty() || groups.iter().any(|g| *g == "*" || *g == group))
                && (names.is_empty() || names.iter().any(|n| *n == "*" || *n == kind))
        });
        if !kinds.is_empty() && !any {
            return false;
        }
    }
    let object_ns = metadata(object, "namespace").and_then(Value::as_str).filter(|s| !s.is_empty());
    let is_namespace = kind == "Namespace" && group.is_empty();
    let has_namespace = object_ns.is_some() || namespace.is_some();
    match m.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" if !is_namespace && has_namespace => return false,
        "Namespaced" if is_namespace || !has_namespace => return false,
        _ => {}
    }
    // A Namespace matches namespace criteria by its own name; an object whose
    // namespace is unknown (cluster-scoped, or a manifest without one) cannot
    // be disqualified by them.
    let ns_name = if is_namespace {
        metadata(object, "name").and_then(Value::as_str)
    } else {
        namespace.and_then(|n| metadata(n, "name")).and_then(Value::as_str).or(object_ns)
    };
    if let Some(ns) = ns_name {
        let included = strings(m.get("namespaces"));
        if !included.is_empty() && !included.iter().any(|p| wildcard(p, ns)) {
            return false;
        }
        if strings(m.get("excludedNamespaces")).iter().any(|p| wildcard(p, ns)) {
            return false;
        }
    }
    if let Some(selector) = m.get("labelSelector")
        && !paved_core::selector::matches(selector, metadata(object, "labels"))
    {
        return false;
    }
    if let Some(selector) = m.get("namespaceSelector").filter(|s| !s.is_null()) {
        // Cluster-scoped objects other than Namespaces are never selected away.
        let cluster_scoped = !is_namespace && namespace.is_none() && object_ns.is_none();
        if !cluster_scoped {
            let labels = match (is_namespace, namespace) {
                (true, _) => metadata(object, "labels"),
                (false, Some(n)) => metadata(n, "labels"),
                // A namespaced object whose Namespace is unknown cannot be selected.
                (false, None) => return false,
            };
            if !paved_core::selector::matches(selector, labels) {
                return false;
            }
        }
    }
    if let Some(name) = m.get("name").and_then(Value::as_str) {
        let object_name = metadata(object, "name").and_then(Value::as_str).unwrap_or("");
        let generate_name = metadata(object, "generateName").and_then(Value::as_str);
        // A generateName matches a pattern that ends with `*` and starts with it.
        let generated = generate_name.is_some_and(|g| name.strip_suffix('*').is_some_and(|p| g.starts_with(p)));
        if !name.is_empty() && !wildcard(name, object_name) && !generated {
            return false;
        }
    }
    true
}

/// `metadata.<key>` of an object: `Value::pointer` would unescape each
/// token of the path, allocating, on every constraint of every object.
pub(crate) fn metadata<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.get("metadata")?.get(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_are_prefix_and_suffix_globs() {
        assert!(wildcard("kube-*", "kube-system"));
        assert!(wildcard("*-system", "kube-system"));
        assert!(wildcard("*", "anything"));
        assert!(!wildcard("kube-*", "default"));
        assert!(wildcard("exact", "exact") && !wildcard("exact", "exactly"));
    }

    #[test]
    fn match_kinds_namespaces_and_labels() {
        let m = json!({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}], "excludedNamespaces": ["kube-*"],
                       "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}});
        let pod = |ns: &str, tier: &str| json!({"metadata": {"namespace": ns, "labels": {"tier": tier}}});
        assert!(matches(&m, &pod("shop", "web"), "", "Pod", None));
        assert!(!matches(&m, &pod("kube-system", "web"), "", "Pod", None));
        assert!(!matches(&m, &pod("shop", "db"), "", "Pod", None));
        assert!(!matches(&m, &pod("shop", "web"), "apps", "Deployment", None));
    }

    #[test]
    fn enforcement_actions_map_to_paved_actions() {
        let action = |spec: Value| action_of(&spec);
        assert_eq!(action(json!({})), Ok(Action::Deny));
        assert_eq!(action(json!({"enforcementAction": "warn"})), Ok(Action::Warn));
        assert_eq!(action(json!({"enforcementAction": "dryrun"})), Ok(Action::Audit));
        let scoped = json!({"enforcementAction": "scoped", "scopedEnforcementActions": [
            {"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
            {"action": "deny", "enforcementPoints": [{"name": "audit.gatekeeper.sh"}]}]});
        assert_eq!(action(scoped), Ok(Action::Warn), "only the admission point counts here");
        assert!(action(json!({"enforcementAction": "block"})).is_err());
    }
}
