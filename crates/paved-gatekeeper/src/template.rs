//! ConstraintTemplates (`templates.gatekeeper.sh` v1 and v1beta1), compiled
//! once with regorus, and evaluated as Gatekeeper evaluates them: the input is
//! `{"review": …, "parameters": …}`, the answer is `data.<package>.violation`.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::{Value, json};

/// A Rego evaluation that takes longer than this is stopped and reported.
pub const EVAL_TIME_LIMIT: Duration = Duration::from_millis(500);

/// Templates larger than this are refused before parsing.
pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// Which code of a template runs. A template without `K8sNativeValidation`
/// code runs its Rego whatever is asked, as Gatekeeper does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    #[default]
    Rego,
    Cel,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "rego" => Ok(Engine::Rego),
            "cel" => Ok(Engine::Cel),
            other => Err(format!("unknown engine {other:?}: rego or cel")),
        }
    }
}

impl From<paved_core::config::PolicyEngine> for Engine {
    fn from(engine: paved_core::config::PolicyEngine) -> Engine {
        match engine {
            paved_core::config::PolicyEngine::Rego => Engine::Rego,
            paved_core::config::PolicyEngine::Cel => Engine::Cel,
        }
    }
}

/// Gatekeeper's two variables that a template's CEL uses without defining:
/// the constraint's parameters, and the object (the old one on DELETE).
const CEL_PRELUDE: [(&str, &str); 2] = [
    ("params", "params.spec.parameters"),
    ("anyObject", "has(request.operation) && request.operation == 'DELETE' ? oldObject : object"),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("not a ConstraintTemplate: {0}")]
    NotATemplate(String),
    #[error("ConstraintTemplate {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("ConstraintTemplate {name}: Rego does not compile: {message}")]
    Compile { name: String, message: String, at: Option<SourceAt> },
    #[error("ConstraintTemplate {name}: K8sNativeValidation code does not compile: {message}")]
    CompileCel { name: String, message: String, at: Option<SourceAt> },
}

impl TemplateError {
    /// Where in the template's document the problem is, when known.
    pub fn at(&self) -> Option<&SourceAt> {
        match self {
            TemplateError::Compile { at, .. } | TemplateError::CompileCel { at, .. } => at.as_ref(),
            _ => None,
        }
    }
}

/// A place in a policy document: a field (`spec.targets[0].rego`) and, for
/// code, the 1-based line and column inside the field's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceAt {
    pub field: String,
    pub within: Option<(u32, u32)>,
}

impl SourceAt {
    /// The field itself, e.g. `spec`.
    pub fn field(field: &str) -> SourceAt {
        SourceAt { field: field.to_owned(), within: None }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{template}: evaluation failed: {message}")]
pub struct EvalError {
    pub template: String,
    pub message: String,
}

/// One violation: the `msg` of Gatekeeper's `{"msg": …, "details": …}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub msg: String,
}

/// A template's source, as written.
#[derive(Clone, Debug)]
pub struct Template {
    /// `metadata.name`, e.g. `k8srequiredlabels`.
    pub name: String,
    /// The constraint kind it defines, e.g. `K8sRequiredLabels`.
    pub kind: String,
    pub rego: String,
    pub libs: Vec<String>,
    /// `K8sNativeValidation` source, when the template carries CEL too.
    pub cel: Option<Value>,
    /// Where `rego`, each of `libs`, and `cel` are in the document, as
    /// field paths, for errors.
    pub fields: SourceFields,
    /// The kinds its Rego reads through `data.inventory`, from the
    /// `metadata.gatekeeper.sh/requires-sync-data` annotation.
    pub sync: Vec<SyncKind>,
    /// `metadata.gatekeeper.sh/title` and `description`, as the library
    /// annotates its templates, for people.
    pub title: Option<String>,
    pub description: Option<String>,
}

/// The field paths of a template's code.
#[derive(Clone, Debug, Default)]
pub struct SourceFields {
    pub rego: String,
    pub libs: Vec<String>,
    pub cel: String,
}

/// One kind a template needs in `data.inventory`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl SyncKind {
    /// Whether it is Secrets, which paved never lists: their lists would hold
    /// every Secret of the cluster in paved's memory.
    pub fn is_secret(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }

    /// Its resource, as RBAC rules name it (`configmaps`).
    pub fn resource(&self) -> String {
        paved_cel::vap::resource_of(&self.kind)
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

const SYNC_ANNOTATION: &str = "metadata.gatekeeper.sh/requires-sync-data";

/// The annotation holds a JSON list of requirements, each a list of
/// alternatives `{groups, versions, kinds}`, the whole wrapped in quotes as
/// Gatekeeper writes it. paved syncs every kind any alternative names.
fn sync_requirements(doc: &Value, invalid: impl Fn(&str) -> TemplateError) -> Result<Vec<SyncKind>, TemplateError> {
    let Some(text) = doc.pointer("/metadata/annotations").and_then(|a| a.get(SYNC_ANNOTATION)).and_then(Value::as_str)
    else {
        return Ok(Vec::new());
    };
    let text = text.trim();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    let bad = |e: &dyn std::fmt::Display| invalid(&format!("annotation {SYNC_ANNOTATION}: {e}"));
    let requirements: Vec<Vec<Value>> = serde_json::from_str(text).map_err(|e| bad(&e))?;
    let mut kinds = Vec::new();
    for alternative in requirements.iter().flatten() {
        let list = |k: &str| -> Result<Vec<String>, TemplateError> {
            match alternative.get(k) {
                None => Ok(Vec::new()),
                Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad(&format!("{k}: {e}"))),
            }
        };
        let (groups, versions) = (list("groups")?, list("versions")?);
        for kind in list("kinds")? {
            for group in &groups {
                for version in &versions {
                    kinds.push(SyncKind { group: group.clone(), version: version.clone(), kind: kind.clone() });
                }
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

impl Template {
    pub fn from_json(doc: &Value) -> Result<Template, TemplateError> {
        let api_version = str_at(doc, &["apiVersion"]).unwrap_or("");
        if str_at(doc, &["kind"]) != Some("ConstraintTemplate") || !api_version.starts_with("templates.gatekeeper.sh/")
        {
            return Err(TemplateError::NotATemplate(format!(
                "{api_version} {}",
                str_at(doc, &["kind"]).unwrap_or("(no kind)")
            )));
        }
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_owned();
        let invalid = |message: &str| TemplateError::Invalid { name: name.clone(), message: message.to_owned() };
        let kind = str_at(doc, &["spec", "crd", "spec", "names", "kind"])
            .ok_or_else(|| invalid("spec.crd.spec.names.kind is missing"))?
            .to_owned();
        let targets =
            doc.pointer("/spec/targets").and_then(Value::as_array).ok_or_else(|| invalid("no spec.targets"))?;
        let (t, target) = targets
            .iter()
            .enumerate()
            .find(|(_, t)| str_at(t, &["target"]) == Some("admission.k8s.gatekeeper.sh"))
            .ok_or_else(|| invalid("no target admission.k8s.gatekeeper.sh"))?;
        // `(field, text)` of each string of a list.
        let strings = |v: Option<&Value>, field: &str| -> Vec<(String, String)> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .enumerate()
                        .filter_map(|(i, l)| Some((format!("{field}[{i}]"), l.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        // Either the classic `rego`/`libs`, or `code[]` with an engine each.
        let mut fields = SourceFields { rego: format!("spec.targets[{t}].rego"), ..SourceFields::default() };
        let mut rego = str_at(target, &["rego"]).map(str::to_owned);
        let mut libs = strings(target.get("libs"), &format!("spec.targets[{t}].libs"));
        let mut cel = None;
        for (c, code) in target.get("code").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let source = format!("spec.targets[{t}].code[{c}].source");
            match str_at(code, &["engine"]) {
                Some("Rego") if rego.is_none() => {
                    rego = str_at(code, &["source", "rego"]).map(str::to_owned);
                    libs.extend(strings(code.pointer("/source/libs"), &format!("{source}.libs")));
                    fields.rego = format!("{source}.rego");
                }
                Some("K8sNativeValidation") => {
                    cel = code.get("source").cloned();
                    fields.cel = source;
                }
                _ => {}
            }
        }
        let (lib_fields, libs): (Vec<String>, Vec<String>) = libs.into_iter().unzip();
        fields.libs = lib_fields;
        let rego = rego.ok_or_else(|| invalid("no Rego source (spec.targets[].rego or code[engine=Rego])"))?;
        if rego.len() + libs.iter().map(String::len).sum::<usize>() > MAX_TEMPLATE_BYTES {
            return Err(invalid("Rego source larger than 1 MiB"));
        }
        let sync = sync_requirements(doc, invalid)?;
        let annotation = |key: &str| {
            let text = doc.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)?;
            Some(text.trim().to_owned()).filter(|t| !t.is_empty())
        };
        let (title, description) = (annotation("metadata.gatekeeper.sh/title"), annotation("description"));
        Ok(Template { name, kind, rego, libs, cel, fields, sync, title, description })
    }
}

/// A template compiled once, evaluated many times, with the engine chosen.
pub struct Compiled {
    pub template: Template,
    code: Code,
}

enum Code {
    Rego(Box<Rego>),
    Cel(paved_cel::Validator),
}

/// Rego compiled once: to a program for regorus's virtual machine, or,
/// when the compiler cannot take it, into regorus's interpreter.
struct Rego {
    /// `data.<package>.violation`.
    rule: String,
    /// What every runner of this template is made from.
    prototype: Prototype,
    /// Runners not in use, each with the generation of the inventory loaded
    /// into it. An evaluation takes one, or makes one when all are busy, and
    /// puts it back: concurrent admissions under one template do not wait for
    /// each other, and there are never more runners than evaluations that
    /// once ran at the same time (the server's worker threads).
    idle: Mutex<Vec<(Runner, u64)>>,
}

/// The compiled template, shared by its runners: making another is cheap.
enum Prototype {
    Vm { policy: regorus::CompiledPolicy, program: Arc<regorus::rvm::Program> },
    Interpreter(Box<regorus::Engine>),
}

enum Runner {
    Vm(Box<regorus::rvm::RegoVM>),
    Interpreter(Box<regorus::Engine>),
}

impl Prototype {
    fn runner(&self) -> Runner {
        match self {
            Prototype::Vm { policy, program } => {
                let mut vm = regorus::rvm::RegoVM::new_with_policy(policy.clone());
                vm.load_program(Arc::clone(program));
                vm.set_max_instructions(MAX_VM_INSTRUCTIONS);
                vm.set_execution_timer_config(Some(time_limit()));
                Runner::Vm(Box::new(vm))
            }
            Prototype::Interpreter(engine) => Runner::Interpreter(engine.clone()),
        }
    }
}

/// The most instructions one evaluation may execute on the virtual machine;
/// with [`EVAL_TIME_LIMIT`], what keeps a hostile policy from running long.
pub const MAX_VM_INSTRUCTIONS: usize = 50_000_000;

impl Compiled {
    /// Compiles the code `engine` names: CEL when asked and the template has
    /// it, Rego otherwise.
    pub fn new(template: Template, engine: Engine) -> Result<Compiled, TemplateError> {
        let code = match (&template.cel, engine) {
            (Some(source), Engine::Cel) => {
                Code::Cel(paved_cel::Validator::compile(source, &CEL_PRELUDE, &template.fields.cel).map_err(
                    |errors| TemplateError::CompileCel {
                        name: template.name.clone(),
                        message: errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                        at: errors.first().map(|e| SourceAt { field: e.field.clone(), within: e.at }),
                    },
                )?)
            }
            _ => Code::Rego(Box::new(Rego::new(&template)?)),
        };
        Ok(Compiled { template, code })
    }

    /// Whether its Rego runs on regorus's virtual machine (else on the
    /// interpreter, for code the virtual machine's compiler does not take).
    pub fn on_virtual_machine(&self) -> bool {
        match &self.code {
            Code::Rego(rego) => matches!(rego.prototype, Prototype::Vm { .. }),
            Code::Cel(_) => false,
        }
    }

    /// The template's CEL, when that is what runs it.
    pub fn cel(&self) -> Option<&paved_cel::Validator> {
        match &self.code {
            Code::Cel(validator) => Some(validator),
            Code::Rego(_) => None,
        }
    }

    /// Which engine runs this template.
    pub fn engine(&self) -> Engine {
        match self.code {
            Code::Rego(_) => Engine::Rego,
            Code::Cel(_) => Engine::Cel,
        }
    }

    /// Judges one review under one constraint.
    pub fn violations(
        &self,
        review: &crate::suite::Review,
        constraint: &crate::constraint::Constraint,
        inventory: &crate::suite::Inventory,
    ) -> Result<Vec<Violation>, EvalError> {
        match &self.code {
            Code::Rego(rego) => rego.violations(&self.template.name, review.input(), &constraint.parameters, inventory),
            Code::Cel(validator) => {
                let outcome = validator.evaluate(review.activation(), &constraint.cel_params);
                if let Some(error) = outcome.errors.first() {
                    return Err(EvalError { template: self.template.name.clone(), message: error.to_string() });
                }
                let mut out: Vec<Violation> =
                    outcome.failures.into_iter().map(|f| Violation { msg: f.message }).collect();
                out.sort_by(|a, b| a.msg.cmp(&b.msg));
                Ok(out)
            }
        }
    }
}

impl Rego {
    fn new(template: &Template) -> Result<Rego, TemplateError> {
        // The code with assignments guarded (see `guard_assignments`), which
        // the interpreter reads alike; if guarding broke it, as written.
        let guarded = |s| guard_assignments(&as_opa_reads_it(s)).into();
        let (mut engine, rule) =
            Rego::compile(template, guarded).or_else(|_| Rego::compile(template, as_opa_reads_it)).map_err(|e| {
                // Positions are reported in the text as written: paved's
                // rewrites for OPA's reading can move lines, so the error is
                // looked for again in the original (an error in a rewrite
                // keeps no position).
                let (message, at) = match Rego::compile(template, |s| s.into()) {
                    Err(original) => parse_rego_error(template, &original),
                    Ok(_) => (e, None),
                };
                TemplateError::Compile { name: template.name.clone(), message, at }
            })?;
        // The virtual machine runs the same policy several times faster; a
        // template its compiler does not take stays with the interpreter.
        let prototype = match Rego::compile_vm(&mut engine, &rule) {
            Some((policy, program)) => Prototype::Vm { policy, program },
            None => Prototype::Interpreter(Box::new(engine)),
        };
        let first = prototype.runner();
        Ok(Rego { rule, prototype, idle: Mutex::new(vec![(first, u64::MAX)]) })
    }

    /// The engine's policy as a program for the virtual machine.
    fn compile_vm(
        engine: &mut regorus::Engine,
        rule: &str,
    ) -> Option<(regorus::CompiledPolicy, Arc<regorus::rvm::Program>)> {
        let policy = engine.compile_with_entrypoint(&rule.into()).ok()?;
        let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[rule]).ok()?;
        Some((policy, program))
    }

    /// An engine holding the template's code as `rewrite` makes it, and
    /// the rule to evaluate, or regorus's error.
    fn compile<'t>(
        template: &'t Template,
        rewrite: impl Fn(&'t str) -> std::borrow::Cow<'t, str>,
    ) -> Result<(regorus::Engine, String), String> {
        let mut engine = regorus::Engine::new();
        // Gatekeeper's templates are Rego v0 (rules without `if`).
        engine.set_rego_v0(true);
        engine.set_execution_timer_config(time_limit());
        let package = engine
            .add_policy(format!("{}.rego", template.name), rewrite(&template.rego).into_owned())
            .map_err(|e| e.to_string())?;
        for (i, lib) in template.libs.iter().enumerate() {
            engine
                .add_policy(format!("{}.lib{i}.rego", template.name), rewrite(lib).into_owned())
                .map_err(|e| e.to_string())?;
        }
        let rule = format!("{package}.violation");
        // Prepare now, so that errors in rules show at load rather than at the first object.
        engine.set_input(regorus::Value::from(json!({"review": {}, "parameters": {}})));
        engine.eval_rule(rule.clone()).map_err(|e| e.to_string())?;
        Ok((engine, rule))
    }

    /// Evaluates one review (`input.review`, prepared once per object) with
    /// the constraint's parameters and the inventory (`data.inventory`).
    fn violations(
        &self,
        template: &str,
        review: &regorus::Value,
        parameters: &regorus::Value,
        inventory: &crate::suite::Inventory,
    ) -> Result<Vec<Violation>, EvalError> {
        let err = |message: String| EvalError { template: template.to_owned(), message };
        let mut input = regorus::Value::new_object();
        // Values share their storage: these clones are reference counts.
        if let Ok(map) = input.as_object_mut() {
            map.insert(regorus::Value::from("review"), review.clone());
            map.insert(regorus::Value::from("parameters"), parameters.clone());
        }
        // A runner lost to a panic is simply not put back.
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let (mut runner, loaded) = taken.unwrap_or_else(|| (self.prototype.runner(), u64::MAX));
        let stale = loaded != inventory.generation();
        let data = || regorus::Value::from(json!({"inventory": inventory.doc()}));
        let result = match &mut runner {
            Runner::Vm(vm) => {
                if stale {
                    vm.set_data(data()).map_err(|e| err(e.to_string()))?;
                }
                vm.set_input(input);
                vm.execute().map_err(|e| err(e.to_string()))
            }
            Runner::Interpreter(engine) => {
                if stale {
                    engine.clear_data();
                    engine.add_data(data()).map_err(|e| err(e.to_string()))?;
                }
                engine.set_input(input);
                engine.eval_rule(self.rule.clone()).map_err(|e| err(e.to_string()))
            }
        };
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((runner, inventory.generation()));
        }
        let result = result?;
        let Ok(set) = result.as_set() else { return Ok(Vec::new()) };
        let msg_key = regorus::Value::from("msg");
        let mut out: Vec<Violation> = set
            .iter()
            .map(|v| {
                let msg = v.as_object().ok().and_then(|o| o.get(&msg_key)).and_then(|m| m.as_string().ok());
                Violation { msg: msg.map(|m| m.to_string()).unwrap_or_default() }
            })
            .collect();
        out.sort_by(|a, b| a.msg.cmp(&b.msg));
        Ok(out)
    }
}

/// [`EVAL_TIME_LIMIT`] per evaluation, for the interpreter and the VM alike.
fn time_limit() -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit: EVAL_TIME_LIMIT,
        // Reading the clock at every step would cost more than the step.
        check_interval: NonZeroU32::new(256).unwrap_or(NonZeroU32::MIN),
    }
}

/// regorus's virtual machine (0.14) lets a body go on past an assignment
/// whose value is undefined (`t := input.nothing`), where OPA and regorus's
/// interpreter stop: then `not f(t)` holds and reports a violation OPA does
/// not. Each assignment of a name that stands complete on its line is
/// followed, on the same line, by `; _ = name`, which an undefined `name`
/// fails; lines keep their numbers. The interpreter reads the guarded code
/// as it reads the original.
pub fn guard_assignments(rego: &str) -> String {
    let mut out = String::with_capacity(rego.len() + 256);
    // Brackets open before the line: at 0 an assignment is a rule of its own.
    let mut depth = 0i32;
    // The head of the rule the line is in: a name it binds (`f(x) = out {`)
    // is its value, which the compiler reads only at the end of the body.
    let mut head = "";
    for line in rego.split_inclusive('\n') {
        let Some(scan) = scan_line(line) else {
            // A string runs on past the line: leave the rest as it is.
            out.push_str(line);
            depth = i32::MIN;
            continue;
        };
        if depth == 0 {
            head = line;
        }
        let in_head = |name: &str| head.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == name);
        match assigned_name(line, &scan).filter(|name| depth > 0 && scan.depth == 0 && !in_head(name)) {
            Some(name) => {
                let (code, rest) = line.split_at(scan.code_end);
                out.push_str(&format!("{code}; _ = {name}{rest}"));
            }
            None => out.push_str(line),
        }
        depth = depth.saturating_add(scan.depth);
    }
    out
}

/// One line of Rego: where its code ends (before a comment or trailing
/// space), and how many brackets it leaves open. `None` when a string does
/// not close on it.
struct LineScan {
    code_end: usize,
    depth: i32,
}

fn scan_line(line: &str) -> Option<LineScan> {
    let (mut depth, mut end, mut chars) = (0i32, line.len(), line.char_indices());
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => loop {
                match chars.next()? {
                    (_, '\\') => _ = chars.next(),
                    (_, '"') => break,
                    _ => {}
                }
            },
            '`' => while chars.next()?.1 != '`' {},
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '#' => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    Some(LineScan { code_end: line[..end].trim_end().len(), depth })
}

/// `name` when the line is `name := value`, complete.
fn assigned_name<'l>(line: &'l str, scan: &LineScan) -> Option<&'l str> {
    let code = line[..scan.code_end].trim_start();
    let name_len = code.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let name = &code[..name_len];
    if name.is_empty() || name == "_" || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let value = code[name_len..].trim_start().strip_prefix(":=")?.trim_start();
    let continues = value.ends_with(['+', '-', '*', '/', '|', '&', ',', '=', '<', '>']);
    (!value.is_empty() && !continues).then_some(name)
}

/// Four places where regorus reads Gatekeeper's Rego v0 differently from
/// OPA, which Gatekeeper runs, mended in the source before regorus sees it.
pub fn as_opa_reads_it(rego: &str) -> std::borrow::Cow<'_, str> {
    hoist_negated_call_args(&split_bodies(&end_expressions_at_newlines(&regex_as_re2(rego)))).into()
}

/// The regex builtins, and which argument is the pattern.
const REGEX_CALLS: &[(&str, usize)] = &[
    ("regex.match", 0),
    ("re_match", 0),
    ("regex.is_valid", 0),
    ("regex.split", 0),
    ("regex.find_n", 0),
    ("regex.find_all_string_submatch_n", 0),
    ("regex.replace", 1),
];

/// OPA's regexes are Go's RE2, where `\d`, `\w`, `\s` and `\b` are ASCII:
/// `\d` is `[0-9]`, `\s` is `[\t\n\f\r ]`. regorus's are Rust's, where they
/// are Unicode: `^\d+$` accepts Arabic-Indic digits and `\s` a no-break
/// space, so a policy that validates a name, a port or a tag with them
/// accepts what Gatekeeper refuses. Each pattern argument of a regex builtin
/// is wrapped in `replace` calls that spell those classes out in ASCII
/// (escaped backslashes kept apart first), which the virtual machine runs
/// like any builtin. Columns after a wrapped pattern move; lines do not.
pub fn regex_as_re2(rego: &str) -> std::borrow::Cow<'_, str> {
    let bytes = rego.as_bytes();
    // (where the pattern argument starts, where it ends)
    let mut wraps: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => i = comment_end(bytes, i),
            b'"' | b'`' => i = string_end(bytes, i) + 1,
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
                let name = &rego[start..i];
                let after_dot = start > 0 && bytes[start - 1] == b'.';
                if let (Some((_, argument)), false, Some(b'(')) =
                    (REGEX_CALLS.iter().find(|(n, _)| *n == name), after_dot, bytes.get(i))
                    && let Some(span) = argument_span(bytes, i, *argument)
                {
                    wraps.push(span);
                }
            }
            _ => i += 1,
        }
    }
    if wraps.is_empty() {
        return rego.into();
    }
    // In text order, and none inside another (a regex call in a pattern:
    // the outer pattern is wrapped whole).
    wraps.sort_unstable();
    let mut end_of_last = 0;
    wraps.retain(|&(start, end)| {
        let keep = start >= end_of_last;
        if keep {
            end_of_last = end;
        }
        keep
    });
    // `\\` first, to a placeholder, so that `\\d` (a backslash, then d) stays as written.
    const CLASSES: [(&str, &str); 8] = [
        (r#""\\d""#, r#""[0-9]""#),
        (r#""\\D""#, r#""[^0-9]""#),
        (r#""\\w""#, r#""[0-9A-Za-z_]""#),
        (r#""\\W""#, r#""[^0-9A-Za-z_]""#),
        (r#""\\s""#, r#""[\\t\\n\\f\\r ]""#),
        (r#""\\S""#, r#""[^\\t\\n\\f\\r ]""#),
        (r#""\\b""#, r#""(?-u:\\b)""#),
        (r#""\\B""#, r#""(?-u:\\B)""#),
    ];
    let opening = format!("replace({}", "replace(".repeat(CLASSES.len() + 1));
    let mut closing = String::from(r#", "\\\\", "\u0000")"#);
    for (from, to) in CLASSES {
        closing.push_str(&format!(", {from}, {to})"));
    }
    closing.push_str(r#", "\u0000", "\\\\")"#);
    let mut out = String::with_capacity(rego.len() + wraps.len() * (opening.len() + closing.len()));
    let mut from = 0;
    for (start, end) in wraps {
        out.push_str(&rego[from..start]);
        out.push_str(&opening);
        out.push_str(&rego[start..end]);
        out.push_str(&closing);
        from = end;
    }
    out.push_str(&rego[from..]);
    out.into()
}

/// The span of argument `index` of the call whose `(` is at `open`, without
/// its surrounding blanks; `None` when the call has fewer arguments or an
/// argument spans lines (left as regorus reads it rather than moved).
fn argument_span(bytes: &[u8], open: usize, index: usize) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut argument = 0;
    let mut start = open + 1;
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' => i = string_end(bytes, i),
            b'\n' | b'#' => return None,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b',' | b')' if depth == 0 => {
                if argument == index {
                    let text = std::str::from_utf8(&bytes[start..i]).ok()?;
                    let lead = text.len() - text.trim_start().len();
                    let trimmed = text.trim();
                    return (!trimmed.is_empty()).then_some((start + lead, start + lead + trimmed.len()));
                }
                if bytes[i] == b')' {
                    return None;
                }
                argument += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// In a rule body OPA ends an expression at the end of its line: a
/// reference at the end of one line and `(` at the start of the next are
/// two expressions, the second in parentheses, never a call. regorus reads
/// them as a call (it already splits `[` and `.` at a newline). So where a
/// line inside braces ends in a term and the next code starts with `(`, a
/// `;` (OPA's and regorus's separator of expressions) ends the line's
/// expression. Nothing moves: lines and columns stay as written.
pub fn end_expressions_at_newlines(rego: &str) -> std::borrow::Cow<'_, str> {
    let bytes = rego.as_bytes();
    let mut inserts: Vec<usize> = Vec::new();
    let mut stack: Vec<u8> = Vec::new();
    // The last code byte of the current line, and where it ends.
    let mut last_code: Option<u8> = None;
    let mut last_end = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                i = comment_end(bytes, i);
                continue;
            }
            b'"' | b'`' => {
                i = string_end(bytes, i);
                (last_code, last_end) = (Some(b), i + 1);
            }
            b'(' | b'[' | b'{' => {
                stack.push(b);
                (last_code, last_end) = (Some(b), i + 1);
            }
            b')' | b']' | b'}' => {
                stack.pop();
                (last_code, last_end) = (Some(b), i + 1);
            }
            b'\n' => {
                let ends_term = last_code.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b']');
                if ends_term && stack.last() == Some(&b'{') && next_code(bytes, i + 1) == Some(b'(') {
                    // Right after the term, before any comment.
                    inserts.push(last_end);
                }
                last_code = None;
            }
            b' ' | b'\t' | b'\r' => {}
            other => (last_code, last_end) = (Some(other), i + 1),
        }
        i += 1;
    }
    if inserts.is_empty() {
        return rego.into();
    }
    let mut out = String::with_capacity(rego.len() + inserts.len());
    let mut from = 0;
    for at in inserts {
        out.push_str(&rego[from..at]);
        out.push(';');
        from = at;
    }
    out.push_str(&rego[from..]);
    out.into()
}

/// The first byte of code from `i` on: blanks, newlines and comments skipped.
fn next_code(bytes: &[u8], mut i: usize) -> Option<u8> {
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => i = comment_end(bytes, i),
            other => return Some(other),
        }
    }
    None
}

/// From a `#` at `i`, where its comment ends: the newline, or the end.
fn comment_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |p| i + p)
}

/// From an opening `"` or `` ` `` at `i`, its closing one (or the end):
/// a `"` string has escapes, a raw string none.
fn string_end(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() && bytes[j] != quote {
        j += if quote == b'"' && bytes[j] == b'\\' { 2 } else { 1 };
    }
    j.min(bytes.len())
}

/// regorus reports `--> <file>:<line>:<col>`, the offending line, a caret,
/// and `error: <what>`. The file names which of the template's texts
/// (`<name>.rego`, `<name>.lib<i>.rego`); the message keeps the `what`.
fn parse_rego_error(template: &Template, error: &str) -> (String, Option<SourceAt>) {
    let what = error.rsplit_once("error: ").map_or(error, |(_, what)| what).trim().to_owned();
    let location = error.split_once("--> ").and_then(|(_, rest)| {
        let first = rest.lines().next()?;
        let mut parts = first.rsplitn(3, ':');
        let col = parts.next()?.trim().parse::<u32>().ok()?;
        let line = parts.next()?.parse::<u32>().ok()?;
        let file = parts.next()?.strip_prefix(template.name.as_str())?;
        let field = match file {
            ".rego" => template.fields.rego.clone(),
            lib => {
                let i = lib.strip_prefix(".lib")?.strip_suffix(".rego")?.parse::<usize>().ok()?;
                template.fields.libs.get(i)?.clone()
            }
        };
        Some(SourceAt { field, within: Some((line, col)) })
    });
    match location {
        Some(at) => (what, Some(at)),
        None => (error.trim().to_owned(), None),
    }
}

/// OPA evaluates the arguments of a negated call before the negation:
/// `not f(params.ranges)` is undefined, not true, when `params.ranges` is
/// undefined (open-policy-agent/opa#1877: OPA rewrites it as
/// `t := params.ranges; not f(t)`). regorus negates the whole line, so
/// policies that rely on OPA's reading (PSP users and groups with
/// `RunAsAny`) report violations Gatekeeper does not. Each such statement,
/// when it stands alone on its line, gets its reference and call arguments
/// hoisted onto lines of their own, as OPA's compiler does.
pub fn hoist_negated_call_args(rego: &str) -> String {
    let mut out = String::with_capacity(rego.len() + 64);
    let mut fresh = 0usize;
    for line in rego.split_inclusive('\n') {
        match hoist_line(line, &mut fresh) {
            Some(rewritten) => out.push_str(&rewritten),
            None => out.push_str(line),
        }
    }
    out
}

fn hoist_line(line: &str, fresh: &mut usize) -> Option<String> {
    let indent_len = line.len() - line.trim_start().len();
    let (indent, rest) = line.split_at(indent_len);
    let call = rest.strip_prefix("not ")?.trim_start();
    let newline = if call.ends_with('\n') { "\n" } else { "" };
    let call = call.trim_end();
    let open = call.find('(')?;
    let name = &call[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
        return None;
    }
    let args = split_args(call.get(open + 1..)?.strip_suffix(')')?)?;
    let needs_hoist = |a: &str| {
        let first = a.chars().next().unwrap_or(' ');
        (first.is_ascii_alphabetic() || first == '_') && a.contains(['.', '[', '('])
    };
    if !args.iter().any(|a| needs_hoist(a)) {
        return None;
    }
    let mut out = String::new();
    let mut new_args = Vec::with_capacity(args.len());
    for arg in args {
        if needs_hoist(arg) {
            *fresh += 1;
            let var = format!("__paved_not_arg_{fresh}");
            out.push_str(&format!("{indent}{var} := {arg}\n"));
            new_args.push(var);
        } else {
            new_args.push(arg.to_owned());
        }
    }
    out.push_str(&format!("{indent}not {name}({}){newline}", new_args.join(", ")));
    Some(out)
}

/// Splits call arguments at top-level commas; `None` when the parentheses do
/// not close exactly at the end (the call is part of a larger expression),
/// or a comment or string makes the line ambiguous.
fn split_args(inner: &str) -> Option<Vec<&str>> {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            '"' | '`' | '#' => return None,
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    let last = inner[start..].trim();
    if !last.is_empty() {
        args.push(last);
    }
    Some(args)
}

/// Rego v0 lets one head carry several bodies, `head { a } { b }`, meaning
/// `head { a }` or `head { b }`. regorus reads the second body as an `else`
/// (and refuses it on set rules), so each extra body gets its own copy of the
/// head. Everything else is left byte for byte: strings, raw strings and
/// comments are skipped, and only braces at the top level count.
pub fn split_bodies(rego: &str) -> std::borrow::Cow<'_, str> {
    let bytes = rego.as_bytes();
    let mut out: Option<String> = None;
    let mut depth = 0usize;
    let mut head_start: Option<usize> = None;
    let mut head: Option<&str> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut line_start = true;
    let mut literal = false;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                i = comment_end(bytes, i);
                continue;
            }
            b'"' | b'`' => i = string_end(bytes, i),
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'{' => {
                if depth == 0 {
                    let before = head_start.map(|s| rego[s..i].trim_end());
                    // `f(x) = {"a": x} { … }`: the first brace is the value, not a body.
                    literal = before.is_some_and(|h| h.ends_with('='));
                    if head.is_none() && !literal {
                        head = before;
                    }
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && std::mem::take(&mut literal) {
                    // The value's closing brace: what follows is the first body.
                } else if depth == 0 {
                    let mut j = i + 1;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if j < bytes.len()
                        && bytes[j] == b'{'
                        && let Some(h) = head.filter(|h| !h.starts_with("default "))
                    {
                        let o = out.get_or_insert_with(|| String::with_capacity(rego.len() + 256));
                        o.push_str(&rego[copied..=i]);
                        o.push('\n');
                        o.push_str(h);
                        o.push(' ');
                        copied = j;
                        i = j;
                        continue;
                    }
                }
            }
            _ => {}
        }
        if depth == 0 && line_start && !b.is_ascii_whitespace() {
            // A new top-level statement (rule, package, import) starts here.
            head_start = Some(i);
            head = None;
        }
        if b == b'\n' {
            line_start = depth == 0;
        } else if !b.is_ascii_whitespace() {
            line_start = false;
        }
        i += 1;
    }
    match out {
        None => std::borrow::Cow::Borrowed(rego),
        Some(mut o) => {
            o.push_str(&rego[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Code, Compiled, Engine, Template, end_expressions_at_newlines, guard_assignments, hoist_negated_call_args,
        split_bodies,
    };
    use crate::constraint::Constraint;
    use crate::suite::{Inventory, Review};
    use serde_json::json;

    fn compiled(rego: &str) -> Compiled {
        let doc = json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "k8sbusy"},
            "spec": {"crd": {"spec": {"names": {"kind": "K8sBusy"}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]},
        });
        Compiled::new(Template::from_json(&doc).expect("template"), Engine::Rego).expect("compiles")
    }

    /// While one evaluation holds a template's runner, another under the same
    /// template runs on a runner of its own instead of waiting, and gives the
    /// same verdict; both runners are kept for the next evaluations.
    #[test]
    fn an_evaluation_does_not_wait_for_a_busy_runner() {
        let vm = "package k8sbusy\nviolation[{\"msg\": msg}] {\n  input.review.object.metadata.name == \"bad\"\n  msg := sprintf(\"%v is bad\", [input.parameters.who])\n}\n";
        // `with` is not compiled for the virtual machine: the interpreter runs it.
        let interpreted = "package k8sbusy\nviolation[{\"msg\": msg}] {\n  input.review.object.metadata.name == \"bad\" with input.x as 1\n  msg := sprintf(\"%v is bad\", [input.parameters.who])\n}\n";
        let constraint = Constraint::from_json(&json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sBusy",
            "metadata": {"name": "c"}, "spec": {"parameters": {"who": "it"}},
        }))
        .expect("constraint");
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}});
        let inventory = Inventory::new(Vec::new());
        for (rego, on_vm) in [(vm, true), (interpreted, false)] {
            let template = compiled(rego);
            assert_eq!(template.on_virtual_machine(), on_vm);
            let Code::Rego(code) = &template.code else { panic!("Rego") };
            let busy = code.idle.lock().expect("pool").pop().expect("a first runner");
            let found = template.violations(&Review::of(&bad), &constraint, &inventory).expect("evaluates");
            assert_eq!(found.iter().map(|v| v.msg.as_str()).collect::<Vec<_>>(), ["it is bad"]);
            code.idle.lock().expect("pool").push(busy);
            assert_eq!(code.idle.lock().expect("pool").len(), 2);
        }
    }

    #[test]
    fn a_reference_at_a_line_end_is_not_called_by_the_next_line() {
        let rego = concat!(
            "package p\n",
            "violation[{\"msg\": msg}] {\n",
            "  name := input.review.object.metadata.name # (a comment)\n",
            "  (count(name) > 5)\n",
            "  ok := count([1,\n",
            "    (2)])\n",
            "  msg := \"long\"\n",
            "}\n",
        );
        // Only the reference's line ends, before its comment; inside
        // brackets a newline is nothing.
        assert_eq!(end_expressions_at_newlines(rego), rego.replacen(".name # ", ".name; # ", 1));
        // Nothing to mend: the text is borrowed as it is.
        assert!(matches!(end_expressions_at_newlines("package p\nx := f(1)\n"), std::borrow::Cow::Borrowed(_)));

        // As OPA reads it: the name is counted, not called.
        let template = compiled(&rego.replace("k8sbusy", "").replace("package p", "package k8sbusy"));
        let constraint = Constraint::from_json(&json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sBusy", "metadata": {"name": "c"},
        }))
        .expect("constraint");
        let inventory = Inventory::new(Vec::new());
        let judge = |name: &str| {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}});
            template.violations(&Review::of(&pod), &constraint, &inventory).expect("evaluates").len()
        };
        assert_eq!((judge("a-long-name"), judge("short")), (1, 0));
    }

    /// Regexes as Go's RE2 reads them (OPA's): `\d`, `\w`, `\s` and `\b`
    /// are ASCII, whether the pattern is written in the template or comes
    /// from the constraint's parameters; the template still runs on the
    /// virtual machine.
    #[test]
    fn regex_classes_are_ascii_as_in_go() {
        let rego = concat!(
            "package k8sbusy\n",
            "violation[{\"msg\": msg}] {\n",
            "  v := input.review.object.metadata.labels[k]\n",
            "  not regex.match(input.parameters.patterns[k], v)\n",
            "  msg := sprintf(\"%v=%v\", [k, v])\n",
            "}\n",
        );
        let template = compiled(rego);
        assert!(template.on_virtual_machine(), "the mend uses builtins the virtual machine has");
        let patterns = json!({
            "digits": r"^\d+$", "word": r"^\w+$", "space": r"^a\sb$", "bound": r"\bx\b",
            "not-digits": r"^\D+$", "literal": r"^\\d$", "class": r"^[\d.]+$",
        });
        let constraint = Constraint::from_json(&json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sBusy",
            "metadata": {"name": "c"}, "spec": {"parameters": {"patterns": patterns}},
        }))
        .expect("constraint");
        let inventory = Inventory::new(Vec::new());
        let refused = |labels: serde_json::Value| {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": labels}});
            let mut found: Vec<String> = template
                .violations(&Review::of(&pod), &constraint, &inventory)
                .expect("evaluates")
                .into_iter()
                .map(|v| v.msg)
                .collect();
            found.sort();
            found
        };
        // A regex call inside another's arguments: patterns wrapped once each, in
        // text order; one inside a wrapped pattern (split's "b") is left as written.
        let nested = "x := regex.replace(regex.match(\"a\", s), regex.split(\"b\", t), u)\ny := regex.match(regex.replace(\"c\", \"d\", v), w)\n";
        let wrapped = super::regex_as_re2(nested);
        assert_eq!(wrapped.matches("\"\\u0000\", \"\\\\\\\\\")").count(), 3, "{wrapped}");
        // What Go accepts, regorus accepts.
        let ascii = json!({"digits": "123", "word": "a_1", "space": "a b", "bound": "a x b",
                           "not-digits": "abc", "literal": r"\d", "class": "1.2"});
        assert_eq!(refused(ascii), Vec::<String>::new());
        // What Go refuses (Unicode digits, letters and spaces), regorus refuses; `é` is no
        // word character to Go, so `x` in `éxé` stands between word boundaries.
        let unicode = json!({"digits": "١٢٣", "word": "né", "space": "a\u{a0}b", "bound": "éxé",
                             "not-digits": "a١", "literal": "1", "class": "١"});
        assert_eq!(
            refused(unicode),
            ["class=١", "digits=١٢٣", "literal=1", "space=a\u{a0}b", "word=né"],
            "`\\D` matches a non-ASCII digit, as in Go"
        );
    }

    #[test]
    fn assignments_in_bodies_are_guarded_on_their_own_line() {
        let rego = concat!(
            "package p\n",
            "limit := 3\n",
            "f(x) = out {\n",
            "  t := x.a # the \"a\" field\n",
            "  out := t\n",
            "  m := {\n",
            "    \"k\": t,\n",
            "  }\n",
            "  s := \"#{\"\n",
            "  n := t +\n",
            "    1\n",
            "}\n",
        );
        assert_eq!(
            guard_assignments(rego),
            concat!(
                "package p\n",
                // A rule of its own, at the top level: left alone.
                "limit := 3\n",
                "f(x) = out {\n",
                // Before the comment, on the same line.
                "  t := x.a; _ = t # the \"a\" field\n",
                // The head's value: left alone.
                "  out := t\n",
                // Values that go on past the line: left alone.
                "  m := {\n",
                "    \"k\": t,\n",
                "  }\n",
                "  s := \"#{\"; _ = s\n",
                "  n := t +\n",
                "    1\n",
                "}\n",
            )
        );
    }

    #[test]
    fn negated_calls_evaluate_their_arguments_first() {
        let rego = "p {\n    not accept(rule, v, params.ranges)\n    not q(x)\n}\n";
        assert_eq!(
            hoist_negated_call_args(rego),
            "p {\n    __paved_not_arg_1 := params.ranges\n    not accept(rule, v, __paved_not_arg_1)\n    not q(x)\n}\n"
        );
        // Part of a larger expression, or a string argument: left as written.
        for untouched in ["    not f(a.b) == 1\n", "    not f(\"a.b\", x.y)\n", "    not x.y\n"] {
            assert_eq!(hoist_negated_call_args(untouched), untouched);
        }
    }

    #[test]
    fn extra_bodies_get_their_own_head() {
        let rego = "package p\n\nviolation[{\"msg\": m}] {\n  m := \"a { b\"\n} {\n  m := \"c\"\n}\n";
        assert_eq!(
            split_bodies(rego),
            "package p\n\nviolation[{\"msg\": m}] {\n  m := \"a { b\"\n}\nviolation[{\"msg\": m}] {\n  m := \"c\"\n}\n"
        );
        let f = "f(x) = y {\n  y := 1 # } {\n} {\n  y := 2\n}\n";
        assert_eq!(split_bodies(f), "f(x) = y {\n  y := 1 # } {\n}\nf(x) = y {\n  y := 2\n}\n");
        // An object value in the head is not a body.
        let g = "g(x) = {\"a\": x} {\n  x > 1\n} {\n  x < 0\n}\n";
        assert_eq!(split_bodies(g), "g(x) = {\"a\": x} {\n  x > 1\n}\ng(x) = {\"a\": x} {\n  x < 0\n}\n");
    }

    #[test]
    fn else_chains_and_plain_rules_are_untouched() {
        for rego in [
            "a = 1 { true } else = 2 { true }\n",
            "b { x := {\"k\": 1}; x.k == 1 }\n",
            "default c = {}\n",
            "h(x) = {\"a\": x} {\n  x > 1\n}\n",
        ] {
            assert!(matches!(split_bodies(rego), std::borrow::Cow::Borrowed(_)), "{rego}");
        }
    }
}
