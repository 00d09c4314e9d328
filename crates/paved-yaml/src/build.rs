//! Builds one document's node tree from saphyr-parser events.
//!
//! An explicit stack instead of recursion, and a running node count that
//! includes what aliases expand to, keep every input within [`Limits`].

use std::borrow::Cow;
use std::collections::HashMap;

use paved_core::node::{Entry, Map, Node, Pos, Span, Value};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

use crate::{DocError, Limits};

enum Frame<'a> {
    Seq {
        start: Pos,
        anchor: usize,
        first_node: usize,
        items: Vec<Node<'a>>,
    },
    Map {
        start: Pos,
        anchor: usize,
        first_node: usize,
        entries: Vec<Entry<'a>>,
        key: Option<(Cow<'a, str>, Span)>,
        /// Values of `<<` merge keys, applied when the mapping ends.
        merges: Vec<Node<'a>>,
    },
}

struct Builder<'a, 'l> {
    first_line: u32,
    limits: &'l Limits,
    stack: Vec<Frame<'a>>,
    /// Nodes built so far, counting alias expansions.
    nodes: usize,
    /// Anchored nodes and how many nodes each contains.
    anchors: HashMap<usize, (Node<'a>, usize)>,
    root: Option<Node<'a>>,
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'a> Builder<'a, '_> {
    fn pos(&self, m: Marker) -> Pos {
        Pos {
            line: self.first_line.saturating_add(u32_of(m.line())).saturating_sub(1),
            col: u32_of(m.col()).saturating_add(1),
        }
    }

    fn error(&self, m: Marker, message: impl Into<String>) -> DocError {
        DocError { pos: self.pos(m), message: message.into() }
    }

    fn count(&mut self, n: usize, at: Marker) -> Result<(), DocError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(self.error(
                at,
                format!(
                    "document has more than {} nodes (counting alias expansion); refusing to expand it",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame<'a>, at: Marker) -> Result<(), DocError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error(at, format!("nesting deeper than {} levels", self.limits.max_depth)));
        }
        self.count(1, at)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Hands a finished node to its parent (or makes it the root).
    fn finish(
        &mut self,
        node: Node<'a>,
        anchor: usize,
        size: usize,
        raw_key: Option<Cow<'a, str>>,
        at: Marker,
    ) -> Result<(), DocError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, merges, .. }) => match key.take() {
                None => match raw_key {
                    Some(k) => {
                        *key = Some((k, node.span));
                        Ok(())
                    }
                    None => Err(DocError { pos: node.span.start, message: "mapping keys must be scalars".into() }),
                },
                Some((k, key_span)) => {
                    if &*k == "<<" {
                        merges.push(node);
                    } else {
                        entries.push(Entry { key: k, key_span, value: node });
                    }
                    let _ = at;
                    Ok(())
                }
            },
        }
    }

    fn close(&mut self, end: Marker) -> Result<(), DocError> {
        let end_pos = self.pos(end);
        let Some(frame) = self.stack.pop() else {
            return Err(self.error(end, "unbalanced end of collection"));
        };
        let (node, anchor, first_node) = match frame {
            Frame::Seq { start, anchor, first_node, items } => {
                (Node { span: Span { start, end: end_pos }, value: Value::Seq(items) }, anchor, first_node)
            }
            Frame::Map { start, anchor, first_node, mut entries, key, merges } => {
                if key.is_some() {
                    return Err(self.error(end, "mapping key without a value"));
                }
                apply_merges(&mut entries, merges);
                (Node { span: Span { start, end: end_pos }, value: Value::Map(Map { entries }) }, anchor, first_node)
            }
        };
        let size = self.nodes - first_node;
        self.finish(node, anchor, size, None, end)
    }
}

/// `<<: *base` (or a list of them): keys not set explicitly come from the
/// merged mappings, earlier ones first, as go-yaml does.
fn apply_merges<'a>(entries: &mut Vec<Entry<'a>>, merges: Vec<Node<'a>>) {
    for merged in merges {
        let maps: Vec<Node<'a>> = match merged.value {
            Value::Map(_) => vec![merged],
            Value::Seq(items) => items,
            _ => continue,
        };
        for m in maps {
            if let Value::Map(m) = m.value {
                for e in m.entries {
                    if !entries.iter().any(|x| x.key == e.key) {
                        entries.push(e);
                    }
                }
            }
        }
    }
}

/// Resolves a plain scalar as go-yaml v2 (YAML 1.1) does for Kubernetes.
pub fn resolve_plain(s: &str) -> Value<'_> {
    plain_non_string(s).unwrap_or(Value::Str(Cow::Borrowed(s)))
}

fn resolve_plain_cow(s: Cow<'_, str>) -> Value<'_> {
    match plain_non_string(&s) {
        Some(v) => v,
        None => Value::Str(s),
    }
}

/// The value of a plain scalar when it is a null, a boolean or a number.
fn plain_non_string(s: &str) -> Option<Value<'static>> {
    Some(match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => Value::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => return plain_number(s),
    })
}

/// Integers (decimal, octal, hex, binary) and floats, or `None`.
fn plain_number(s: &str) -> Option<Value<'static>> {
    let first = *s.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(i) = parse_int(s) {
        return Some(Value::Int(i));
    }
    let is_float_text = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'_'))
        && s.bytes().any(|b| b.is_ascii_digit());
    is_float_text.then(|| s.replace('_', "").parse::<f64>().ok()).flatten().map(Value::Float)
}

fn parse_int(s: &str) -> Option<i64> {
    let cleaned;
    let s = if s.contains('_') {
        cleaned = s.replace('_', "");
        cleaned.as_str()
    } else {
        s
    };
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// Parses one document. `Ok(None)` for a document with no content.
pub fn parse_document<'a>(text: &'a str, first_line: u32, limits: &Limits) -> Result<Option<Node<'a>>, DocError> {
    let mut b = Builder { first_line, limits, stack: Vec::new(), nodes: 0, anchors: HashMap::new(), root: None };
    let mut documents = 0;
    // A parser error at the end of input is reported on the document's last line.
    let last_line = first_line.saturating_add(u32_of(text.trim_end().lines().count().max(1))).saturating_sub(1);
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| DocError {
            pos: clamp(b.pos(*e.marker()), last_line),
            message: match e.info() {
                "recursion limit exceeded" => {
                    format!("nesting deeper than the parser's limit ({} levels here)", limits.max_depth)
                }
                info => info.to_string(),
            },
        })?;
        let at = span.start;
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(b.error(at, "a document after '...' must start with '---'"));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                b.count(1, at)?;
                let span = Span { start: b.pos(span.start), end: b.pos(span.end) };
                // A key keeps its text as written; a value is resolved.
                let is_key = matches!(b.stack.last(), Some(Frame::Map { key: None, .. }));
                let (node, raw_key) = if is_key && anchor == 0 {
                    (Node { span, value: Value::Null }, Some(value))
                } else {
                    let raw_key = is_key.then(|| value.clone());
                    (Node { span, value: scalar_value(value, style, tag.as_deref()) }, raw_key)
                };
                b.finish(node, anchor, 1, raw_key, at)?;
            }
            Event::Alias(id) => {
                let Some((node, size)) = b.anchors.get(&id).map(|(n, s)| (n.clone(), *s)) else {
                    return Err(b.error(at, "alias to an unknown anchor"));
                };
                b.count(size, at)?;
                let raw_key = match (&node.value, b.stack.last()) {
                    (Value::Str(s), Some(Frame::Map { key: None, .. })) => Some(s.clone()),
                    _ => None,
                };
                b.finish(node, 0, size, raw_key, at)?;
            }
            Event::SequenceStart(anchor, _) => {
                let frame = Frame::Seq { start: b.pos(at), anchor, first_node: b.nodes, items: Vec::new() };
                b.open(frame, at)?;
            }
            Event::MappingStart(anchor, _) => {
                let frame = Frame::Map {
                    start: b.pos(at),
                    anchor,
                    first_node: b.nodes,
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                };
                b.open(frame, at)?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(span.end)?,
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(b.root.filter(|n| !n.is_null()))
}

fn clamp(pos: Pos, last_line: u32) -> Pos {
    if pos.line > last_line { Pos { line: last_line, col: 1 } } else { pos }
}

fn scalar_value<'a>(value: Cow<'a, str>, style: ScalarStyle, tag: Option<&saphyr_parser::Tag>) -> Value<'a> {
    if let Some(tag) = tag.filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!") {
        if tag.suffix == "str" {
            return Value::Str(value);
        }
        return resolve_plain_cow(value);
    }
    match style {
        ScalarStyle::Plain => resolve_plain_cow(value),
        _ => Value::Str(value),
    }
}
