//! Gatekeeper test suites (`test.gatekeeper.sh/v1alpha1 Suite`, as `gator
//! verify` runs them), unchanged: each case reviews one object against one
//! constraint and checks the violations (count, and messages by RE2 regex).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::constraint::Constraint;
use crate::template::{Compiled, Engine, Template};

/// Suite and object files larger than this are refused.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SuiteError {
    pub path: PathBuf,
    pub message: String,
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub test: String,
    pub case: String,
    /// `None` when it passed; why it failed otherwise.
    pub failure: Option<String>,
    /// The engine that ran it (`None` when the test could not be set up).
    pub engine: Option<Engine>,
}

/// Compiled templates, by file, shared by the suites that use them.
#[derive(Default)]
pub struct Templates {
    by_path: HashMap<PathBuf, Arc<Compiled>>,
    engine: Engine,
}

impl Templates {
    /// Templates compiled for `engine`.
    pub fn new(engine: Engine) -> Templates {
        Templates { by_path: HashMap::new(), engine }
    }

    /// Every template compiled so far.
    pub fn compiled(&self) -> impl Iterator<Item = &Compiled> {
        self.by_path.values().map(|t| &**t)
    }

    fn get(&mut self, path: &Path) -> Result<Arc<Compiled>, String> {
        if let Some(t) = self.by_path.get(path) {
            return Ok(Arc::clone(t));
        }
        let doc = read_one(path)?;
        let template = Template::from_json(&doc).map_err(|e| e.to_string())?;
        let compiled = Arc::new(Compiled::new(template, self.engine).map_err(|e| e.to_string())?);
        self.by_path.insert(path.to_owned(), Arc::clone(&compiled));
        Ok(compiled)
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{}: larger than {MAX_FILE_BYTES} bytes", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every YAML document of a file (empty ones dropped); errors say
/// `file:line:col: message`.
pub fn read_all(path: &Path) -> Result<Vec<Value>, String> {
    read_sourced(path).map(|(_, docs)| docs).map_err(|(pos, message)| match pos {
        Some(pos) => format!("{}:{}:{}: {message}", path.display(), pos.line, pos.col),
        None => format!("{}: {message}", path.display()),
    })
}

/// A file's text and its documents, read once through paved-yaml (the path
/// manifests take); the text stays with the caller to place later errors.
/// Scalars resolve as YAML 1.2 (`violations: yes` is the string Gatekeeper's
/// suites mean), as these files were always read.
pub fn read_sourced(path: &Path) -> Result<(String, Vec<Value>), (Option<paved_core::node::Pos>, String)> {
    let text = read_text(path).map_err(|e| (None, e))?;
    let docs = paved_yaml::load_values(&text, &paved_yaml::Limits::default(), paved_yaml::Schema::Core)
        .map_err(|e| (e.pos(), e.message()))?;
    Ok((text, docs))
}

fn read_one(path: &Path) -> Result<Value, String> {
    read_all(path)?.into_iter().next().ok_or_else(|| format!("{}: no YAML document", path.display()))
}

/// The group and kind of an object.
pub fn group_kind(obj: &Value) -> (String, String, String) {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    (group.to_owned(), version.to_owned(), kind.to_owned())
}

/// One object under review, prepared once for every constraint: the
/// `input.review` Gatekeeper hands a template (converted for regorus or CEL
/// once, when a template of that engine first needs it), and the object
/// `match` looks at. An AdmissionReview's request is
/// used as it is; any other object is reviewed as a CREATE of it.
pub struct Review<'a> {
    /// The request as JSON: borrowed from admission, built for a manifest.
    request: std::borrow::Cow<'a, Value>,
    /// The request converted for each engine, only when a template of that
    /// engine runs, and then once for all constraints.
    input: std::sync::OnceLock<regorus::Value>,
    activation: std::sync::OnceLock<paved_cel::Activation>,
    pub subject: &'a Value,
    group: String,
    kind: String,
}

impl<'a> Review<'a> {
    pub fn of(obj: &'a Value) -> Review<'a> {
        if obj.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            return Review::of_request(obj.get("request").unwrap_or(&Value::Null));
        }
        let (group, version, kind) = group_kind(obj);
        let meta = |k: &str| crate::constraint::metadata(obj, k).cloned().unwrap_or(Value::Null);
        let mut review = json!({
            "kind": {"group": group, "version": version, "kind": kind},
            "object": obj,
            "name": meta("name"),
            "operation": "CREATE",
            "dryRun": false,
        });
        let namespace = meta("namespace");
        if !namespace.is_null() {
            review["namespace"] = namespace;
        }
        Review::new(std::borrow::Cow::Owned(review), obj)
    }

    /// The review of an AdmissionRequest (as JSON), as Gatekeeper builds it:
    /// the request itself; its object, or the old one on DELETE, is matched.
    pub fn of_request(request: &'a Value) -> Review<'a> {
        let subject = match request.get("object") {
            Some(o) if !o.is_null() => o,
            _ => request.get("oldObject").unwrap_or(&Value::Null),
        };
        Review::new(std::borrow::Cow::Borrowed(request), subject)
    }

    fn new(request: std::borrow::Cow<'a, Value>, subject: &'a Value) -> Review<'a> {
        let (group, _, kind) = group_kind(subject);
        Review {
            request,
            input: std::sync::OnceLock::new(),
            activation: std::sync::OnceLock::new(),
            subject,
            group,
            kind,
        }
    }

    /// The review as CEL's variables (`object`, `oldObject`, `request`).
    pub fn activation(&self) -> &paved_cel::Activation {
        self.activation.get_or_init(|| {
            let field = |k: &str| self.request.get(k).unwrap_or(&Value::Null);
            paved_cel::Activation::new(field("object"), field("oldObject"), &self.request, &Value::Null)
        })
    }

    /// The review as Rego's `input.review`.
    pub fn input(&self) -> &regorus::Value {
        self.input.get_or_init(|| regorus::Value::from(self.request.as_ref().clone()))
    }

    /// Whether `constraint`'s `match` selects the object.
    pub fn matches(&self, constraint: &Constraint, inventory: &Inventory) -> bool {
        let namespace = crate::constraint::metadata(self.subject, "namespace")
            .and_then(Value::as_str)
            .and_then(|ns| inventory.namespace(ns));
        constraint.matches(self.subject, &self.group, &self.kind, namespace)
    }
}

/// `data.inventory` from objects: `cluster/<gv>/<kind>/<name>` and
/// `namespace/<ns>/<gv>/<kind>/<name>`, as Gatekeeper's sync fills it.
fn inventory_of<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut inventory = json!({"cluster": {}, "namespace": {}});
    for obj in objects {
        let gv = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_owned();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let slot = match obj.pointer("/metadata/namespace").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(ns) => &mut inventory["namespace"][ns],
            None => &mut inventory["cluster"],
        };
        slot[gv][kind][name] = obj.clone();
    }
    inventory
}

/// How many violations an assertion expects.
enum Expect {
    Some,
    None,
    Exactly(usize),
}

fn expectation(v: Option<&Value>) -> Result<Expect, String> {
    match v {
        None => Ok(Expect::Some),
        Some(Value::Bool(true)) => Ok(Expect::Some),
        Some(Value::Bool(false)) => Ok(Expect::None),
        Some(Value::String(s)) if s == "yes" => Ok(Expect::Some),
        Some(Value::String(s)) if s == "no" => Ok(Expect::None),
        Some(Value::Number(n)) => {
            n.as_u64().map(|n| Expect::Exactly(n as usize)).ok_or_else(|| format!("violations: {n}"))
        }
        Some(other) => Err(format!("violations: {other} is not yes, no or a count")),
    }
}

/// Runs one suite file; a problem with the suite itself is an error, a
/// failing case is a result.
pub fn run_suite(path: &Path, templates: &mut Templates) -> Result<Vec<CaseResult>, SuiteError> {
    let suite_err = |message: String| SuiteError { path: path.to_owned(), message };
    let suite = read_one(path).map_err(suite_err)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut results = Vec::new();
    for test in suite.get("tests").and_then(Value::as_array).into_iter().flatten() {
        let test_name = test.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
        let file = |key: &str| test.get(key).and_then(Value::as_str).map(|f| dir.join(f));
        let setup = (|| -> Result<(Arc<Compiled>, Constraint), String> {
            let template = templates.get(&file("template").ok_or("no template")?)?;
            let doc = read_one(&file("constraint").ok_or("no constraint")?)?;
            let constraint = Constraint::from_json(&doc).map_err(|e| e.to_string())?;
            if constraint.kind != template.template.kind {
                return Err(format!(
                    "constraint kind {} is not the template's {}",
                    constraint.kind, template.template.kind
                ));
            }
            Ok((template, constraint))
        })();
        let cases = test.get("cases").and_then(Value::as_array).cloned().unwrap_or_default();
        let (template, constraint) = match setup {
            Ok(pair) => pair,
            Err(message) => {
                for case in &cases {
                    let case = case.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
                    results.push(CaseResult {
                        test: test_name.clone(),
                        case,
                        failure: Some(message.clone()),
                        engine: None,
                    });
                }
                continue;
            }
        };
        for case in &cases {
            let case_name = case.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
            let failure = run_case(case, dir, &template, &constraint).err();
            results.push(CaseResult {
                test: test_name.clone(),
                case: case_name,
                failure,
                engine: Some(template.engine()),
            });
        }
    }
    Ok(results)
}

/// Objects a template may read through `data.inventory`, indexed once.
#[derive(Debug)]
pub struct Inventory {
    objects: Vec<Value>,
    /// Namespace name → its index in `objects`, for `namespaceSelector`.
    namespaces: std::collections::HashMap<String, usize>,
    /// `data.inventory`, built the first time a template reads it: a
    /// server may sync objects only VAPs read, and this is a second copy.
    doc: std::sync::OnceLock<Value>,
    /// Tells inventories apart, so that a compiled template loads one into
    /// regorus only when it changes (loading data makes regorus prepare the
    /// policy again, which costs more than the evaluation).
    generation: u64,
}

impl Default for Inventory {
    fn default() -> Inventory {
        Inventory::new(Vec::new())
    }
}

impl Inventory {
    pub fn new(objects: Vec<Value>) -> Inventory {
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let namespaces = objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.get("kind").and_then(Value::as_str) == Some("Namespace"))
            .filter_map(|(i, o)| Some((o.pointer("/metadata/name")?.as_str()?.to_owned(), i)))
            .collect();
        Inventory { objects, namespaces, doc: std::sync::OnceLock::new(), generation }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The Namespace object named `name`, for `namespaceSelector`.
    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.namespaces.get(name).and_then(|&i| self.objects.get(i))
    }

    pub fn doc(&self) -> &Value {
        self.doc.get_or_init(|| inventory_of(&self.objects))
    }

    pub fn objects(&self) -> &[Value] {
        &self.objects
    }
}

/// The inventory a running server keeps current: its watches replace the
/// snapshot, and each evaluation reads the snapshot of the moment.
pub type SharedInventory = paved_core::snapshot::Snapshot<Inventory>;

/// The violations of a review under one constraint: none when its `match`
/// does not select the object.
pub fn violations_of(
    template: &Compiled,
    constraint: &Constraint,
    review: &Review,
    inventory: &Inventory,
) -> Result<Vec<crate::template::Violation>, String> {
    if !review.matches(constraint, inventory) {
        return Ok(Vec::new());
    }
    template.violations(review, constraint, inventory).map_err(|e| e.to_string())
}

fn run_case(case: &Value, dir: &Path, template: &Compiled, constraint: &Constraint) -> Result<(), String> {
    let object_file = case.get("object").and_then(Value::as_str).ok_or("the case has no object")?;
    let object = read_one(&dir.join(object_file))?;
    let mut inventory = Vec::new();
    for f in case.get("inventory").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        inventory.extend(read_all(&dir.join(f))?);
    }
    let violations = violations_of(template, constraint, &Review::of(&object), &Inventory::new(inventory))?;
    for assertion in case.get("assertions").and_then(Value::as_array).into_iter().flatten() {
        let expect = expectation(assertion.get("violations"))?;
        let pattern = assertion.get("message").and_then(Value::as_str);
        let re = pattern.map(regex::Regex::new).transpose().map_err(|e| format!("message regex: {e}"))?;
        let counted = violations.iter().filter(|v| re.as_ref().is_none_or(|re| re.is_match(&v.msg))).count();
        let ok = match expect {
            Expect::Some => counted > 0,
            Expect::None => counted == 0,
            Expect::Exactly(n) => counted == n,
        };
        if !ok {
            let wanted = match expect {
                Expect::Some => "at least one violation".to_owned(),
                Expect::None => "no violation".to_owned(),
                Expect::Exactly(n) => format!("{n} violations"),
            };
            let filter = pattern.map(|p| format!(" matching /{p}/")).unwrap_or_default();
            let got: Vec<&str> = violations.iter().map(|v| v.msg.as_str()).collect();
            return Err(format!("expected {wanted}{filter}, got {counted}: {got:?}"));
        }
    }
    Ok(())
}

/// Every `suite.yaml` under `paths` (files are taken as they are), sorted.
pub fn find_suites(paths: &[PathBuf]) -> Vec<PathBuf> {
    files_under(paths, |p| p.file_name().is_some_and(|n| n == "suite.yaml"))
}

/// The files under `paths` that `keep` accepts, walking directories
/// recursively; files named directly are taken as they are. Sorted.
/// Symbolic links are followed: a ConfigMap mounted as a volume is a
/// directory of links into a `..data` directory. The `..`-named entries of
/// such a volume are skipped, so each file is read once.
pub fn files_under(paths: &[PathBuf], keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let walk = walkdir::WalkDir::new(p)
                .follow_links(true)
                .into_iter()
                .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with(".."))
                .flatten();
            out.extend(walk.filter(|e| e.file_type().is_file() && keep(e.path())).map(|e| e.into_path()));
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}
