//! The API server's `semver` CEL library: `semver('1.2.3')`, `isSemver`,
//! `major`/`minor`/`patch`, and comparisons. Strict Semantic Versioning 2.0
//! unless the optional second argument asks to normalize (`v1.2` reads as
//! `1.2.0`, leading zeros dropped), as upstream.

use std::cmp::Ordering;
use std::sync::Arc;

use cel::objects::Opaque;
use cel::{ExecutionError, Value};

pub const TYPE_NAME: &str = "kubernetes.Semver";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver(semver::Version);

impl Opaque for Semver {
    fn runtime_type_name(&self) -> &str {
        TYPE_NAME
    }
}

pub fn parse(text: &str, normalize: bool) -> Result<Semver, String> {
    let text = if normalize { normalized(text) } else { text.to_owned() };
    semver::Version::parse(&text).map(Semver).map_err(|e| format!("Semver parse error: {e}"))
}

/// `v1.02` → `1.2.0`: a leading `v` dropped, missing parts added, leading
/// zeros removed from the numeric core.
fn normalized(text: &str) -> String {
    let text = text.strip_prefix('v').unwrap_or(text);
    let split = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(split);
    let mut parts: Vec<String> = core
        .split('.')
        .map(|p| {
            let trimmed = p.trim_start_matches('0');
            if trimmed.is_empty() && !p.is_empty() { "0".to_owned() } else { trimmed.to_owned() }
        })
        .collect();
    while parts.len() < 3 {
        parts.push("0".to_owned());
    }
    format!("{}{rest}", parts.join("."))
}

/// The text and the optional `normalize` flag.
fn args<'a>(f: &str, args: &'a [Value]) -> Result<(&'a str, bool), ExecutionError> {
    Ok((crate::libs::string(f, args, 0)?, matches!(args.get(1), Some(Value::Bool(true)))))
}

fn version<'a>(f: &str, args: &'a [Value], i: usize) -> Result<&'a semver::Version, ExecutionError> {
    crate::libs::opaque::<Semver>(f, args, i, "a semver").map(|s| &s.0)
}

pub fn semver(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    let (text, normalize) = args(f, values)?;
    let parsed = parse(text, normalize).map_err(|why| crate::libs::error(f, why))?;
    Ok(Value::Opaque(Arc::new(parsed)))
}

pub fn is_semver(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    let (text, normalize) = args(f, values)?;
    Ok(Value::Bool(parse(text, normalize).is_ok()))
}

pub fn major(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(i64::try_from(version(f, values, 0)?.major).unwrap_or(i64::MAX)))
}

pub fn minor(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(i64::try_from(version(f, values, 0)?.minor).unwrap_or(i64::MAX)))
}

pub fn patch(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(i64::try_from(version(f, values, 0)?.patch).unwrap_or(i64::MAX)))
}

/// Precedence as Semantic Versioning defines it: build metadata is ignored.
fn order(f: &str, values: &[Value]) -> Result<Ordering, ExecutionError> {
    Ok(version(f, values, 0)?.cmp_precedence(version(f, values, 1)?))
}

pub fn is_greater_than(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(order(f, values)? == Ordering::Greater))
}

pub fn is_less_than(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(order(f, values)? == Ordering::Less))
}

pub fn compare_to(f: &str, values: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(match order(f, values)? {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strict_unless_normalized() {
        assert!(parse("1.2.3-rc.1+build", false).is_ok());
        assert!(parse("v1.2.3", false).is_err() && parse("1.2", false).is_err() && parse("01.2.3", false).is_err());
        assert_eq!(parse("v01.2", true).unwrap().0, semver::Version::new(1, 2, 0));
        assert_eq!(parse("v1.0.0-rc.1", true).unwrap().0.pre.as_str(), "rc.1");
    }
}
