//! The fast path's contract, checked in one place: whenever it answers, the
//! full parser gives the same tree. The differential test and the fuzz target
//! both call [`fast_path_agreement`].

use paved_core::node::{Node, Value};

use crate::{Limits, build, fast};

/// The one refusal of the full parser that the fast path overrules on
/// purpose: libyaml (and so kubectl and Gatekeeper) accepts continuation
/// lines of quoted scalars at any indentation; saphyr does not.
pub const LENIENT: &str = "invalid indentation in quoted scalar";

/// How the fast path did on one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// It gave up; the full parser decides alone.
    FellBack,
    /// It answered, and the full parser gave the same tree.
    Agreed,
    /// It answered where the full parser refuses, for the [`LENIENT`] reason only.
    Lenient,
}

/// Parses one document both ways. `Err` describes the first disagreement.
pub fn fast_path_agreement(text: &str, first_line: u32, limits: &Limits) -> Result<Agreement, String> {
    let Some(fast) = fast::parse(text, first_line, limits) else { return Ok(Agreement::FellBack) };
    let full = match build::parse_document(text, first_line, limits) {
        Ok(full) => full,
        Err(e) if e.message == LENIENT => return Ok(Agreement::Lenient),
        Err(e) => return Err(format!("the fast path accepted what the full parser refuses ({e})")),
    };
    match (&fast, &full) {
        (None, None) => Ok(Agreement::Agreed),
        (Some(a), Some(b)) => same(a, b, "").map(|()| Agreement::Agreed),
        _ => Err(format!("fast path found a document: {}, full parser: {}", fast.is_some(), full.is_some())),
    }
}

/// Compares two trees: values, key order and positions, scalar positions.
fn same(a: &Node<'_>, b: &Node<'_>, path: &str) -> Result<(), String> {
    let is_scalar = |n: &Node<'_>| matches!(n.value, Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_));
    if is_scalar(a) && a.span.start != b.span.start {
        return Err(format!("{path}: scalar starts at {:?} (fast) vs {:?} (full)", a.span.start, b.span.start));
    }
    match (&a.value, &b.value) {
        (Value::Map(x), Value::Map(y)) => {
            if x.entries.len() != y.entries.len() {
                return Err(format!("{path}: {} keys (fast) vs {} (full)", x.entries.len(), y.entries.len()));
            }
            for (e, f) in x.entries.iter().zip(&y.entries) {
                if e.key != f.key || e.key_span.start != f.key_span.start {
                    return Err(format!(
                        "{path}: key {:?}@{:?} (fast) vs {:?}@{:?} (full)",
                        e.key, e.key_span.start, f.key, f.key_span.start
                    ));
                }
                same(&e.value, &f.value, &format!("{path}.{}", e.key))?;
            }
            Ok(())
        }
        (Value::Seq(x), Value::Seq(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} items (fast) vs {} (full)", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().try_for_each(|(i, (p, q))| same(p, q, &format!("{path}[{i}]")))
        }
        (Value::Float(x), Value::Float(y)) if x.is_nan() && y.is_nan() => Ok(()),
        (x, y) if x == y => Ok(()),
        (x, y) => Err(format!("{path}: {x:?} (fast) vs {y:?} (full)")),
    }
}
