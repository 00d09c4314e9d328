//! One AdmissionRequest in, one verdict out: locks, exemption grants and
//! policies, in that order of authority.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use paved_core::Timestamp;
use paved_core::config::{Authority, Config};
use paved_core::eval::Engine;
use paved_core::eval::Foreign;
use paved_core::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL, pattern_covers};
use paved_core::image::ImageFacts;
use paved_core::node::Node;
use paved_core::object::{controller_ref, pod_template_path};
use paved_core::policy::{Action, clip_chars};
use paved_core::profile::{Mode, ProfileError};

use crate::cluster::{ClusterState, MODE_LABEL, NamespaceLabels, PROFILE_LABEL, VERSION_LABEL};
use crate::locks::{
    HOLDS_LOCKS, LOCK, LOCKED, Lock, Meta, OFF, ProtectError, Protection, mirrors_its_owner, unindexed_lock,
};
use crate::review::{AdmissionRequest, AdmissionResponse, Status};
use crate::warning::{self, Note, first_fitting};

/// Warnings: each at most [`warning::MAX_CHARS`], all together at most this.
pub const MAX_WARNINGS_BYTES: usize = 4096;
/// Denials listed in a refusal's message; the rest are counted.
const LISTED_DENIALS: usize = 5;
/// Locked objects named when a Namespace delete is refused.
const LISTED_LOCKED: usize = 5;
/// Compiled (profile, mode) pairs kept; labels are user input, so the cache is bounded.
const ENGINE_CACHE: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Protect(#[from] ProtectError),
}

/// The annotation the kubelet puts on the mirror of a static pod.
const MIRROR_POD: &str = "kubernetes.io/config.mirror";

/// The configuration compiled for admission. Cheap to share; replaced whole on reload.
pub struct Admission {
    config: Config,
    default_profile: Option<String>,
    default: Arc<Engine>,
    protection: Protection,
    engines: Mutex<HashMap<NamespaceLabels, Arc<Engine>>>,
    excluded: Vec<String>,
    /// Policies in other languages (Gatekeeper), added to every namespace's engine.
    foreign: Vec<Arc<dyn Foreign>>,
    /// What images carry, for the supply-chain content rules of every namespace's engine.
    images: Option<Arc<dyn ImageFacts>>,
    /// paved's own identity (its service account), which keeps the
    /// `paved.dev/holds-locks` marker on Namespaces.
    identity: Option<String>,
}

/// What a webhook asks about. `paved install` registers the gestures that
/// need authority (locks, grants) apart from the policies, so that those
/// fail closed while policies fail open; each webhook asks about its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Deletes and evictions of locked objects, and lifting, changing or
    /// misspelling a lock.
    Locks,
    /// Exemption grants: `paved.dev/exempt*` annotations, and a Namespace's
    /// profile and mode labels (an exemption for everything in it).
    Grants,
    /// Policies.
    Policies,
}

/// What `/mutate` answers.
#[derive(Debug, Default)]
pub struct Mutated {
    /// RFC 6902 operations, empty when nothing is set.
    pub patch: Vec<paved_core::mutate::PatchOp>,
    pub warnings: Vec<String>,
    /// The defaults, and the MutatingAdmissionPolicy bindings, that set
    /// something, for the audit annotation.
    pub policies: Vec<Cow<'static, str>>,
    /// Why the request is refused: a MutatingAdmissionPolicy whose
    /// failurePolicy is Fail could not mutate it, as the API server refuses.
    pub refused: Option<String>,
}

/// Something worth a metric and a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A DELETE refused because the object (or something in the namespace) is locked.
    DeleteRefused {
        object: String,
    },
    /// A lock lifted by the lock authority.
    Unlocked {
        object: String,
        by: String,
    },
    /// An attempt to lift a lock without authority.
    UnlockRefused {
        object: String,
        by: String,
    },
    ExemptionGranted {
        policy: String,
        by: String,
    },
    ExemptionRefused {
        policy: String,
        by: String,
    },
}

/// The judgment on one request.
#[derive(Debug, Default)]
pub struct Verdict {
    /// `Kind namespace/name`, for messages and logs.
    pub subject: String,
    /// Reasons to refuse, `[policy] message`; empty means allowed.
    pub denials: Vec<String>,
    pub warnings: Vec<String>,
    pub audit: BTreeMap<String, String>,
    /// Policies that found something (exempted ones excluded), for metrics.
    pub findings: Vec<(Cow<'static, str>, Action)>,
    pub events: Vec<Event>,
    pub dry_run: bool,
    /// A Namespace whose profile or mode labels this request changes, and
    /// its new labels: the caller lists its workloads for
    /// [`Admission::relabel_warnings`].
    pub relabelled: Option<(String, NamespaceLabels)>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// The most severe outcome: `denied`, `warned`, or `allowed`.
    pub fn outcome(&self) -> &'static str {
        if !self.allowed() {
            "denied"
        } else if !self.warnings.is_empty() {
            "warned"
        } else {
            "allowed"
        }
    }

    /// The response the API server expects: 403 with the findings listed on
    /// refusal, warnings clipped to what kubectl shows well.
    pub fn into_response(self, uid: String) -> AdmissionResponse {
        let status = (!self.denials.is_empty()).then(|| {
            let listed = self.denials.iter().take(LISTED_DENIALS).map(String::as_str).collect::<Vec<_>>().join("; ");
            let more = self.denials.len().saturating_sub(LISTED_DENIALS);
            let tail = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            Status {
                status: "Failure".into(),
                message: format!("paved denied {}: {listed}{tail}", self.subject),
                reason: "Forbidden".into(),
                code: Some(403),
                ..Status::default()
            }
        });
        AdmissionResponse {
            uid,
            allowed: status.is_none(),
            status,
            audit_annotations: self.audit,
            warnings: bound_warnings(self.warnings),
            ..AdmissionResponse::default()
        }
    }
}

/// One line each, at most [`warning::MAX_CHARS`] (they are written to fit;
/// one that does not is left out, never cut), at most `MAX_WARNINGS_BYTES`
/// in all, with a last line counting what did not fit.
pub fn bound_warnings(warnings: Vec<String>) -> Vec<String> {
    // Room kept for the closing "paved: N more warnings not shown" line.
    const MORE_RESERVE: usize = 64;
    let total = warnings.len();
    let mut out = Vec::with_capacity(total);
    let mut bytes = 0;
    for (i, w) in warnings.into_iter().enumerate() {
        let w = first_fitting([w], "paved: a warning too long to show was left out.");
        let reserve = if i + 1 == total { 0 } else { MORE_RESERVE };
        if bytes + w.len() + reserve > MAX_WARNINGS_BYTES {
            break;
        }
        bytes += w.len();
        out.push(w);
    }
    if out.len() < total {
        out.push(format!("paved: {} more warnings not shown.", total - out.len()));
    }
    out
}

/// One line of at most `max_chars`, marked where cut: for audit annotations,
/// which are read in logs, not shown whole by kubectl.
fn one_line(s: &str, max_chars: usize) -> String {
    clip_chars(warning::one_line(s), max_chars)
}

/// An audit annotation key: the API server prefixes it with the webhook's name,
/// so it must be a valid name part (no `/`, at most 63 characters).
fn audit_key(policy: &str) -> String {
    let mut key: String =
        policy.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '.' }).collect();
    key.truncate(63);
    key
}

impl Admission {
    /// Compiles `config`; `profile` (from `--profile`) overrides its default profile.
    /// Requests in `excluded` namespaces are always allowed untouched.
    pub fn new(config: Config, profile: Option<&str>, excluded: Vec<String>) -> Result<Admission, SetupError> {
        Admission::with_foreign(config, profile, excluded, Vec::new())
    }

    /// [`Admission::new`], with policies other engines evaluate (Gatekeeper's
    /// Rego) judged beside the native rules in every namespace.
    pub fn with_foreign(
        config: Config,
        profile: Option<&str>,
        excluded: Vec<String>,
        foreign: Vec<Arc<dyn Foreign>>,
    ) -> Result<Admission, SetupError> {
        let default = Arc::new(Engine::new(&config, profile, Mode::Enforce)?.with_foreign(foreign.iter().cloned()));
        let protection = Protection::compile(&config.locks.protect)?;
        Ok(Admission {
            default_profile: profile.map(str::to_owned),
            default,
            protection,
            engines: Mutex::new(HashMap::new()),
            excluded,
            foreign,
            images: None,
            identity: None,
            config,
        })
    }

    /// Gives every namespace's engine what images carry (see
    /// [`Engine::with_images`]); only engines whose profile reads image
    /// contents ever ask.
    pub fn with_images(mut self, facts: Arc<dyn ImageFacts>) -> Admission {
        self.default = Arc::new((*self.default).clone().with_images(Arc::clone(&facts)));
        self.engines = Mutex::new(HashMap::new());
        self.images = Some(facts);
        self
    }

    /// paved's own username (`system:serviceaccount:NS:paved`), which may
    /// keep the `paved.dev/holds-locks` marker on Namespaces.
    pub fn with_identity(mut self, username: String) -> Admission {
        self.identity = Some(username);
        self
    }

    /// Whether some engine built so far reads image contents: the
    /// cluster default, or a namespace's.
    pub fn needs_image_contents(&self) -> bool {
        self.default.needs_image_contents()
            || self.engines.lock().is_ok_and(|engines| engines.values().any(|e| e.needs_image_contents()))
    }

    /// Whether `paved serve` leaves this namespace alone (its own, kube-system).
    pub fn is_excluded(&self, namespace: &str) -> bool {
        self.excluded.iter().any(|n| n == namespace)
    }

    /// The profile a namespace's labels choose, as `name[:version]`, for reports.
    pub fn profile_of(&self, labels: Option<&NamespaceLabels>) -> Option<String> {
        let default = self.default_profile.as_deref().or(self.config.profile.as_deref());
        match labels {
            Some(l) => l.profile_ref(default),
            None => default.map(str::to_owned),
        }
    }

    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// What `/mutate` answers a request: the paved road's defaults (where
    /// [`Admission::sets_defaults`] allows them; the namespace's profile
    /// decides which), then the loaded mutating policies, as one patch, and
    /// a warning for each default set. Nothing for excluded namespaces,
    /// subresources or deletes.
    pub fn mutate(&self, req: &AdmissionRequest, cluster: &ClusterState, now: Timestamp) -> Mutated {
        let mut out = Mutated::default();
        if (!req.namespace.is_empty() && self.is_excluded(&req.namespace))
            || !req.sub_resource.is_empty()
            || req.object.as_map().is_none()
        {
            return out;
        }
        let defaults = self.sets_defaults(req);
        let policies_mutate = self.foreign.iter().any(|f| f.mutates());
        if !defaults && !policies_mutate {
            return out;
        }
        // The policies read the request (and its old object) as JSON.
        let request =
            if policies_mutate { serde_json::to_value(req).unwrap_or_default() } else { serde_json::Value::Null };
        let old = request.get("oldObject").unwrap_or(&serde_json::Value::Null);
        let engine = self.engine_for(cluster.labels_of(&req.namespace), &mut Vec::new());
        let resources = defaults.then_some(&self.config.defaults.resources);
        let mutations =
            engine.mutate(&req.object, &req.kind.kind, resources, old, policies_mutate.then_some(&request), now);
        if let Some((id, why, _)) = mutations.errors.iter().find(|(_, _, refuses)| *refuses) {
            out.refused = Some(format!("[{id}] {why}"));
            return out;
        }
        // Said in the order they ran: the defaults, the policies, the
        // defaults on what the policies added.
        let mut warnings: Vec<String> = mutations.defaults.iter().map(|m| m.announce.clone()).collect();
        warnings.extend(
            mutations
                .errors
                .iter()
                .map(|(id, why, _)| format!("[{id}] could not mutate it (failurePolicy Ignore): {why}")),
        );
        warnings.extend(mutations.defaults_after_policies.iter().map(|m| m.announce.clone()));
        let mut set = |policy: Cow<'static, str>| {
            if !out.policies.contains(&policy) {
                out.policies.push(policy);
            }
        };
        mutations.defaults.iter().for_each(|m| set(m.policy.into()));
        mutations.by.into_iter().for_each(|id| set(id.into()));
        mutations.defaults_after_policies.iter().for_each(|m| set(m.policy.into()));
        out.patch = mutations.patch;
        out.warnings = bound_warnings(warnings);
        out
    }

    /// Whether the paved road's defaults are set on this request's object:
    /// what a controller makes keeps its owner's template, a running Pod is
    /// never changed, and a workload only when its template changes.
    fn sets_defaults(&self, req: &AdmissionRequest) -> bool {
        let kind = req.kind.kind.as_str();
        let Some(template) = paved_core::object::pod_template_path(kind) else { return false };
        // A ReplicaSet or Job a controller makes carries its owner's template,
        // which the owner got (or did not get) at its own admission: a
        // different template would make the deployment controller think the
        // ReplicaSet is not its, and make another, without end.
        if kind != "Pod" && paved_core::object::controller_ref(&req.object).is_some() {
            return false;
        }
        // A trusted controller's Pod follows its template, as it is judged at
        // its owner: the owner got the defaults, or was exempt from them (on
        // the workload, which its pods do not carry), or predates paved, when
        // pods unlike the running ones would break a scale or a node drain,
        // said only to a controller. An operator's pods, from no template
        // paved has seen, get them.
        if kind == "Pod" && self.made_by_trusted_controller(req).is_some() {
            return false;
        }
        // A mirror pod only shows a static pod the kubelet runs from a file
        // on the node: defaults on it would change what the API says runs,
        // not what runs.
        if kind == "Pod" && req.object.at(&["metadata", "annotations", MIRROR_POD]).is_some() {
            return false;
        }
        match req.operation.as_str() {
            "CREATE" => true,
            // Never a running Pod (its spec cannot change), nor a Job (its
            // template is immutable but for a suspended Job's scheduling
            // directives, which a queue such as Kueue changes: defaults
            // there would have the API server refuse the queue's update),
            // and a workload only when its pod template changed: a rollout
            // happens anyway, where defaults added on a scale or a relabel
            // would restart every pod of a workload made before paved.
            "UPDATE" => kind != "Pod" && kind != "Job" && req.object.at(template) != req.old_object.at(template),
            _ => false,
        }
    }

    /// Judges a request on everything: locks, exemption grants and policies.
    pub fn review(&self, req: &AdmissionRequest, cluster: &ClusterState, now: Timestamp) -> Verdict {
        self.review_scoped(req, cluster, now, Scope::All)
    }

    pub fn review_scoped(
        &self,
        req: &AdmissionRequest,
        cluster: &ClusterState,
        now: Timestamp,
        scope: Scope,
    ) -> Verdict {
        let mut v = Verdict { subject: subject(req), dry_run: req.dry_run == Some(true), ..Verdict::default() };
        if !req.namespace.is_empty() && self.is_excluded(&req.namespace) {
            return v;
        }
        let locks = matches!(scope, Scope::All | Scope::Locks);
        let grants = matches!(scope, Scope::All | Scope::Grants);
        let policies = matches!(scope, Scope::All | Scope::Policies);
        match req.operation.as_str() {
            "DELETE" if locks => self.check_delete(req, cluster, &mut v),
            // An eviction deletes the pod it names, which the request does not carry.
            "CREATE" if locks && req.sub_resource == "eviction" => self.check_eviction(req, cluster, &mut v),
            "CREATE" | "UPDATE" if req.object.as_map().is_some() => {
                if locks {
                    self.check_lock_changes(req, cluster, &mut v);
                }
                if grants {
                    self.check_exemption_grants(req, &mut v);
                    self.check_namespace_labels(req, &mut v);
                }
                if policies && !grants {
                    // Defence in depth: the policies webhook refuses a grant too,
                    // so that a configuration printed before grants had a webhook
                    // of their own (or edited to drop it) does not admit
                    // self-granted exemptions. The grants webhook records it.
                    let mut seen = Verdict::default();
                    self.check_exemption_grants(req, &mut seen);
                    v.denials.append(&mut seen.denials);
                }
                if policies {
                    self.check_policies(req, cluster, now, &mut v);
                }
            }
            _ => {}
        }
        v
    }

    fn check_eviction(&self, req: &AdmissionRequest, cluster: &ClusterState, v: &mut Verdict) {
        let pod = format!("pods/{}", req.name);
        if !cluster.locks.contains(&req.namespace, &pod) {
            return;
        }
        v.subject = format!("Pod {}/{}", req.namespace, req.name);
        let refusal = format!(
            "[paved/lock] the pod is locked, and an eviction deletes it; to evict it, {} must first run: kubectl annotate pods/{} -n {} {LOCK}-",
            who(&self.config.locks.authority, "the lock authority"),
            req.name,
            req.namespace
        );
        v.audit.insert("lock-denied".into(), refusal.clone());
        v.events.push(Event::DeleteRefused { object: v.subject.clone() });
        v.denials.push(refusal);
    }

    /// A Namespace's `paved.dev/profile`, `paved.dev/profile-version` and
    /// `paved.dev/mode` labels choose how everything in it is judged: setting,
    /// changing or removing them is an exemption for the whole namespace,
    /// the exception authority's alone, by any route (the object, `/status`,
    /// `/finalize`).
    fn check_namespace_labels(&self, req: &AdmissionRequest, v: &mut Verdict) {
        if kind_of(req, &req.object) != "Namespace" {
            return;
        }
        let labels = |obj: &Node| NamespaceLabels::of(Meta::of(obj).labels);
        let new = labels(&req.object);
        let old = if req.old_object.as_map().is_some() { labels(&req.old_object) } else { NamespaceLabels::default() };
        if new == old {
            return;
        }
        let changed = [
            (PROFILE_LABEL, &new.profile, &old.profile),
            (VERSION_LABEL, &new.version, &old.version),
            (MODE_LABEL, &new.mode, &old.mode),
        ];
        let user = &req.user_info;
        let authority = &self.config.exceptions.authority;
        for (label, new, _) in changed.into_iter().filter(|(_, new, old)| new != old) {
            let gesture = match new {
                Some(value) => format!("{label}={value}"),
                None => format!("{label}-"),
            };
            if authority.permits(&user.username, &user.groups) {
                v.events.push(Event::ExemptionGranted { policy: gesture, by: user.username.clone() });
                continue;
            }
            v.events.push(Event::ExemptionRefused { policy: gesture.clone(), by: user.username.clone() });
            v.denials.push(format!(
                "[paved/namespace-labels] only {} may set, change or remove {label} (it chooses how everything in the namespace is judged); {} may not",
                who(authority, "the exception authority"),
                user.username
            ));
        }
        if v.allowed() {
            v.audit.insert("namespace-labels".into(), format!("changed by {}", user.username));
            let name = req.object.at(&["metadata", "name"]).and_then(Node::as_str).unwrap_or(&req.name);
            v.relabelled = Some((name.to_owned(), new));
        }
    }

    /// Warnings for a Namespace whose labels now choose a stricter profile or
    /// mode, as Pod Security Admission warns when a level is raised: the
    /// existing workloads (as listed from the cluster) that the new labels
    /// would refuse if they were created now, with the policies they break.
    /// They keep running: what their controllers make is judged at them.
    pub fn relabel_warnings(
        &self,
        namespace: &str,
        labels: &NamespaceLabels,
        workloads: &[Node],
        now: Timestamp,
    ) -> Vec<String> {
        const LISTED: usize = 8;
        let mut warnings = Vec::new();
        let labels = (!labels.is_empty()).then_some(labels);
        let engine = self.engine_for(labels, &mut warnings);
        let mut breaking = Vec::new();
        let mut total = 0;
        for w in workloads {
            // Pods of a ReplicaSet, ReplicaSets of a Deployment: judged at their controller.
            if controller_ref(w).is_some() {
                continue;
            }
            let mut denied: Vec<Cow<'static, str>> = Vec::new();
            for f in engine.evaluate(w, now) {
                if f.counts() && f.action == Action::Deny && !denied.contains(&f.policy) {
                    denied.push(f.policy);
                }
            }
            if denied.is_empty() {
                continue;
            }
            total += 1;
            if breaking.len() < LISTED {
                let kind = w.get("kind").and_then(Node::as_str).unwrap_or("object");
                let name = w.at(&["metadata", "name"]).and_then(Node::as_str).unwrap_or("");
                let n = denied.len();
                breaking.push(first_fitting(
                    [
                        format!("paved: existing {kind} {name} breaks {}.", denied.join(", ")),
                        format!("paved: existing {kind} {name} breaks {n} policies; paved audit names them."),
                        format!("paved: an existing {kind} breaks {n} policies; paved audit names it."),
                    ],
                    "paved: an existing workload breaks policies; paved audit names it.",
                ));
            }
        }
        if total > 0 {
            warnings.push(first_fitting(
                [
                    format!("paved: {total} existing workloads in {namespace} would be denied now; they keep running."),
                    format!("paved: {total} existing workloads here would be denied now; they keep running."),
                ],
                "paved: existing workloads here would be denied now; they keep running.",
            ));
            warnings.extend(breaking);
            if total > LISTED {
                warnings.push(first_fitting(
                    [format!("paved: and {} more; paved audit -n {namespace} lists them.", total - LISTED)],
                    "paved: and more; paved audit lists them.",
                ));
            }
        }
        warnings
    }

    fn check_delete(&self, req: &AdmissionRequest, cluster: &ClusterState, v: &mut Verdict) {
        let old = &req.old_object;
        if old.as_map().is_none() {
            return;
        }
        let meta = Meta { kind: kind_of(req, old), ..Meta::of(old) };
        if meta.lock.is_some() && mirrors_its_owner(meta.kind, old, &req.user_info.username) {
            v.audit.insert("lock-mirrored".into(), "its lock is its Deployment's copy".into());
            return;
        }
        let target = Target::of(req, old);
        let refusal = match self.protection.lock_of(&meta) {
            Some(Lock::Annotation(value)) => Some(format!(
                "[paved/lock] it is locked ({LOCK}: {value:?}); to delete it, first run: {}",
                target.kubectl_annotate(&format!("{LOCK}-"))
            )),
            Some(Lock::Protected(rule)) => Some(format!(
                "[paved/lock] it is protected by locks.protect[{rule}]; to delete it, {} must first run: {}",
                who(&self.config.locks.authority, "the lock authority"),
                target.kubectl_annotate(&format!("{LOCK}={OFF}"))
            )),
            None => None,
        };
        let refusal = refusal.or_else(|| {
            (meta.kind == "Namespace")
                .then(|| cluster.locks.locked_in(&target.name, LISTED_LOCKED))
                .filter(|(_, total)| *total > 0)
                .map(|(names, total)| {
                    let more = total - names.len();
                    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
                    format!("[paved/lock] it holds locked objects: {}{tail}; unlock them first", names.join(", "))
                })
        });
        if let Some(refusal) = refusal {
            v.audit.insert("lock-denied".into(), refusal.clone());
            v.events.push(Event::DeleteRefused { object: v.subject.clone() });
            v.denials.push(refusal);
        }
    }

    /// Lifting a lock (removing the annotation, `off` on a protected object, or
    /// a label change that leaves a protect rule) is the lock authority's gesture.
    fn check_lock_changes(&self, req: &AdmissionRequest, cluster: &ClusterState, v: &mut Verdict) {
        let new = Meta::of(&req.object);
        let old = req.old_object.as_map().is_some().then(|| Meta::of(&req.old_object));
        // The deployment controller keeps a ReplicaSet's copy of its Deployment's lock.
        if old.is_some_and(|o| o.lock != new.lock)
            && mirrors_its_owner(kind_of(req, &req.old_object), &req.old_object, &req.user_info.username)
        {
            return;
        }
        if let Some(value) = new.lock.filter(|l| *l != LOCKED && *l != OFF)
            && old.and_then(|o| o.lock) != Some(value)
        {
            v.denials.push(format!("[paved/lock] {LOCK}: {value:?} is not a lock; use {LOCKED:?} (or {OFF:?})"));
        }
        // The marker that routes a Namespace's delete to paved is paved's to keep.
        if kind_of(req, &req.object) == "Namespace" {
            let marker =
                |n: &Node| n.at(&["metadata", "annotations", HOLDS_LOCKS]).and_then(Node::as_str).map(str::to_owned);
            let user = &req.user_info;
            if marker(&req.object) != marker(&req.old_object)
                && self.identity.as_deref() != Some(user.username.as_str())
                && !self.config.locks.authority.permits(&user.username, &user.groups)
            {
                v.denials.push(format!(
                    "[paved/lock] {HOLDS_LOCKS} is kept by paved (it says the namespace holds locked objects); only {} may change it",
                    who(&self.config.locks.authority, "the lock authority")
                ));
            }
        }
        // A new lock on a kind the index does not watch could never keep its
        // namespace from being deleted: refused up front, with what to do.
        let adds_lock = new.lock.is_some_and(|l| l != OFF) && old.and_then(|o| o.lock).is_none_or(|l| l == OFF);
        if adds_lock
            && req.sub_resource.is_empty()
            && let Some(why) = unindexed_lock(cluster, &req.kind.group, kind_of(req, &req.object), &req.namespace)
        {
            v.denials.push(format!("[paved/lock] {why}"));
        }
        let lifts = match old {
            Some(old) => self.protection.lock_of(&old).is_some() && self.protection.lock_of(&new).is_none(),
            // A Binding's annotations are written onto the pod it binds, over
            // whatever lock the pod has: any lock value there is a gesture.
            None if req.sub_resource == "binding" => new.lock.is_some(),
            // Creating a protected object already unlocked is the same gesture.
            None => new.lock == Some(OFF) && self.protection.rule_for(&new).is_some(),
        };
        if !lifts {
            return;
        }
        let user = &req.user_info;
        let authority = &self.config.locks.authority;
        if authority.permits(&user.username, &user.groups) {
            v.audit.insert("unlock".into(), format!("lock lifted by {}", user.username));
            v.events.push(Event::Unlocked { object: v.subject.clone(), by: user.username.clone() });
        } else {
            v.events.push(Event::UnlockRefused { object: v.subject.clone(), by: user.username.clone() });
            v.denials.push(format!(
                "[paved/lock] only {} may lift its deletion lock; {} may not",
                who(authority, "the lock authority"),
                user.username
            ));
        }
    }

    /// Adding or changing exemption annotations is a grant: only the exception
    /// authority may make it. Trusted controllers copy their parent's grants.
    fn check_exemption_grants(&self, req: &AdmissionRequest, v: &mut Verdict) {
        let user = &req.user_info;
        if self.config.exceptions.trusted_controllers.contains(&user.username) {
            return;
        }
        // The object's own metadata, and its pod template's (a Pod's template is itself).
        let template = pod_template_path(kind_of(req, &req.object)).filter(|t| !t.is_empty());
        let places = [Some(&[][..]), template].into_iter().flatten();
        let mut granted: Vec<&str> = Vec::new();
        let mut refused: Vec<&str> = Vec::new();
        for place in places {
            let new = Grant::at(&req.object, place);
            let old = Grant::at(&req.old_object, place);
            let terms_changed = new.reason != old.reason || new.until != old.until;
            for pattern in new.patterns {
                if !terms_changed && old.patterns.contains(&pattern) {
                    continue;
                }
                if self.may_grant(pattern, &user.username, &user.groups) {
                    granted.push(pattern);
                } else {
                    refused.push(pattern);
                }
            }
        }
        // A Kyverno PolicyException is a grant too, of every policy it names.
        let kyverno = kyverno_exception_grants(req);
        for pattern in &kyverno {
            if self.may_grant(pattern, &user.username, &user.groups) {
                granted.push(pattern);
            } else {
                refused.push(pattern);
            }
        }
        granted.dedup();
        refused.dedup();
        for p in &granted {
            v.events.push(Event::ExemptionGranted { policy: (*p).to_owned(), by: user.username.clone() });
        }
        if !granted.is_empty() {
            v.audit.insert("exemption-granted".into(), format!("{} by {}", granted.join(","), user.username));
        }
        for p in &refused {
            v.events.push(Event::ExemptionRefused { policy: (*p).to_owned(), by: user.username.clone() });
            let how = if kyverno.iter().any(|k| k == p) { "a Kyverno PolicyException" } else { EXEMPT };
            v.denials.push(format!(
                "[paved/exemption-authority] only {} may grant an exemption from {p} ({how}); {} may not",
                self.grantors(p),
                user.username
            ));
        }
    }

    fn authorities_for<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = &'a Authority> + 'a {
        let per_policy = self.config.exceptions.policies.iter();
        std::iter::once(&self.config.exceptions.authority)
            .chain(per_policy.filter(move |(key, _)| *key == pattern || pattern_covers(key, pattern)).map(|(_, a)| a))
    }

    fn may_grant(&self, pattern: &str, username: &str, groups: &[String]) -> bool {
        self.authorities_for(pattern).any(|a| a.permits(username, groups))
    }

    fn grantors(&self, pattern: &str) -> String {
        let names: Vec<String> =
            self.authorities_for(pattern).filter(|a| !a.is_empty()).map(Authority::describe).collect();
        if names.is_empty() { "the exception authority (none is configured)".to_owned() } else { names.join(" or ") }
    }

    fn check_policies(&self, req: &AdmissionRequest, cluster: &ClusterState, now: Timestamp, v: &mut Verdict) {
        // Status and scale updates are not the object's shape; ephemeral containers are.
        if !req.sub_resource.is_empty() && req.sub_resource != "ephemeralcontainers" {
            return;
        }
        let engine = self.engine_for(cluster.labels_of(&req.namespace), &mut v.warnings);
        // Foreign policies read the request (operation, user, old object) as JSON.
        let request = if engine.has_foreign() { serde_json::to_value(req).ok() } else { None };
        let findings = engine.evaluate_request(&req.object, now, request.as_ref());
        // What a trusted controller makes from its owner's template (the
        // replicaset controller's Pods, the deployment controller's
        // ReplicaSets) was judged at the owner, when a person made or changed
        // it, with the owner's exemptions. Refusing the copy would only stop a
        // workload that already exists from scaling or healing, silently: the
        // controller retries, nobody sees the refusal (PRODUCT.md section 4).
        let owner = self.made_by_trusted_controller(req);
        // On UPDATE, a Deny that the old object already had is a Warn: refusing it
        // would block unrelated changes (finalizers, scaling) to objects that
        // predate the policy. A trusted controller's copy refuses nothing, so
        // its old object (the deployment controller scales ReplicaSets all
        // day) is not judged again.
        let old_findings = if owner.is_none()
            && req.operation == "UPDATE"
            && req.old_object.as_map().is_some()
            && findings.iter().any(|f| f.counts() && f.action == Action::Deny)
        {
            engine.evaluate(&req.old_object, now)
        } else {
            Vec::new()
        };
        // The old object's standing denials, by (policy, field): looked up
        // once per finding, not compared with each.
        let old_denials: std::collections::HashSet<(&str, &paved_core::node::FieldPath)> =
            old_findings.iter().filter(|o| o.counts()).map(|o| (&*o.policy, &o.path)).collect();
        let mut exempted: Vec<String> = Vec::new();
        let mut judged_at_owner: Vec<Cow<'static, str>> = Vec::new();
        for f in findings {
            if let Some(e) = &f.exempted {
                exempted.push(format!("{} ({})", f.policy, e.reason));
                continue;
            }
            let preexisting = f.action == Action::Deny && old_denials.contains(&(&*f.policy, &f.path));
            v.findings.push((f.policy.clone(), f.action));
            match f.action {
                Action::Deny if owner.is_some() => {
                    if !judged_at_owner.contains(&f.policy) {
                        judged_at_owner.push(f.policy.clone());
                    }
                    v.warnings.push(warning::for_finding(&f, &req.object, Note::JudgedAtOwner))
                }
                Action::Deny if !preexisting => v.denials.push(format!("[{}] {}", f.policy, f.message)),
                Action::Deny => v.warnings.push(warning::for_finding(&f, &req.object, Note::Preexisting)),
                Action::Warn => v.warnings.push(warning::for_finding(&f, &req.object, Note::None)),
                Action::Audit => {
                    let entry = v.audit.entry(audit_key(&f.policy)).or_default();
                    if entry.len() < 1024 {
                        if !entry.is_empty() {
                            entry.push_str("; ");
                        }
                        entry.push_str(&f.message);
                    }
                }
            }
        }
        if let Some((kind, name)) = owner
            && !judged_at_owner.is_empty()
        {
            let policies = judged_at_owner.join(", ");
            v.audit.insert("judged-at-owner".into(), one_line(&format!("{policies}: made by its {kind} {name}"), 1024));
        }
        if !exempted.is_empty() {
            exempted.dedup();
            v.audit.insert("exempted".into(), one_line(&exempted.join(", "), 1024));
        }
    }

    /// The owner (kind, name) of an object a trusted controller creates or
    /// updates on its owner's behalf: the requester is in
    /// `exceptions.trusted-controllers` and the object names its controller
    /// in `ownerReferences`.
    fn made_by_trusted_controller<'r>(&self, req: &'r AdmissionRequest) -> Option<(&'r str, &'r str)> {
        if !self.config.exceptions.trusted_controllers.contains(&req.user_info.username) {
            return None;
        }
        let owner = controller_ref(&req.object)?;
        Some((owner.get("kind").and_then(Node::as_str)?, owner.get("name").and_then(Node::as_str).unwrap_or("")))
    }

    /// The engine for a namespace's labels. A label that names no profile or
    /// mode falls back to the cluster default, with a warning saying so.
    /// The engine for a namespace with these labels (`None`: no paved labels,
    /// the cluster default). A label paved cannot use adds a warning and falls
    /// back to the default rather than failing.
    pub fn engine_for(&self, labels: Option<&NamespaceLabels>, warnings: &mut Vec<String>) -> Arc<Engine> {
        let Some(labels) = labels else { return Arc::clone(&self.default) };
        if let Ok(cache) = self.engines.lock()
            && let Some(engine) = cache.get(labels)
        {
            return Arc::clone(engine);
        }
        let mode = match labels.mode.as_deref().map(|m| (m, Mode::parse(m))) {
            None => Mode::Enforce,
            Some((_, Some(mode))) => mode,
            Some((m, None)) => {
                warnings.push(first_fitting(
                    [format!("paved: namespace label {MODE_LABEL}={m:?} is not enforce, warn or audit; enforcing.")],
                    &format!("paved: namespace label {MODE_LABEL} is not enforce, warn or audit; enforcing."),
                ));
                Mode::Enforce
            }
        };
        let profile = labels.profile_ref(self.default_profile.as_deref().or(self.config.profile.as_deref()));
        let engine = match Engine::new(&self.config, profile.as_deref(), mode) {
            Ok(engine) => {
                let engine = engine.with_foreign(self.foreign.iter().cloned());
                Arc::new(match &self.images {
                    Some(facts) => engine.with_images(Arc::clone(facts)),
                    None => engine,
                })
            }
            Err(e) => {
                // The error in full, then without the list of what was expected.
                let short = match &e {
                    ProfileError::UnknownProfile(name) => format!("unknown profile {name:?}"),
                    ProfileError::BadVersion(version) => format!("bad version {version:?}"),
                    other => other.to_string(),
                };
                warnings.push(first_fitting(
                    [
                        format!("paved: namespace label {PROFILE_LABEL}: {e}; using the cluster default."),
                        format!("paved: namespace label {PROFILE_LABEL}: {short}; using the cluster default."),
                    ],
                    &format!("paved: namespace label {PROFILE_LABEL} is not usable; using the cluster default."),
                ));
                return Arc::clone(&self.default);
            }
        };
        if let Ok(mut cache) = self.engines.lock()
            && cache.len() < ENGINE_CACHE
        {
            cache.insert(labels.clone(), Arc::clone(&engine));
        }
        engine
    }
}

/// The policies a Kyverno PolicyException created or changed by `req`
/// lifts: empty for any other request, and for an update that leaves the
/// exception's `spec` as it was.
fn kyverno_exception_grants(req: &AdmissionRequest) -> Vec<String> {
    if !paved_core::kyverno::is_exception_kind(&req.kind.group, &req.kind.kind) {
        return Vec::new();
    }
    let spec = |o: &Node| o.get("spec").map(|s| serde_json::to_value(s).unwrap_or_default());
    let new = spec(&req.object);
    if req.operation == "UPDATE" && new == spec(&req.old_object) {
        return Vec::new();
    }
    new.map(|spec| paved_core::kyverno::exception_grants(&spec)).unwrap_or_default()
}

/// Exemption annotations in the metadata of the object at `prefix` (the root, or a pod template).
struct Grant<'a> {
    patterns: Vec<&'a str>,
    reason: Option<&'a str>,
    until: Option<&'a str>,
}

impl<'a> Grant<'a> {
    fn at(obj: &'a Node<'a>, prefix: &[&str]) -> Grant<'a> {
        let mut node = Some(obj);
        for key in prefix.iter().chain(&["metadata", "annotations"]) {
            node = node.and_then(|n| n.get(key));
        }
        let get = |k: &str| node.and_then(|a| a.get(k)).and_then(Node::as_str);
        Grant {
            patterns: get(EXEMPT)
                .map(|l| l.split(',').map(str::trim).filter(|p| !p.is_empty()).collect())
                .unwrap_or_default(),
            reason: get(EXEMPT_REASON),
            until: get(EXEMPT_UNTIL),
        }
    }
}

fn who(authority: &Authority, role: &str) -> String {
    if authority.is_empty() { format!("{role} (none is configured)") } else { authority.describe() }
}

fn kind_of<'a>(req: &'a AdmissionRequest, obj: &'a Node<'a>) -> &'a str {
    obj.get("kind").and_then(Node::as_str).filter(|k| !k.is_empty()).unwrap_or(&req.kind.kind)
}

fn subject(req: &AdmissionRequest) -> String {
    let obj = if req.object.as_map().is_some() { &req.object } else { &req.old_object };
    let target = Target::of(req, obj);
    match target.namespace {
        Some(ns) => format!("{} {ns}/{}", req.kind.kind, target.name),
        None => format!("{} {}", req.kind.kind, target.name),
    }
}

/// Where an object is, for the kubectl command that unlocks it.
struct Target {
    resource: String,
    namespace: Option<String>,
    name: String,
}

impl Target {
    fn of(req: &AdmissionRequest, obj: &Node) -> Target {
        let meta = |k: &str| obj.get("metadata").and_then(|m| m.get(k)).and_then(Node::as_str);
        let name = Some(req.name.as_str()).filter(|n| !n.is_empty()).or(meta("name")).or(meta("generateName"));
        let namespace = Some(req.namespace.as_str()).filter(|n| !n.is_empty()).or(meta("namespace"));
        Target {
            resource: req.resource.resource.clone(),
            // A Namespace's request carries its own name as namespace.
            namespace: namespace.filter(|_| kind_of(req, obj) != "Namespace").map(str::to_owned),
            name: name.unwrap_or("").to_owned(),
        }
    }

    fn kubectl_annotate(&self, change: &str) -> String {
        let ns = self.namespace.as_ref().map(|n| format!(" -n {n}")).unwrap_or_default();
        format!("kubectl annotate {}/{}{ns} {change}", self.resource, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_clips_at_characters_and_blanks_controls() {
        assert_eq!(one_line("short", 120), "short");
        assert_eq!(one_line("a\nb\u{85}c", 120), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abcd", 4), "abcd");
        let long = "é\u{85}".repeat(100);
        let clipped = one_line(&long, 120);
        assert_eq!(clipped.chars().count(), 120);
        assert!(clipped.ends_with('…') && !clipped.chars().any(char::is_control));
    }
}
