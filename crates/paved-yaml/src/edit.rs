//! A JSON Patch made as edits of the YAML text it came from: what is not
//! changed stays byte for byte (comments, key order, quoting, indentation).
//!
//! Each operation is one edit, computed on the text as the operations before
//! it left it (the document is read again in between), so two insertions
//! into one mapping never fight over a position. When the text is done, it
//! is read once more and must be the patched object exactly; if not, or if
//! the document's shape is one an edit cannot extend safely (anchors and
//! aliases, flow collections over several lines, a list item inserted by
//! position), the document is left as it was and the reason said.

use std::borrow::Cow;

use paved_core::node::{Node, Pos, Value};
use serde_json::Value as Json;

use crate::Limits;

/// A replacement of the text between two positions (1-based lines and
/// columns in characters; `start == end` inserts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub start: Pos,
    pub end: Pos,
    pub text: String,
}

/// Why a document could not be edited; nothing of it was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannotEdit {
    #[error("{line}:{col}: {why}", line = at.line, col = at.col)]
    Shape { at: Pos, why: Cow<'static, str> },
    #[error("it uses anchors or aliases, so one edit could change several places")]
    Anchors,
    #[error("it does not parse: {0}")]
    Unparsed(String),
    #[error("the edited text did not read back as the patched object, so it was left as written")]
    Mismatch,
    #[error("{0}")]
    Patch(String),
}

/// `ops` (RFC 6902, against the document's root) made on `doc`, the text of
/// one YAML document (as [`crate::documents`] yields it). The new text, or
/// why it cannot be made safely.
pub fn patch_document(doc: &str, ops: &[paved_core::mutate::PatchOp], limits: &Limits) -> Result<String, CannotEdit> {
    if ops.is_empty() {
        return Ok(doc.to_owned());
    }
    if has_anchors(doc) {
        return Err(CannotEdit::Anchors);
    }
    let before = read_back(doc, limits)?;
    let mut expected = before.clone();
    let patch: json_patch::Patch = serde_json::to_value(ops)
        .and_then(serde_json::from_value)
        .map_err(|e| CannotEdit::Patch(format!("not a JSON Patch: {e}")))?;
    json_patch::patch(&mut expected, &patch).map_err(|e| CannotEdit::Patch(e.to_string()))?;
    let newline = if doc.contains("\r\n") { "\r\n" } else { "\n" };
    let mut text = doc.to_owned();
    for op in ops {
        let root = parse(&text, limits)?;
        if let Some(edit) = edit_for(&text, &root, op, newline)? {
            text = apply(&text, &edit);
        }
    }
    if read_back(&text, limits)? != expected {
        return Err(CannotEdit::Mismatch);
    }
    Ok(text)
}

/// `ops` made on the document of `text` (a whole file) that holds line
/// `line`, as one edit of the file: the span that changed and its new
/// text (what an editor applies).
pub fn patch_in_file(
    text: &str,
    line: u32,
    ops: &[paved_core::mutate::PatchOp],
    limits: &Limits,
) -> Result<Edit, CannotEdit> {
    let doc = crate::documents(text)
        .take_while(|d| d.first_line <= line)
        .last()
        .ok_or_else(|| CannotEdit::Patch(format!("no document at line {line}")))?;
    let patched = patch_document(doc.text, ops, limits)?;
    Ok(minimal_edit(doc.text, &patched, doc.first_line))
}

/// The one edit that turns `old` into `new` (the span between their common
/// beginning and end), with lines counted from `first_line`.
pub fn minimal_edit(old: &str, new: &str, first_line: u32) -> Edit {
    let prefix = old
        .char_indices()
        .zip(new.chars())
        .take_while(|((_, a), b)| a == b)
        .last()
        .map_or(0, |((i, c), _)| i + c.len_utf8());
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .as_bytes()
        .iter()
        .rev()
        .zip(new.as_bytes().iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    // Whole characters only: back off to a character boundary.
    let mut suffix = suffix;
    while suffix > 0 && !(old.is_char_boundary(old.len() - suffix) && new.is_char_boundary(new.len() - suffix)) {
        suffix -= 1;
    }
    let pos = |upto: usize| {
        let before = &old[..upto];
        let line = u32::try_from(memchr::memchr_iter(b'\n', before.as_bytes()).count()).unwrap_or(u32::MAX);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = u32::try_from(before[line_start..].chars().count()).unwrap_or(u32::MAX) + 1;
        Pos { line: first_line + line, col }
    };
    Edit { start: pos(prefix), end: pos(old.len() - suffix), text: new[prefix..new.len() - suffix].to_owned() }
}

/// The text with `edit` made.
pub fn apply(text: &str, edit: &Edit) -> String {
    let start = byte_offset(text, edit.start).unwrap_or(text.len());
    let end = byte_offset(text, edit.end).unwrap_or(text.len()).max(start);
    let mut out = String::with_capacity(text.len() + edit.text.len());
    out.push_str(&text[..start]);
    out.push_str(&edit.text);
    out.push_str(&text[end..]);
    out
}

/// The byte offset of a position (columns count characters); the end of
/// the line for a column past it.
pub fn byte_offset(text: &str, pos: Pos) -> Option<usize> {
    let mut line_start = 0usize;
    for _ in 1..pos.line {
        line_start += memchr::memchr(b'\n', &text.as_bytes()[line_start..])? + 1;
    }
    let line_end = memchr::memchr(b'\n', &text.as_bytes()[line_start..]).map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let skip = pos.col.saturating_sub(1) as usize;
    Some(line_start + line.char_indices().nth(skip).map_or(line.len(), |(i, _)| i))
}

fn parse<'t>(text: &'t str, limits: &Limits) -> Result<Node<'t>, CannotEdit> {
    match crate::parse_one(text, 1, limits) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Err(CannotEdit::Unparsed("the document is empty".into())),
        Err(e) => Err(CannotEdit::Unparsed(format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))),
    }
}

fn read_back(text: &str, limits: &Limits) -> Result<Json, CannotEdit> {
    serde_json::to_value(parse(text, limits)?).map_err(|e| CannotEdit::Unparsed(e.to_string()))
}

/// Whether the document has an anchor or an alias (merge keys included).
pub fn has_anchors(doc: &str) -> bool {
    use saphyr_parser::{Event, Parser};
    // Cheap first: no `&` or `*` at all, no anchor.
    if memchr::memchr2(b'&', b'*', doc.as_bytes()).is_none() {
        return false;
    }
    let mut parser = Parser::new_from_str(doc);
    while let Some(Ok((event, _))) = parser.next_event() {
        match event {
            Event::Alias(_) => return true,
            Event::Scalar(_, _, anchor, _) | Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _)
                if anchor != 0 =>
            {
                return true;
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    false
}

/// How the document writes: its line end, its indentation step, and whether
/// it is JSON (what is added to it is JSON too).
#[derive(Clone, Copy)]
struct Style<'s> {
    newline: &'s str,
    step: usize,
    json: bool,
}

impl Style<'_> {
    fn flow(&self, value: &Json) -> String {
        if self.json { value.to_string() } else { flow(value) }
    }

    fn key(&self, key: &str) -> String {
        if self.json { Json::String(key.to_owned()).to_string() } else { key_text(key) }
    }
}

/// One JSON Pointer's reference tokens, unescaped.
fn tokens(pointer: &str) -> Result<Vec<String>, CannotEdit> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(CannotEdit::Patch(format!("{pointer:?} is not a JSON Pointer")));
    };
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

/// The node at `path`, with the column its mapping keys start at (for
/// the indentation of what goes under it).
fn walk<'n, 'a>(root: &'n Node<'a>, path: &[String]) -> Option<&'n Node<'a>> {
    let mut node = root;
    for token in path {
        node = match &node.value {
            Value::Map(m) => m.get(token)?,
            Value::Seq(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn shape(at: Pos, why: impl Into<Cow<'static, str>>) -> CannotEdit {
    CannotEdit::Shape { at, why: why.into() }
}

fn edit_for(
    text: &str,
    root: &Node,
    op: &paved_core::mutate::PatchOp,
    newline: &str,
) -> Result<Option<Edit>, CannotEdit> {
    let style =
        Style { newline, step: document_step(text, root).unwrap_or(2), json: text.trim_start().starts_with('{') };
    let path = tokens(&op.path)?;
    let Some((last, parent_path)) = path.split_last() else {
        return Err(shape(root.span.start, "a patch that replaces the whole object"));
    };
    let Some(parent) = walk(root, parent_path) else {
        return Err(CannotEdit::Patch(format!("{}: no such place in the document", op.path)));
    };
    let value = op.value.as_ref();
    match (op.op, &parent.value) {
        ("test", _) => Ok(None),
        ("add" | "replace", Value::Map(map)) => {
            let value = value.ok_or_else(|| CannotEdit::Patch(format!("{} {}: no value", op.op, op.path)))?;
            match map.entry(last) {
                Some(entry) => replace_value(text, entry, value, style).map(Some),
                None => insert_entry(text, parent, last, value, style).map(Some),
            }
        }
        ("add", Value::Seq(items)) if last == "-" || last.parse::<usize>().ok() == Some(items.len()) => {
            let value = value.ok_or_else(|| CannotEdit::Patch(format!("add {}: no value", op.path)))?;
            append_item(text, parent, value, style).map(Some)
        }
        ("replace", Value::Seq(items)) => {
            let value = value.ok_or_else(|| CannotEdit::Patch(format!("replace {}: no value", op.path)))?;
            let item = last.parse::<usize>().ok().and_then(|i| items.get(i));
            let Some(item) = item else { return Err(CannotEdit::Patch(format!("{}: no such item", op.path))) };
            replace_scalar(text, item, value, style).map(Some)
        }
        ("remove", Value::Map(map)) => match map.entry(last) {
            Some(entry) if map.len() > 1 => remove_lines(text, entry.key_span.start, entry_end(entry)),
            Some(entry) => Err(shape(entry.key_span.start, "removing a mapping's only key")),
            None => Err(CannotEdit::Patch(format!("remove {}: not there", op.path))),
        },
        ("remove", Value::Seq(items)) => {
            let item = last.parse::<usize>().ok().and_then(|i| items.get(i));
            match item {
                Some(item) if items.len() > 1 && !is_flow(text, parent) => {
                    let dash = Pos { line: item.span.start.line, col: item.span.start.col.saturating_sub(2).max(1) };
                    remove_lines(text, dash, item.span.end)
                }
                Some(item) => Err(shape(item.span.start, "removing an item of a flow list or a list's only item")),
                None => Err(CannotEdit::Patch(format!("remove {}: no such item", op.path))),
            }
        }
        ("add", Value::Seq(_)) => Err(shape(parent.span.start, "inserting into a list by position")),
        (other, _) if !matches!(other, "add" | "replace" | "remove") => {
            Err(shape(parent.span.start, format!("the JSON Patch operation {other:?} is not written into files")))
        }
        _ => Err(CannotEdit::Patch(format!("{} {}: the parent is not a mapping or a list", op.op, op.path))),
    }
}

/// Where an entry's text ends: its value's end, or its key's for an empty value.
fn entry_end(entry: &paved_core::node::Entry) -> Pos {
    if entry.value.span.is_none() || entry.value.span.end < entry.key_span.end {
        entry.key_span.end
    } else {
        entry.value.span.end
    }
}

fn line_of(text: &str, line: u32) -> Option<&str> {
    text.split('\n').nth(line.checked_sub(1)? as usize).map(|l| l.trim_end_matches('\r'))
}

fn line_len(text: &str, line: u32) -> u32 {
    line_of(text, line).map_or(0, |l| u32::try_from(l.chars().count()).unwrap_or(u32::MAX))
}

/// Whether a collection is written in flow style (`{...}`, `[...]`).
fn is_flow(text: &str, node: &Node) -> bool {
    line_of(text, node.span.start.line)
        .and_then(|l| l.chars().nth(node.span.start.col.saturating_sub(1) as usize))
        .is_some_and(|c| c == '{' || c == '[')
}

/// The last line a node's text is on (a block collection's span may end at
/// the start of the line after it).
fn last_line(node_end: Pos, floor: u32) -> u32 {
    if node_end.col <= 1 && node_end.line > floor { node_end.line - 1 } else { node_end.line }.max(floor)
}

/// The indentation step the document uses: the first block mapping nested
/// under another tells it; two spaces by default.
fn document_step(text: &str, node: &Node) -> Option<usize> {
    match &node.value {
        Value::Map(m) => m.entries.iter().find_map(|e| {
            if let Value::Map(inner) = &e.value.value
                && let Some(first) = inner.entries.first()
                && first.key_span.start.line > e.key_span.start.line
                && !is_flow(text, &e.value)
            {
                let step = first.key_span.start.col.saturating_sub(e.key_span.start.col) as usize;
                if (1..=8).contains(&step) {
                    return Some(step);
                }
            }
            document_step(text, &e.value)
        }),
        Value::Seq(items) => items.iter().find_map(|i| document_step(text, i)),
        _ => None,
    }
}

/// A mapping's entries with `name` first, as Kubernetes writes list items
/// (serde_json keeps keys sorted).
fn entries(m: &serde_json::Map<String, Json>) -> impl Iterator<Item = (&String, &Json)> {
    m.get_key_value("name").into_iter().chain(m.iter().filter(|(k, _)| k.as_str() != "name"))
}

fn insert_entry(text: &str, parent: &Node, key: &str, value: &Json, style: Style) -> Result<Edit, CannotEdit> {
    let Style { newline, step, .. } = style;
    let Value::Map(map) = &parent.value else { return Err(shape(parent.span.start, "not a mapping")) };
    if is_flow(text, parent) {
        let entry = format!("{}: {}", style.key(key), style.flow(value));
        return match map.entries.last() {
            // Over several lines: a line of its own after the last entry, at its indentation.
            Some(last) if parent.span.start.line != parent.span.end.line => {
                let end = entry_end(last);
                let indent = last.key_span.start.col.saturating_sub(1) as usize;
                Ok(Edit { start: end, end, text: format!(",{newline}{}{entry}", " ".repeat(indent)) })
            }
            // `{}` or `{a: 1}` on one line: the new entry before the brace.
            _ => {
                let close = closing(text, parent, '}')?;
                let sep = if map.is_empty() { "" } else { ", " };
                Ok(Edit { start: close, end: close, text: format!("{sep}{entry}") })
            }
        };
    }
    let (Some(first), Some(last)) = (map.entries.first(), map.entries.last()) else {
        return Err(shape(parent.span.start, "an empty block mapping"));
    };
    let indent = first.key_span.start.col.saturating_sub(1) as usize;
    let before: String = line_of(text, first.key_span.start.line).unwrap_or("").chars().take(indent).collect();
    if !before.chars().all(|c| c == ' ' || c == '-') {
        return Err(shape(first.key_span.start, "a mapping that does not start its own line"));
    }
    let end_line = last_line(entry_end(last), last.key_span.start.line);
    let at = Pos { line: end_line, col: line_len(text, end_line) + 1 };
    let mut out = String::new();
    block_entry(&mut out, indent, step, key, value, newline);
    Ok(Edit { start: at, end: at, text: out })
}

fn append_item(text: &str, parent: &Node, value: &Json, style: Style) -> Result<Edit, CannotEdit> {
    let Style { newline, step, .. } = style;
    let Value::Seq(items) = &parent.value else { return Err(shape(parent.span.start, "not a list")) };
    if is_flow(text, parent) {
        return match items.last() {
            Some(last) if parent.span.start.line != parent.span.end.line => {
                let indent = last.span.start.col.saturating_sub(1) as usize;
                let end = last.span.end;
                Ok(Edit { start: end, end, text: format!(",{newline}{}{}", " ".repeat(indent), style.flow(value)) })
            }
            _ => {
                let close = closing(text, parent, ']')?;
                let sep = if items.is_empty() { "" } else { ", " };
                Ok(Edit { start: close, end: close, text: format!("{sep}{}", style.flow(value)) })
            }
        };
    }
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Err(shape(parent.span.start, "an empty block list"));
    };
    // The dash of the first item: two columns before its content.
    let dash_col = first.span.start.col.saturating_sub(2);
    let dash_line = line_of(text, first.span.start.line).unwrap_or("");
    if dash_line.chars().nth(dash_col.saturating_sub(1) as usize) != Some('-') {
        return Err(shape(first.span.start, "a list whose items paved cannot line up with"));
    }
    let indent = dash_col.saturating_sub(1) as usize;
    let end_line = last_line(last.span.end, last.span.start.line);
    let at = Pos { line: end_line, col: line_len(text, end_line) + 1 };
    let mut out = String::new();
    block_item(&mut out, indent, step, value, newline);
    Ok(Edit { start: at, end: at, text: out })
}

/// Where the closing bracket of a one-line flow collection is.
fn closing(text: &str, node: &Node, bracket: char) -> Result<Pos, CannotEdit> {
    if node.span.start.line != node.span.end.line {
        return Err(shape(node.span.start, "an empty flow collection over several lines"));
    }
    let close = Pos { line: node.span.end.line, col: node.span.end.col.saturating_sub(1) };
    if line_of(text, close.line).and_then(|l| l.chars().nth(close.col.saturating_sub(1) as usize)) != Some(bracket) {
        return Err(shape(node.span.start, "a flow collection paved cannot find the end of"));
    }
    Ok(close)
}

fn replace_scalar(text: &str, node: &Node, value: &Json, style: Style) -> Result<Edit, CannotEdit> {
    if matches!(node.value, Value::Map(_) | Value::Seq(_)) && !is_flow(text, node) {
        return Err(shape(node.span.start, "replacing a block collection"));
    }
    if node.span.is_none() || node.span.start.line != node.span.end.line {
        return Err(shape(node.span.start, "replacing a value over several lines"));
    }
    Ok(Edit { start: node.span.start, end: node.span.end, text: style.flow(value) })
}

/// A value that is there (or `null`) made `value`: a scalar in place; an
/// empty or null value given a collection gets it as a block under its key.
fn replace_value(text: &str, entry: &paved_core::node::Entry, value: &Json, style: Style) -> Result<Edit, CannotEdit> {
    let Style { newline, step, .. } = style;
    let collection =
        matches!(value, Json::Object(m) if !m.is_empty()) || matches!(value, Json::Array(a) if !a.is_empty());
    if !collection || !entry.value.is_null() || style.json {
        return replace_scalar(text, &entry.value, value, style);
    }
    // `key:`, `key: null` or `key: ~`, alone on its line: the line made again.
    let line = entry.key_span.start.line;
    let Some(whole) = line_of(text, line) else { return Err(shape(entry.key_span.start, "no such line")) };
    if whole.contains('#') || last_line(entry_end(entry), line) != line {
        return Err(shape(entry.key_span.start, "a null value beside a comment or over several lines"));
    }
    let indent = entry.key_span.start.col.saturating_sub(1) as usize;
    let lead: String = whole.chars().take(indent).collect();
    if !lead.chars().all(|c| c == ' ' || c == '-') {
        return Err(shape(entry.key_span.start, "a mapping that does not start its own line"));
    }
    let key_start = Pos { line, col: entry.key_span.start.col };
    let end = Pos { line, col: line_len(text, line) + 1 };
    let mut out = String::new();
    block_entry(&mut out, indent, step, &entry.key, value, newline);
    // Without the leading newline and indentation: the key's line is reused.
    let out = out.trim_start_matches(newline).trim_start_matches(' ').to_owned();
    Ok(Edit { start: key_start, end, text: out })
}

/// Whole lines from `start`'s line through `end`'s removed, when nothing
/// else is on them (but a comment after the end).
fn remove_lines(text: &str, start: Pos, end: Pos) -> Result<Option<Edit>, CannotEdit> {
    let first = line_of(text, start.line).unwrap_or("");
    if !first.chars().take(start.col.saturating_sub(1) as usize).all(|c| c == ' ') {
        return Err(shape(start, "removing what shares its line with something else"));
    }
    let last = last_line(end, start.line);
    if end.line == last {
        let rest: String = line_of(text, last).unwrap_or("").chars().skip(end.col.saturating_sub(1) as usize).collect();
        let rest = rest.trim_start();
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err(shape(start, "removing what shares its line with something else"));
        }
    }
    // From the end of the line before to the end of the last line.
    let (from, to) = if start.line > 1 {
        let before = start.line - 1;
        (Pos { line: before, col: line_len(text, before) + 1 }, Pos { line: last, col: line_len(text, last) + 1 })
    } else {
        (Pos { line: 1, col: 1 }, Pos { line: last + 1, col: 1 })
    };
    Ok(Some(Edit { start: from, end: to, text: String::new() }))
}

/// `key: value` on a new line at `indent`, collections as blocks `step`
/// deeper (lists of scalars in flow style: `drop: [ALL]`).
fn block_entry(out: &mut String, indent: usize, step: usize, key: &str, value: &Json, newline: &str) {
    out.push_str(newline);
    out.push_str(&" ".repeat(indent));
    out.push_str(&key_text(key));
    out.push(':');
    match value {
        Json::Object(m) if !m.is_empty() => {
            for (k, v) in entries(m) {
                block_entry(out, indent + step, step, k, v, newline);
            }
        }
        Json::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for item in items {
                block_item(out, indent, step, item, newline);
            }
        }
        other => {
            out.push(' ');
            out.push_str(&flow(other));
        }
    }
}

/// `- item` on a new line, its dash at `indent`: a mapping's first key on
/// the dash's line and the rest under it, anything else in flow style.
fn block_item(out: &mut String, indent: usize, step: usize, item: &Json, newline: &str) {
    out.push_str(newline);
    out.push_str(&" ".repeat(indent));
    out.push_str("- ");
    match item {
        Json::Object(m) if !m.is_empty() => {
            let mut entry = String::new();
            for (k, v) in entries(m) {
                block_entry(&mut entry, indent + 2, step, k, v, newline);
            }
            out.push_str(entry.trim_start_matches(newline).trim_start());
        }
        other => out.push_str(&flow(other)),
    }
}

/// A value in flow style: `{a: 1, b: [x, y]}`; strings plain where YAML
/// reads them back as the same string, else double-quoted.
pub fn flow(value: &Json) -> String {
    match value {
        Json::Object(m) => {
            let entries: Vec<String> = entries(m).map(|(k, v)| format!("{}: {}", key_text(k), flow(v))).collect();
            format!("{{{}}}", entries.join(", "))
        }
        Json::Array(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Json::String(s) => string_text(s),
        other => other.to_string(),
    }
}

fn key_text(key: &str) -> String {
    string_text(key)
}

/// A string as YAML text: plain when every YAML reader (1.1 as Kubernetes
/// reads it, and 1.2) takes it back as this same string, else JSON-quoted.
fn string_text(s: &str) -> String {
    // A colon only inside (an image `repo:tag`), never before a space or at
    // the end, and beside a letter: YAML 1.1 reads `1:30` as a number.
    let colon_ok =
        !s.contains(':') || (!s.ends_with(':') && !s.contains(": ") && s.chars().any(|c| c.is_ascii_alphabetic()));
    let plain_chars = !s.is_empty()
        && colon_ok
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':' | '@'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/' || c == '_');
    if plain_chars && reads_as_string(s) { s.to_owned() } else { Json::String(s.to_owned()).to_string() }
}

fn reads_as_string(s: &str) -> bool {
    let text = format!("v: {s}\n");
    [crate::Schema::Kubernetes, crate::Schema::Core].into_iter().all(|schema| {
        crate::from_str::<std::collections::BTreeMap<String, Json>>(&text, &Limits::default(), schema)
            .is_ok_and(|m| m.get("v") == Some(&Json::String(s.to_owned())))
    })
}

#[cfg(test)]
mod tests;
