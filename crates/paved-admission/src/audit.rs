//! `paved audit`'s judgment, with no I/O: objects already in the cluster,
//! judged as admission would judge them if they were created now (each with
//! its namespace's profile and mode), plus the exemptions and locks they carry.
//!
//! Counts are exact; the objects listed at fault are capped per namespace and
//! per policy, so a cluster of a million broken pods gives a report of
//! bounded size.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use paved_core::Timestamp;
use paved_core::exempt::{State, exemptions_of};
use paved_core::node::Node;
use paved_core::object::{ObjectRef, PodView};
use paved_core::policy::Action;
use serde::Serialize;

use crate::cluster::ClusterState;
use crate::decide::Admission;
use crate::locks::{Lock, Meta};

/// Objects listed at fault per namespace and per policy; counts go on.
pub const DEFAULT_MAX_LISTED: usize = 100;

/// Controllers whose findings are reported on the controller, not again on
/// every ReplicaSet, Pod or Job it makes.
const CONTROLLERS: &[&str] =
    &["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"];

/// The namespace key of cluster-scoped objects in reports.
pub const CLUSTER_SCOPE: &str = "";

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub deny: u64,
    pub warn: u64,
    pub audit: u64,
    /// Findings a valid exemption covers: listed, never counted above.
    pub exempted: u64,
}

impl Counts {
    fn add(&mut self, action: Action, exempted: bool) {
        match (exempted, action) {
            (true, _) => self.exempted += 1,
            (false, Action::Deny) => self.deny += 1,
            (false, Action::Warn) => self.warn += 1,
            (false, Action::Audit) => self.audit += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.deny + self.warn + self.audit
    }
}

/// One finding on one object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub object: Arc<ObjectRef>,
    pub policy: String,
    pub action: Action,
    pub message: String,
    /// The field at fault, as `check` writes it (`spec.containers[0].image`).
    pub path: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceReport {
    /// `name[:version]` the namespace's labels (or the default) choose.
    pub profile: Option<String>,
    pub mode: String,
    pub objects: u64,
    /// Objects with at least one counted finding.
    pub objects_at_fault: u64,
    pub findings: Counts,
    pub faults: Vec<Fault>,
    /// Faults beyond the listing cap.
    pub more_faults: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    pub findings: Counts,
    /// `Kind namespace/name` of the first objects at fault.
    pub objects: BTreeSet<String>,
    pub more_objects: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionRow {
    pub object: ObjectRef,
    pub policies: Vec<String>,
    pub reason: Option<String>,
    pub until: Option<String>,
    /// valid, expired, missing-reason, placeholder-reason or bad-date; `kyverno` for a Kyverno
    /// PolicyException (no expiry: it holds while it exists).
    pub state: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRow {
    pub object: ObjectRef,
    /// `paved.dev/lock=delete`, or the `locks.protect` rule that applies.
    pub why: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Objects in namespaces paved leaves alone (kube-system, its own).
    pub excluded_namespaces: u64,
    /// Objects made by a controller, judged at the controller.
    pub controlled: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub objects: u64,
    pub findings: Counts,
    pub skipped: Skipped,
    pub namespaces: BTreeMap<String, NamespaceReport>,
    pub policies: BTreeMap<String, PolicyReport>,
    /// Expired (and otherwise invalid) first, then by expiry date.
    pub exemptions: Vec<ExemptionRow>,
    pub locks: Vec<LockRow>,
    /// Who holds rights that make them as powerful as paved's authorities.
    pub powerful: Vec<crate::trust::PowerRow>,
    /// Namespace labels paved could not use, once each.
    pub warnings: BTreeSet<String>,
}

pub struct Audit<'a> {
    admission: &'a Admission,
    cluster: &'a ClusterState,
    now: Timestamp,
    max_listed: usize,
    report: Report,
    rbac: crate::trust::Rbac,
}

impl<'a> Audit<'a> {
    /// `cluster` holds the namespaces' labels (list namespaces first).
    pub fn new(admission: &'a Admission, cluster: &'a ClusterState, now: Timestamp, max_listed: usize) -> Audit<'a> {
        Audit { admission, cluster, now, max_listed, report: Report::default(), rbac: crate::trust::Rbac::default() }
    }

    /// Judges one object as listed from the cluster (with kind and apiVersion).
    pub fn add(&mut self, obj: &Node) {
        let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
        let namespace = obj.at(&["metadata", "namespace"]).and_then(Node::as_str).unwrap_or(CLUSTER_SCOPE);
        self.report.objects += 1;
        // Roles and bindings anywhere, kube-system's included, for who holds power.
        if matches!(kind, "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") {
            self.rbac.add(obj);
        }
        if !namespace.is_empty() && self.admission.is_excluded(namespace) {
            self.report.skipped.excluded_namespaces += 1;
            return;
        }
        let object = ObjectRef::of(obj);
        let api_version = obj.get("apiVersion").and_then(Node::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if paved_core::kyverno::is_exception_kind(group, kind) {
            let spec = obj.get("spec").and_then(|s| serde_json::to_value(s).ok()).unwrap_or_default();
            let annotation =
                |k: &str| obj.at(&["metadata", "annotations", k]).and_then(Node::as_str).map(str::to_owned);
            self.report.exemptions.push(ExemptionRow {
                object: object.clone(),
                policies: paved_core::kyverno::exception_grants(&spec),
                reason: annotation(paved_core::exempt::EXEMPT_REASON)
                    .or_else(|| annotation("policies.kyverno.io/description")),
                until: None,
                state: "kyverno",
            });
        }
        let pod = PodView::of(obj, kind);
        for e in exemptions_of(obj, pod.as_ref(), self.now) {
            self.report.exemptions.push(ExemptionRow {
                object: object.clone(),
                policies: e.patterns.clone(),
                reason: e.reason.clone(),
                until: e.until_text.clone(),
                state: match e.state {
                    State::Valid => "valid",
                    State::Expired => "expired",
                    State::MissingReason => "missing-reason",
                    State::PlaceholderReason => "placeholder-reason",
                    State::BadDate => "bad-date",
                },
            });
        }
        if let Some(lock) = self.admission.protection().lock_of(&Meta::of(obj)) {
            let why = match lock {
                Lock::Annotation(value) => format!("{}={value}", crate::locks::LOCK),
                Lock::Protected(rule) => format!("locks.protect rule {}", rule + 1),
            };
            self.report.locks.push(LockRow { object: object.clone(), why });
        }
        if is_controlled(obj) {
            self.report.skipped.controlled += 1;
            return;
        }
        let labels = self.cluster.labels_of(namespace);
        let ns = self.report.namespaces.entry(namespace.to_owned()).or_insert_with(|| NamespaceReport {
            profile: self.admission.profile_of(labels),
            mode: labels.and_then(|l| l.mode.clone()).unwrap_or_else(|| "enforce".to_owned()),
            ..NamespaceReport::default()
        });
        ns.objects += 1;
        let mut warnings = Vec::new();
        let engine = self.admission.engine_for(labels, &mut warnings);
        for w in warnings {
            self.report.warnings.insert(format!("namespace {namespace}: {w}"));
        }
        let findings = engine.evaluate(obj, self.now);
        let mut at_fault = false;
        let mut policies_at_fault = Vec::new();
        for f in findings {
            let exempted = f.exempted.is_some();
            ns.findings.add(f.action, exempted);
            self.report.findings.add(f.action, exempted);
            let policy = self.report.policies.entry(f.policy.to_string()).or_default();
            policy.findings.add(f.action, exempted);
            if exempted {
                continue;
            }
            at_fault = true;
            // Each object counts once per policy, however many findings it has.
            if !policies_at_fault.contains(&f.policy) {
                policies_at_fault.push(f.policy.clone());
                if policy.objects.len() < self.max_listed {
                    policy.objects.insert(f.object.to_string());
                } else {
                    policy.more_objects += 1;
                }
            }
            if ns.faults.len() < self.max_listed {
                ns.faults.push(Fault {
                    object: Arc::clone(&f.object),
                    policy: f.policy.to_string(),
                    action: f.action,
                    message: f.message,
                    path: f.path.render(),
                });
            } else {
                ns.more_faults += 1;
            }
        }
        if at_fault {
            ns.objects_at_fault += 1;
        }
    }

    pub fn finish(mut self) -> Report {
        // What `paved serve` leaves alone as installed: its namespace and the system's.
        let paved = crate::trust::DEFAULT_NAMESPACE;
        let excluded: Vec<String> =
            crate::trust::ALWAYS_EXCLUDED.iter().copied().chain([paved]).map(str::to_owned).collect();
        self.report.powerful = self.rbac.powerful(&crate::trust::Places { excluded: &excluded, paved });
        // Expired and invalid exemptions first: they are the ones to act on.
        self.report.exemptions.sort_by(|a, b| {
            (a.state == "valid", &a.until, &a.object.namespace, &a.object.name).cmp(&(
                b.state == "valid",
                &b.until,
                &b.object.namespace,
                &b.object.name,
            ))
        });
        self.report.locks.sort_by(|a, b| {
            (&a.object.namespace, &a.object.kind, &a.object.name).cmp(&(
                &b.object.namespace,
                &b.object.kind,
                &b.object.name,
            ))
        });
        self.report
    }
}

/// Made by a controller paved judges (its `ownerReferences` controller).
fn is_controlled(obj: &Node) -> bool {
    paved_core::object::controller_ref(obj)
        .and_then(|r| r.get("kind"))
        .and_then(Node::as_str)
        .is_some_and(|kind| CONTROLLERS.contains(&kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_core::config::Config;

    #[test]
    fn an_object_counts_once_per_policy_beyond_the_listing_cap() {
        let admission = Admission::new(Config::default(), Some("pss-baseline"), Vec::new()).expect("default config");
        let cluster = ClusterState::default();
        let mut audit = Audit::new(&admission, &cluster, Timestamp::UNIX_EPOCH, 0);
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
            "spec": {"containers": [
                {"name": "a", "image": "x", "securityContext": {"privileged": true}},
                {"name": "b", "image": "x", "securityContext": {"privileged": true}}]}});
        audit.add(&Node::from_json(&pod));
        let report = audit.finish();
        let privileged = &report.policies["pss-baseline/privileged"];
        assert_eq!(privileged.findings.deny, 2, "both containers are findings");
        assert_eq!((privileged.objects.len(), privileged.more_objects), (0, 1), "but one object");
    }
}
