//! Plain data read through the same YAML path as manifests: paved's
//! configuration, test suites, policy files, kubeconfigs. Every document is
//! kept (not only Kubernetes objects, and a `List` stays a list), the same
//! limits hold, and a typed read names the line and column of the field it
//! refused. Scalars resolve by the [`Schema`] the file's reader uses.

use std::borrow::Cow;

use paved_core::node::{FieldPath, Node, Pos, Span, Value};
use serde::de::DeserializeOwned;

use crate::{DocError, FileError, Limits, fast, parse_document, split};

/// Why a data file could not be read: the whole file, or one document of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("line {}, column {}: {}", .0.pos.line, .0.pos.col, .0.message)]
    Doc(DocError),
}

impl DataError {
    /// Where the problem is, when it has a place.
    pub fn pos(&self) -> Option<Pos> {
        match self {
            DataError::Doc(e) => Some(e.pos),
            DataError::File(FileError::NotUtf8 { pos }) => Some(*pos),
            DataError::File(FileError::HelmTemplate { line }) => Some(Pos { line: *line, col: 1 }),
            DataError::File(_) => None,
        }
    }

    /// The message without its position.
    pub fn message(&self) -> String {
        match self {
            DataError::Doc(e) => e.message.clone(),
            DataError::File(e) => e.to_string(),
        }
    }
}

/// How plain scalars resolve: which tool reads the file decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// YAML 1.1 as go-yaml v2 reads it for Kubernetes (kubectl, client-go):
    /// `yes`/`on`/`off` are booleans, `0755` is octal. Kubeconfigs.
    Kubernetes,
    /// YAML 1.2's core schema: only `true`/`false` are booleans, `0755` is
    /// decimal, `0b1`, `1_000` and `off` are strings. paved's own
    /// configuration (`best-practices/require-probes: off`) and the test
    /// suites of Gatekeeper and Kyverno, whose readers are YAML 1.2.
    Core,
}

/// Every non-empty document of a data file, in order. Unlike [`crate::load`],
/// a document that does not parse fails the whole file: data is read whole
/// or not at all.
pub fn load_data<'a>(text: &'a str, limits: &Limits, schema: Schema) -> Result<Vec<Node<'a>>, DataError> {
    if text.len() > limits.max_file_bytes {
        return Err(FileError::TooLarge { limit: limits.max_file_bytes }.into());
    }
    let mut nodes = Vec::new();
    for (n, doc) in split::documents(text).enumerate() {
        if n >= limits.max_documents {
            return Err(FileError::TooManyDocuments { limit: limits.max_documents }.into());
        }
        let parsed = match fast::parse(doc.text, doc.first_line, limits) {
            Some(node) => node,
            None => parse_document(doc.text, doc.first_line, limits).map_err(DataError::Doc)?,
        };
        nodes.extend(parsed.filter(|node| !node.is_null()));
    }
    if schema == Schema::Core && !nodes.is_empty() {
        let lines = LineStarts::of(text);
        for node in &mut nodes {
            as_core_schema(node, text, &lines);
        }
    }
    Ok(nodes)
}

/// Byte offsets where each line starts, to find a scalar's text by its span.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn of(text: &str) -> LineStarts {
        LineStarts(std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect())
    }

    /// The byte offset of a 1-based line and code-point column.
    fn offset(&self, text: &str, pos: Pos) -> Option<usize> {
        let start = *self.0.get(pos.line.checked_sub(1)? as usize)?;
        let line = &text[start..];
        let col = pos.col.checked_sub(1)? as usize;
        Some(start + line.char_indices().nth(col).map_or(line.len(), |(i, _)| i))
    }

    fn slice<'a>(&self, text: &'a str, span: Span) -> Option<&'a str> {
        let (from, to) = (self.offset(text, span.start)?, self.offset(text, span.end)?);
        text.get(from..to)
    }
}

/// Re-reads the scalars YAML 1.1 and 1.2 resolve differently from their
/// source text: the parsers resolve as Kubernetes does, so only booleans and
/// numbers can need it (a quoted scalar is a string in both).
fn as_core_schema<'a>(node: &mut Node<'a>, text: &'a str, lines: &LineStarts) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|item| as_core_schema(item, text, lines)),
        Value::Map(map) => map.entries.iter_mut().for_each(|e| as_core_schema(&mut e.value, text, lines)),
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            let Some(raw) = lines.slice(text, node.span) else { return };
            if let Some(value) = core_scalar(raw.trim_end()) {
                node.value = value;
            }
        }
        Value::Null | Value::Str(_) => {}
    }
}

/// What a YAML 1.1 boolean or number is under YAML 1.2's core schema, when
/// that differs (`None`: the same, or text the parser did not take as plain).
fn core_scalar(raw: &str) -> Option<Value<'_>> {
    let string = || Some(Value::Str(Cow::Borrowed(raw)));
    match raw {
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => None,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off"
        | "OFF" => string(),
        _ if raw.starts_with(['"', '\'', '!']) => None,
        _ if raw.contains('_') => string(),
        _ => {
            let digits = raw.trim_start_matches(['-', '+']);
            if digits.starts_with("0b") {
                return string();
            }
            // 1.1 read `0755` as octal; 1.2's core schema reads decimal digits.
            let decimal = digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
            decimal.then(|| raw.parse::<i64>().ok().map(Value::Int)).flatten()
        }
    }
}

/// Every non-empty document of a data file, as JSON values.
pub fn load_values(text: &str, limits: &Limits, schema: Schema) -> Result<Vec<serde_json::Value>, DataError> {
    load_data(text, limits, schema)?.iter().map(|node| to_value(node).map_err(DataError::Doc)).collect()
}

/// A document as `T`; a field `T` refuses is reported at its position (or
/// its nearest parent's, for one that is missing).
pub fn from_node<T: DeserializeOwned>(node: &Node<'_>) -> Result<T, DocError> {
    let value = to_value(node)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = field_path(e.path());
        let message = e.inner().to_string();
        // A field that should not be there is pointed at by its key.
        let key = message.starts_with("unknown field").then(|| key_position(node, &path)).flatten();
        let pos = match (key, node.at_path(&path)) {
            (Some(pos), _) => pos,
            (None, Some(field)) => field.span.start,
            (None, None) => node.locate(&path).0.start,
        };
        let pos = if pos.line == 0 { node.span.start } else { pos };
        let at = if path.0.is_empty() { String::new() } else { format!("{}: ", path.render()) };
        DocError { pos, message: format!("{at}{message}") }
    })
}

/// Where the key of the last step of `path` stands.
fn key_position(node: &Node<'_>, path: &FieldPath) -> Option<Pos> {
    let (last, parent) = path.0.split_last()?;
    let paved_core::node::Seg::Key(key) = last else { return None };
    let parent = node.at_path(&FieldPath(parent.to_vec()))?;
    Some(parent.as_map()?.entries.iter().find(|e| e.key == *key)?.key_span.start)
}

/// The one document of a data file as `T`; an empty file is `T::default()`.
pub fn from_str<T: DeserializeOwned + Default>(text: &str, limits: &Limits, schema: Schema) -> Result<T, DataError> {
    let nodes = load_data(text, limits, schema)?;
    match nodes.as_slice() {
        [] => Ok(T::default()),
        [node] => from_node(node).map_err(DataError::Doc),
        [_, second, ..] => Err(DataError::Doc(DocError {
            pos: second.span.start,
            message: "a second document; this file holds one".into(),
        })),
    }
}

fn to_value(node: &Node<'_>) -> Result<serde_json::Value, DocError> {
    // Only a float JSON cannot hold (NaN, infinity) fails here.
    serde_json::to_value(node).map_err(|e| DocError { pos: node.span.start, message: e.to_string() })
}

/// serde's path (`policies.foo`, `items[2]`) as paved's.
fn field_path(path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    let mut out = FieldPath::root();
    for segment in path.iter() {
        out = match segment {
            Segment::Seq { index } => out.index(*index),
            Segment::Map { key } => out.key(key.clone()),
            Segment::Enum { .. } | Segment::Unknown => out,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Settings {
        #[serde(default)]
        name: String,
        #[serde(default)]
        ports: Vec<u16>,
        #[serde(default)]
        on: bool,
    }

    #[test]
    fn a_refused_field_is_named_at_its_line_and_column() {
        let text = "name: web\nports:\n  - 80\n  - not-a-port\n";
        let err = from_str::<Settings>(text, &Limits::default(), Schema::Core).unwrap_err();
        assert_eq!(err.pos(), Some(Pos { line: 4, col: 5 }), "{err}");
        assert!(err.message().starts_with("ports[1]: invalid type: string \"not-a-port\""), "{err}");
        let err = from_str::<Settings>("name: web\n\nextra: 1\n", &Limits::default(), Schema::Core).unwrap_err();
        assert_eq!(err.pos().map(|p| p.line), Some(3), "{err}");
        assert!(err.message().contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn scalars_resolve_by_the_schema_of_the_reader_and_empty_is_default() {
        let text = "name: web\nports: [0x50]\non: yes\n";
        let s: Settings = from_str(text, &Limits::default(), Schema::Kubernetes).unwrap();
        assert_eq!(s, Settings { name: "web".into(), ports: vec![80], on: true });
        let err = from_str::<Settings>(text, &Limits::default(), Schema::Core).unwrap_err();
        assert!(err.message().starts_with("on: invalid type: string \"yes\""), "{err}");
        assert_eq!(from_str::<Settings>("# nothing\n", &Limits::default(), Schema::Core).unwrap(), Settings::default());
        let values = |schema| {
            load_values("[yes, off, 'no', 0755, 0b11, 1_000, true, 12, -010, 1.5, \"on\"]", &Limits::default(), schema)
                .unwrap()
        };
        assert_eq!(
            values(Schema::Kubernetes)[0],
            serde_json::json!([true, false, "no", 493, 3, 1000, true, 12, -8, 1.5, "on"])
        );
        assert_eq!(
            values(Schema::Core)[0],
            serde_json::json!(["yes", "off", "no", 755, "0b11", "1_000", true, 12, -10, 1.5, "on"])
        );
        let block =
            load_values("a:\n  b: off   # comment\n  c: [on , 07]\n", &Limits::default(), Schema::Core).unwrap();
        assert_eq!(block[0], serde_json::json!({"a": {"b": "off", "c": ["on", 7]}}));
    }

    #[test]
    fn every_document_is_kept_and_a_broken_one_fails_the_file_where_it_is() {
        let values =
            load_values("a: 1\n---\n- x\n---\n---\nkind: List\nitems: []\n", &Limits::default(), Schema::Core).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[1], serde_json::json!(["x"]));
        let err = load_values("a: 1\n---\nb: [1,\n", &Limits::default(), Schema::Core).unwrap_err();
        assert_eq!(err.pos().map(|p| p.line), Some(3), "{err}");
        let err = from_str::<Settings>("name: a\n---\nname: b\n", &Limits::default(), Schema::Core).unwrap_err();
        assert_eq!(err.pos().map(|p| p.line), Some(3), "{err}");
    }

    #[test]
    fn alias_expansion_is_bounded_in_data_too() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(matches!(load_data(&text, &Limits::default(), Schema::Core), Err(DataError::Doc(_))));
    }
}
