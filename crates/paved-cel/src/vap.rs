//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! (`admissionregistration.k8s.io/v1`), run as the API server runs them:
//! the policy's `matchConstraints` and the binding's `matchResources` both
//! select the request, params come from `paramRef` (by name or selector,
//! with `parameterNotFoundAction`), each failed validation does what the
//! binding's `validationActions` say, and an expression that cannot be
//! evaluated does what `failurePolicy` says.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use paved_core::eval::{Foreign, ForeignFinding, ForeignPolicy};
use paved_core::node::{FieldPath, Node};
use paved_core::policy::Action;
use paved_core::snapshot::Snapshot;
use serde_json::Value;

use crate::expr::Dialect;
use crate::kyverno_libs::ClusterData;
use crate::{Activation, Params, Validator};

const GROUP_VERSION: &str = "admissionregistration.k8s.io/v1";

/// A policy or binding that could not be used, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} {name}: {message}")]
pub struct VapError {
    pub kind: String,
    pub name: String,
    /// The field at fault, e.g. `spec.validations[0].expression`.
    pub field: String,
    /// The 1-based line and column inside that field's expression, for a
    /// syntax error.
    pub within: Option<(u32, u32)>,
    pub message: String,
    /// For a Kyverno ClusterPolicy, the rule at fault (the others still run).
    pub rule: Option<Box<str>>,
}

impl VapError {
    /// Makes the errors of one document: `(field, message)` in.
    fn of<'a>(kind: &'a str, name: &'a str) -> impl Fn(&str, String) -> VapError + 'a {
        move |field, message| VapError {
            kind: kind.to_owned(),
            name: name.to_owned(),
            field: field.to_owned(),
            within: None,
            message,
            rule: None,
        }
    }
}

/// A compiled ValidatingAdmissionPolicy.
pub struct Policy {
    pub name: String,
    validator: Validator,
    match_constraints: Value,
    /// `paramKind` as `(apiVersion, kind)`.
    param_kind: Option<(String, String)>,
    /// `failurePolicy: Ignore`; `Fail` (the default) otherwise.
    ignore_failures: bool,
    /// Whether an expression mentions `namespaceObject`.
    reads_namespace_object: bool,
    /// Each validation's expression, with its message when it has one, for
    /// people; a MutatingAdmissionPolicy's mutations.
    validations: Vec<String>,
    /// A MutatingAdmissionPolicy: it changes objects, and judges none.
    mutating: bool,
    /// Its `reinvocationPolicy` is `IfNeeded`.
    reinvoke: bool,
}

struct Binding {
    name: String,
    /// The policy id findings carry: `vap/<policy>/<binding>`, or
    /// `kyverno/<policy>` for a Kyverno policy (its own binding).
    id: String,
    policy: Arc<Policy>,
    match_resources: Value,
    action: Action,
    /// `None` when the policy takes no params.
    param_ref: Option<ParamRef>,
    /// Kyverno's autogen: the pod controllers whose templates a Pod policy
    /// also judges (none for a VAP).
    autogen: Vec<crate::kyverno::Controller>,
    /// A Kyverno NamespacedValidatingPolicy judges only its own namespace.
    namespace: Option<String>,
    /// A Kyverno ClusterPolicy rule selects by its own `match` and
    /// `exclude`, in place of the policy's `matchConstraints`.
    rule_match: Option<KyvernoRule>,
    /// A Kyverno policy's name, and its rule's for a ClusterPolicy: what a
    /// PolicyException names.
    kyverno: Option<(String, Option<String>)>,
    /// Kyverno's `evaluation.admission.enabled`: whether `serve` runs it.
    at_admission: bool,
    /// Kyverno's `evaluation.background.enabled` (a ClusterPolicy's
    /// `background`): whether `paved audit`, which judges what exists as
    /// Kyverno's background scans do, runs it. (A manifest in `check` or
    /// `paved test` is judged as the Kyverno CLI judges it, whatever it says.)
    in_background: bool,
}

/// A ClusterPolicy rule's selection: its `match` and `exclude`, compiled
/// and as written (for `paved explain`).
struct KyvernoRule {
    matched: crate::kyverno::RuleMatch,
    excluded: crate::kyverno::RuleMatch,
    written: Value,
}

/// What one binding made of one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not selected, or a match condition was false: the policy does not apply.
    Skip,
    Pass,
    /// Each failed validation's message.
    Fail(Vec<String>),
    /// Expressions that could not be evaluated (under `failurePolicy: Fail`).
    Error(Vec<String>),
    /// No params for a `paramRef` with `parameterNotFoundAction: Deny`: a
    /// denial whatever the binding's actions, as in the API server.
    NoParams(String),
    /// A failure a Kyverno PolicyException lifts: which one, and the failures.
    Excepted(String, Vec<String>),
}

/// A binding's `paramRef`, checked when the binding loads. The params
/// themselves are looked up when an object is judged, among the objects
/// known at that moment, since in `serve` they change with the cluster.
struct ParamRef {
    which: Which,
    namespace: Option<String>,
    /// `parameterNotFoundAction: Deny`, the default; `Allow` otherwise.
    deny_when_missing: bool,
}

/// How a `paramRef` picks its params: exactly one of `name` and `selector`.
enum Which {
    Name(String),
    Selector(Value),
}

/// The policies and bindings of a set of files, ready to judge objects.
#[derive(Default)]
pub struct Vaps {
    bindings: Vec<Binding>,
    objects: Arc<VapObjects>,
    /// Kyverno PolicyExceptions, from the policy files.
    exceptions: Vec<crate::kyverno::Exception>,
    /// Judging what exists (`paved audit`): Kyverno policies without
    /// background evaluation stay out.
    background_scan: bool,
}

/// The objects VAPs read besides the one judged: params (objects of a kind
/// some policy names in `paramKind`) and Namespaces (for `namespaceSelector`
/// and `namespaceObject`). Those of the policy files are always there; a
/// caller adds more (`--inventory`, or a server's watches) with `set`.
#[derive(Default)]
pub struct VapObjects {
    /// `(apiVersion, kind)` of every `paramKind`.
    param_kinds: HashSet<(String, String)>,
    /// Whether some policy or binding reads Namespaces.
    reads_namespaces: bool,
    /// `(apiVersion, resource)` that Kyverno's `resource.Get` and
    /// `resource.List` calls read.
    resource_reads: HashSet<(String, String)>,
    /// Whether Kyverno policies are loaded: then the cluster's Kyverno
    /// PolicyExceptions are read (those of the policy files always are).
    reads_exceptions: bool,
    from_files: Vec<Value>,
    current: Snapshot<Known>,
    /// `image.GetMetadata`'s answers, by image as written: a `kyverno test`
    /// context's `spec.images`.
    images: Snapshot<HashMap<String, Value>>,
}

/// Params and Namespaces, indexed once per change.
#[derive(Default)]
struct Known {
    /// By kind, then by namespace (`""` for cluster-scoped ones), so an
    /// admission looks only at the namespaces its `paramRef` may read,
    /// however many objects of the kind the cluster holds.
    params: HashMap<(String, String), BTreeMap<String, Vec<ParamObject>>>,
    namespaces: HashMap<String, Value>,
    /// Kyverno PolicyExceptions from the cluster (or `--inventory`). The
    /// grants webhook lets only the exception authority create them.
    exceptions: Vec<crate::kyverno::Exception>,
    /// What `resource.Get` and `resource.List` read, by `(apiVersion,
    /// resource)`, then by namespace (`""` for cluster-scoped) and name.
    resources: HashMap<(String, String), BTreeMap<(String, String), Value>>,
}

struct ParamObject {
    name: String,
    labels: Option<Value>,
    /// Converted for CEL once, not once per evaluation.
    params: Params,
}

impl VapObjects {
    /// The policy files' objects and `objects` become what VAPs read.
    pub fn set(&self, objects: &[Value]) {
        self.current.set(Arc::new(self.index(objects)));
    }

    /// What `image.GetMetadata` answers: entries of a `kyverno test`
    /// context's `spec.images`, each with its `image`.
    pub fn set_images(&self, entries: &[Value]) {
        let images = entries.iter().filter_map(|e| Some((str_at(e, "/image")?.to_owned(), e.clone()))).collect();
        self.images.set(Arc::new(images));
    }

    /// The `(apiVersion, resource)` under which `resource.Get` reads `o`, if it does.
    fn read_as_resource(&self, o: &Value) -> Option<(String, String)> {
        if self.resource_reads.is_empty() {
            return None;
        }
        let key = (str_at(o, "/apiVersion")?.to_owned(), resource_of(str_at(o, "/kind")?));
        self.resource_reads.contains(&key).then_some(key)
    }

    /// Whether VAPs read `o`: as a Namespace, and as a param of its `(apiVersion, kind)`.
    fn reads<'o>(&self, o: &'o Value) -> (bool, Option<(&'o str, &'o str)>) {
        let (api_version, kind) = (str_at(o, "/apiVersion").unwrap_or(""), str_at(o, "/kind").unwrap_or(""));
        // A handful of kinds: a scan, without building a key for every object a server syncs.
        let param = self.param_kinds.iter().any(|(a, k)| a == api_version && k == kind);
        (self.reads_namespaces && api_version == "v1" && kind == "Namespace", param.then_some((api_version, kind)))
    }

    fn index(&self, objects: &[Value]) -> Known {
        let mut known = Known::default();
        if self.reads_exceptions {
            let exceptions = objects.iter().filter(|o| crate::kyverno::is_exception(o));
            // One that does not parse lifts nothing; `paved audit` shows it.
            known.exceptions = exceptions.filter_map(|o| crate::kyverno::Exception::from_json(o).ok()).collect();
        }
        if self.param_kinds.is_empty() && !self.reads_namespaces && self.resource_reads.is_empty() {
            // No binding reads other objects (a server syncs them for Gatekeeper).
            return known;
        }
        for o in self.from_files.iter().chain(objects) {
            let Some(name) = str_at(o, "/metadata/name") else { continue };
            if let Some(key) = self.read_as_resource(o) {
                // The cluster's (or `--inventory`'s) copy of an object replaces the policy files'.
                let at = (str_at(o, "/metadata/namespace").unwrap_or("").to_owned(), name.to_owned());
                known.resources.entry(key).or_default().insert(at, o.clone());
            }
            let (namespace, param) = self.reads(o);
            if namespace {
                known.namespaces.insert(name.to_owned(), o.clone());
            }
            if let Some((api_version, kind)) = param {
                let key = (api_version.to_owned(), kind.to_owned());
                let namespace = str_at(o, "/metadata/namespace").unwrap_or("").to_owned();
                known.params.entry(key).or_default().entry(namespace).or_default().push(ParamObject {
                    name: name.to_owned(),
                    labels: o.pointer("/metadata/labels").cloned(),
                    params: Params::new(o),
                });
            }
        }
        known
    }

    /// The kinds whose objects the policies read, as `(apiVersion, kind)`,
    /// which a server watches: every `paramKind`, and Namespaces when a
    /// policy or binding selects by namespace labels or reads `namespaceObject`.
    pub fn kinds(&self) -> Vec<(String, String)> {
        let mut kinds: Vec<(String, String)> = self.param_kinds.iter().cloned().collect();
        if self.reads_namespaces {
            kinds.push(("v1".to_owned(), "Namespace".to_owned()));
        }
        // A resource paved cannot name the kind of (a custom resource's
        // plural) is read from `--inventory` and the files only.
        if self.reads_exceptions {
            // Both of Kyverno's APIs; a cluster without one of them has none of its objects.
            kinds.push(("kyverno.io/v2".to_owned(), "PolicyException".to_owned()));
            kinds.push(("policies.kyverno.io/v1".to_owned(), "PolicyException".to_owned()));
        }
        kinds.extend(self.resource_reads.iter().filter_map(|(api_version, resource)| {
            Some((api_version.clone(), crate::kyverno_libs::kind_of_resource(api_version, resource)?.to_owned()))
        }));
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

impl std::fmt::Debug for Vaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vaps").field("bindings", &self.bindings.len()).finish()
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

/// Whether `doc` is a policy or a binding this module reads: Kubernetes'
/// and Kyverno's.
pub fn is_vap_kind(doc: &Value) -> bool {
    is_admission_policy(doc)
        || crate::kyverno::is_validating_policy(doc)
        || crate::kyverno::is_mutating_policy(doc)
        || crate::kyverno::is_cluster_policy(doc)
        || crate::kyverno::is_exception(doc)
}

/// A ValidatingAdmissionPolicy or ValidatingAdmissionPolicyBinding, or a
/// MutatingAdmissionPolicy or its binding (v1alpha1, v1beta1 or v1).
fn is_admission_policy(doc: &Value) -> bool {
    let validating = str_at(doc, "/apiVersion") == Some(GROUP_VERSION)
        && matches!(str_at(doc, "/kind"), Some("ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding"));
    validating || is_mutating_policy(doc)
}

/// A MutatingAdmissionPolicy or MutatingAdmissionPolicyBinding.
fn is_mutating_policy(doc: &Value) -> bool {
    matches!(
        str_at(doc, "/apiVersion"),
        Some("admissionregistration.k8s.io/v1alpha1" | "admissionregistration.k8s.io/v1beta1" | GROUP_VERSION)
    ) && matches!(str_at(doc, "/kind"), Some("MutatingAdmissionPolicy" | "MutatingAdmissionPolicyBinding"))
}

impl Policy {
    // Errors come at load time, once a file: their size costs nothing.
    #[allow(clippy::result_large_err)]
    pub fn from_json(doc: &Value) -> Result<Policy, VapError> {
        Policy::from_json_in(doc, Dialect::Kubernetes)
    }

    /// A policy whose expressions are written in `dialect`.
    #[allow(clippy::result_large_err)]
    fn from_json_in(doc: &Value, dialect: Dialect) -> Result<Policy, VapError> {
        let name = str_at(doc, "/metadata/name").unwrap_or("");
        let error = VapError::of(str_at(doc, "/kind").unwrap_or("ValidatingAdmissionPolicy"), name);
        let spec = doc.get("spec").ok_or_else(|| error("spec", "no spec".to_owned()))?;
        if spec.get("validations").and_then(Value::as_array).is_none_or(Vec::is_empty)
            && spec.get("auditAnnotations").and_then(Value::as_array).is_none_or(Vec::is_empty)
        {
            return Err(error(
                "spec",
                "spec.validations or spec.auditAnnotations must have at least one entry".to_owned(),
            ));
        }
        let Compiled { validator, param_kind, ignore_failures, match_constraints } =
            compile_spec(spec, dialect, &error)?;
        let reads_namespace_object = spec.to_string().contains("namespaceObject");
        let validations = spec
            .get("validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| {
                let expression = str_at(v, "/expression").unwrap_or("");
                match str_at(v, "/message").or_else(|| str_at(v, "/messageExpression")) {
                    Some(message) => format!("{expression}  (message: {message})"),
                    None => expression.to_owned(),
                }
            })
            .collect();
        Ok(Policy {
            name: name.to_owned(),
            validator,
            match_constraints,
            param_kind,
            ignore_failures,
            reads_namespace_object,
            validations,
            mutating: false,
            reinvoke: false,
        })
    }

    /// A MutatingAdmissionPolicy (admissionregistration.k8s.io v1alpha1,
    /// v1beta1 or v1): its match conditions, variables and mutations.
    #[allow(clippy::result_large_err)] // load time, as `from_json`
    fn from_mutating_json(doc: &Value, dialect: Dialect) -> Result<Policy, VapError> {
        let name = str_at(doc, "/metadata/name").unwrap_or("");
        let error = VapError::of(str_at(doc, "/kind").unwrap_or("MutatingAdmissionPolicy"), name);
        let spec = doc.get("spec").ok_or_else(|| error("spec", "no spec".to_owned()))?;
        let mutations = spec.get("mutations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        if mutations.is_empty() {
            return Err(error("spec.mutations", "spec.mutations must have at least one entry".to_owned()));
        }
        let Compiled { validator, param_kind, ignore_failures, match_constraints } =
            compile_spec(spec, dialect, &error)?;
        let reinvoke = match str_at(spec, "/reinvocationPolicy").unwrap_or("Never") {
            "Never" => false,
            "IfNeeded" => true,
            other => {
                return Err(error(
                    "spec.reinvocationPolicy",
                    format!("spec.reinvocationPolicy {other:?} is not Never or IfNeeded"),
                ));
            }
        };
        let shown = mutations
            .iter()
            .map(|m| {
                let of = |key: &str| m.get(key).and_then(|k| str_at(k, "/expression")).unwrap_or("").trim().to_owned();
                match str_at(m, "/patchType") {
                    Some("JSONPatch") => format!("JSONPatch: {}", of("jsonPatch")),
                    _ => format!("ApplyConfiguration: {}", of("applyConfiguration")),
                }
            })
            .collect();
        Ok(Policy {
            name: name.to_owned(),
            validator,
            match_constraints,
            param_kind,
            ignore_failures,
            reads_namespace_object: spec.to_string().contains("namespaceObject"),
            validations: shown,
            mutating: true,
            reinvoke,
        })
    }
}

/// What a Validating and a MutatingAdmissionPolicy share, compiled.
struct Compiled {
    validator: Validator,
    param_kind: Option<(String, String)>,
    ignore_failures: bool,
    match_constraints: Value,
}

/// A policy's `spec`: its expressions, `paramKind`, `failurePolicy` and
/// `matchConstraints` (whose `resourceRules` are required).
#[allow(clippy::result_large_err)] // load time, as `Policy::from_json`
fn compile_spec(
    spec: &Value,
    dialect: Dialect,
    error: &impl Fn(&str, String) -> VapError,
) -> Result<Compiled, VapError> {
    let validator = Validator::compile_in(spec, &[], "spec", dialect).map_err(|errors| {
        let field = errors.first().map_or("spec", |e| e.field.as_str());
        let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        VapError { within: errors.first().and_then(|e| e.at), ..error(field, message) }
    })?;
    let param_kind = spec
        .get("paramKind")
        .map(|p| (str_at(p, "/apiVersion").unwrap_or("").to_owned(), str_at(p, "/kind").unwrap_or("").to_owned()));
    let ignore_failures = match str_at(spec, "/failurePolicy").unwrap_or("Fail") {
        "Fail" => false,
        "Ignore" => true,
        other => {
            return Err(error("spec.failurePolicy", format!("spec.failurePolicy {other:?} is not Fail or Ignore")));
        }
    };
    let match_constraints = spec.get("matchConstraints").cloned().unwrap_or(Value::Null);
    if match_constraints.get("resourceRules").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        return Err(error(
            "spec.matchConstraints.resourceRules",
            "spec.matchConstraints.resourceRules is required".to_owned(),
        ));
    }
    Ok(Compiled { validator, param_kind, ignore_failures, match_constraints })
}

/// What a binding's `validationActions` make of a failure: the strongest.
fn action_of(binding: &Value) -> Result<Action, String> {
    let actions = strings(binding.pointer("/spec/validationActions"));
    if actions.is_empty() {
        return Err("spec.validationActions must name Deny, Warn or Audit".to_owned());
    }
    let mut strongest = Action::Audit;
    for a in actions {
        let action = match a {
            "Deny" => Action::Deny,
            "Warn" => Action::Warn,
            "Audit" => Action::Audit,
            other => return Err(format!("spec.validationActions: {other:?} is not Deny, Warn or Audit")),
        };
        if rank(action) > rank(strongest) {
            strongest = action;
        }
    }
    Ok(strongest)
}

fn rank(action: Action) -> u8 {
    match action {
        Action::Deny => 3,
        Action::Warn => 2,
        Action::Audit => 1,
    }
}

impl Vaps {
    /// Builds policies and bindings from documents; others are params,
    /// namespaces, or ignored. `objects` are more documents params and
    /// namespaces may come from (the inventory). Every policy or binding that
    /// cannot be used is an error; the rest still judge.
    pub fn from_docs(docs: &[Value], objects: &[Value]) -> (Vaps, Vec<VapError>) {
        let mut errors = Vec::new();
        let mut policies: HashMap<String, Arc<Policy>> = HashMap::new();
        let mut bindings = Vec::new();
        let mut vaps = Vaps::default();
        for doc in docs.iter().filter(|d| crate::kyverno::is_validating_policy(d)) {
            match Self::kyverno_binding(doc, false) {
                Ok(binding) => vaps.bindings.push(binding),
                Err(e) => errors.push(e),
            }
        }
        for doc in docs.iter().filter(|d| crate::kyverno::is_mutating_policy(d)) {
            match Self::kyverno_binding(doc, true) {
                Ok(binding) => vaps.bindings.push(binding),
                Err(e) => errors.push(e),
            }
        }
        for doc in docs.iter().filter(|d| crate::kyverno::is_exception(d)) {
            match crate::kyverno::Exception::from_json(doc) {
                Ok(exception) => vaps.exceptions.push(exception),
                Err(message) => errors
                    .push(VapError::of("PolicyException", str_at(doc, "/metadata/name").unwrap_or(""))(
                        "spec", message,
                    )),
            }
        }
        for doc in docs.iter().filter(|d| crate::kyverno::is_cluster_policy(d)) {
            let (rules, rule_errors) = Self::cluster_policy_bindings(doc);
            vaps.bindings.extend(rules);
            errors.extend(rule_errors);
        }
        let mut mutating: HashMap<String, Arc<Policy>> = HashMap::new();
        for doc in docs.iter().filter(|d| is_admission_policy(d)) {
            let made = match str_at(doc, "/kind") {
                Some("ValidatingAdmissionPolicy") => Policy::from_json(doc).map(|p| (&mut policies, p)),
                Some("MutatingAdmissionPolicy") => {
                    Policy::from_mutating_json(doc, Dialect::Kubernetes).map(|p| (&mut mutating, p))
                }
                _ => {
                    bindings.push(doc);
                    continue;
                }
            };
            match made {
                Ok((into, p)) => {
                    into.insert(p.name.clone(), Arc::new(p));
                }
                Err(e) => errors.push(e),
            }
        }
        for doc in bindings {
            let name = str_at(doc, "/metadata/name").unwrap_or("");
            let is_mutating = is_mutating_policy(doc);
            let (kind, policy_kind, loaded) = match is_mutating {
                true => ("MutatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", &mutating),
                false => ("ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", &policies),
            };
            let error = VapError::of(kind, name);
            let policy_name = str_at(doc, "/spec/policyName").unwrap_or("");
            let Some(policy) = loaded.get(policy_name) else {
                errors.push(error(
                    "spec.policyName",
                    format!("spec.policyName {policy_name:?}: no such {policy_kind} loaded"),
                ));
                continue;
            };
            // A mutating binding has no validation actions; what it does is said as Audit.
            let action = match is_mutating {
                true => Ok(Action::Audit),
                false => action_of(doc),
            };
            let action = match action {
                Ok(a) => a,
                Err(message) => {
                    errors.push(error("spec.validationActions", message));
                    continue;
                }
            };
            let param_ref = match ParamRef::of(policy, doc.pointer("/spec/paramRef")) {
                Ok(p) => p,
                Err(message) => {
                    errors.push(error("spec.paramRef", message));
                    continue;
                }
            };
            vaps.bindings.push(Binding {
                name: name.to_owned(),
                id: format!("{}/{}/{name}", if is_mutating { "map" } else { "vap" }, policy.name),
                policy: Arc::clone(policy),
                match_resources: doc.pointer("/spec/matchResources").cloned().unwrap_or(Value::Null),
                action,
                param_ref,
                autogen: Vec::new(),
                namespace: None,
                rule_match: None,
                kyverno: None,
                at_admission: true,
                in_background: true,
            });
        }
        let param_kinds: HashSet<(String, String)> =
            vaps.bindings.iter().filter_map(|b| b.policy.param_kind.clone()).collect();
        let reads_namespaces = vaps.bindings.iter().any(|b| {
            b.policy.reads_namespace_object
                || b.policy.match_constraints.get("namespaceSelector").is_some()
                || b.match_resources.get("namespaceSelector").is_some()
                || b.rule_match.as_ref().is_some_and(|r| r.written.to_string().contains("namespaceSelector"))
        });
        let resource_reads = vaps.bindings.iter().flat_map(|b| b.policy.validator.resource_reads()).collect();
        let reads_exceptions = vaps.bindings.iter().any(|b| b.kyverno.is_some());
        let mut read = VapObjects {
            param_kinds,
            reads_namespaces,
            resource_reads,
            reads_exceptions,
            from_files: Vec::new(),
            current: Snapshot::default(),
            images: Snapshot::default(),
        };
        read.from_files = docs
            .iter()
            .chain(objects)
            .filter(|o| {
                let (namespace, param) = read.reads(o);
                namespace || param.is_some() || read.read_as_resource(o).is_some()
            })
            .cloned()
            .collect();
        read.set(&[]);
        vaps.objects = Arc::new(read);
        (vaps, errors)
    }

    /// A Kyverno ValidatingPolicy or MutatingPolicy (`mutating`): the
    /// policy, and the binding its own spec makes (`validationActions`,
    /// autogen, `evaluation`); a MutatingPolicy is a MutatingAdmissionPolicy
    /// with Kyverno's libraries.
    #[allow(clippy::result_large_err)] // load time, as `Policy::from_json`
    fn kyverno_binding(doc: &Value, mutating: bool) -> Result<Binding, VapError> {
        let (policy, default_kind) = match mutating {
            true => (Policy::from_mutating_json(doc, Dialect::Kyverno)?, "MutatingPolicy"),
            false => (Policy::from_json_in(doc, Dialect::Kyverno)?, "ValidatingPolicy"),
        };
        let kind = str_at(doc, "/kind").unwrap_or(default_kind);
        let name = policy.name.clone();
        let error = VapError::of(kind, &name);
        let spec = doc.get("spec").unwrap_or(&Value::Null);
        if policy.param_kind.is_some() {
            return Err(error("spec.paramKind", "a Kyverno policy takes no params".to_owned()));
        }
        // A mutation has no action; Audit is what it is listed with nowhere.
        let action = match mutating {
            true => Action::Audit,
            false => action_of(doc).map_err(|message| error("spec.validationActions", message))?,
        };
        let autogen = crate::kyverno::autogen_controllers(spec).map_err(|message| error("spec.autogen", message))?;
        let namespace =
            kind.starts_with("Namespaced").then(|| str_at(doc, "/metadata/namespace").unwrap_or("default").to_owned());
        Ok(Binding {
            id: format!("kyverno/{name}"),
            name: name.clone(),
            policy: Arc::new(policy),
            match_resources: Value::Null,
            action,
            param_ref: None,
            autogen,
            namespace,
            rule_match: None,
            kyverno: Some((name.clone(), None)),
            at_admission: crate::kyverno::at_admission(spec),
            in_background: crate::kyverno::in_background(spec),
        })
    }

    /// A Kyverno ClusterPolicy or Policy: one binding per rule with
    /// `validate.cel`; every other rule type is an error naming the rule,
    /// and the policy's other rules still run.
    fn cluster_policy_bindings(doc: &Value) -> (Vec<Binding>, Vec<VapError>) {
        let kind = str_at(doc, "/kind").unwrap_or("ClusterPolicy");
        let name = str_at(doc, "/metadata/name").unwrap_or("");
        let error = VapError::of(kind, name);
        let spec = doc.get("spec").unwrap_or(&Value::Null);
        let policy_action = str_at(spec, "/validationFailureAction").unwrap_or("Audit");
        let namespace = (kind == "Policy").then(|| str_at(doc, "/metadata/namespace").unwrap_or("default").to_owned());
        let (mut bindings, mut errors) = (Vec::new(), Vec::new());
        for (i, rule) in spec.get("rules").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let rule_name = str_at(rule, "/name").unwrap_or("");
            let at = format!("spec.rules[{i}]");
            let error =
                |field: &str, message: String| VapError { rule: Some(rule_name.into()), ..error(field, message) };
            if let Some(what) = crate::kyverno::unsupported_rule_type(rule) {
                errors.push(error(
                    &at,
                    format!("rule {rule_name:?}: {what} rules are not supported; its other rules run"),
                ));
                continue;
            }
            let cel = rule.pointer("/validate/cel").unwrap_or(&Value::Null);
            if cel.get("paramKind").is_some() || cel.get("paramRef").is_some() {
                errors.push(error(
                    &format!("{at}.validate.cel"),
                    format!("rule {rule_name:?}: params are not supported"),
                ));
                continue;
            }
            // The rule as a policy of its own: its CEL, its preconditions as match conditions.
            let synthetic = serde_json::json!({
                "kind": kind,
                "metadata": {"name": format!("{name}/{rule_name}")},
                "spec": {
                    "validations": cel.get("expressions").cloned().unwrap_or(Value::Null),
                    "variables": cel.get("variables").cloned().unwrap_or(Value::Null),
                    "auditAnnotations": cel.get("auditAnnotations").cloned().unwrap_or(Value::Null),
                    "matchConditions": rule.get("celPreconditions").cloned().unwrap_or(Value::Null),
                    "failurePolicy": spec.get("failurePolicy").cloned().unwrap_or(Value::Null),
                    "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                        "resources": ["*"], "operations": ["*"]}]},
                },
            });
            let policy = match Policy::from_json_in(&synthetic, Dialect::Kyverno) {
                Ok(p) => p,
                Err(e) => {
                    // Fields of the synthetic spec, as they stand in the ClusterPolicy.
                    let field = e
                        .field
                        .replacen("spec.validations", &format!("{at}.validate.cel.expressions"), 1)
                        .replacen("spec.variables", &format!("{at}.validate.cel.variables"), 1)
                        .replacen("spec.auditAnnotations", &format!("{at}.validate.cel.auditAnnotations"), 1)
                        .replacen("spec.matchConditions", &format!("{at}.celPreconditions"), 1);
                    errors.push(VapError { field, rule: Some(rule_name.into()), ..e });
                    continue;
                }
            };
            let action =
                match str_at(rule, "/validate/failureAction").unwrap_or(policy_action).to_ascii_lowercase().as_str() {
                    "enforce" => Action::Deny,
                    "audit" => Action::Audit,
                    other => {
                        errors.push(error(
                            &format!("{at}.validate.failureAction"),
                            format!("{other:?} is not Enforce or Audit"),
                        ));
                        continue;
                    }
                };
            let matched = crate::kyverno::RuleMatch::of(rule.get("match"));
            if matched.is_empty() {
                errors.push(error(&format!("{at}.match"), format!("rule {rule_name:?} matches nothing")));
                continue;
            }
            let excluded = crate::kyverno::RuleMatch::of(rule.get("exclude"));
            let autogen = crate::kyverno::cluster_policy_autogen(doc, &matched);
            bindings.push(Binding {
                name: rule_name.to_owned(),
                id: format!("kyverno/{name}/{rule_name}"),
                policy: Arc::new(policy),
                match_resources: Value::Null,
                action,
                param_ref: None,
                autogen,
                namespace: namespace.clone(),
                rule_match: Some(KyvernoRule {
                    matched,
                    excluded,
                    written: serde_json::json!({"match": rule.get("match"), "exclude": rule.get("exclude")}),
                }),
                kyverno: Some((name.to_owned(), Some(rule_name.to_owned()))),
                at_admission: true,
                in_background: crate::kyverno::in_background(spec),
            });
        }
        (bindings, errors)
    }

    /// The webhook rules (`apiGroups`, `apiVersions`, `resources`,
    /// `operations`) that send the API server's requests for every kind
    /// these policies may judge at admission: their `matchConstraints`, the
    /// kinds a ClusterPolicy's rules match, and the controllers autogen
    /// reaches. `None` when one of them may judge any kind.
    pub fn admission_rules(&self) -> Option<Vec<Value>> {
        self.rules_of(false)
    }

    /// The same for the mutating policies (MutatingAdmissionPolicy, Kyverno
    /// MutatingPolicy): what the defaults webhook must also be asked about.
    pub fn mutating_admission_rules(&self) -> Option<Vec<Value>> {
        self.rules_of(true)
    }

    fn rules_of(&self, mutating: bool) -> Option<Vec<Value>> {
        let mut rules = Vec::new();
        let create_update = || serde_json::json!(["CREATE", "UPDATE"]);
        for binding in self.bindings.iter().filter(|b| b.at_admission && b.policy.mutating == mutating) {
            match &binding.rule_match {
                Some(rule) => rules.extend(rule.matched.admission_rules()?),
                None => {
                    let written = binding.policy.match_constraints.get("resourceRules").and_then(Value::as_array);
                    for r in written.into_iter().flatten() {
                        let list = |k: &str| r.get(k).cloned().unwrap_or_else(|| serde_json::json!(["*"]));
                        if list("resources").as_array().is_some_and(|a| a.iter().any(|x| x == "*")) {
                            return None;
                        }
                        rules.push(
                            serde_json::json!({"apiGroups": list("apiGroups"), "apiVersions": list("apiVersions"),
                            "resources": list("resources"), "operations": list("operations")}),
                        );
                    }
                }
            }
            for c in &binding.autogen {
                rules.push(serde_json::json!({"apiGroups": [c.group], "apiVersions": ["*"], "resources": [c.plural],
                    "operations": create_update()}));
            }
        }
        Some(rules)
    }

    /// From now on these judge what exists, as Kyverno's background scans
    /// do: a Kyverno policy with background evaluation off is left out.
    pub fn for_background_scan(&mut self) {
        self.background_scan = true;
    }

    /// What the policies read besides the object judged, for a caller to add to.
    pub fn objects(&self) -> Arc<VapObjects> {
        Arc::clone(&self.objects)
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Judges one object, as the request `request` (an AdmissionRequest as
    /// JSON: `operation`, `userInfo`, `namespace`, `kind`, …).
    pub fn judge(&self, object: &Value, old_object: &Value, request: &Value) -> Vec<ForeignFinding> {
        self.judge_as(object, old_object, request, Origin::Admission)
    }

    fn judge_as(&self, object: &Value, old_object: &Value, request: &Value, origin: Origin) -> Vec<ForeignFinding> {
        let mut out = Vec::new();
        self.each_verdict(object, old_object, request, origin, |binding, verdict, path| {
            let finding = |message: String| ForeignFinding {
                policy: binding.id.clone(),
                action: binding.action,
                message,
                path: path.clone(),
                exempted: None,
            };
            match verdict {
                Verdict::Skip | Verdict::Pass => {}
                Verdict::Fail(messages) => out.extend(messages.into_iter().map(finding)),
                Verdict::Error(errors) => out.extend(errors.into_iter().map(|e| finding(format!("policy error: {e}")))),
                Verdict::NoParams(why) => out.push(ForeignFinding { action: Action::Deny, ..finding(why) }),
                Verdict::Excepted(exception, messages) => out.extend(messages.into_iter().map(|m| ForeignFinding {
                    exempted: Some(format!("Kyverno PolicyException {exception}")),
                    ..finding(m)
                })),
            }
        });
        out
    }

    /// What each policy (each binding) makes of a manifest, judged as its
    /// creation: skip, pass, fail or error, by policy id. What `kyverno
    /// test` and `paved test` compare.
    pub fn verdicts(&self, object: &Value) -> Vec<(String, Verdict)> {
        self.verdicts_as(object, None, None)
    }

    /// [`Vaps::verdicts`] for a request of `operation` (`CREATE` otherwise)
    /// by `user` (a `userInfo`, with Kyverno's `roles` and `clusterRoles`),
    /// as a `kyverno test` suite sets them.
    pub fn verdicts_as(&self, object: &Value, operation: Option<&str>, user: Option<&Value>) -> Vec<(String, Verdict)> {
        let mut request = manifest_request(object);
        if let Some(operation) = operation {
            request["operation"] = Value::from(operation);
        }
        if let Some(user) = user {
            request["userInfo"] = user.clone();
        }
        let mut out = Vec::new();
        self.each_verdict(object, &Value::Null, &request, Origin::Manifest, |binding, verdict, _| {
            out.push((binding.id.clone(), verdict));
        });
        out
    }

    /// Calls `each` with every binding's verdict on the object (and, for
    /// Kyverno's autogen, on the pod template of a controller), with the
    /// field the verdict is about.
    fn each_verdict(
        &self,
        object: &Value,
        old_object: &Value,
        request: &Value,
        origin: Origin,
        mut each: impl FnMut(&Binding, Verdict, &FieldPath),
    ) {
        let known = self.objects.current.get();
        let judged = if object.is_null() { old_object } else { object };
        let subject = Subject::of(judged, request, &known.namespaces);
        let runs = |b: &Binding| match origin {
            Origin::Manifest => !self.background_scan || b.in_background,
            Origin::Admission => b.at_admission,
        };
        let in_namespace = |b: &Binding| b.namespace.as_deref().is_none_or(|ns| subject.namespace == Some(ns));
        // A manifest's namespace that paved has not seen still exists where
        // it is applied: `namespaceObject` names it, without labels, as the
        // Kyverno CLI gives it.
        let unseen_namespace = match (origin, subject.namespace, subject.namespace_object) {
            (Origin::Manifest, Some(ns), None) => {
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            }
            _ => Value::Null,
        };
        let namespace_object = subject.namespace_object.unwrap_or(&unseen_namespace);
        // Both made on first need, once per object: most objects meet no
        // policy that selects them, and converting one for CEL copies it.
        let data = std::cell::OnceCell::new();
        let data = || {
            let lookups = || Lookups { known: Arc::clone(&known), images: self.objects.images.get() };
            Arc::clone(data.get_or_init(|| Arc::new(lookups()) as Arc<dyn ClusterData>))
        };
        let activation = std::cell::OnceCell::new();
        let activation = || {
            activation.get_or_init(|| Activation::new(object, old_object, request, namespace_object).with_data(data()))
        };
        let as_pod = std::cell::OnceCell::new();
        let as_pod =
            || as_pod.get_or_init(|| AsPod::of(object, old_object, request, namespace_object, data())).as_ref();
        let root = FieldPath::root();
        for binding in self.bindings.iter().filter(|b| runs(b) && in_namespace(b) && !b.policy.mutating) {
            // A failure that a Kyverno PolicyException lifts for the object (a
            // controller's exception names the controller, not its pods).
            let lifted = |verdict| match self.exceptions.is_empty() && known.exceptions.is_empty() {
                true => verdict,
                false => self.excepted(binding, verdict, &known, &subject, request, activation()),
            };
            if binding.selects(&subject, request) {
                each(binding, lifted(self.verdict(binding, activation(), &subject, &known, origin)), &root);
                continue;
            }
            // Autogen: a Pod policy judges a controller's pod template as a Pod.
            let autogen = if binding.autogen.is_empty() { None } else { as_pod() };
            let Some(pod) = autogen.filter(|p| binding.autogen.contains(&p.template.controller)) else {
                each(binding, Verdict::Skip, &root);
                continue;
            };
            let pod_subject = Subject {
                object: &pod.template.pod,
                group: "",
                version: "v1",
                resource: "pods".to_owned(),
                ..subject.clone()
            };
            if !binding.selects(&pod_subject, &pod.request) {
                each(binding, Verdict::Skip, &root);
                continue;
            }
            let verdict = self.verdict(binding, &pod.activation, &pod_subject, &known, origin);
            each(binding, lifted(verdict), &pod.path);
        }
    }

    /// A failure of a Kyverno policy that a PolicyException lifts for this object.
    fn excepted(
        &self,
        binding: &Binding,
        verdict: Verdict,
        known: &Known,
        subject: &Subject,
        request: &Value,
        activation: &Activation,
    ) -> Verdict {
        let (Verdict::Fail(messages), Some((policy, rule))) = (&verdict, &binding.kyverno) else { return verdict };
        let r = binding.kyverno_request(subject, request);
        let mut exceptions = self.exceptions.iter().chain(&known.exceptions);
        match exceptions.find(|e| e.covers((policy, binding.kyverno_kind()), rule.as_deref(), &r, activation)) {
            Some(e) => Verdict::Excepted(e.name.clone(), messages.clone()),
            None => verdict,
        }
    }

    /// One binding's verdict on an activation it selected.
    fn verdict(
        &self,
        binding: &Binding,
        activation: &Activation,
        subject: &Subject,
        known: &Known,
        origin: Origin,
    ) -> Verdict {
        let no_params = Params::none();
        let params: Vec<&Params> = match (&binding.param_ref, &binding.policy.param_kind) {
            (Some(param_ref), Some(kind)) => match param_ref.find(kind, subject, known, origin) {
                Ok(found) => found,
                Err(why) => return Verdict::NoParams(why),
            },
            _ => vec![&no_params],
        };
        let (mut matched, mut failures, mut errors) = (false, Vec::new(), Vec::new());
        for params in params {
            let outcome = binding.policy.validator.evaluate(activation, params);
            if !outcome.matched {
                continue;
            }
            matched = true;
            failures.extend(outcome.failures.into_iter().map(|f| f.message));
            if !binding.policy.ignore_failures {
                // failurePolicy Fail: an expression that cannot be evaluated rejects.
                errors.extend(outcome.errors.into_iter().map(|e| e.to_string()));
            }
        }
        if !failures.is_empty() {
            Verdict::Fail(failures)
        } else if !errors.is_empty() {
            Verdict::Error(errors)
        } else if matched {
            Verdict::Pass
        } else {
            Verdict::Skip
        }
    }
}

/// What the MutatingAdmissionPolicies made of an object.
#[derive(Debug, Default)]
pub struct Mutated {
    /// The object as every binding that selected it left it.
    pub object: Value,
    /// The bindings that changed it, by id, in order.
    pub by: Vec<String>,
    /// Bindings that could not mutate it: `(id, why, refuses)`; `refuses`
    /// for a policy whose `failurePolicy` is `Fail` (the API server then
    /// refuses the request), else the binding is skipped.
    pub errors: Vec<(String, String, bool)>,
}

impl Vaps {
    /// Whether any MutatingAdmissionPolicy binding is loaded.
    pub fn mutates(&self) -> bool {
        self.bindings.iter().any(|b| b.policy.mutating)
    }

    /// The MutatingAdmissionPolicies applied to an object, as the API server
    /// applies them: bindings in order, each selecting the object as the
    /// ones before left it, its match conditions once, then each mutation
    /// on the object as the one before left it. `request` is the
    /// AdmissionRequest as JSON; `None` for a manifest, judged as created.
    pub fn mutate(&self, object: &Value, old_object: &Value, request: Option<&Value>) -> Mutated {
        self.mutate_with(object, old_object, request, |_| true)
    }

    /// [`Vaps::mutate`] by the bindings whose id `which` accepts (what
    /// `kyverno test` asks of one policy).
    pub fn mutate_with(
        &self,
        object: &Value,
        old_object: &Value,
        request: Option<&Value>,
        which: impl Fn(&str) -> bool,
    ) -> Mutated {
        let (origin, request) = match request {
            Some(r) => (Origin::Admission, std::borrow::Cow::Borrowed(r)),
            None => (Origin::Manifest, std::borrow::Cow::Owned(manifest_request(object))),
        };
        let known = self.objects.current.get();
        let mut out = Mutated { object: object.clone(), ..Mutated::default() };
        let runs = |b: &Binding| match origin {
            Origin::Manifest => true,
            Origin::Admission => b.at_admission,
        };
        let chosen: Vec<&Binding> =
            self.bindings.iter().filter(|b| b.policy.mutating && runs(b) && which(&b.id)).collect();
        // `reinvocationPolicy: IfNeeded`: a binding that ran is run once more
        // when a binding after it changed the object, as the API server does.
        let mut changes = 0usize;
        let mut reinvoke = Vec::new();
        for binding in &chosen {
            if let Some(changed) = self.invoke(binding, &mut out, old_object, &request, &known, origin) {
                changes += usize::from(changed);
                if binding.policy.reinvoke {
                    reinvoke.push((binding, changes));
                }
            }
        }
        for (binding, seen) in reinvoke {
            if changes > seen {
                self.invoke(binding, &mut out, old_object, &request, &known, origin);
            }
        }
        out
    }

    /// One binding on `out.object`, when it selects it (or, by autogen, its
    /// pod template): whether it changed it; `None` when it does not apply.
    fn invoke(
        &self,
        binding: &Binding,
        out: &mut Mutated,
        old_object: &Value,
        request: &Value,
        known: &Known,
        origin: Origin,
    ) -> Option<bool> {
        // Which part it mutates, decided on the object as it is (borrowed).
        let template = {
            let subject = Subject::of(&out.object, request, &known.namespaces);
            if binding.namespace.as_deref().is_some_and(|ns| subject.namespace != Some(ns)) {
                return None;
            }
            let template = if binding.selects(&subject, request) {
                None
            } else {
                // Autogen: a Pod policy mutates a controller's pod template as a Pod.
                let template =
                    if binding.autogen.is_empty() { None } else { crate::kyverno::pod_of_template(&out.object) };
                let template = template.filter(|t| binding.autogen.contains(&t.controller))?;
                let mut pod_request = request.clone();
                pod_request["kind"] = serde_json::json!({"group": "", "version": "v1", "kind": "Pod"});
                pod_request["resource"] = serde_json::json!({"group": "", "version": "v1", "resource": "pods"});
                if !binding.selects(&Subject::of(&template.pod, &pod_request, &known.namespaces), &pod_request) {
                    return None;
                }
                Some((template, pod_request))
            };
            if self.excepted_from_mutation(binding, known, &subject, old_object, request) {
                return None;
            }
            template
        };
        let Some((template, pod_request)) = template else {
            return Some(self.mutate_by(binding, out, old_object, request, known, origin));
        };
        let mut as_pod = Mutated { object: template.pod, ..Mutated::default() };
        let changed = self.mutate_by(binding, &mut as_pod, &Value::Null, &pod_request, known, origin);
        out.errors.append(&mut as_pod.errors);
        if !changed {
            return Some(false);
        }
        if let Some(slot) = template.path.iter().try_fold(&mut out.object, |v, key| v.get_mut(*key)) {
            slot["metadata"] = as_pod.object.get("metadata").cloned().unwrap_or(Value::Null);
            slot["spec"] = as_pod.object.get("spec").cloned().unwrap_or(Value::Null);
        }
        if !out.by.contains(&binding.id) {
            out.by.push(binding.id.clone());
        }
        Some(true)
    }

    /// Whether a Kyverno PolicyException lifts a MutatingPolicy for the
    /// object, judged as for a validation: on the object itself (a
    /// controller's exception names the controller, not its pods).
    fn excepted_from_mutation(
        &self,
        binding: &Binding,
        known: &Known,
        subject: &Subject,
        old_object: &Value,
        request: &Value,
    ) -> bool {
        let Some((policy, rule)) = &binding.kyverno else { return false };
        if self.exceptions.is_empty() && known.exceptions.is_empty() {
            return false;
        }
        let r = binding.kyverno_request(subject, request);
        let activation =
            Activation::new(subject.object, old_object, request, subject.namespace_object.unwrap_or(&Value::Null));
        self.exceptions
            .iter()
            .chain(&known.exceptions)
            .any(|e| e.covers((policy, binding.kyverno_kind()), rule.as_deref(), &r, &activation))
    }

    /// One binding's mutations on `out.object`, which it selected: whether
    /// they changed it.
    fn mutate_by(
        &self,
        binding: &Binding,
        out: &mut Mutated,
        old_object: &Value,
        request: &Value,
        known: &Known,
        origin: Origin,
    ) -> bool {
        let no_params = Params::none();
        let before = out.object.clone();
        let subject = Subject::of(&before, request, &known.namespaces);
        let fail = |out: &mut Mutated, why: String| {
            out.errors.push((binding.id.clone(), why, !binding.policy.ignore_failures));
        };
        let params: Vec<&Params> = match (&binding.param_ref, &binding.policy.param_kind) {
            (Some(param_ref), Some(kind)) => match param_ref.find(kind, &subject, known, origin) {
                Ok(found) => found,
                Err(why) => {
                    fail(out, why);
                    return false;
                }
            },
            _ => vec![&no_params],
        };
        let unseen = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": subject.namespace.unwrap_or_default()}});
        let namespace_object = match (subject.namespace_object, subject.namespace) {
            (Some(ns), _) => ns.clone(),
            (None, Some(_)) if origin == Origin::Manifest => unseen,
            _ => Value::Null,
        };
        let validator = &binding.policy.validator;
        let mut current = before;
        let mut failed = None;
        'params: for params in params {
            let activation = Activation::new(&current, old_object, request, &namespace_object);
            match validator.matches(&activation, params) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(errors) => {
                    failed = Some(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
                    break;
                }
            }
            for i in 0..validator.mutation_count() {
                let activation = Activation::new(&current, old_object, request, &namespace_object);
                let made = validator.mutation(i, &activation, params).map_err(|e| e.to_string()).and_then(
                    |(patch_type, value)| match patch_type {
                        crate::PatchType::ApplyConfiguration => {
                            paved_core::apply::apply_configuration(&current, &value)
                                .map_err(|e| format!("mutations[{i}]: applying the configuration: {e}"))
                        }
                        crate::PatchType::JsonPatch => {
                            json_patch_of(&current, &value).map_err(|e| format!("mutations[{i}]: the JSON Patch: {e}"))
                        }
                    },
                );
                match made {
                    Ok(next) => current = next,
                    Err(why) => {
                        failed = Some(why);
                        break 'params;
                    }
                }
            }
        }
        match failed {
            // A failed binding changes nothing, as the API server leaves it.
            Some(why) => {
                fail(out, why);
                false
            }
            None if current != out.object => {
                if !out.by.contains(&binding.id) {
                    out.by.push(binding.id.clone());
                }
                out.object = current;
                true
            }
            None => false,
        }
    }
}

/// `ops` (a CEL list of `JSONPatch{op, path, value, from}`) applied to `object`.
fn json_patch_of(object: &Value, ops: &Value) -> Result<Value, String> {
    let Value::Array(list) = ops else { return Err("must evaluate to a list of JSONPatch".to_owned()) };
    if list.iter().any(|op| !op.is_object()) {
        return Err("every item must be a JSONPatch{…}".to_owned());
    }
    let patch: json_patch::Patch = serde_json::from_value(ops.clone()).map_err(|e| e.to_string())?;
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).map_err(|e| e.to_string())?;
    Ok(out)
}

impl Binding {
    /// The kind of the Kyverno policy it comes from, as a PolicyException's
    /// `policyRefs[].kind` names it.
    fn kyverno_kind(&self) -> &'static str {
        match (self.rule_match.is_some(), self.namespace.is_some(), self.policy.mutating) {
            (true, true, _) => "Policy",
            (true, false, _) => "ClusterPolicy",
            (false, true, true) => "NamespacedMutatingPolicy",
            (false, false, true) => "MutatingPolicy",
            (false, true, false) => "NamespacedValidatingPolicy",
            (false, false, false) => "ValidatingPolicy",
        }
    }

    /// Whether it selects the request: a ClusterPolicy rule by its
    /// `match` and `exclude`, any other by `matchConstraints` and the
    /// binding's `matchResources`.
    fn selects(&self, subject: &Subject, request: &Value) -> bool {
        let Some(KyvernoRule { matched, excluded, .. }) = &self.rule_match else {
            return subject.selected_by(&self.policy.match_constraints)
                && (self.match_resources.is_null() || subject.selected_by(&self.match_resources));
        };
        let r = self.kyverno_request(subject, request);
        matched.selects(&r) && !excluded.selects(&r)
    }

    /// The request as a Kyverno match reads it.
    fn kyverno_request<'s>(&self, subject: &'s Subject, request: &'s Value) -> crate::kyverno::Request<'s> {
        crate::kyverno::Request {
            group: subject.group,
            version: subject.version,
            kind: str_at(subject.object, "/kind").unwrap_or(""),
            name: subject.name,
            namespace: subject.namespace,
            operation: subject.operation,
            labels: subject.object.pointer("/metadata/labels"),
            annotations: subject.object.pointer("/metadata/annotations"),
            namespace_labels: subject.namespace_object.and_then(|n| n.pointer("/metadata/labels")),
            user: request.get("userInfo").unwrap_or(&Value::Null),
        }
    }
}

/// A controller judged by autogen as the Pod its template makes: the pod,
/// the request as for that Pod, converted for CEL, and where the template is.
struct AsPod {
    template: crate::kyverno::TemplatePod,
    request: Value,
    activation: Activation,
    path: FieldPath,
}

impl AsPod {
    fn of(
        object: &Value,
        old_object: &Value,
        request: &Value,
        namespace_object: &Value,
        data: Arc<dyn ClusterData>,
    ) -> Option<AsPod> {
        let template = crate::kyverno::pod_of_template(if object.is_null() { old_object } else { object })?;
        let old_pod = crate::kyverno::pod_of_template(old_object).map(|t| t.pod);
        // The request without its objects (CEL's `request` has none) and about a Pod.
        let mut pod_request: serde_json::Map<String, Value> = request
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "object" && *k != "oldObject")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pod_request.insert("kind".into(), serde_json::json!({"group": "", "version": "v1", "kind": "Pod"}));
        pod_request.insert("resource".into(), serde_json::json!({"group": "", "version": "v1", "resource": "pods"}));
        let request = Value::Object(pod_request);
        let (pod, old_pod) = match object.is_null() {
            true => (Value::Null, template.pod.clone()),
            false => (template.pod.clone(), old_pod.unwrap_or(Value::Null)),
        };
        let activation = Activation::new(&pod, &old_pod, &request, namespace_object).with_data(data);
        let path = FieldPath::root().keys(template.path);
        Some(AsPod { template, request, activation, path })
    }
}

/// What Kyverno's libraries read during one evaluation: the objects and
/// image metadata of the moment.
struct Lookups {
    known: Arc<Known>,
    images: Arc<HashMap<String, Value>>,
}

impl ClusterData for Lookups {
    fn get(&self, api_version: &str, resource: &str, namespace: &str, name: &str) -> Result<Value, String> {
        let objects = self.known.resources.get(&(api_version.to_owned(), resource.to_owned()));
        objects
            .and_then(|o| o.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            // The API server's wording, as Kyverno passes it on.
            .ok_or_else(|| format!("{resource} {name:?} not found"))
    }

    fn list(&self, api_version: &str, resource: &str, namespace: &str) -> Result<Value, String> {
        let objects = self.known.resources.get(&(api_version.to_owned(), resource.to_owned()));
        let items = objects
            .into_iter()
            .flatten()
            .filter(|((ns, _), _)| namespace.is_empty() || ns == namespace)
            .map(|(_, o)| o.clone())
            .collect();
        Ok(crate::kyverno_libs::list_of(api_version, resource, items))
    }

    fn image_metadata(&self, image: &str) -> Result<Value, String> {
        self.images.get(image).cloned().ok_or_else(|| crate::kyverno_libs::no_image_metadata(image))
    }
}

/// The request a manifest is judged as: its creation, by an unknown user.
fn manifest_request(object: &Value) -> Value {
    let (group, version) = group_version(object);
    let kind = str_at(object, "/kind").unwrap_or("");
    serde_json::json!({
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource_of(kind)},
        "name": object.pointer("/metadata/name"),
        "namespace": object.pointer("/metadata/namespace"),
        "operation": "CREATE",
        "userInfo": {},
        "dryRun": false,
    })
}

impl Foreign for Vaps {
    fn mutates(&self) -> bool {
        Vaps::mutates(self)
    }

    fn mutate(
        &self,
        object: &Value,
        old_object: &Value,
        request: Option<&Value>,
        runs: &dyn Fn(&str) -> bool,
    ) -> Option<paved_core::eval::ForeignMutation> {
        if !self.mutates() {
            return None;
        }
        let Mutated { object, by, errors } = Vaps::mutate_with(self, object, old_object, request, runs);
        Some(paved_core::eval::ForeignMutation { object, by, errors })
    }

    fn evaluate(&self, obj: &Node, request: Option<&Value>) -> Vec<ForeignFinding> {
        if let Some(request) = request {
            let field = |k: &str| request.get(k).unwrap_or(&Value::Null);
            return self.judge(field("object"), field("oldObject"), request);
        }
        let Ok(object) = serde_json::to_value(obj) else { return Vec::new() };
        self.judge_as(&object, &Value::Null, &manifest_request(&object), Origin::Manifest)
    }

    fn describe(&self) -> Vec<ForeignPolicy> {
        self.bindings
            .iter()
            .map(|b| {
                let policy = &b.policy;
                let matches = b.rule_match.as_ref().map_or(&policy.match_constraints, |r| &r.written);
                let what = if policy.mutating { "Mutations" } else { "Validations" };
                let mut details = vec![(what, policy.validations.join("\n")), ("Matches", compact(matches))];
                if !b.match_resources.is_null() {
                    details.push(("Binding narrows to", compact(&b.match_resources)));
                }
                if let (Some((api_version, kind)), Some(r)) = (&policy.param_kind, &b.param_ref) {
                    let which = match &r.which {
                        Which::Name(name) => format!("named {name:?}"),
                        Which::Selector(selector) => format!("selected by {}", compact(selector)),
                    };
                    let place = r.namespace.as_ref().map_or_else(
                        || "in the namespace of the object judged".to_owned(),
                        |ns| format!("in namespace {ns:?}"),
                    );
                    let missing = if r.deny_when_missing { "Deny" } else { "Allow" };
                    details.push(("Params", format!("{kind} ({api_version}) {which}, {place}; when none: {missing}")));
                }
                let failure = if policy.ignore_failures { "Ignore" } else { "Fail" };
                details.push(("Failure policy", failure.to_owned()));
                let kyverno = b.kyverno.is_some();
                if !b.autogen.is_empty() {
                    let kinds: Vec<&str> = b.autogen.iter().map(|c| c.kind).collect();
                    details.push(("Also judges the pod templates of", kinds.join(", ")));
                }
                ForeignPolicy {
                    id: b.id.clone(),
                    origin: match (kyverno, b.rule_match.is_some(), policy.mutating) {
                        (true, true, _) => "Kyverno ClusterPolicy (validate.cel)",
                        (true, false, true) => "Kyverno MutatingPolicy",
                        (true, false, false) => "Kyverno ValidatingPolicy",
                        (false, _, true) => "MutatingAdmissionPolicy",
                        (false, _, false) => "ValidatingAdmissionPolicy",
                    },
                    title: if kyverno { policy.name.clone() } else { format!("{} (binding {})", policy.name, b.name) },
                    action: b.action,
                    details,
                    mutates: policy.mutating,
                }
            })
            .collect()
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Where the object judged comes from, which decides where a `paramRef`
/// without a namespace looks.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    /// An admission request: an object without a namespace is cluster-scoped.
    Admission,
    /// A manifest: an object without a namespace goes wherever it is
    /// applied, so params in any namespace may be meant.
    Manifest,
}

impl ParamRef {
    /// The binding's `paramRef`, checked against its policy's `paramKind`.
    fn of(policy: &Policy, param_ref: Option<&Value>) -> Result<Option<ParamRef>, String> {
        let Some((_, kind)) = &policy.param_kind else {
            return Ok(None);
        };
        let Some(param_ref) = param_ref else {
            return Err(format!("policy {} has paramKind {kind} but the binding has no spec.paramRef", policy.name));
        };
        let which = match (str_at(param_ref, "/name"), param_ref.get("selector")) {
            (Some(name), None) => Which::Name(name.to_owned()),
            (None, Some(selector)) => Which::Selector(selector.clone()),
            _ => return Err("spec.paramRef needs exactly one of name and selector".to_owned()),
        };
        let deny_when_missing = match str_at(param_ref, "/parameterNotFoundAction").unwrap_or("Deny") {
            "Allow" => false,
            "Deny" => true,
            other => return Err(format!("spec.paramRef.parameterNotFoundAction {other:?} is not Allow or Deny")),
        };
        let namespace = str_at(param_ref, "/namespace").filter(|n| !n.is_empty()).map(str::to_owned);
        Ok(Some(ParamRef { which, namespace, deny_when_missing }))
    }

    /// The params selected for `subject`, one evaluation each; `Err` is the
    /// denial of `parameterNotFoundAction: Deny` when there are none. As in
    /// the API server, a `paramRef` without a namespace looks in the
    /// namespace of the object judged (and at cluster-scoped params); for a
    /// cluster-scoped object, only at cluster-scoped params.
    fn find<'k>(
        &self,
        param_kind: &(String, String),
        subject: &Subject,
        known: &'k Known,
        origin: Origin,
    ) -> Result<Vec<&'k Params>, String> {
        let by_namespace = known.params.get(param_kind);
        let bucket = |ns: &str| by_namespace.and_then(|b| b.get(ns));
        let buckets: Vec<&Vec<ParamObject>> = match (&self.namespace, subject.namespace) {
            (Some(ns), _) => bucket(ns).into_iter().collect(),
            (None, Some(ns)) => bucket("").into_iter().chain(bucket(ns)).collect(),
            (None, None) if origin == Origin::Manifest => by_namespace.into_iter().flat_map(|b| b.values()).collect(),
            (None, None) => bucket("").into_iter().collect(),
        };
        let found: Vec<&Params> = buckets
            .into_iter()
            .flatten()
            .filter(|o| match &self.which {
                Which::Name(name) => o.name == *name,
                Which::Selector(selector) => paved_core::selector::matches(selector, o.labels.as_ref()),
            })
            .map(|o| &o.params)
            .collect();
        if found.is_empty() && self.deny_when_missing {
            let kind = &param_kind.1;
            return Err(format!(
                "no params found for policy binding: {kind} {} not found",
                match &self.which {
                    Which::Name(name) => format!("{name:?}"),
                    Which::Selector(_) => "matching the selector".to_owned(),
                }
            ));
        }
        Ok(found)
    }
}

/// The resource (plural) of a kind, as the API server guesses it without
/// discovery: lower case, `-s`, `-es` after an s, `-ies` for a final y.
pub fn resource_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        lower
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

fn group_version(object: &Value) -> (&str, &str) {
    let api_version = str_at(object, "/apiVersion").unwrap_or("");
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// What matching needs of the object under review, worked out once per object.
#[derive(Clone)]
struct Subject<'a> {
    object: &'a Value,
    group: &'a str,
    version: &'a str,
    resource: String,
    name: &'a str,
    operation: &'a str,
    namespace: Option<&'a str>,
    /// The Namespace object, when paved has seen it.
    namespace_object: Option<&'a Value>,
}

impl<'a> Subject<'a> {
    /// The request's namespace is the object's (on a CREATE the object may
    /// not carry it yet).
    fn of(object: &'a Value, request: &'a Value, namespaces: &'a HashMap<String, Value>) -> Subject<'a> {
        let (group, version) = group_version(object);
        let namespace =
            str_at(request, "/namespace").or_else(|| str_at(object, "/metadata/namespace")).filter(|n| !n.is_empty());
        let operation = str_at(request, "/operation").unwrap_or("CREATE");
        Subject {
            object,
            group,
            version,
            resource: resource_of(str_at(object, "/kind").unwrap_or("")),
            name: str_at(object, "/metadata/name").unwrap_or(""),
            operation,
            namespace,
            namespace_object: namespace.and_then(|n| namespaces.get(n)),
        }
    }

    /// Whether `rules` (`matchConstraints` or `matchResources`) select it.
    fn selected_by(&self, rules: &Value) -> bool {
        let rule_selects = |rule: &Value| {
            let any = |key: &str, value: &str| strings(rule.get(key)).iter().any(|l| *l == "*" || *l == value);
            let names = strings(rule.get("resourceNames"));
            let scope_ok = match str_at(rule, "/scope").unwrap_or("*") {
                "Cluster" => self.namespace.is_none(),
                "Namespaced" => self.namespace.is_some(),
                _ => true,
            };
            any("apiGroups", self.group)
                && any("apiVersions", self.version)
                && any("resources", &self.resource)
                && any("operations", self.operation)
                && scope_ok
                && (names.is_empty() || names.contains(&self.name))
        };
        let rules_of = |key: &str| rules.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        // A binding's `matchResources` without `resourceRules` narrows by
        // its selectors alone (the policy's are required, checked at load).
        let selects = rules_of("resourceRules");
        if !(selects.is_empty() || selects.iter().any(rule_selects))
            || rules_of("excludeResourceRules").iter().any(rule_selects)
        {
            return false;
        }
        if let Some(selector) = rules.get("objectSelector")
            && !paved_core::selector::matches(selector, self.object.pointer("/metadata/labels"))
        {
            return false;
        }
        // Cluster-scoped objects are not filtered by namespaceSelector, but
        // a Namespace is, by its own labels; a namespace paved has not seen
        // has no labels.
        if let Some(selector) = rules.get("namespaceSelector") {
            let labels = if self.resource == "namespaces" && self.group.is_empty() {
                Some(self.object.pointer("/metadata/labels"))
            } else {
                self.namespace.map(|_| self.namespace_object.and_then(|n| n.pointer("/metadata/labels")))
            };
            if let Some(labels) = labels
                && !paved_core::selector::matches(selector, labels)
            {
                return false;
            }
        }
        true
    }
}
