//! Deletion locks (PRODUCT.md section 5): what is locked, and the index of
//! locked objects per namespace that guards Namespace deletion.

use std::collections::{BTreeMap, BTreeSet};

use globset::{Glob, GlobSet, GlobSetBuilder};
use paved_core::config::Protect;
use paved_core::node::{Map, Node};

pub const LOCK: &str = "paved.dev/lock";
/// The annotation `paved serve` keeps on each Namespace that holds a locked
/// object, so that the webhook configuration can send paved only the
/// deletes of those Namespaces (failing closed) and let every other
/// Namespace delete through while paved is down. Only paved itself and the
/// lock authority may change it.
pub const HOLDS_LOCKS: &str = "paved.dev/holds-locks";
/// The service account `paved install` runs paved as, in its namespace.
pub const SERVICE_ACCOUNT: &str = "paved";
/// The value that locks; `off` lifts a lock that the configuration imposes.
pub const LOCKED: &str = "delete";
pub const OFF: &str = "off";

/// A Kubernetes resource, as RBAC rules, webhooks and watches name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub kind: &'static str,
}

const fn res(group: &'static str, version: &'static str, resource: &'static str, kind: &'static str) -> Resource {
    Resource { group, version, resource, kind }
}

/// The kinds the lock index watches: every built-in namespaced kind that can
/// be listed, so that a Namespace holding a locked object of any of them is
/// refused up front rather than left hanging in Terminating. Metadata-only
/// watches keep only locked objects (memory follows how many are locked,
/// not the cluster's size). Left out, each on purpose:
/// - Secrets: listing them, even for metadata, needs the right to read them,
///   and kubectl's client-side apply copies their data into an annotation.
///   A Secret's lock is honoured only in a locked Namespace (see
///   [`unindexed_lock`]).
/// - Events, Leases, Endpoints and EndpointSlices: written many times a
///   second by the system, never worth a lock; a lock on one is refused.
pub const LOCKABLE: &[Resource] = &[
    // Pods: an eviction request names the pod but does not carry it, so the
    // index is what tells whether an eviction would delete a locked pod.
    res("", "v1", "pods", "Pod"),
    res("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    res("", "v1", "services", "Service"),
    res("", "v1", "configmaps", "ConfigMap"),
    res("", "v1", "serviceaccounts", "ServiceAccount"),
    res("", "v1", "podtemplates", "PodTemplate"),
    res("", "v1", "replicationcontrollers", "ReplicationController"),
    res("", "v1", "resourcequotas", "ResourceQuota"),
    res("", "v1", "limitranges", "LimitRange"),
    res("apps", "v1", "deployments", "Deployment"),
    res("apps", "v1", "replicasets", "ReplicaSet"),
    res("apps", "v1", "statefulsets", "StatefulSet"),
    res("apps", "v1", "daemonsets", "DaemonSet"),
    res("apps", "v1", "controllerrevisions", "ControllerRevision"),
    res("batch", "v1", "cronjobs", "CronJob"),
    res("batch", "v1", "jobs", "Job"),
    res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    res("networking.k8s.io", "v1", "ingresses", "Ingress"),
    res("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    res("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    res("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    res("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    res("storage.k8s.io", "v1", "csistoragecapacities", "CSIStorageCapacity"),
];

/// Whether the lock index watches objects of this kind (by its group and
/// kind, as a request names them).
pub fn is_indexed(group: &str, kind: &str) -> bool {
    LOCKABLE.iter().any(|r| r.group == group && r.kind == kind)
}

/// Why a lock on an object of this kind cannot be honoured, if it cannot:
/// a namespaced object paved keeps no index of would hang its Namespace's
/// deletion (the namespace controller's delete of it refused). Cluster-scoped
/// objects and Namespaces need no index. A Secret is the exception: its
/// lock is honoured when its Namespace is locked too, which keeps the
/// Namespace from being deleted at all.
pub fn unindexed_lock(
    cluster: &crate::cluster::ClusterState,
    group: &str,
    kind: &str,
    namespace: &str,
) -> Option<String> {
    let indexed = is_indexed(group, kind) && !cluster.unlisted.contains(kind);
    if namespace.is_empty() || kind == "Namespace" || indexed {
        return None;
    }
    let namespace_locked = cluster.locked_namespaces.contains(namespace);
    if group.is_empty() && kind == "Secret" {
        return (!namespace_locked).then(|| {
            "paved never reads Secrets, so it cannot see this lock when the namespace is deleted; \
             lock the namespace first (kubectl annotate namespace NAMESPACE paved.dev/lock=delete)"
                .replace("NAMESPACE", namespace)
        });
    }
    Some(format!(
        "paved keeps no index of {kind} objects (it may not list them), so this lock would leave the namespace \
         hanging in Terminating when it is deleted; lock the namespace instead (kubectl annotate namespace {namespace} paved.dev/lock=delete)"
    ))
}

/// Why an object is locked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    /// `paved.dev/lock` is set (to `delete`, or to a value that is not `off`:
    /// a misspelt lock still locks).
    Annotation(String),
    /// A `locks.protect` rule (its index) matches and the annotation is not `off`.
    Protected(usize),
}

#[derive(Debug, thiserror::Error)]
#[error("locks.protect[{index}].{field}: {pattern:?}: {reason}")]
pub struct ProtectError {
    pub index: usize,
    /// `namespaces` or `kinds`.
    pub field: &'static str,
    pub pattern: String,
    pub reason: String,
}

struct Rule {
    kinds: Vec<String>,
    namespaces: Option<GlobSet>,
    labels: BTreeMap<String, String>,
}

/// The configuration's `locks.protect` rules, compiled.
pub struct Protection {
    rules: Vec<Rule>,
}

/// The facts about an object that locks depend on: from a full object or from
/// the metadata-only watch.
#[derive(Clone, Copy, Debug)]
pub struct Meta<'a> {
    pub kind: &'a str,
    /// For a Namespace, its own name: protection by namespace covers the namespace itself.
    pub namespace: &'a str,
    pub labels: Labels<'a>,
    pub lock: Option<&'a str>,
}

/// Labels as a request carries them (JSON) or as a watch delivers them (a map).
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a> {
    None,
    Node(&'a Map<'a>),
    Map(&'a BTreeMap<String, String>),
}

impl Labels<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        match self {
            Labels::None => None,
            Labels::Node(m) => m.get(key).and_then(Node::as_str),
            Labels::Map(m) => m.get(key).map(String::as_str),
        }
    }
}

impl<'a> Meta<'a> {
    pub fn of(obj: &'a Node<'a>) -> Meta<'a> {
        let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
        let meta = obj.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k));
        let namespace = if kind == "Namespace" { field("name") } else { field("namespace") };
        Meta {
            kind,
            namespace: namespace.and_then(Node::as_str).unwrap_or(""),
            labels: field("labels").and_then(Node::as_map).map_or(Labels::None, Labels::Node),
            lock: field("annotations").and_then(|a| a.get(LOCK)).and_then(Node::as_str),
        }
    }
}

impl Protection {
    pub fn compile(protect: &[Protect]) -> Result<Protection, ProtectError> {
        let mut rules = Vec::with_capacity(protect.len());
        for (index, p) in protect.iter().enumerate() {
            // A kind the index does not watch would hang its namespace's
            // deletion (the namespace controller's deletes refused): only the
            // indexed kinds, and Namespaces, can be protected by kind.
            if let Some(kind) = p.kinds.iter().find(|k| *k != "Namespace" && !LOCKABLE.iter().any(|r| r.kind == *k)) {
                let reason = if kind == "Secret" {
                    "paved never reads Secrets, so it cannot protect them by kind; protect their Namespace".to_owned()
                } else {
                    format!("paved keeps no index of {kind} objects; protect their Namespace, or lock what matters")
                };
                return Err(ProtectError { index, field: "kinds", pattern: kind.clone(), reason });
            }
            let namespaces = if p.namespaces.is_empty() {
                None
            } else {
                let mut set = GlobSetBuilder::new();
                for pattern in &p.namespaces {
                    // The webhook's match condition repeats these patterns as
                    // CEL regexes; only `*` and `?` translate one for one, and
                    // namespace names need nothing more.
                    if let Some(c) = pattern.chars().find(|c| !is_namespace_glob_char(*c)) {
                        return Err(ProtectError {
                            index,
                            field: "namespaces",
                            pattern: pattern.clone(),
                            reason: format!(
                                "{c:?} cannot be in a namespace pattern: use lowercase letters, digits, '-', '.', and the wildcards * and ?"
                            ),
                        });
                    }
                    let glob = Glob::new(pattern).map_err(|e| ProtectError {
                        index,
                        field: "namespaces",
                        pattern: pattern.clone(),
                        reason: e.kind().to_string(),
                    })?;
                    set.add(glob);
                }
                Some(set.build().map_err(|e| ProtectError {
                    index,
                    field: "namespaces",
                    pattern: String::new(),
                    reason: e.to_string(),
                })?)
            };
            rules.push(Rule { kinds: p.kinds.clone(), namespaces, labels: p.label_selector.clone() });
        }
        Ok(Protection { rules })
    }

    /// The first `locks.protect` rule that covers the object.
    pub fn rule_for(&self, m: &Meta) -> Option<usize> {
        self.rules.iter().position(|r| {
            (r.kinds.is_empty() || r.kinds.iter().any(|k| k == m.kind))
                && r.namespaces.as_ref().is_none_or(|set| !m.namespace.is_empty() && set.is_match(m.namespace))
                && r.labels.iter().all(|(k, v)| m.labels.get(k) == Some(v.as_str()))
        })
    }

    pub fn lock_of(&self, m: &Meta) -> Option<Lock> {
        match m.lock {
            Some(OFF) => None,
            Some(other) => Some(Lock::Annotation(other.to_owned())),
            None => self.rule_for(m).map(Lock::Protected),
        }
    }
}

fn is_namespace_glob_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '*' | '?')
}

/// The controllers that copy a Deployment's annotations, its lock among them,
/// onto its ReplicaSets, and the garbage collector that deletes those once
/// the Deployment is gone. A ReplicaSet's copy of the lock is its
/// Deployment's: it guards nothing once the Deployment was unlocked and
/// deleted, which paved judged.
pub const MIRROR_KEEPERS: [&str; 2] = [
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
];

/// Whether a change to this object's lock by `username` only follows its
/// Deployment's: a ReplicaSet controlled by a Deployment, changed or
/// deleted by the deployment controller or the garbage collector.
pub fn mirrors_its_owner(kind: &str, obj: &Node, username: &str) -> bool {
    kind == "ReplicaSet"
        && MIRROR_KEEPERS.contains(&username)
        && paved_core::object::controller_ref(obj).is_some_and(|r| {
            r.get("kind").and_then(Node::as_str) == Some("Deployment")
                && r.get("apiVersion").and_then(Node::as_str).is_some_and(|v| v.starts_with("apps/"))
        })
}

/// Locked objects by namespace, fed by a metadata-only watch of the lockable
/// kinds. Holds only locked objects, so its size is bounded by how many there are.
#[derive(Debug, Default, Clone)]
pub struct LockIndex {
    by_namespace: BTreeMap<String, BTreeSet<String>>,
}

impl LockIndex {
    /// Records whether `resource/name` in `namespace` is locked now.
    pub fn set(&mut self, namespace: &str, object: &str, locked: bool) {
        if locked {
            self.by_namespace.entry(namespace.to_owned()).or_default().insert(object.to_owned());
        } else if let Some(set) = self.by_namespace.get_mut(namespace) {
            set.remove(object);
            if set.is_empty() {
                self.by_namespace.remove(namespace);
            }
        }
    }

    /// Replaces every entry of one resource (`persistentvolumeclaims`) with
    /// `locked` (namespace, name) pairs: what a watch's relist found.
    pub fn replace_resource(&mut self, resource: &str, locked: impl IntoIterator<Item = (String, String)>) {
        let prefix = format!("{resource}/");
        for set in self.by_namespace.values_mut() {
            set.retain(|o| !o.starts_with(&prefix));
        }
        self.by_namespace.retain(|_, set| !set.is_empty());
        for (namespace, name) in locked {
            self.set(&namespace, &format!("{prefix}{name}"), true);
        }
    }

    /// The namespaces that hold at least one locked object.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.by_namespace.keys().map(String::as_str)
    }

    /// Whether `resource/name` in `namespace` is locked.
    pub fn contains(&self, namespace: &str, object: &str) -> bool {
        self.by_namespace.get(namespace).is_some_and(|set| set.contains(object))
    }

    /// Up to `limit` locked objects in a namespace, and how many there are.
    pub fn locked_in(&self, namespace: &str, limit: usize) -> (Vec<String>, usize) {
        match self.by_namespace.get(namespace) {
            Some(set) => (set.iter().take(limit).cloned().collect(), set.len()),
            None => (Vec::new(), 0),
        }
    }

    pub fn len(&self) -> usize {
        self.by_namespace.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn protection() -> Protection {
        let protect = vec![
            Protect {
                kinds: vec!["PersistentVolumeClaim".into(), "Namespace".into()],
                namespaces: vec!["prod-*".into()],
                ..Default::default()
            },
            Protect { label_selector: [("tier".to_owned(), "data".to_owned())].into(), ..Default::default() },
        ];
        match Protection::compile(&protect) {
            Ok(p) => p,
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn protection_by_kind_namespace_and_labels() {
        let p = protection();
        let pvc = |ns: &str, ann: Value| json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "d", "namespace": ns, "annotations": ann}});
        let lock_of = |json: &Value| p.lock_of(&Meta::of(&Node::from_json(json)));
        assert_eq!(lock_of(&pvc("prod-eu", json!({}))), Some(Lock::Protected(0)));
        assert_eq!(lock_of(&pvc("dev", json!({}))), None);
        assert_eq!(lock_of(&pvc("prod-eu", json!({LOCK: "off"}))), None);
        assert_eq!(lock_of(&pvc("dev", json!({LOCK: "delete"}))), Some(Lock::Annotation("delete".into())));
        assert_eq!(lock_of(&pvc("dev", json!({LOCK: "yes"}))), Some(Lock::Annotation("yes".into())));
        let ns = json!({"kind": "Namespace", "metadata": {"name": "prod-us"}});
        assert_eq!(lock_of(&ns), Some(Lock::Protected(0)));
        let labelled = json!({"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"tier": "data"}}});
        assert_eq!(lock_of(&labelled), Some(Lock::Protected(1)));
    }

    #[test]
    fn bad_glob_is_an_error_naming_the_rule() {
        let protect = vec![Protect { namespaces: vec!["prod-[".into()], ..Default::default() }];
        let err = Protection::compile(&protect).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("locks.protect[0].namespaces: \"prod-[\""), "{err}");
    }

    #[test]
    fn index_holds_only_locked_objects() {
        let mut index = LockIndex::default();
        index.set("prod", "persistentvolumeclaims/a", true);
        index.set("prod", "persistentvolumeclaims/b", true);
        index.set("prod", "persistentvolumeclaims/a", false);
        index.set("dev", "configmaps/x", false);
        assert_eq!(index.locked_in("prod", 5), (vec!["persistentvolumeclaims/b".to_owned()], 1));
        assert_eq!(index.len(), 1);
        index.set("prod", "persistentvolumeclaims/b", false);
        assert!(index.is_empty());
        index.set("prod", "configmaps/keep", true);
        index.set("prod", "persistentvolumeclaims/gone", true);
        index.replace_resource("persistentvolumeclaims", [("dev".to_owned(), "new".to_owned())]);
        assert_eq!(index.locked_in("prod", 5), (vec!["configmaps/keep".to_owned()], 1));
        assert_eq!(index.locked_in("dev", 5), (vec!["persistentvolumeclaims/new".to_owned()], 1));
    }
}
