//! CEL compiled to paved's own tree of operations, evaluated straight over
//! the request's JSON.
//!
//! The cel crate's interpreter walks its AST and boxes every value: a path
//! like `object.spec.containers` is first tried as a qualified name, each
//! step is a hashed lookup in a map converted from JSON beforehand, and each
//! expression costs some 8,000 instructions. Kubernetes policies use a small
//! part of CEL over and over (field selection, `has`, the macros, string
//! tests), so that part is compiled here into [`Op`]s that resolve names and
//! regular expressions once, read fields from the borrowed JSON, and share
//! lists by reference count.
//!
//! Two rules keep the answers the interpreter's, which stays the reference:
//! - anything outside that part does not compile ([`compile`] gives `None`),
//!   and a policy with any such expression runs on the interpreter;
//! - at run time, whatever this evaluator is not certain to answer as the
//!   interpreter does ([`Fail::Unsure`]: an overflow, an unusual operand
//!   type, a spent budget), and any error an expression ends on, sends the
//!   whole evaluation of the object back to the interpreter, which also
//!   words the errors. Only errors that CEL's `&&`, `||`, `all` and `exists`
//!   may absorb ([`Fail::Error`]: a missing field, a non-bool operand) are
//!   followed here, with the interpreter's rules.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::rc::Rc;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use serde_json::{Map, Value as Json};

use crate::expr::{self, COST_FUNCTION, Expression, VARIABLE_PREFIX};

/// The prefixes of the qualified functions the environment has, the cel
/// crate's and paved's libraries' (`sets.contains`, `format.dns1123Label`, …).
const FUNCTION_NAMESPACES: &[&str] = &["base64", "cel", "format", "ip", "lists", "math", "optional", "sets", "strings"];

/// Regular expressions longer than this are left to the interpreter.
const MAX_PATTERN_BYTES: usize = 4096;

/// The names an expression reads from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Object,
    OldObject,
    Request,
    Params,
    NamespaceObject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// The `&&` or `||` an `all` or `exists` folds its elements with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logical {
    And,
    Or,
}

#[derive(Debug, Clone)]
enum Func {
    Size,
    StartsWith,
    EndsWith,
    Contains,
    /// The pattern, compiled once when it is a literal.
    Matches(Option<regex::Regex>),
    String,
    Join,
    Replace,
    LowerAscii,
    UpperAscii,
    Trim,
    Dyn,
}

#[derive(Debug, Clone)]
enum Op {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Box<str>),
    Root(Root),
    /// `variables.<name>`, by index.
    Variable(usize),
    /// A comprehension's variable, by slot.
    Local(usize),
    Select {
        operand: Box<Op>,
        field: Box<str>,
        test: bool,
    },
    Index(Box<[Op; 2]>),
    List(Box<[Op]>),
    /// A map literal: `(key, value)` in order.
    Map(Box<[(Op, Op)]>),
    And(Box<[Op; 2]>),
    Or(Box<[Op; 2]>),
    Not(Box<Op>),
    Conditional(Box<[Op; 3]>),
    NotStrictlyFalse(Box<Op>),
    Compare(Compare, Box<[Op; 2]>),
    In(Box<[Op; 2]>),
    Arith(Arith, Box<[Op; 2]>),
    Negate(Box<Op>),
    /// `inner`, charged `units` of the cost budget each time.
    Cost(Box<Op>, i64),
    Fold(Box<Fold>),
    Append(Box<Append>),
    /// A function; a receiver call's target is its first argument.
    Call(Func, Box<[Op]>),
}

/// A comprehension in general: `all`, `exists`, `exists_one`.
#[derive(Debug, Clone)]
struct Fold {
    range: Op,
    iter: usize,
    accu: usize,
    init: Op,
    cond: Op,
    step: Op,
    result: Op,
    /// Errors of an `all`/`exists` step wait for an element that decides
    /// the result anyway, as in cel-go.
    logical: Option<Logical>,
}

/// `map` and `filter`: a list built by appending, from an empty one.
#[derive(Debug, Clone)]
struct Append {
    range: Op,
    iter: usize,
    cond: Op,
    guard: Option<Op>,
    items: Box<[Op]>,
}

/// One expression, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    op: Op,
    /// How many comprehension variables it binds at once, at most.
    slots: usize,
}

/// Compiles an expression already rewritten by [`crate::expr`], or `None`
/// when it uses anything this evaluator leaves to the interpreter.
pub(crate) fn compile(ast: &IdedExpr) -> Option<Program> {
    let mut compiler = Compiler { scope: Vec::new(), slots: 0 };
    let op = compiler.expr(ast)?;
    Some(Program { op, slots: compiler.slots })
}

struct Compiler {
    /// Comprehension variables in scope, innermost last; a name's slot is its place here.
    scope: Vec<String>,
    slots: usize,
}

impl Compiler {
    fn bind(&mut self, name: &str) -> usize {
        self.scope.push(name.to_owned());
        self.slots = self.slots.max(self.scope.len());
        self.scope.len() - 1
    }

    fn exprs(&mut self, exprs: &[IdedExpr]) -> Option<Box<[Op]>> {
        exprs.iter().map(|e| self.expr(e)).collect()
    }

    fn two(&mut self, args: &[IdedExpr]) -> Option<Box<[Op; 2]>> {
        match args {
            [a, b] => Some(Box::new([self.expr(a)?, self.expr(b)?])),
            _ => None,
        }
    }

    fn expr(&mut self, e: &IdedExpr) -> Option<Op> {
        match &e.expr {
            Expr::Literal(literal) => Some(match literal {
                LiteralValue::Boolean(b) => Op::Bool(*b.inner()),
                LiteralValue::Int(i) => Op::Int(*i.inner()),
                LiteralValue::UInt(u) => Op::UInt(*u.inner()),
                LiteralValue::Double(d) => Op::Double(*d.inner()),
                LiteralValue::String(s) => Op::Str(s.inner().into()),
                LiteralValue::Null => Op::Null,
                LiteralValue::Bytes(_) => return None,
            }),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => Some(Op::Select {
                operand: Box::new(self.expr(&select.operand)?),
                field: select.field.as_str().into(),
                test: select.test,
            }),
            Expr::List(list) if list.optional_indices.is_empty() => Some(Op::List(self.exprs(&list.elements)?)),
            Expr::Map(map) => {
                let entries = map.entries.iter().map(|entry| match &entry.expr {
                    EntryExpr::MapEntry(e) if !e.optional => Some((self.expr(&e.key)?, self.expr(&e.value)?)),
                    _ => None,
                });
                Some(Op::Map(entries.collect::<Option<_>>()?))
            }
            Expr::Call(call) => self.call(call),
            Expr::Comprehension(c) => self.comprehension(c),
            Expr::List(_) | Expr::Struct(_) | Expr::Unspecified => None,
        }
    }

    fn ident(&mut self, name: &str) -> Option<Op> {
        if let Some(slot) = self.scope.iter().rposition(|n| n == name) {
            return Some(Op::Local(slot));
        }
        Some(match name {
            "object" => Op::Root(Root::Object),
            "oldObject" => Op::Root(Root::OldObject),
            "request" => Op::Root(Root::Request),
            "params" => Op::Root(Root::Params),
            "namespaceObject" => Op::Root(Root::NamespaceObject),
            _ => Op::Variable(name.strip_prefix(VARIABLE_PREFIX)?.parse().ok()?),
        })
    }

    fn call(&mut self, call: &CallExpr) -> Option<Op> {
        let args = &call.args;
        if call.target.is_none() {
            let op = match (call.func_name.as_str(), args.len()) {
                (operators::LOGICAL_AND, 2) => Op::And(self.two(args)?),
                (operators::LOGICAL_OR, 2) => Op::Or(self.two(args)?),
                (operators::LOGICAL_NOT, 1) => Op::Not(Box::new(self.expr(&args[0])?)),
                (operators::NOT_STRICTLY_FALSE, 1) => Op::NotStrictlyFalse(Box::new(self.expr(&args[0])?)),
                (operators::NEGATE, 1) => Op::Negate(Box::new(self.expr(&args[0])?)),
                (operators::CONDITIONAL, 3) => {
                    Op::Conditional(Box::new([self.expr(&args[0])?, self.expr(&args[1])?, self.expr(&args[2])?]))
                }
                (operators::EQUALS, 2) => Op::Compare(Compare::Eq, self.two(args)?),
                (operators::NOT_EQUALS, 2) => Op::Compare(Compare::Ne, self.two(args)?),
                (operators::LESS, 2) => Op::Compare(Compare::Lt, self.two(args)?),
                (operators::LESS_EQUALS, 2) => Op::Compare(Compare::Le, self.two(args)?),
                (operators::GREATER, 2) => Op::Compare(Compare::Gt, self.two(args)?),
                (operators::GREATER_EQUALS, 2) => Op::Compare(Compare::Ge, self.two(args)?),
                (operators::ADD, 2) => Op::Arith(Arith::Add, self.two(args)?),
                (operators::SUBSTRACT, 2) => Op::Arith(Arith::Sub, self.two(args)?),
                (operators::MULTIPLY, 2) => Op::Arith(Arith::Mul, self.two(args)?),
                (operators::DIVIDE, 2) => Op::Arith(Arith::Div, self.two(args)?),
                (operators::MODULO, 2) => Op::Arith(Arith::Mod, self.two(args)?),
                (operators::IN, 2) => Op::In(self.two(args)?),
                (operators::INDEX, 2) => Op::Index(self.two(args)?),
                (COST_FUNCTION, 2) => {
                    let Expr::Literal(LiteralValue::Int(units)) = &args[1].expr else { return None };
                    Op::Cost(Box::new(self.expr(&args[0])?), *units.inner())
                }
                ("size", 1) => Op::Call(Func::Size, self.exprs(args)?),
                ("string", 1) => Op::Call(Func::String, self.exprs(args)?),
                ("dyn", 1) => Op::Call(Func::Dyn, self.exprs(args)?),
                ("matches", 2) => Op::Call(Func::Matches(literal_pattern(&args[1])), self.exprs(args)?),
                _ => return None,
            };
            return Some(op);
        }
        let target = call.target.as_deref()?;
        let func = match (call.func_name.as_str(), args.len()) {
            ("size", 0) => Func::Size,
            ("startsWith", 1) => Func::StartsWith,
            ("endsWith", 1) => Func::EndsWith,
            ("contains", 1) => Func::Contains,
            ("matches", 1) => Func::Matches(literal_pattern(&args[0])),
            ("join", 0 | 1) => Func::Join,
            ("replace", 2) => Func::Replace,
            ("lowerAscii", 0) => Func::LowerAscii,
            ("upperAscii", 0) => Func::UpperAscii,
            ("trim", 0) => Func::Trim,
            _ => return None,
        };
        // `sets.contains(…)` calls the function `sets.contains`, even where a
        // comprehension variable is named `sets`: a call on a name that is a
        // function namespace is the interpreter's. (Outside a comprehension,
        // such a name is no value and does not compile anyway.)
        if let Expr::Ident(name) = &target.expr
            && FUNCTION_NAMESPACES.contains(&name.as_str())
        {
            return None;
        }
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.expr(target)?);
        for a in args {
            all.push(self.expr(a)?);
        }
        Some(Op::Call(func, all.into()))
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Option<Op> {
        if c.iter_var2.is_some() {
            return None;
        }
        let range = self.expr(&c.iter_range)?;
        if let Some(append) = self.append(c, &range) {
            return Some(Op::Append(Box::new(append)));
        }
        let init = self.expr(&c.accu_init)?;
        let depth = self.scope.len();
        let accu = self.bind(&c.accu_var);
        let iter = self.bind(&c.iter_var);
        let parts = (|| Some((self.expr(&c.loop_cond)?, self.expr(&c.loop_step)?, self.expr(&c.result)?)))();
        self.scope.truncate(depth);
        let (cond, step, result) = parts?;
        let logical = match &c.loop_step.expr {
            Expr::Call(call)
                if call.target.is_none()
                    && matches!(call.args.first().map(|a| &a.expr), Some(Expr::Ident(n)) if *n == c.accu_var) =>
            {
                match call.func_name.as_str() {
                    operators::LOGICAL_AND => Some(Logical::And),
                    operators::LOGICAL_OR => Some(Logical::Or),
                    _ => None,
                }
            }
            _ => None,
        };
        Some(Op::Fold(Box::new(Fold { range, iter, accu, init, cond, step, result, logical })))
    }

    /// `map`/`filter`'s shape, as the interpreter recognizes it: the result
    /// is the accumulator, which starts as `[]`, the loop condition is a
    /// literal, and each step appends (`@result + [x]`), perhaps under a
    /// guard (`g ? @result + [x] : @result`). Nothing else can see the
    /// accumulator, so it is built in place.
    fn append(&mut self, c: &ComprehensionExpr, range: &Op) -> Option<Append> {
        let accu = c.accu_var.as_str();
        let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == accu);
        let empty_init = matches!(&c.accu_init.expr, Expr::List(l) if l.elements.is_empty());
        if !empty_init || !is_accu(&c.result) || !matches!(c.loop_cond.expr, Expr::Literal(_)) {
            return None;
        }
        let appended = |e: &IdedExpr| match &e.expr {
            Expr::Call(call) if call.func_name == operators::ADD && call.target.is_none() => match call.args.as_slice()
            {
                [lhs, rhs] if is_accu(lhs) => match &rhs.expr {
                    Expr::List(list) if list.optional_indices.is_empty() => Some(list.elements.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let (guard, items) = match &c.loop_step.expr {
            Expr::Call(call) if call.func_name == operators::CONDITIONAL && call.target.is_none() => {
                match call.args.as_slice() {
                    [guard, step, otherwise] if is_accu(otherwise) => (Some(guard), appended(step)?),
                    _ => return None,
                }
            }
            _ => (None, appended(&c.loop_step)?),
        };
        let depth = self.scope.len();
        // The accumulator's name is bound too, so that nothing inside reads an outer one.
        self.bind(accu);
        let iter = self.bind(&c.iter_var);
        let parts = (|| {
            let cond = self.expr(&c.loop_cond)?;
            let guard = match guard {
                Some(g) => Some(self.expr(g)?),
                None => None,
            };
            Some((cond, guard, self.exprs(&items)?))
        })();
        self.scope.truncate(depth);
        let (cond, guard, items) = parts?;
        Some(Append { range: range.clone(), iter, cond, guard, items })
    }
}

fn literal_pattern(e: &IdedExpr) -> Option<regex::Regex> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) if s.inner().len() <= MAX_PATTERN_BYTES => {
            regex::Regex::new(s.inner()).ok()
        }
        _ => None,
    }
}

/// A value during evaluation: JSON is read where it lies, strings and lists
/// made on the way are shared.
#[derive(Debug, Clone)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(&'a str),
    OwnedStr(Rc<str>),
    JsonList(&'a [Json]),
    List(Rc<Vec<V<'a>>>),
    JsonMap(&'a Map<String, Json>),
    /// A map literal's entries, keys all strings and distinct.
    Map(Rc<Vec<(V<'a>, V<'a>)>>),
}

impl<'a> V<'a> {
    /// As the interpreter's conversion: integers stay integers.
    pub(crate) fn of(json: &'a Json) -> V<'a> {
        match json {
            Json::Null => V::Null,
            Json::Bool(b) => V::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    V::Int(i)
                } else if let Some(u) = n.as_u64() {
                    V::UInt(u)
                } else {
                    V::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => V::Str(s),
            Json::Array(items) => V::JsonList(items),
            Json::Object(fields) => V::JsonMap(fields),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            V::Str(s) => Some(s),
            V::OwnedStr(s) => Some(s),
            _ => None,
        }
    }

    fn list_len(&self) -> Option<usize> {
        match self {
            V::JsonList(items) => Some(items.len()),
            V::List(items) => Some(items.len()),
            _ => None,
        }
    }

    fn list_item(&self, i: usize) -> Option<V<'a>> {
        match self {
            V::JsonList(items) => items.get(i).map(V::of),
            V::List(items) => items.get(i).cloned(),
            _ => None,
        }
    }

    /// A map's value under `key`; `None` for a missing key or a value
    /// that is no map.
    fn field(&self, key: &str) -> Option<V<'a>> {
        match self {
            V::JsonMap(fields) => fields.get(key).map(V::of),
            V::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    fn is_map(&self) -> bool {
        matches!(self, V::JsonMap(_) | V::Map(_))
    }
}

/// Why an evaluation did not give a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    /// An error the interpreter gives too, which `&&`, `||`, `all` and
    /// `exists` may absorb.
    Error,
    /// Not certain to match the interpreter: the object goes back to it.
    Unsure,
}

type Result<'a> = std::result::Result<V<'a>, Fail>;

/// Below this much stack left, a variable is evaluated on a new stack.
const RED_ZONE: usize = 256 * 1024;
const NEW_STACK: usize = 2 * 1024 * 1024;

/// What an evaluation reads from the request.
pub(crate) struct Roots<'a> {
    pub(crate) object: &'a Json,
    pub(crate) old_object: &'a Json,
    /// The AdmissionRequest without `object` and `oldObject`.
    pub(crate) request: &'a Json,
    pub(crate) params: &'a Json,
    pub(crate) namespace_object: &'a Json,
}

impl<'a> Roots<'a> {
    fn get(&self, root: Root) -> &'a Json {
        match root {
            Root::Object => self.object,
            Root::OldObject => self.old_object,
            Root::Request => self.request,
            Root::Params => self.params,
            Root::NamespaceObject => self.namespace_object,
        }
    }
}

/// One evaluation's inputs and the variables computed so far.
pub(crate) struct Scope<'a> {
    roots: Roots<'a>,
    /// The policy's variables, `(name, expression)`, each with its program.
    variables: &'a [(String, Expression)],
    values: Vec<OnceCell<Result<'a>>>,
}

impl<'a> Scope<'a> {
    pub(crate) fn new(roots: Roots<'a>, variables: &'a [(String, Expression)]) -> Scope<'a> {
        Scope { roots, variables, values: (0..variables.len()).map(|_| OnceCell::new()).collect() }
    }

    /// Runs a top-level expression.
    pub(crate) fn run(&self, program: &'a Program) -> Result<'a> {
        // Most expressions nest comprehensions two or three deep: their
        // variables live on the stack.
        const INLINE: usize = 4;
        if program.slots <= INLINE {
            let mut locals: [V<'a>; INLINE] = [V::Null, V::Null, V::Null, V::Null];
            Frame { scope: self, locals: &mut locals }.eval(&program.op)
        } else {
            let mut locals = vec![V::Null; program.slots];
            Frame { scope: self, locals: &mut locals }.eval(&program.op)
        }
    }

    fn variable(&self, i: usize) -> Result<'a> {
        let program = self.variables.get(i).and_then(|(_, e)| e.program.as_ref());
        let (Some(cell), Some(program)) = (self.values.get(i), program) else {
            return Err(Fail::Unsure);
        };
        cell.get_or_init(|| stacker::maybe_grow(RED_ZONE, NEW_STACK, || self.run(program))).clone()
    }
}

struct Frame<'s, 'a> {
    scope: &'s Scope<'a>,
    locals: &'s mut [V<'a>],
}

fn truth(v: &Result<'_>) -> std::result::Result<bool, Fail> {
    match v {
        Ok(V::Bool(b)) => Ok(*b),
        Ok(_) => Err(Fail::Error),
        Err(f) => Err(*f),
    }
}

impl<'a> Frame<'_, 'a> {
    fn eval(&mut self, op: &'a Op) -> Result<'a> {
        match op {
            Op::Null => Ok(V::Null),
            Op::Bool(b) => Ok(V::Bool(*b)),
            Op::Int(i) => Ok(V::Int(*i)),
            Op::UInt(u) => Ok(V::UInt(*u)),
            Op::Double(d) => Ok(V::Double(*d)),
            Op::Str(s) => Ok(V::Str(s)),
            Op::Root(root) => Ok(V::of(self.scope.roots.get(*root))),
            Op::Variable(i) => self.scope.variable(*i),
            Op::Local(slot) => self.locals.get(*slot).cloned().ok_or(Fail::Unsure),
            Op::Select { operand, field, test } => {
                let operand = self.eval(operand)?;
                select(operand, field, *test)
            }
            Op::Index(ops) => self.index(ops),
            Op::List(items) => self.list(items),
            Op::Map(entries) => self.map(entries),
            Op::And(ops) => self.logical(ops, false),
            Op::Or(ops) => self.logical(ops, true),
            Op::Not(inner) => match self.eval(inner)? {
                V::Bool(b) => Ok(V::Bool(!b)),
                _ => Err(Fail::Error),
            },
            Op::Conditional(ops) => {
                let [cond, then, otherwise] = &**ops;
                let cond = self.eval(cond);
                if truth(&cond)? { self.eval(then) } else { self.eval(otherwise) }
            }
            Op::NotStrictlyFalse(inner) => match self.eval(inner) {
                Ok(V::Bool(b)) => Ok(V::Bool(b)),
                Err(Fail::Unsure) => Err(Fail::Unsure),
                _ => Ok(V::Bool(true)),
            },
            Op::Compare(how, ops) => {
                let [a, b] = &**ops;
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                compare(*how, &a, &b)
            }
            Op::In(ops) => {
                let [item, container] = &**ops;
                let item = self.eval(item)?;
                let container = self.eval(container)?;
                contains(&container, &item)
            }
            Op::Arith(how, ops) => {
                let [a, b] = &**ops;
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                arith(*how, a, b)
            }
            Op::Negate(inner) => match self.eval(inner)? {
                V::Int(i) => i.checked_neg().map(V::Int).ok_or(Fail::Unsure),
                V::Double(d) => Ok(V::Double(-d)),
                _ => Err(Fail::Unsure),
            },
            Op::Cost(inner, units) => {
                if expr::charge(*units) {
                    return Err(Fail::Unsure);
                }
                self.eval(inner)
            }
            Op::Fold(fold) => self.fold(fold),
            Op::Append(append) => self.append(append),
            Op::Call(func, args) => self.call(func, args),
        }
    }

    #[inline(never)]
    fn index(&mut self, ops: &'a [Op; 2]) -> Result<'a> {
        let [container, index] = ops;
        let container = self.eval(container)?;
        let index = self.eval(index)?;
        match (&container, &index) {
            (map, V::Str(key)) if map.is_map() => map.field(key).ok_or(Fail::Error),
            (map, V::OwnedStr(key)) if map.is_map() => map.field(key).ok_or(Fail::Error),
            (V::JsonList(_) | V::List(_), V::Int(i)) => {
                usize::try_from(*i).ok().and_then(|i| container.list_item(i)).ok_or(Fail::Error)
            }
            _ => Err(Fail::Unsure),
        }
    }

    #[inline(never)]
    fn list(&mut self, items: &'a [Op]) -> Result<'a> {
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            list.push(self.eval(item)?);
        }
        Ok(V::List(Rc::new(list)))
    }

    #[inline(never)]
    fn map(&mut self, entries: &'a [(Op, Op)]) -> Result<'a> {
        let mut map: Vec<(V<'a>, V<'a>)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let key = self.eval(key)?;
            let value = self.eval(value)?;
            // Other keys, and repeated ones (an error), are the interpreter's.
            let text = key.as_str().ok_or(Fail::Unsure)?;
            if map.iter().any(|(k, _)| k.as_str() == Some(text)) {
                return Err(Fail::Unsure);
            }
            map.push((key, value));
        }
        Ok(V::Map(Rc::new(map)))
    }

    /// `&&` (`or` false) and `||` (`or` true) as the interpreter runs them:
    /// the left side decides alone; otherwise the right one must be a bool,
    /// and decides, or absorbs an error on the left.
    fn logical(&mut self, ops: &'a [Op; 2], or: bool) -> Result<'a> {
        let [a, b] = ops;
        let left = truth(&self.eval(a));
        match left {
            Err(Fail::Unsure) => return Err(Fail::Unsure),
            Ok(l) if l == or => return Ok(V::Bool(or)),
            _ => {}
        }
        let right = self.eval(b)?;
        match (left, right) {
            (Ok(_), V::Bool(r)) => Ok(V::Bool(r)),
            (Err(_), V::Bool(r)) if r == or => Ok(V::Bool(or)),
            _ => Err(Fail::Error),
        }
    }

    fn set(&mut self, slot: usize, value: V<'a>) -> std::result::Result<(), Fail> {
        *self.locals.get_mut(slot).ok_or(Fail::Unsure)? = value;
        Ok(())
    }

    // The helpers below stay out of `eval`, which recurses most: a small
    // frame there is cheaper on every node.
    #[inline(never)]
    fn fold(&mut self, fold: &'a Fold) -> Result<'a> {
        let init = self.eval(&fold.init)?;
        let range = self.eval(&fold.range)?;
        let items = Items::of(&range)?;
        self.set(fold.accu, init)?;
        let mut pending = false;
        for item in items {
            let cond = self.eval(&fold.cond);
            if !truth(&cond)? {
                break;
            }
            self.set(fold.iter, item)?;
            match (self.eval(&fold.step), fold.logical) {
                (Err(Fail::Unsure), _) => return Err(Fail::Unsure),
                (Err(_), Some(_)) => pending = true,
                (Err(e), None) => return Err(e),
                (Ok(accu), Some(logical)) if pending => {
                    // Only the element that decides the result clears the error.
                    if matches!(accu, V::Bool(b) if b == (logical == Logical::Or)) {
                        pending = false;
                        self.set(fold.accu, accu)?;
                    }
                }
                (Ok(accu), _) => self.set(fold.accu, accu)?,
            }
        }
        if pending {
            return Err(Fail::Error);
        }
        self.eval(&fold.result)
    }

    #[inline(never)]
    fn append(&mut self, append: &'a Append) -> Result<'a> {
        let range = self.eval(&append.range)?;
        let items = Items::of(&range)?;
        let mut list = Vec::with_capacity(items.size_hint().0);
        for item in items {
            let cond = self.eval(&append.cond);
            if !truth(&cond)? {
                break;
            }
            self.set(append.iter, item)?;
            if let Some(guard) = &append.guard {
                let keep = self.eval(guard);
                if !truth(&keep)? {
                    continue;
                }
            }
            for op in &append.items {
                let value = self.eval(op)?;
                list.push(value);
            }
        }
        Ok(V::List(Rc::new(list)))
    }

    #[inline(never)]
    fn call(&mut self, func: &'a Func, args: &'a [Op]) -> Result<'a> {
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            values.push(self.eval(a)?);
        }
        let string = |i: usize| values.get(i).and_then(V::as_str).ok_or(Fail::Unsure);
        let owned = |s: String| Ok(V::OwnedStr(s.into()));
        match func {
            Func::Size => {
                let size = match values.first() {
                    Some(V::JsonMap(fields)) => fields.len(),
                    Some(V::JsonList(items)) => items.len(),
                    Some(V::List(items)) => items.len(),
                    Some(V::Map(entries)) => entries.len(),
                    _ => string(0)?.chars().count(),
                };
                i64::try_from(size).map(V::Int).map_err(|_| Fail::Unsure)
            }
            Func::StartsWith => Ok(V::Bool(string(0)?.starts_with(string(1)?))),
            Func::EndsWith => Ok(V::Bool(string(0)?.ends_with(string(1)?))),
            Func::Contains => Ok(V::Bool(memchr::memmem::find(string(0)?.as_bytes(), string(1)?.as_bytes()).is_some())),
            Func::Matches(compiled) => {
                let text = string(0)?;
                match compiled {
                    Some(re) => Ok(V::Bool(re.is_match(text))),
                    None => {
                        let pattern = string(1)?;
                        if pattern.len() > MAX_PATTERN_BYTES {
                            return Err(Fail::Unsure);
                        }
                        let re = regex::Regex::new(pattern).map_err(|_| Fail::Unsure)?;
                        Ok(V::Bool(re.is_match(text)))
                    }
                }
            }
            Func::String => match values.first() {
                Some(V::Int(i)) => owned(i.to_string()),
                Some(V::UInt(u)) => owned(u.to_string()),
                Some(V::Bool(b)) => owned(b.to_string()),
                Some(v @ (V::Str(_) | V::OwnedStr(_))) => Ok(v.clone()),
                _ => Err(Fail::Unsure),
            },
            Func::Join => {
                let list = values.first().ok_or(Fail::Unsure)?;
                let separator = if values.len() > 1 { string(1)? } else { "" };
                let len = list.list_len().ok_or(Fail::Unsure)?;
                let mut joined = String::new();
                for i in 0..len {
                    let item = list.list_item(i).ok_or(Fail::Unsure)?;
                    if i > 0 {
                        joined.push_str(separator);
                    }
                    joined.push_str(item.as_str().ok_or(Fail::Unsure)?);
                }
                owned(joined)
            }
            Func::Replace => owned(replace(string(0)?, string(1)?, string(2)?).ok_or(Fail::Unsure)?),
            Func::LowerAscii => owned(string(0)?.to_ascii_lowercase()),
            Func::UpperAscii => owned(string(0)?.to_ascii_uppercase()),
            Func::Trim => owned(string(0)?.trim().to_owned()),
            Func::Dyn => values.into_iter().next().ok_or(Fail::Unsure),
        }
    }
}

/// `text` with every `from` made `to`, as `str::replace` does, found with
/// memchr's searcher (the standard library's builds a two-way searcher per call).
fn replace(text: &str, from: &str, to: &str) -> Option<String> {
    if from.is_empty() {
        return Some(text.replace(from, to));
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for at in memchr::memmem::find_iter(text.as_bytes(), from.as_bytes()) {
        out.push_str(text.get(last..at)?);
        out.push_str(to);
        last = at + from.len();
    }
    out.push_str(text.get(last..)?);
    Some(out)
}

/// What a comprehension runs over: a list's elements, a map's keys.
enum Items<'a> {
    Json(std::slice::Iter<'a, Json>),
    Shared(Rc<Vec<V<'a>>>, usize),
    Keys(serde_json::map::Keys<'a>),
    MapKeys(Rc<Vec<(V<'a>, V<'a>)>>, usize),
}

impl<'a> Items<'a> {
    fn of(range: &V<'a>) -> std::result::Result<Items<'a>, Fail> {
        match range {
            V::JsonList(items) => Ok(Items::Json(items.iter())),
            V::List(items) => Ok(Items::Shared(Rc::clone(items), 0)),
            V::JsonMap(fields) => Ok(Items::Keys(fields.keys())),
            V::Map(entries) => Ok(Items::MapKeys(Rc::clone(entries), 0)),
            _ => Err(Fail::Unsure),
        }
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = V<'a>;

    fn next(&mut self) -> Option<V<'a>> {
        match self {
            Items::Json(items) => items.next().map(V::of),
            Items::Shared(items, next) => {
                let item = items.get(*next).cloned();
                *next += 1;
                item
            }
            Items::Keys(keys) => keys.next().map(|k| V::Str(k)),
            Items::MapKeys(entries, next) => {
                let key = entries.get(*next).map(|(k, _)| k.clone());
                *next += 1;
                key
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match self {
            Items::Json(items) => items.len(),
            Items::Shared(items, next) => items.len().saturating_sub(*next),
            Items::Keys(keys) => keys.len(),
            Items::MapKeys(entries, next) => entries.len().saturating_sub(*next),
        };
        (left, Some(left))
    }
}

/// `operand.field`, or `has(operand.field)`.
fn select<'a>(operand: V<'a>, field: &str, test: bool) -> Result<'a> {
    if !operand.is_map() {
        return Err(Fail::Error);
    }
    match operand.field(field) {
        found if test => Ok(V::Bool(found.is_some())),
        Some(value) => Ok(value),
        None => Err(Fail::Error),
    }
}

/// The interpreter's numeric order across int, uint and double; `None`
/// for other pairs, or NaN.
fn numeric_order(a: &V<'_>, b: &V<'_>) -> Option<Ordering> {
    match (a, b) {
        (V::Int(a), V::Int(b)) => Some(a.cmp(b)),
        (V::UInt(a), V::UInt(b)) => Some(a.cmp(b)),
        (V::Int(a), V::UInt(b)) => Some(u64::try_from(*a).map_or(Ordering::Less, |a| a.cmp(b))),
        (V::UInt(a), V::Int(b)) => Some(u64::try_from(*b).map_or(Ordering::Greater, |b| a.cmp(&b))),
        (V::Double(a), V::Double(b)) => a.partial_cmp(b),
        (V::Int(a), V::Double(b)) => (*a as f64).partial_cmp(b),
        (V::Double(a), V::Int(b)) => a.partial_cmp(&(*b as f64)),
        (V::UInt(a), V::Double(b)) => (*a as f64).partial_cmp(b),
        (V::Double(a), V::UInt(b)) => a.partial_cmp(&(*b as f64)),
        _ => None,
    }
}

fn is_number(v: &V<'_>) -> bool {
    matches!(v, V::Int(_) | V::UInt(_) | V::Double(_))
}

/// CEL's equality, as the interpreter has it: numbers across types, lists
/// element by element, maps key by key; different kinds are never equal.
fn equals(a: &V<'_>, b: &V<'_>) -> std::result::Result<bool, Fail> {
    if let (Some(n), Some(m)) = (a.list_len(), b.list_len()) {
        if n != m {
            return Ok(false);
        }
        for i in 0..n {
            let (x, y) = (a.list_item(i).ok_or(Fail::Unsure)?, b.list_item(i).ok_or(Fail::Unsure)?);
            if !equals(&x, &y)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if a.is_map() && b.is_map() {
        let keys = Items::of(a)?;
        if keys.size_hint().0 != Items::of(b)?.size_hint().0 {
            return Ok(false);
        }
        for key in keys {
            let key = key.as_str().ok_or(Fail::Unsure)?;
            let (Some(x), Some(y)) = (a.field(key), b.field(key)) else { return Ok(false) };
            if !equals(&x, &y)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    Ok(match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(a), V::Bool(b)) => a == b,
        _ if is_number(a) && is_number(b) => numeric_order(a, b) == Some(Ordering::Equal),
        _ => match (a.as_str(), b.as_str()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    })
}

fn compare<'a>(how: Compare, a: &V<'a>, b: &V<'a>) -> Result<'a> {
    let order = match how {
        Compare::Eq => return equals(a, b).map(V::Bool),
        Compare::Ne => return equals(a, b).map(|e| V::Bool(!e)),
        _ => match (a.as_str(), b.as_str()) {
            (Some(a), Some(b)) => a.cmp(b),
            _ => numeric_order(a, b).ok_or(Fail::Unsure)?,
        },
    };
    Ok(V::Bool(match how {
        Compare::Lt => order == Ordering::Less,
        Compare::Le => order != Ordering::Greater,
        Compare::Gt => order == Ordering::Greater,
        Compare::Ge | Compare::Eq | Compare::Ne => order != Ordering::Less,
    }))
}

fn contains<'a>(container: &V<'a>, item: &V<'a>) -> Result<'a> {
    match container {
        V::JsonMap(_) | V::Map(_) => match item.as_str() {
            Some(key) => Ok(V::Bool(container.field(key).is_some())),
            None => Err(Fail::Unsure),
        },
        V::JsonList(_) | V::List(_) => {
            let len = container.list_len().unwrap_or(0);
            for i in 0..len {
                let element = container.list_item(i).ok_or(Fail::Unsure)?;
                if equals(&element, item)? {
                    return Ok(V::Bool(true));
                }
            }
            Ok(V::Bool(false))
        }
        _ => Err(Fail::Unsure),
    }
}

fn arith<'a>(how: Arith, a: V<'a>, b: V<'a>) -> Result<'a> {
    let int = |r: Option<i64>| r.map(V::Int).ok_or(Fail::Unsure);
    let uint = |r: Option<u64>| r.map(V::UInt).ok_or(Fail::Unsure);
    match (how, &a, &b) {
        (Arith::Add, V::Int(x), V::Int(y)) => int(x.checked_add(*y)),
        (Arith::Sub, V::Int(x), V::Int(y)) => int(x.checked_sub(*y)),
        (Arith::Mul, V::Int(x), V::Int(y)) => int(x.checked_mul(*y)),
        (Arith::Div, V::Int(x), V::Int(y)) => int(x.checked_div(*y)),
        (Arith::Mod, V::Int(x), V::Int(y)) => int(x.checked_rem(*y)),
        (Arith::Add, V::UInt(x), V::UInt(y)) => uint(x.checked_add(*y)),
        (Arith::Sub, V::UInt(x), V::UInt(y)) => uint(x.checked_sub(*y)),
        (Arith::Mul, V::UInt(x), V::UInt(y)) => uint(x.checked_mul(*y)),
        (Arith::Div, V::UInt(x), V::UInt(y)) => uint(x.checked_div(*y)),
        (Arith::Mod, V::UInt(x), V::UInt(y)) => uint(x.checked_rem(*y)),
        (Arith::Add, V::Double(x), V::Double(y)) => Ok(V::Double(x + y)),
        (Arith::Sub, V::Double(x), V::Double(y)) => Ok(V::Double(x - y)),
        (Arith::Mul, V::Double(x), V::Double(y)) => Ok(V::Double(x * y)),
        (Arith::Div, V::Double(x), V::Double(y)) if *y != 0.0 => Ok(V::Double(x / y)),
        (Arith::Add, _, _) => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => {
                let mut joined = String::with_capacity(x.len() + y.len());
                joined.push_str(x);
                joined.push_str(y);
                Ok(V::OwnedStr(joined.into()))
            }
            _ => match (a.list_len(), b.list_len()) {
                (Some(n), Some(m)) => {
                    let mut list = Vec::with_capacity(n + m);
                    for (v, len) in [(&a, n), (&b, m)] {
                        for i in 0..len {
                            list.push(v.list_item(i).ok_or(Fail::Unsure)?);
                        }
                    }
                    Ok(V::List(Rc::new(list)))
                }
                _ => Err(Fail::Unsure),
            },
        },
        _ => Err(Fail::Unsure),
    }
}
