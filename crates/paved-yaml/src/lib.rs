//! Loads Kubernetes manifests (YAML or JSON, one or many documents, `List`
//! kinds) into [`paved_core::node::Node`] trees that remember their source
//! positions, within hard limits.
//!
//! The text is first split into documents at `---` lines (a `---` at column 0
//! always starts a document in YAML), so one bad document is reported with its
//! position and the others still load. Each document is parsed from
//! saphyr-parser's event stream straight into nodes, which lets this crate
//! count every node it builds: depth, size and YAML alias expansion are all
//! bounded ("billion laughs" ends with an error, not an OOM).
//!
//! Scalars resolve the way Kubernetes' YAML decoder (go-yaml v2, YAML 1.1)
//! resolves them, so `hostNetwork: yes` is `true` here as it is for kubectl.
//!
//! ```
//! let items = paved_yaml::load("kind: Pod\napiVersion: v1\nmetadata: {name: p}\n", &Default::default()).unwrap();
//! let paved_yaml::Item::Object(pod) = &items[0] else { panic!() };
//! assert_eq!(pod.get("kind").unwrap().span.start.line, 1);
//! ```

mod agree;
mod build;
mod data;
pub mod edit;
mod fast;
mod split;

use std::sync::LazyLock;

use paved_core::node::{Node, Pos, Value};

pub use agree::{Agreement, LENIENT, fast_path_agreement};
pub use build::parse_document;
pub use data::{DataError, Schema, from_node, from_str, load_data, load_values};
pub use split::{Doc, documents};

/// Caps on input. Every one of them ends in a clear error, never a hang.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_file_bytes: usize,
    /// Most documents in one file.
    pub max_documents: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes in one document, counting every node an alias expands to.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_file_bytes: 32 * 1024 * 1024, max_documents: 50_000, max_depth: 64, max_nodes: 1_000_000 }
    }
}

/// Why a whole file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("file is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("binary file (NUL byte at offset {offset}); expected YAML or JSON")]
    Binary { offset: usize },
    #[error("not valid UTF-8 at line {}, column {}", .pos.line, .pos.col)]
    NotUtf8 { pos: Pos },
    #[error(
        "line {line}: this is a Helm template, not a manifest; render it first: helm template <release> <chart> | paved check -"
    )]
    HelmTemplate { line: u32 },
    #[error("more than {limit} documents in one file")]
    TooManyDocuments { limit: usize },
}

/// Why one document could not be loaded (the others still are).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct DocError {
    /// Where the problem is.
    pub pos: Pos,
    pub message: String,
}

/// What one document (or one item of a `List`) turned out to be.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A Kubernetes object, borrowing from the text it was loaded from.
    Object(Node<'a>),
    /// A document that is not an object (no apiVersion or kind), or is empty.
    Skipped { pos: Pos, reason: &'static str },
    /// A document that could not be parsed or exceeded a limit.
    Error(DocError),
}

/// Decodes file bytes to text, rejecting binary and non-UTF-8 input.
pub fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, FileError> {
    if bytes.len() > limits.max_file_bytes {
        return Err(FileError::TooLarge { limit: limits.max_file_bytes });
    }
    if let Some(offset) = memchr::memchr(0, &bytes[..bytes.len().min(8192)]) {
        return Err(FileError::Binary { offset });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        FileError::NotUtf8 {
            pos: Pos { line: u32::try_from(line).unwrap_or(u32::MAX), col: u32::try_from(col).unwrap_or(u32::MAX) },
        }
    })
}

/// Loads every document of a text. File-level problems are an `Err`;
/// document-level problems are [`Item::Error`]s among the other items.
pub fn load<'a>(text: &'a str, limits: &Limits) -> Result<Vec<Item<'a>>, FileError> {
    if let Some(line) = helm_template_line(text) {
        return Err(FileError::HelmTemplate { line });
    }
    let docs = split::documents(text);
    let mut items = Vec::new();
    for (n, doc) in docs.enumerate() {
        if n >= limits.max_documents {
            return Err(FileError::TooManyDocuments { limit: limits.max_documents });
        }
        match parse_one(doc.text, doc.first_line, limits) {
            Ok(Some(node)) => push_objects(node, &mut items),
            Ok(None) => {}
            Err(e) => items.push(Item::Error(e)),
        }
    }
    Ok(items)
}

/// One document's text parsed: the fast path where it can, else the full
/// parser (the same two `load` uses).
pub fn parse_one<'a>(text: &'a str, first_line: u32, limits: &Limits) -> Result<Option<Node<'a>>, DocError> {
    match fast::parse(text, first_line, limits) {
        Some(node) => Ok(node),
        None => parse_document(text, first_line, limits),
    }
}

/// A document becomes an object, the items of a `List`, or a skipped note.
fn push_objects<'a>(node: Node<'a>, items: &mut Vec<Item<'a>>) {
    let pos = node.span.start;
    let kind = node.get("kind").and_then(Node::as_str);
    let has_api_version = node.get("apiVersion").and_then(Node::as_str).is_some();
    let Value::Map(_) = node.value else {
        items.push(Item::Skipped { pos, reason: "not a mapping" });
        return;
    };
    match kind {
        Some(k) if k == "List" || (k.ends_with("List") && node.get("items").is_some()) => {
            let Some(Value::Seq(list)) = node.get("items").map(|n| n.value.clone()) else {
                items.push(Item::Skipped { pos, reason: "List without items" });
                return;
            };
            for item in list {
                push_objects(item, items);
            }
        }
        Some(_) if has_api_version => items.push(Item::Object(node)),
        _ => items.push(Item::Skipped { pos, reason: "no apiVersion or kind: not a Kubernetes object" }),
    }
}

/// The first line that uses Go template actions the way Helm charts do.
fn helm_template_line(text: &str) -> Option<u32> {
    const ACTIONS: &[&str] = &[
        ".",
        "$",
        "include ",
        "template ",
        "if ",
        "else",
        "end",
        "range ",
        "with ",
        "define ",
        "toYaml ",
        "/*",
        "tpl ",
        "required ",
        "default ",
        "quote ",
    ];
    // Most manifests have no `{{` at all.
    static OPEN: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| memchr::memmem::Finder::new(b"{{"));
    OPEN.find(text.as_bytes())?;
    // Helm renders YAML: a JSON text's braces are in its strings (an advisory
    // quoting `{{.}}`, say), and an action outside one would not be JSON.
    if text.trim_start().starts_with(['{', '[']) {
        return None;
    }
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("{{") {
            let inner = rest[at + 2..].trim_start_matches('-').trim_start();
            // `.` starts a field (`.Values`) or is the dot itself, never `...`.
            let dot_alone = inner.starts_with('.')
                && !inner[1..].starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '}' || c == ' ');
            if ACTIONS.iter().any(|a| inner.starts_with(a)) && !dot_alone && rest[at..].contains("}}") {
                return Some(u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
            rest = &rest[at + 2..];
        }
    }
    None
}

#[cfg(test)]
mod tests;
