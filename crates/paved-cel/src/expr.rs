//! One CEL expression as Kubernetes writes it, compiled once: parsed with the
//! Kubernetes environment, `variables.<name>` turned into direct references,
//! and every comprehension metered so that a runaway expression stops with a
//! cost error instead of running for minutes.

use std::cell::Cell;

use cel::ExecutionError;
use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::common::types::CelInt;
use cel::common::value::CowVal;

/// Expressions longer than this are refused before parsing (the API server
/// refuses requests above 3 MiB whole; one expression this long is hostile).
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;

/// Deeper expressions are refused: the interpreter recurses once per level.
/// The limit leaves room on a 2 MiB thread stack even in a debug build.
pub const MAX_EXPRESSION_DEPTH: usize = 48;

/// The parser recurses deeply on nested input; it runs on a thread of its
/// own with this much stack (reserved, touched only as deep as it goes).
const PARSER_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Cost units one expression may spend, as the API server's per-call limit.
pub const PER_EXPRESSION_BUDGET: i64 = 1_000_000;

/// Cost units all the expressions of one policy may spend on one object, as
/// the API server's runtime budget for a ValidatingAdmissionPolicy.
pub const PER_POLICY_BUDGET: i64 = 10_000_000;

/// The name a `variables.<name>` reference is rewritten to.
pub(crate) const VARIABLE_PREFIX: &str = "@paved_var_";

/// The pass-through function that charges one comprehension iteration.
pub(crate) const COST_FUNCTION: &str = "@paved_cost";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub message: String,
    /// The 1-based line and column inside the expression, for a syntax error.
    pub at: Option<(u32, u32)>,
}

impl CompileError {
    pub(crate) fn new(message: String) -> CompileError {
        CompileError { message, at: None }
    }
}

/// Which functions an expression may call beyond Kubernetes' libraries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// ValidatingAdmissionPolicy's environment, as the API server has it.
    #[default]
    Kubernetes,
    /// Kyverno's: Kubernetes' plus Kyverno's own libraries (`resource`,
    /// `image`, `parseServiceAccount`, `time.now`). Their calls are rewritten
    /// to names no expression can write ([`crate::kyverno_libs`]), so a VAP
    /// never reaches them.
    Kyverno,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expression {
    pub source: String,
    pub(crate) ast: IdedExpr,
    /// `authorizer` needs the API server's authorization; offline it is an
    /// error, never a silent pass.
    pub(crate) uses_authorizer: bool,
    /// The expression for paved's own evaluator, when it stays within what
    /// that evaluator runs (see [`crate::compiled`]).
    pub(crate) program: Option<crate::compiled::Program>,
    /// What Kyverno's `resource.Get`/`resource.List` calls read, as
    /// `(apiVersion, resource)`: a server keeps those objects in sync.
    pub(crate) reads: Vec<(String, String)>,
}

impl Expression {
    /// Compiles `source`; `variables` are the names it may use as
    /// `variables.<name>` (those defined before it).
    pub fn compile(source: &str, variables: &[String]) -> Result<Expression, CompileError> {
        Expression::compile_in(source, variables, Dialect::Kubernetes)
    }

    /// Compiles `source` in `dialect`.
    pub fn compile_in(source: &str, variables: &[String], dialect: Dialect) -> Result<Expression, CompileError> {
        if source.len() > MAX_EXPRESSION_BYTES {
            return Err(CompileError::new(format!(
                "expression is {} bytes, more than the {MAX_EXPRESSION_BYTES} allowed",
                source.len()
            )));
        }
        let mut ast = parse(source)?;
        let mut rewrite =
            Rewrite { variables, uses_authorizer: false, next_id: u64::MAX / 2, dialect, reads: Vec::new() };
        rewrite.visit(&mut ast)?;
        let program = if rewrite.uses_authorizer { None } else { crate::compiled::compile(&ast) };
        Ok(Expression {
            source: source.to_owned(),
            ast,
            uses_authorizer: rewrite.uses_authorizer,
            program,
            reads: rewrite.reads,
        })
    }
}

/// Parses `source` and measures its depth; a tree too deep is refused (and
/// dropped, which recurses too) on the parser's big stack.
fn parse(source: &str) -> Result<IdedExpr, CompileError> {
    let owned = source.to_owned();
    std::thread::Builder::new()
        .name("cel-parse".to_owned())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || {
            let parsed = crate::libs::environment().parser().parse(&owned);
            let ast = parsed.map_err(|e| {
                let at =
                    e.errors.first().and_then(|e| Some((u32::try_from(e.pos.0).ok()?, u32::try_from(e.pos.1).ok()?)));
                let message = e.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
                CompileError { message, at }
            })?;
            let depth = depth(&ast);
            if depth > MAX_EXPRESSION_DEPTH {
                return Err(CompileError::new(format!(
                    "expression is nested {depth} levels deep, more than the {MAX_EXPRESSION_DEPTH} allowed"
                )));
            }
            Ok(ast)
        })
        .map_err(|e| CompileError::new(format!("cannot start the parser: {e}")))?
        .join()
        .map_err(|_| CompileError::new("the CEL parser failed on this expression".to_owned()))?
}

/// The depth of `ast`, without recursing (it may be deeper than the stack allows).
fn depth(ast: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(ast, 1)];
    while let Some((e, d)) = todo.pop() {
        deepest = deepest.max(d);
        children(e, &mut |child| todo.push((child, d + 1)));
    }
    deepest
}

fn children<'a>(e: &'a IdedExpr, f: &mut impl FnMut(&'a IdedExpr)) {
    let entries = |entries: &'a [cel::common::ast::IdedEntryExpr], f: &mut dyn FnMut(&'a IdedExpr)| {
        for entry in entries {
            match &entry.expr {
                cel::common::ast::EntryExpr::MapEntry(m) => {
                    f(&m.key);
                    f(&m.value);
                }
                cel::common::ast::EntryExpr::StructField(s) => f(&s.value),
            }
        }
    };
    match &e.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).for_each(f),
        Expr::Select(s) => f(&s.operand),
        Expr::List(l) => l.elements.iter().for_each(f),
        Expr::Map(m) => entries(&m.entries, f),
        Expr::Struct(s) => entries(&s.entries, f),
        Expr::Comprehension(c) => {
            [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result].into_iter().for_each(f)
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// The struct types a MutatingAdmissionPolicy's expressions construct.
fn is_mutation_type(name: &str) -> bool {
    name == "JSONPatch" || name == "Object" || name.starts_with("Object.")
}

struct Rewrite<'a> {
    variables: &'a [String],
    uses_authorizer: bool,
    next_id: u64,
    dialect: Dialect,
    reads: Vec<(String, String)>,
}

impl Rewrite<'_> {
    fn node(&mut self, expr: Expr) -> IdedExpr {
        self.next_id += 1;
        IdedExpr { id: self.next_id, expr }
    }

    /// `inner`, charged `cost` units each time it is evaluated.
    fn metered(&mut self, inner: &mut IdedExpr, cost: i64) {
        let taken = std::mem::take(inner);
        let cost = self.node(Expr::Literal(LiteralValue::Int(CelInt::from(cost))));
        *inner = self.node(Expr::Call(CallExpr {
            func_name: COST_FUNCTION.to_owned(),
            target: None,
            args: vec![taken, cost],
        }));
    }

    fn visit(&mut self, e: &mut IdedExpr) -> Result<(), CompileError> {
        match &mut e.expr {
            Expr::Select(select) => {
                if matches!(&select.operand.expr, Expr::Ident(name) if name == "variables") {
                    let Some(index) = self.variables.iter().position(|v| *v == select.field) else {
                        return Err(CompileError::new(format!(
                            "variables.{} is not defined before this expression (defined: {})",
                            select.field,
                            if self.variables.is_empty() { "none".to_owned() } else { self.variables.join(", ") }
                        )));
                    };
                    e.expr = if select.test {
                        // `has(variables.x)`: a defined variable is always there.
                        Expr::Literal(LiteralValue::Boolean(true.into()))
                    } else {
                        Expr::Ident(format!("{VARIABLE_PREFIX}{index}"))
                    };
                    return Ok(());
                }
                self.visit(&mut select.operand)
            }
            Expr::Ident(name) => {
                match name.as_str() {
                    "variables" => {
                        return Err(CompileError::new("`variables` can only be used as variables.<name>".to_owned()));
                    }
                    "authorizer" => self.uses_authorizer = true,
                    _ => {}
                }
                Ok(())
            }
            Expr::Call(call) => {
                if self.dialect == Dialect::Kyverno {
                    let next_id = &mut self.next_id;
                    let mut data = || {
                        *next_id += 1;
                        IdedExpr { id: *next_id, expr: Expr::Ident(crate::kyverno_libs::DATA.to_owned()) }
                    };
                    crate::kyverno_libs::rewrite_call(call, &mut self.reads, &mut data)?;
                }
                if let Some(target) = &mut call.target {
                    self.visit(target)?;
                }
                call.args.iter_mut().try_for_each(|a| self.visit(a))
            }
            Expr::List(list) => list.elements.iter_mut().try_for_each(|a| self.visit(a)),
            Expr::Map(map) => map.entries.iter_mut().try_for_each(|entry| match &mut entry.expr {
                cel::common::ast::EntryExpr::MapEntry(m) => {
                    self.visit(&mut m.key)?;
                    self.visit(&mut m.value)
                }
                cel::common::ast::EntryExpr::StructField(f) => self.visit(&mut f.value),
            }),
            // MutatingAdmissionPolicy's typed literals (`Object{…}`,
            // `Object.spec.template{…}`, `JSONPatch{…}`) are the maps of
            // their fields: paved checks no schema, and the mutation is the
            // JSON they make.
            Expr::Struct(s) if is_mutation_type(&s.type_name) => {
                let entries = std::mem::take(&mut s.entries);
                let mut map = cel::common::ast::MapExpr { entries: Vec::with_capacity(entries.len()) };
                for entry in entries {
                    let cel::common::ast::EntryExpr::StructField(field) = entry.expr else {
                        return Err(CompileError::new(format!("{}: a field name is expected", s.type_name)));
                    };
                    let key = self.node(Expr::Literal(LiteralValue::String(field.field.clone().into())));
                    map.entries.push(cel::common::ast::IdedEntryExpr {
                        id: entry.id,
                        expr: cel::common::ast::EntryExpr::MapEntry(cel::common::ast::MapEntryExpr {
                            key,
                            value: field.value,
                            optional: field.optional,
                        }),
                    });
                }
                e.expr = Expr::Map(map);
                self.visit(e)
            }
            Expr::Struct(s) => s.entries.iter_mut().try_for_each(|entry| match &mut entry.expr {
                cel::common::ast::EntryExpr::MapEntry(m) => {
                    self.visit(&mut m.key)?;
                    self.visit(&mut m.value)
                }
                cel::common::ast::EntryExpr::StructField(f) => self.visit(&mut f.value),
            }),
            Expr::Comprehension(c) => {
                for part in [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result] {
                    self.visit(part)?;
                }
                // One iteration costs what its body has nodes, as the API
                // server charges each node it evaluates.
                let cost = (nodes(&c.loop_cond) + nodes(&c.loop_step)).max(1) as i64;
                self.meter_iteration(c, cost);
                Ok(())
            }
            Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }

    /// Charges every iteration of `c`. `map` and `filter` are built by the
    /// interpreter in place when their loop condition is a literal, so for
    /// those the charge goes on the guard or the appended element instead.
    fn meter_iteration(&mut self, c: &mut cel::common::ast::ComprehensionExpr, cost: i64) {
        let accu = c.accu_var.clone();
        let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == accu);
        let appends = is_accu(&c.result) && matches!(c.loop_cond.expr, Expr::Literal(_));
        if appends && let Expr::Call(call) = &mut c.loop_step.expr {
            if call.func_name == operators::CONDITIONAL && call.args.len() == 3 && is_accu(&call.args[2]) {
                self.metered(&mut call.args[0], cost);
                return;
            }
            if call.func_name == operators::ADD
                && call.args.len() == 2
                && is_accu(&call.args[0])
                && let Expr::List(list) = &mut call.args[1].expr
                && let Some(first) = list.elements.first_mut()
            {
                self.metered(first, cost);
                return;
            }
        }
        self.metered(&mut c.loop_cond, cost);
    }
}

fn nodes(e: &IdedExpr) -> usize {
    let mut count = 1;
    children(e, &mut |child| count += nodes(child));
    count
}

/// What is left to spend, on this thread (evaluation never leaves it).
#[derive(Clone, Copy)]
struct Budget {
    expression: i64,
    policy: i64,
    exceeded: bool,
}

thread_local! {
    static BUDGET: Cell<Budget> = const {
        Cell::new(Budget { expression: PER_EXPRESSION_BUDGET, policy: PER_POLICY_BUDGET, exceeded: false })
    };
}

/// Starts a policy's evaluation on one object: a full budget.
pub(crate) fn start_policy() {
    BUDGET.with(|b| b.set(Budget { expression: PER_EXPRESSION_BUDGET, policy: PER_POLICY_BUDGET, exceeded: false }));
}

/// Starts one top-level expression. Variables it evaluates lazily are charged to it.
pub(crate) fn start_expression() {
    BUDGET.with(|b| {
        let budget = b.get();
        b.set(Budget { expression: PER_EXPRESSION_BUDGET, exceeded: false, ..budget });
    });
}

/// Whether the expression that just ran went over budget. An exhausted
/// budget fails every further iteration, and `||`/`&&` may swallow those
/// errors, so this is asked after every expression whatever its value.
pub(crate) fn over_budget() -> Option<&'static str> {
    BUDGET.with(|b| {
        let budget = b.get();
        if !budget.exceeded {
            None
        } else if budget.policy < 0 {
            Some("the policy's total CEL cost budget was exceeded")
        } else {
            Some("the expression's CEL cost budget was exceeded")
        }
    })
}

/// Spends `units` of the budget; true once it is exceeded.
pub(crate) fn charge(units: i64) -> bool {
    BUDGET.with(|b| {
        let mut budget = b.get();
        budget.expression -= units;
        budget.policy -= units;
        budget.exceeded |= budget.expression < 0 || budget.policy < 0;
        b.set(budget);
        budget.exceeded
    })
}

/// `@paved_cost(value, units)`: charges `units` and hands `value` back.
pub(crate) fn cost_function<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let units = args.get(1).and_then(|a| a.downcast_ref::<CelInt>()).map_or(1, |n| *n.inner());
    if charge(units) {
        return Err(ExecutionError::function_error("cost", "CEL cost budget exceeded"));
    }
    args.truncate(1);
    args.pop().ok_or_else(|| ExecutionError::invalid_argument_count(2, 0))
}
