//! CEL as the API server evaluates it for a ValidatingAdmissionPolicy, and as
//! Gatekeeper does for templates' `K8sNativeValidation` code: match
//! conditions, variables (lazy, each evaluated at most once per object),
//! validations with `message`/`messageExpression`/`reason`, and audit
//! annotations, over `object`, `oldObject`, `request`, `params` and
//! `namespaceObject`.
//!
//! The cel crate parses and interprets; this crate adds what Kubernetes
//! expects around it: the Kubernetes libraries it lacks ([`libs`]), and a cost
//! budget (see [`expr`]) so that no expression runs unbounded. A policy whose
//! expressions all fall in the part of CEL that policies mostly use runs on
//! paved's own evaluator instead (`compiled`), with some four times fewer
//! instructions, and goes back to the interpreter for any object it is not
//! sure of.

mod compiled;
pub mod expr;
pub mod format;
pub mod kyverno;
pub mod kyverno_libs;
pub mod libs;
pub mod net;
pub mod quantity;
pub mod semver;
pub mod shared;
pub mod url;
pub mod vap;

use std::sync::{Arc, OnceLock};

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Value};
use serde_json::Value as Json;

pub use expr::{CompileError, Expression};

/// A problem with one field of a policy: compiling it, or evaluating it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Where in the policy, e.g. `spec.validations[0].expression`.
    pub field: String,
    pub message: String,
    /// The 1-based line and column inside the field's expression, for a
    /// syntax error.
    pub at: Option<(u32, u32)>,
}

impl FieldError {
    fn new(field: String, message: String) -> FieldError {
        FieldError { field, message, at: None }
    }
}

/// A validation that came out false.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    /// `reason`, `Invalid` when the validation names none.
    pub reason: String,
}

/// What a policy made of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// False when a match condition came out false: nothing else ran.
    pub matched: bool,
    pub failures: Vec<Failure>,
    /// Expressions that could not be evaluated; what that means is the
    /// caller's `failurePolicy`.
    pub errors: Vec<FieldError>,
    /// `auditAnnotations`: key and value, for those whose value was not null.
    pub annotations: Vec<(String, String)>,
}

/// The request-wide variables of one object, shared by all the policies
/// that judge it: JSON for paved's evaluator, converted for the interpreter
/// the first time a policy needs it.
pub struct Activation {
    object: Json,
    old_object: Json,
    /// CEL's `request`: the AdmissionRequest without `object` and
    /// `oldObject`, which are variables of their own.
    request: Json,
    namespace_object: Json,
    /// What Kyverno's `resource` and `image` libraries read.
    data: Option<Arc<dyn kyverno_libs::ClusterData>>,
    interpreted: OnceLock<Interpreted>,
}

struct Interpreted {
    object: Box<dyn Val>,
    old_object: Box<dyn Val>,
    request: Box<dyn Val>,
    namespace_object: Box<dyn Val>,
    data: Box<dyn Val>,
}

impl Activation {
    /// `request` is the AdmissionRequest as JSON (`operation`, `userInfo`,
    /// `kind`, …); `object`/`oldObject` are null where the operation has none.
    pub fn new(object: &Json, old_object: &Json, request: &Json, namespace_object: &Json) -> Activation {
        let request = match request {
            Json::Object(fields) => Json::Object(
                fields
                    .iter()
                    .filter(|(k, _)| *k != "object" && *k != "oldObject")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        };
        Activation {
            object: object.clone(),
            old_object: old_object.clone(),
            request,
            namespace_object: namespace_object.clone(),
            data: None,
            interpreted: OnceLock::new(),
        }
    }

    /// What Kyverno's `resource.Get`/`List` and `image.GetMetadata` read.
    pub fn with_data(mut self, data: Arc<dyn kyverno_libs::ClusterData>) -> Activation {
        self.data = Some(data);
        self
    }

    fn interpreted(&self) -> &Interpreted {
        self.interpreted.get_or_init(|| Interpreted {
            object: shared::from_json(&self.object),
            old_object: shared::from_json(&self.old_object),
            request: shared::from_json(&self.request),
            namespace_object: shared::from_json(&self.namespace_object),
            data: kyverno_libs::DataHandle::value(self.data.as_ref()),
        })
    }
}

/// `params`: a binding's parameter object, or a Gatekeeper constraint.
pub struct Params {
    json: Json,
    interpreted: OnceLock<Box<dyn Val>>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Params").field(&self.json).finish()
    }
}

impl Params {
    pub fn new(params: &Json) -> Params {
        Params { json: params.clone(), interpreted: OnceLock::new() }
    }

    pub fn none() -> Params {
        Params::new(&Json::Null)
    }

    fn interpreted(&self) -> &dyn Val {
        &**self.interpreted.get_or_init(|| shared::from_json(&self.json))
    }
}

struct Validation {
    expression: Expression,
    message: Option<String>,
    message_expression: Option<Expression>,
    reason: Option<String>,
}

/// A policy's expressions, compiled once.
pub struct Validator {
    /// `(field, expression)`, in order.
    match_conditions: Vec<(String, Expression)>,
    variables: Vec<(String, Expression)>,
    validations: Vec<Validation>,
    audit_annotations: Vec<(String, Expression)>,
    /// A MutatingAdmissionPolicy's `mutations`: `(field, patch type, expression)`.
    mutations: Vec<(String, PatchType, Expression)>,
    /// Whether every expression has a program for paved's evaluator: only
    /// then does it run the policy.
    compiled: bool,
}

/// How a mutation's expression changes the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// An `Object{…}` merged as server-side apply merges.
    ApplyConfiguration,
    /// A list of `JSONPatch{…}` operations.
    JsonPatch,
}

fn str_at<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Json::as_str)
}

impl Validator {
    /// Compiles a ValidatingAdmissionPolicy's `spec` (or the same shape in a
    /// Gatekeeper template's `K8sNativeValidation` source). `prelude`
    /// variables come first, as `(name, expression)`: Gatekeeper's `params`
    /// and `anyObject`. `prefix` names the spec in errors, e.g. `spec`.
    pub fn compile(spec: &Json, prelude: &[(&str, &str)], prefix: &str) -> Result<Validator, Vec<FieldError>> {
        Validator::compile_in(spec, prelude, prefix, expr::Dialect::Kubernetes)
    }

    /// [`Validator::compile`], in `dialect` (Kyverno's policies are compiled
    /// with Kyverno's libraries).
    pub fn compile_in(
        spec: &Json,
        prelude: &[(&str, &str)],
        prefix: &str,
        dialect: expr::Dialect,
    ) -> Result<Validator, Vec<FieldError>> {
        let mut errors = Vec::new();
        let items = |key: &str| spec.get(key).and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default();
        let mut compile = |field: String, source: Option<&str>, names: &[String]| {
            let Some(source) = source else {
                errors.push(FieldError::new(field, "is required".to_owned()));
                return None;
            };
            Expression::compile_in(source, names, dialect)
                .map_err(|e| errors.push(FieldError { field, message: e.message, at: e.at }))
                .ok()
        };
        // The prelude's variables first, then the spec's: `(field, name, expression)`.
        let declared =
            prelude.iter().map(|(name, source)| (format!("(prelude variable {name})"), Some(*name), Some(*source)));
        let declared = declared.chain(items("variables").iter().enumerate().map(|(i, v)| {
            (format!("{prefix}.variables[{i}]"), str_at(v, "name").filter(|n| !n.is_empty()), str_at(v, "expression"))
        }));
        // The names by variable index, for the next ones to read.
        let mut names: Vec<String> = Vec::new();
        let mut variables = Vec::new();
        for (field, name, source) in declared {
            let Some(name) = name else {
                compile(format!("{field}.name"), None, &names);
                continue;
            };
            let compiled = compile(format!("{field}.expression"), source, &names);
            variables.extend(compiled.map(|e| (name.to_owned(), e)));
            names.push(name.to_owned());
        }
        let mut match_conditions = Vec::new();
        // Kubernetes runs match conditions before variables exist; Kyverno
        // lets them read the variables (its policies rely on it).
        let condition_names: &[String] = if dialect == expr::Dialect::Kyverno { &names } else { &[] };
        for (i, c) in items("matchConditions").iter().enumerate() {
            let field = format!("{prefix}.matchConditions[{i}].expression");
            if let Some(e) = compile(field.clone(), str_at(c, "expression"), condition_names) {
                match_conditions.push((field, e));
            }
        }
        let mut validations = Vec::new();
        for (i, v) in items("validations").iter().enumerate() {
            let field = format!("{prefix}.validations[{i}]");
            let expression = compile(format!("{field}.expression"), str_at(v, "expression"), &names);
            let message_expression = match str_at(v, "messageExpression") {
                Some(source) => compile(format!("{field}.messageExpression"), Some(source), &names),
                None => None,
            };
            if let Some(expression) = expression {
                validations.push(Validation {
                    expression,
                    message: str_at(v, "message").map(str::to_owned),
                    message_expression,
                    reason: str_at(v, "reason").map(str::to_owned),
                });
            }
        }
        let mut audit_annotations = Vec::new();
        for (i, a) in items("auditAnnotations").iter().enumerate() {
            let field = format!("{prefix}.auditAnnotations[{i}]");
            let Some(key) = str_at(a, "key") else {
                compile(format!("{field}.key"), None, &names);
                continue;
            };
            if let Some(e) = compile(format!("{field}.valueExpression"), str_at(a, "valueExpression"), &names) {
                audit_annotations.push((key.to_owned(), e));
            }
        }
        let mut mutations = Vec::new();
        let mut bad_types = Vec::new();
        for (i, m) in items("mutations").iter().enumerate() {
            let field = format!("{prefix}.mutations[{i}]");
            let (patch_type, key) = match str_at(m, "patchType") {
                Some("ApplyConfiguration") => (PatchType::ApplyConfiguration, "applyConfiguration"),
                Some("JSONPatch") => (PatchType::JsonPatch, "jsonPatch"),
                other => {
                    bad_types.push(FieldError::new(
                        format!("{field}.patchType"),
                        format!("must be ApplyConfiguration or JSONPatch, not {other:?}"),
                    ));
                    continue;
                }
            };
            let source = m.get(key).and_then(|k| str_at(k, "expression"));
            if let Some(e) = compile(format!("{field}.{key}.expression"), source, &names) {
                mutations.push((format!("{field}.{key}.expression"), patch_type, e));
            }
        }
        errors.extend(bad_types);
        if errors.is_empty() {
            let mut all = match_conditions.iter().chain(&variables).chain(&audit_annotations).map(|(_, e)| e);
            let compiled = all.all(|e| e.program.is_some())
                && validations.iter().all(|v| {
                    v.expression.program.is_some() && v.message_expression.as_ref().is_none_or(|e| e.program.is_some())
                });
            Ok(Validator { match_conditions, variables, validations, audit_annotations, mutations, compiled })
        } else {
            Err(errors)
        }
    }

    /// Whether any expression needs `authorizer` (an API server).
    pub fn uses_authorizer(&self) -> bool {
        self.match_conditions
            .iter()
            .map(|(_, e)| e)
            .chain(self.variables.iter().map(|(_, e)| e))
            .any(|e| e.uses_authorizer)
            || self.validations.iter().any(|v| v.expression.uses_authorizer)
    }

    /// What the expressions read through Kyverno's `resource.Get` and
    /// `resource.List`, as `(apiVersion, resource)`.
    pub fn resource_reads(&self) -> Vec<(String, String)> {
        let mut reads: Vec<(String, String)> = self
            .match_conditions
            .iter()
            .chain(&self.variables)
            .chain(&self.audit_annotations)
            .map(|(_, e)| e)
            .chain(self.validations.iter().flat_map(|v| std::iter::once(&v.expression).chain(&v.message_expression)))
            .flat_map(|e| e.reads.iter().cloned())
            .collect();
        reads.sort();
        reads.dedup();
        reads
    }

    /// Whether paved's own evaluator runs this policy (else the interpreter does).
    pub fn is_compiled(&self) -> bool {
        self.compiled
    }

    /// Judges one object.
    pub fn evaluate(&self, activation: &Activation, params: &Params) -> Outcome {
        if self.compiled
            && let Some(outcome) = self.evaluate_compiled(activation, params)
        {
            return outcome;
        }
        self.evaluate_interpreted(activation, params)
    }

    /// Judges one object with paved's evaluator alone, or `None` when the
    /// policy does not compile to it or this object needs the interpreter.
    #[doc(hidden)]
    pub fn evaluate_without_interpreter(&self, activation: &Activation, params: &Params) -> Option<Outcome> {
        if !self.compiled {
            return None;
        }
        self.evaluate_compiled(activation, params)
    }

    /// Judges one object with paved's evaluator, or `None` when the
    /// interpreter must: an expression ended on an error (whose wording is
    /// the interpreter's), or on something this evaluator is not sure of.
    fn evaluate_compiled(&self, activation: &Activation, params: &Params) -> Option<Outcome> {
        use compiled::{Fail, V};
        expr::start_policy();
        let roots = compiled::Roots {
            object: &activation.object,
            old_object: &activation.old_object,
            request: &activation.request,
            params: &params.json,
            namespace_object: &activation.namespace_object,
        };
        let scope = compiled::Scope::new(roots, &self.variables);
        let run = |program| {
            expr::start_expression();
            scope.run(program)
        };
        let mut outcome = Outcome { matched: true, ..Outcome::default() };
        for (_, condition) in &self.match_conditions {
            match run(condition.program.as_ref()?) {
                Ok(V::Bool(true)) => {}
                Ok(V::Bool(false)) => {
                    outcome.matched = false;
                    return Some(outcome);
                }
                _ => return None,
            }
        }
        for validation in &self.validations {
            match run(validation.expression.program.as_ref()?) {
                Ok(V::Bool(true)) => {}
                Ok(V::Bool(false)) => {
                    // As `message_of`: an error here means `message`, unless unsure.
                    let message_program = match &validation.message_expression {
                        Some(e) => Some(e.program.as_ref()?),
                        None => None,
                    };
                    let from_expression = match message_program.map(run) {
                        Some(Err(Fail::Unsure)) => return None,
                        Some(Ok(value)) => value.as_str().map(str::to_owned),
                        Some(Err(Fail::Error)) | None => None,
                    };
                    outcome.failures.push(Failure {
                        message: message(validation, from_expression.as_deref()),
                        reason: validation.reason.clone().unwrap_or_else(|| "Invalid".to_owned()),
                    });
                }
                _ => return None,
            }
        }
        for (key, expression) in &self.audit_annotations {
            match run(expression.program.as_ref()?) {
                Ok(V::Null) => {}
                Ok(value) => outcome.annotations.push((key.clone(), value.as_str()?.to_owned())),
                Err(_) => return None,
            }
        }
        Some(outcome)
    }

    /// Judges one object with the cel crate's interpreter, whatever the
    /// policy's expressions: the reference the compiled evaluator is tested against.
    #[doc(hidden)]
    pub fn evaluate_interpreted(&self, activation: &Activation, params: &Params) -> Outcome {
        expr::start_policy();
        let scope = Scope {
            activation: activation.interpreted(),
            params: params.interpreted(),
            variables: &self.variables,
            values: (0..self.variables.len()).map(|_| OnceLock::new()).collect(),
        };
        let mut outcome = Outcome { matched: true, ..Outcome::default() };
        // Every match condition must be true; a false one wins over an error.
        let mut condition_errors = Vec::new();
        for (field, condition) in &self.match_conditions {
            match scope.run(condition).and_then(|v| as_bool(&v)) {
                Ok(true) => {}
                Ok(false) => {
                    outcome.matched = false;
                    return outcome;
                }
                Err(message) => condition_errors.push(FieldError::new(field.clone(), message)),
            }
        }
        if !condition_errors.is_empty() {
            outcome.errors = condition_errors;
            return outcome;
        }
        for (i, validation) in self.validations.iter().enumerate() {
            match scope.run(&validation.expression).and_then(|v| as_bool(&v)) {
                Ok(true) => {}
                Ok(false) => outcome.failures.push(Failure {
                    message: self.message_of(&scope, validation),
                    reason: validation.reason.clone().unwrap_or_else(|| "Invalid".to_owned()),
                }),
                Err(message) => outcome.errors.push(FieldError::new(
                    format!("validations[{i}].expression"),
                    format!("expression '{}' resulted in error: {message}", validation.expression.source.trim()),
                )),
            }
        }
        for (key, expression) in &self.audit_annotations {
            match scope.run(expression) {
                Ok(Value::Null) => {}
                Ok(Value::String(s)) => outcome.annotations.push((key.clone(), s.to_string())),
                Ok(other) => outcome.errors.push(FieldError::new(
                    format!("auditAnnotations[{key}].valueExpression"),
                    format!("must evaluate to a string or null, got {other:?}"),
                )),
                Err(message) => {
                    outcome.errors.push(FieldError::new(format!("auditAnnotations[{key}].valueExpression"), message))
                }
            }
        }
        outcome
    }

    /// How many mutations the policy has.
    pub fn mutation_count(&self) -> usize {
        self.mutations.len()
    }

    /// Whether every match condition holds for the request (a false one
    /// wins over an error), as the API server decides before mutating.
    pub fn matches(&self, activation: &Activation, params: &Params) -> Result<bool, Vec<FieldError>> {
        expr::start_policy();
        let scope = self.scope(activation, params);
        let mut errors = Vec::new();
        for (field, condition) in &self.match_conditions {
            match scope.run(condition).and_then(|v| as_bool(&v)) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(message) => errors.push(FieldError::new(field.clone(), message)),
            }
        }
        if errors.is_empty() { Ok(true) } else { Err(errors) }
    }

    /// Mutation `i` evaluated on the object as the mutations before it left
    /// it: its patch type and the JSON it made (an apply configuration, or
    /// a list of JSON Patch operations).
    pub fn mutation(
        &self,
        i: usize,
        activation: &Activation,
        params: &Params,
    ) -> Result<(PatchType, Json), FieldError> {
        let Some((field, patch_type, expression)) = self.mutations.get(i) else {
            return Err(FieldError::new(format!("mutations[{i}]"), "no such mutation".to_owned()));
        };
        expr::start_policy();
        let scope = self.scope(activation, params);
        let value = scope.run(expression).map_err(|message| {
            FieldError::new(
                field.clone(),
                format!("expression '{}' resulted in error: {message}", expression.source.trim()),
            )
        })?;
        let json =
            value.json().map_err(|e| FieldError::new(field.clone(), format!("the result is not JSON: {e:?}")))?;
        Ok((*patch_type, json))
    }

    fn scope<'s>(&'s self, activation: &'s Activation, params: &'s Params) -> Scope<'s> {
        Scope {
            activation: activation.interpreted(),
            params: params.interpreted(),
            variables: &self.variables,
            values: (0..self.variables.len()).map(|_| OnceLock::new()).collect(),
        }
    }

    fn message_of(&self, scope: &Scope, validation: &Validation) -> String {
        let from_expression = match &validation.message_expression {
            Some(e) => match scope.run(e) {
                Ok(Value::String(s)) => Some(s),
                _ => None,
            },
            None => None,
        };
        message(validation, from_expression.as_deref().map(String::as_str))
    }
}

/// The API server's rule: what `messageExpression` gave if it is a usable
/// string (not empty, one line), else `message`, else the expression.
fn message(validation: &Validation, from_expression: Option<&str>) -> String {
    match (from_expression, &validation.message) {
        (Some(s), _) if !s.trim().is_empty() && !s.contains('\n') => s.to_owned(),
        (_, Some(m)) if !m.is_empty() => m.clone(),
        _ => format!("failed expression: {}", validation.expression.source.trim()),
    }
}

fn as_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("must evaluate to a bool, got {other:?}")),
    }
}

/// Below this much stack left, a variable is evaluated on a new stack of
/// `VARIABLE_STACK` bytes: one expression at the depth limit needs about
/// this much in a debug build.
const VARIABLE_RED_ZONE: usize = 1024 * 1024;
const VARIABLE_STACK: usize = 4 * 1024 * 1024;

/// Resolves the variables of one evaluation; `variables.<name>` is
/// evaluated the first time an expression needs it, then remembered.
struct Scope<'a> {
    activation: &'a Interpreted,
    params: &'a dyn Val,
    variables: &'a [(String, Expression)],
    values: Vec<OnceLock<Result<Box<dyn Val>, String>>>,
}

impl Scope<'_> {
    fn context(&self) -> Context<'_, '_> {
        let mut context = Context::with_env(libs::environment());
        context.set_variable_resolver(self);
        context
    }

    /// Runs a top-level expression with its own cost budget.
    fn run(&self, expression: &Expression) -> Result<Value, String> {
        if expression.uses_authorizer {
            return Err("authorizer checks need the API server's authorization, which paved does not have here; \
                        the expression was not evaluated"
                .to_owned());
        }
        expr::start_expression();
        let result = Value::resolve(&expression.ast, &self.context());
        if let Some(why) = expr::over_budget() {
            return Err(why.to_owned());
        }
        result.map_err(|e| self.explain(e))
    }

    /// Errors name variables as the policy wrote them.
    fn explain(&self, error: cel::ExecutionError) -> String {
        if let cel::ExecutionError::UndeclaredReference(name) = &error
            && let Some(i) = name.strip_prefix(expr::VARIABLE_PREFIX).and_then(|i| i.parse::<usize>().ok())
        {
            let variable = self.variables.get(i).map_or("?", |(n, _)| n.as_str());
            if let Some(Some(Err(why))) = self.values.get(i).map(OnceLock::get) {
                return format!("variables.{variable}: {why}");
            }
            return format!("variables.{variable} could not be evaluated");
        }
        error.to_string()
    }

    fn variable(&self, i: usize) -> Result<Box<dyn Val>, String> {
        let (_, expression) = self.variables.get(i).ok_or("no such variable")?;
        let context = self.context();
        let value = Value::resolve_val(&expression.ast, &context).map_err(|e| self.explain(e))?;
        shared::detach(value.as_ref()).map_err(|e| e.to_string())
    }
}

impl VariableResolver for Scope<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let borrowed = |v: &'b dyn Val| Some(CowVal::Borrowed(v));
        match name {
            "object" => borrowed(&*self.activation.object),
            "oldObject" => borrowed(&*self.activation.old_object),
            "request" => borrowed(&*self.activation.request),
            "namespaceObject" => borrowed(&*self.activation.namespace_object),
            "params" => borrowed(self.params),
            kyverno_libs::DATA => borrowed(&*self.activation.data),
            _ => {
                let i = name.strip_prefix(expr::VARIABLE_PREFIX)?.parse::<usize>().ok()?;
                // Variables only refer to earlier ones (checked when
                // compiling), so this never waits on itself. Evaluated where
                // first read, as the API server does (a variable behind a
                // false `&&` costs nothing), a chain of variables nests on
                // the stack; each level gets a fresh stack when this one runs low.
                let slot = self
                    .values
                    .get(i)?
                    .get_or_init(|| stacker::maybe_grow(VARIABLE_RED_ZONE, VARIABLE_STACK, || self.variable(i)));
                slot.as_ref().ok().map(|v| CowVal::Borrowed(&**v))
            }
        }
    }
}
