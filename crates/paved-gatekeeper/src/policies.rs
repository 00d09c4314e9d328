//! Policies loaded from files (`policy-paths`, `--policy`) and run by paved's
//! engine beside the native rules, through `paved_core::eval::Foreign`:
//! Gatekeeper templates and constraints, and ValidatingAdmissionPolicies with
//! their bindings (evaluated by `paved_cel::vap`). One walk reads them all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use paved_core::eval::{Foreign, ForeignFinding, ForeignPolicy};
use paved_core::node::{FieldPath, Node, Pos};
use serde_json::Value;

use crate::constraint::Constraint;
use crate::suite::{Inventory, Review, SharedInventory, files_under, read_sourced, violations_of};
use crate::template::{Compiled, Engine, SourceAt, SyncKind, Template};

/// A file that could not be used, where, and why; the other policies still run.
#[derive(Debug)]
pub struct LoadProblem {
    pub file: PathBuf,
    /// The line and column of the field at fault, or of the code inside it.
    pub pos: Option<Pos>,
    pub message: String,
}

impl LoadProblem {
    fn of_file(file: PathBuf, message: String) -> LoadProblem {
        LoadProblem { file, pos: None, message }
    }

    /// A problem with the document of `kind` named `name`, at `at`, placed
    /// in the file's text as it was read (`sources`).
    fn at(
        sources: &HashMap<PathBuf, String>,
        file: PathBuf,
        kind: &str,
        name: &str,
        at: &SourceAt,
        message: String,
    ) -> LoadProblem {
        let pos = sources.get(&file).and_then(|text| crate::locate::position(text, kind, name, at));
        LoadProblem { file, pos, message }
    }
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{}:{}:{}: {}", self.file.display(), pos.line, pos.col, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Everything the policy files held: Gatekeeper constraints, and
/// ValidatingAdmissionPolicies with their bindings.
#[derive(Debug, Default)]
pub struct Policies {
    gatekeeper: Gatekeeper,
    vaps: paved_cel::vap::Vaps,
    /// `spec.sync.syncOnly` of Gatekeeper `Config` objects in the policy files.
    sync_only: Vec<SyncKind>,
}

impl Policies {
    pub fn is_empty(&self) -> bool {
        self.gatekeeper.constraints.is_empty() && self.vaps.is_empty()
    }

    /// Whether policies read objects besides the one judged: a template
    /// reading `data.inventory`, a VAP with params or reading Namespaces
    /// (then the objects being checked are worth adding to the inventory).
    pub fn reads_other_objects(&self) -> bool {
        let templates = self.gatekeeper.constraints.iter().any(|(t, _)| {
            t.template.rego.contains("data.inventory") || t.template.libs.iter().any(|l| l.contains("data.inventory"))
        });
        templates || !self.vaps.objects().kinds().is_empty()
    }

    /// The objects policies read besides the one judged: templates through
    /// `data.inventory`, VAPs as params and Namespaces.
    pub fn set_inventory(&mut self, objects: Vec<Value>) {
        self.inventory().set(Arc::new(Inventory::new(objects)));
    }

    /// A handle on the objects these policies read, for a server's watches
    /// to keep current after the policies became foreign.
    pub fn inventory(&self) -> InventoryHandle {
        InventoryHandle { gatekeeper: self.gatekeeper.inventory.clone(), vaps: self.vaps.objects() }
    }

    /// The kinds a server must keep in the inventory: those the templates
    /// declare (`metadata.gatekeeper.sh/requires-sync-data`), those a
    /// Gatekeeper `Config` in the policy files lists under `spec.sync.syncOnly`,
    /// Namespaces when a constraint selects by namespace labels, and what
    /// the VAPs read (their `paramKind`s, and Namespaces when they select by
    /// namespace labels or read `namespaceObject`).
    pub fn synced_kinds(&self) -> Vec<SyncKind> {
        let mut kinds: Vec<SyncKind> = Vec::new();
        // Without constraints no template runs, so nothing is read.
        if !self.gatekeeper.constraints.is_empty() {
            kinds.extend(self.gatekeeper.constraints.iter().flat_map(|(t, _)| t.template.sync.iter().cloned()));
            kinds.extend(self.sync_only.iter().cloned());
            if self.gatekeeper.constraints.iter().any(|(_, c)| c.selects_namespaces()) {
                kinds.push(SyncKind { group: String::new(), version: "v1".into(), kind: "Namespace".into() });
            }
        }
        kinds.extend(self.vaps.objects().kinds().into_iter().map(|(api_version, kind)| {
            let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
            SyncKind { group: group.to_owned(), version: version.to_owned(), kind }
        }));
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// The webhook rules that send the API server's requests for every kind
    /// these policies may judge (their constraints' `match.kinds`, the
    /// VAPs' and Kyverno policies' matches); `None` when one may judge any kind.
    /// The kinds the mutating policies may change at admission (see
    /// [`paved_cel::vap::Vaps::mutating_admission_rules`]); `None`: any kind.
    pub fn mutating_admission_rules(&self) -> Option<Vec<Value>> {
        self.vaps.mutating_admission_rules()
    }

    pub fn admission_rules(&self) -> Option<Vec<Value>> {
        let mut rules = self.vaps.admission_rules()?;
        for (_, constraint) in &self.gatekeeper.constraints {
            let kinds = constraint.matcher.get("kinds").and_then(Value::as_array).filter(|k| !k.is_empty())?;
            for entry in kinds {
                let strings = |key: &str| -> Vec<&str> {
                    entry.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
                };
                let (groups, names) = (strings("apiGroups"), strings("kinds"));
                if names.is_empty() || names.contains(&"*") {
                    return None;
                }
                let groups: Vec<&str> = if groups.is_empty() { vec!["*"] } else { groups };
                let resources: Vec<String> = names.iter().map(|k| paved_cel::vap::resource_of(k)).collect();
                rules.push(serde_json::json!({"apiGroups": groups, "apiVersions": ["*"], "resources": resources,
                    "operations": ["CREATE", "UPDATE"]}));
            }
        }
        Some(rules)
    }

    /// From now on these judge what exists (`paved audit`), as Kyverno's
    /// background scans do: Kyverno policies with background evaluation off stay out.
    pub fn for_background_scan(&mut self) {
        self.vaps.for_background_scan();
    }

    /// As the engine's foreign policies: one per kind that loaded anything.
    pub fn into_foreign(self) -> Vec<Arc<dyn Foreign>> {
        let mut foreign: Vec<Arc<dyn Foreign>> = Vec::new();
        if !self.gatekeeper.constraints.is_empty() {
            foreign.push(Arc::new(self.gatekeeper));
        }
        if !self.vaps.is_empty() {
            foreign.push(Arc::new(self.vaps));
        }
        foreign
    }
}

/// Where a server puts the objects it watches: one snapshot, which
/// templates read as `data.inventory` and VAPs as params and Namespaces.
#[derive(Clone, Default)]
pub struct InventoryHandle {
    gatekeeper: SharedInventory,
    vaps: Arc<paved_cel::vap::VapObjects>,
}

impl InventoryHandle {
    pub fn get(&self) -> Arc<Inventory> {
        self.gatekeeper.get()
    }

    pub fn set(&self, inventory: Arc<Inventory>) {
        self.vaps.set(inventory.objects());
        self.gatekeeper.set(inventory);
    }
}

impl std::fmt::Debug for InventoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InventoryHandle").field("objects", &self.gatekeeper.get().len()).finish()
    }
}

/// Constraints with their compiled templates, and the inventory they read.
#[derive(Default)]
pub struct Gatekeeper {
    constraints: Vec<(Arc<Compiled>, Constraint)>,
    inventory: SharedInventory,
}

impl std::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatekeeper").field("constraints", &self.constraints.len()).finish()
    }
}

impl Gatekeeper {
    /// The policy id of a constraint: `gatekeeper/<template>/<constraint>`,
    /// so `paved.dev/exempt: gatekeeper/*` or `gatekeeper/k8srequiredlabels/*` work.
    pub fn policy_id(template: &Compiled, constraint: &Constraint) -> String {
        format!("gatekeeper/{}/{}", template.template.name, constraint.name)
    }
}

impl Foreign for Gatekeeper {
    fn evaluate(&self, obj: &Node, request: Option<&Value>) -> Vec<ForeignFinding> {
        // From admission, Gatekeeper's review is the request itself.
        let json;
        let review = match request {
            Some(request) => Review::of_request(request),
            None => {
                json = match serde_json::to_value(obj) {
                    Ok(json) => json,
                    Err(_) => return Vec::new(),
                };
                Review::of(&json)
            }
        };
        let inventory = self.inventory.get();
        let mut out = Vec::new();
        for (template, constraint) in &self.constraints {
            let policy = Gatekeeper::policy_id(template, constraint);
            match violations_of(template, constraint, &review, &inventory) {
                Ok(violations) => out.extend(violations.into_iter().map(|v| ForeignFinding {
                    policy: policy.clone(),
                    action: constraint.action,
                    message: v.msg,
                    path: FieldPath::root(),
                    exempted: None,
                })),
                // A policy that fails (a time limit, a builtin error) is a finding, never a silent pass.
                Err(e) => out.push(ForeignFinding {
                    policy,
                    action: constraint.action,
                    message: format!("policy error: {e}"),
                    path: FieldPath::root(),
                    exempted: None,
                }),
            }
        }
        out
    }

    fn describe(&self) -> Vec<ForeignPolicy> {
        self.constraints
            .iter()
            .map(|(template, constraint)| {
                let t = &template.template;
                let mut details = Vec::new();
                if let Some(description) = &t.description {
                    details.push(("What it checks", description.clone()));
                }
                let engine = match template.engine() {
                    Engine::Rego => "Rego",
                    Engine::Cel => "CEL (K8sNativeValidation)",
                };
                details.push(("Template", format!("{} (kind {}), evaluated with {engine}", t.name, t.kind)));
                if !constraint.matcher.is_null() {
                    details.push(("Matches", serde_json::to_string(&constraint.matcher).unwrap_or_default()));
                }
                let parameters = &constraint.parameters_json;
                if parameters.as_object().is_some_and(|p| !p.is_empty()) {
                    details.push(("Parameters", serde_json::to_string(parameters).unwrap_or_default()));
                }
                ForeignPolicy {
                    id: Gatekeeper::policy_id(template, constraint),
                    origin: "Gatekeeper constraint",
                    title: t.title.clone().unwrap_or_else(|| t.name.clone()),
                    action: constraint.action,
                    details,
                    mutates: false,
                }
            })
            .collect()
    }
}

/// The policies a configuration names: its `policy-paths` (relative to
/// `base`, the configuration file's directory) and `extra` (`--policy`).
pub fn from_config(
    policy_paths: &[String],
    base: &Path,
    extra: &[PathBuf],
    engine: Engine,
) -> (Policies, Vec<LoadProblem>) {
    let mut paths: Vec<PathBuf> = policy_paths.iter().map(|p| base.join(p)).collect();
    paths.extend(extra.iter().cloned());
    if paths.is_empty() {
        return (Policies::default(), Vec::new());
    }
    load(&paths, engine)
}

/// Loads every ConstraintTemplate and constraint in `paths` (files or
/// directories, recursively). Other documents are ignored; a template that
/// does not compile, or a constraint without its template, is a problem
/// that names the file, and everything else still loads.
pub fn load(paths: &[PathBuf], engine: Engine) -> (Policies, Vec<LoadProblem>) {
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        let problem = LoadProblem::of_file(missing.clone(), "no such file or directory".into());
        return (Policies::default(), vec![problem]);
    }
    let files = policy_files(paths);
    let mut problems = Vec::new();
    let mut templates: HashMap<String, Arc<Compiled>> = HashMap::new();
    let mut constraints: Vec<(PathBuf, Constraint)> = Vec::new();
    // Policies and bindings, and every other document (params, namespaces).
    let (mut vap_docs, mut other_docs) = (Vec::new(), Vec::new());
    let mut vap_files: HashMap<(String, String), PathBuf> = HashMap::new();
    let mut sync_only = Vec::new();
    // Each file's text, kept while loading to place its problems.
    let mut sources: HashMap<PathBuf, String> = HashMap::new();
    for file in files {
        let docs = match read_sourced(&file) {
            Ok((text, docs)) => {
                sources.insert(file.clone(), text);
                docs
            }
            Err((pos, message)) => {
                problems.push(LoadProblem { file, pos, message });
                continue;
            }
        };
        for doc in docs {
            let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            if api_version.starts_with("templates.gatekeeper.sh/") {
                match Template::from_json(&doc).and_then(|t| Compiled::new(t, engine)) {
                    Ok(t) => {
                        templates.insert(t.template.kind.clone(), Arc::new(t));
                    }
                    Err(e) => {
                        let (name, spec) = (key_of(&doc, "/metadata/name"), SourceAt::field("spec"));
                        let at = e.at().unwrap_or(&spec);
                        problems.push(LoadProblem::at(
                            &sources,
                            file.clone(),
                            "ConstraintTemplate",
                            name,
                            at,
                            e.to_string(),
                        ));
                    }
                }
            } else if api_version.starts_with("constraints.gatekeeper.sh/") {
                match Constraint::from_json(&doc) {
                    Ok(c) => constraints.push((file.clone(), c)),
                    Err(e) => {
                        let (kind, name) = (key_of(&doc, "/kind"), key_of(&doc, "/metadata/name"));
                        let spec = SourceAt::field("spec");
                        problems.push(LoadProblem::at(&sources, file.clone(), kind, name, &spec, e.to_string()));
                    }
                }
            } else if api_version.starts_with("config.gatekeeper.sh/")
                && doc.get("kind").and_then(Value::as_str) == Some("Config")
            {
                sync_only.extend(sync_only_of(&doc));
            } else if paved_cel::vap::is_vap_kind(&doc) {
                vap_files.insert(
                    (key_of(&doc, "/kind").to_owned(), key_of(&doc, "/metadata/name").to_owned()),
                    file.clone(),
                );
                vap_docs.push(doc);
            } else {
                other_docs.push(doc);
            }
        }
    }
    let (vaps, vap_errors) = paved_cel::vap::Vaps::from_docs(&vap_docs, &other_docs);
    for e in vap_errors {
        let file = vap_files.get(&(e.kind.clone(), e.name.clone())).cloned().unwrap_or_default();
        let at = SourceAt { field: e.field.clone(), within: e.within };
        problems.push(LoadProblem::at(&sources, file, &e.kind, &e.name, &at, e.to_string()));
    }
    let mut gatekeeper = Gatekeeper::default();
    for (file, constraint) in constraints {
        match templates.get(&constraint.kind) {
            Some(t) => gatekeeper.constraints.push((Arc::clone(t), constraint)),
            None => {
                let message = format!(
                    "constraint {} of kind {}: no ConstraintTemplate defines that kind",
                    constraint.name, constraint.kind
                );
                let kind = SourceAt::field("kind");
                problems.push(LoadProblem::at(&sources, file, &constraint.kind, &constraint.name, &kind, message));
            }
        }
    }
    (Policies { gatekeeper, vaps, sync_only }, problems)
}

fn key_of<'v>(doc: &'v Value, pointer: &str) -> &'v str {
    doc.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn policy_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    files_under(paths, |p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
}

/// What changes when a policy file changes: the files under `paths` with
/// their sizes and modification times. A server polls it to reload policies
/// (a ConfigMap update swaps the files, so their times change).
pub fn fingerprint(policy_paths: &[String], base: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let paths: Vec<PathBuf> = policy_paths.iter().map(|p| base.join(p)).collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in policy_files(&paths) {
        file.hash(&mut hasher);
        if let Ok(meta) = std::fs::metadata(&file) {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// `spec.sync.syncOnly: [{group, version, kind}]` of a Gatekeeper `Config`.
fn sync_only_of(config: &Value) -> Vec<SyncKind> {
    let entries = config.pointer("/spec/sync/syncOnly").and_then(Value::as_array);
    let field = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    entries
        .into_iter()
        .flatten()
        .filter(|e| !field(e, "kind").is_empty() && !field(e, "version").is_empty())
        .map(|e| SyncKind { group: field(e, "group"), version: field(e, "version"), kind: field(e, "kind") })
        .collect()
}
