//! The object model every surface evaluates: a JSON-like tree whose nodes
//! remember where they came from in the source text.
//!
//! Objects from YAML or JSON files carry real spans; objects that arrive as
//! JSON over the wire (admission) carry [`Span::NONE`]. Rules never look at
//! spans: they name a [`FieldPath`], and [`Node::locate`] turns that into a
//! position afterwards, falling back to the nearest existing parent.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// A position in a source text: 1-based line, 1-based column in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A half-open range of source text. `Span::NONE` (line 0) means "no source".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub const NONE: Span = Span { start: Pos { line: 0, col: 0 }, end: Pos { line: 0, col: 0 } };

    pub fn is_none(&self) -> bool {
        self.start.line == 0
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        if self.is_none() {
            return other;
        }
        if other.is_none() {
            return self;
        }
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A value in an object tree. Strings borrow from the source text (or the
/// JSON value) wherever they can: loading allocates only for escapes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    Map(Map<'a>),
}

/// A node: a value and where it stands in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Node<'a> {
    pub span: Span,
    pub value: Value<'a>,
}

/// A mapping that keeps insertion order and the span of each key.
///
/// Kubernetes objects have small mappings (a handful of keys), so a vector
/// with linear lookup beats a hash map on both speed and memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map<'a> {
    pub entries: Vec<Entry<'a>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry<'a> {
    pub key: Cow<'a, str>,
    pub key_span: Span,
    pub value: Node<'a>,
}

impl<'a> Map<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry<'a>> {
        // The last duplicate wins, as in Kubernetes' YAML decoding.
        self.entries.iter().rev().find(|e| &*e.key == key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node<'a>)> {
        self.entries.iter().map(|e| (&*e.key, &e.value))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> Node<'a> {
    pub fn new(value: Value<'a>) -> Node<'a> {
        Node { span: Span::NONE, value }
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.value {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// Follows a chain of keys; `None` as soon as one is missing.
    pub fn at(&self, keys: &[&str]) -> Option<&Node<'a>> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The node a field path leads to; `None` as soon as a step is missing.
    pub fn at_path(&self, path: &FieldPath) -> Option<&Node<'a>> {
        path.0.iter().try_fold(self, |node, seg| match (seg, &node.value) {
            (Seg::Key(k), Value::Map(m)) => m.get(k),
            (Seg::Index(i), Value::Seq(items)) => items.get(*i as usize),
            _ => None,
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map<'a>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> &[Node<'a>] {
        match &self.value {
            Value::Seq(s) => s,
            _ => &[],
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// `true` only for a boolean true: what the API server would store.
    pub fn is_true(&self) -> bool {
        self.as_bool() == Some(true)
    }

    /// Where a field path points in the source: the key and value of the
    /// field itself, or, when it is missing, the key of its nearest existing
    /// parent (one line, not the whole block). Returns the span and whether
    /// the field itself exists.
    pub fn locate(&self, path: &FieldPath) -> (Span, bool) {
        let mut node = self;
        let mut full = self.span;
        let mut anchor = first_line(self);
        for seg in &path.0 {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(m)) => {
                    m.entry(k).map(|e| (e.key_span.join(e.value.span), e.key_span, &e.value))
                }
                (Seg::Index(i), Value::Seq(items)) => items.get(*i as usize).map(|n| (n.span, first_line(n), n)),
                _ => None,
            };
            match next {
                Some((f, a, n)) => {
                    if !f.is_none() {
                        full = f;
                    }
                    if !a.is_none() {
                        anchor = a;
                    }
                    node = n;
                }
                None => return (anchor, false),
            }
        }
        (full, true)
    }

    /// Builds a node tree (without spans) from JSON, as admission requests
    /// arrive, borrowing its strings.
    pub fn from_json(v: &'a serde_json::Value) -> Node<'a> {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(Cow::Borrowed(s)),
            J::Array(items) => Value::Seq(items.iter().map(Node::from_json).collect()),
            J::Object(o) => Value::Map(Map {
                entries: o
                    .iter()
                    .map(|(k, v)| Entry { key: k.as_str().into(), key_span: Span::NONE, value: Node::from_json(v) })
                    .collect(),
            }),
        };
        Node::new(value)
    }
}

impl Default for Node<'_> {
    fn default() -> Self {
        Node::new(Value::Null)
    }
}

/// Writes a node tree back as JSON (spans are not part of it).
impl serde::Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match &self.value {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            Value::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for e in &m.entries {
                    map.serialize_entry(&*e.key, &e.value)?;
                }
                map.end()
            }
        }
    }
}

/// A short span for pointing at a node: the first key of a mapping, else the
/// node itself when it fits on one line, else its start.
fn first_line(n: &Node<'_>) -> Span {
    match &n.value {
        Value::Map(m) => m.entries.first().map_or(n.span, |e| e.key_span),
        _ if n.span.end.line > n.span.start.line => Span { start: n.span.start, end: n.span.start },
        _ => n.span,
    }
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    /// Almost always a literal: only keys taken from the object allocate.
    Key(Cow<'static, str>),
    Index(u32),
}

/// A path to a field, printed the way Kubernetes prints them:
/// `spec.template.spec.containers[0].securityContext.runAsNonRoot`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    pub fn key(mut self, k: impl Into<Cow<'static, str>>) -> FieldPath {
        self.0.push(Seg::Key(k.into()));
        self
    }

    /// Appends several literal keys: `root().keys(&["spec", "template"])`.
    pub fn keys(mut self, keys: &[&'static str]) -> FieldPath {
        self.0.reserve(keys.len());
        keys.iter().fold(self, |p, k| p.key(*k))
    }

    pub fn index(mut self, i: usize) -> FieldPath {
        self.0.push(Seg::Index(u32::try_from(i).unwrap_or(u32::MAX)));
        self
    }

    /// Parses `a.b[0].c`; keys containing dots cannot be written this way and
    /// are built with [`FieldPath::key`] instead.
    pub fn parse(s: &str) -> FieldPath {
        let mut p = FieldPath::root();
        for part in s.split('.').filter(|p| !p.is_empty()) {
            let (name, rest) = part.split_once('[').unwrap_or((part, ""));
            if !name.is_empty() {
                p = p.key(name.to_owned());
            }
            for idx in rest.split('[') {
                if let Ok(i) = idx.trim_end_matches(']').parse::<usize>() {
                    p = p.index(i);
                }
            }
        }
        p
    }
}

impl FieldPath {
    /// The path as Kubernetes prints it; also what `Display` writes.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.0.len() * 12);
        self.render_into(&mut out);
        out
    }

    /// Appends the path to `out`: reporters write it straight into their buffer.
    pub fn render_into(&self, out: &mut String) {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if k.bytes().any(|b| b == b'.' || b == b'/') => {
                    if k.contains(['"', '\\']) || k.contains(char::is_control) {
                        let _ = write!(out, "[{k:?}]");
                    } else {
                        out.push_str("[\"");
                        out.push_str(k);
                        out.push_str("\"]");
                    }
                }
                Seg::Key(k) => {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(n) => {
                    out.push('[');
                    out.push_str(itoa::Buffer::new().format(*n));
                    out.push(']');
                }
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nodes_write_back_as_the_json_they_were_read_from() {
        let text = r#"{"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{"c":"plain"}}"#;
        let node = crate::json::parse(text).unwrap_or_default();
        let back = serde_json::to_value(&node).unwrap_or_default();
        let want: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(back, want);
    }

    use super::*;

    #[test]
    fn path_roundtrip() {
        let p = FieldPath::parse("spec.template.spec.containers[0].securityContext.runAsNonRoot");
        assert_eq!(p.to_string(), "spec.template.spec.containers[0].securityContext.runAsNonRoot");
        assert_eq!(p.0.len(), 7);
    }

    #[test]
    fn indices_render_in_full() {
        let p = FieldPath::root().key("items").index(0).key("x").index(4_294_967_295).index(10);
        assert_eq!(p.to_string(), "items[0].x[4294967295][10]");
    }

    #[test]
    fn annotation_keys_are_quoted() {
        let p = FieldPath::root().key("metadata").key("annotations").key("paved.dev/exempt");
        assert_eq!(p.to_string(), "metadata.annotations[\"paved.dev/exempt\"]");
    }

    #[test]
    fn a_field_path_leads_to_its_node_or_to_nothing() {
        let json = serde_json::json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let node = Node::from_json(&json);
        let at = |p: &str| node.at_path(&FieldPath::parse(p)).and_then(Node::as_str);
        assert_eq!(at("spec.containers[1].name"), Some("b"));
        assert_eq!(at("spec.containers[2].name"), None);
        assert_eq!(at("spec.containers.name"), None);
    }

    #[test]
    fn locate_falls_back_to_nearest_parent() {
        let json = serde_json::json!({"spec": {"containers": [{"name": "a"}]}});
        let mut node = Node::from_json(&json);
        // give the container a recognisable span
        if let Value::Map(m) = &mut node.value
            && let Value::Map(spec) = &mut m.entries[0].value.value
        {
            spec.entries[0].key_span = Span { start: Pos { line: 2, col: 3 }, end: Pos { line: 2, col: 13 } };
        }
        let (span, exact) = node.locate(&FieldPath::parse("spec.containers[0].securityContext.runAsNonRoot"));
        assert!(!exact);
        // the container node has no span of its own (JSON), so the nearest spanned parent wins
        assert_eq!(span.start, Pos { line: 2, col: 3 });
        let (span, exact) = node.locate(&FieldPath::parse("spec.containers"));
        assert!(exact);
        assert_eq!(span.start, Pos { line: 2, col: 3 });
    }
}
