//! Machine output: one JSON document, written as the run goes.
//!
//! `{"schemaVersion": 1, "findings": [...], "errors": [...], "summary": {...}}`,
//! as `docs/schemas/check.schema.json` describes; every finding has `file`,
//! `line`, `column`, `endLine`, `endColumn` beside the engine's fields.

use std::io::Write;

use paved_core::policy::Finding;
use serde_json::json;

use crate::check::{FileReport, Reporter, Summary};

/// Appends a JSON string. Almost every string paved writes needs no
/// escaping, so it is copied as it is; the rest goes through serde_json.
fn string(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !needs_escaping(bytes) {
        buf.push(b'"');
        buf.extend_from_slice(bytes);
        buf.push(b'"');
    } else if !bytes.iter().any(|&b| b < 0x20) {
        // Only quotes and backslashes (`container "app"`): escape those.
        buf.push(b'"');
        let mut from = 0;
        for at in memchr::memchr2_iter(b'"', b'\\', bytes) {
            buf.extend_from_slice(&bytes[from..at]);
            buf.push(b'\\');
            buf.push(bytes[at]);
            from = at + 1;
        }
        buf.extend_from_slice(&bytes[from..]);
        buf.push(b'"');
    } else if serde_json::to_writer(&mut *buf, s).is_err() {
        buf.extend_from_slice(b"null");
    }
}

/// Whether any byte is a control character, a quote or a backslash; eight
/// bytes at a time (a zero byte in `w ^ pattern` marks a match).
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let has_below_space = |v: u64| v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0;
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        let w = u64::from_le_bytes(word);
        if has_below_space(w) || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\'))) {
            return true;
        }
    }
    tail.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends a key, given as its JSON text (`"policy":`), and a string value.
fn field(buf: &mut Vec<u8>, key: &[u8], value: &str) {
    buf.extend_from_slice(key);
    string(buf, value);
}

/// One finding as a JSON object: the engine's fields, then the location.
/// Written by hand: serde's generic path was a fifth of `paved check`'s time.
fn write_finding(buf: &mut Vec<u8>, scratch: &mut String, file: &str, f: &Finding) {
    use std::io::Write as _;
    buf.push(b'{');
    field(buf, b"\"policy\":", &f.policy);
    buf.push(b',');
    field(buf, b"\"action\":", f.action.as_str());
    buf.push(b',');
    field(buf, b"\"message\":", &f.message);
    buf.extend_from_slice(b",\"object\":{");
    field(buf, b"\"apiVersion\":", &f.object.api_version);
    buf.push(b',');
    field(buf, b"\"kind\":", &f.object.kind);
    for (key, value) in [(&b"\"namespace\":"[..], &f.object.namespace), (&b"\"name\":"[..], &f.object.name)] {
        if let Some(v) = value {
            buf.push(b',');
            field(buf, key, v);
        }
    }
    buf.extend_from_slice(b"},");
    // Annotation keys in paths are quoted (`["a.b/c"]`): escape like any string.
    scratch.clear();
    f.path.render_into(scratch);
    field(buf, b"\"path\":", scratch);
    if let Some(ex) = &f.exempted {
        buf.extend_from_slice(b",\"exempted\":{");
        field(buf, b"\"reason\":", &ex.reason);
        if let Some(until) = &ex.until {
            buf.push(b',');
            field(buf, b"\"until\":", until);
        }
        buf.push(b'}');
    }
    buf.push(b',');
    field(buf, b"\"file\":", file);
    if let Some((start, end)) = super::location(f) {
        let _ = write!(
            buf,
            ",\"line\":{},\"column\":{},\"endLine\":{},\"endColumn\":{}",
            start.line, start.col, end.line, end.col
        );
    }
    buf.push(b'}');
}

pub struct Json<'w> {
    out: Box<dyn Write + 'w>,
    opened: bool,
    written: usize,
    /// One file's findings, written out in one go.
    buf: Vec<u8>,
    /// Reused for each finding's rendered path.
    path: String,
    errors: Vec<serde_json::Value>,
}

impl<'w> Json<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Json<'w> {
        Json { out, opened: false, written: 0, buf: Vec::new(), path: String::new(), errors: Vec::new() }
    }
}

impl Json<'_> {
    fn open(&mut self) -> std::io::Result<()> {
        if !self.opened {
            self.opened = true;
            write!(self.out, "{{\"schemaVersion\":{},\"findings\":[", super::JSON_SCHEMA_VERSION)?;
        }
        Ok(())
    }
}

impl Reporter for Json<'_> {
    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        self.open()?;
        for finding in r.objects.iter().flat_map(|o| &o.findings) {
            if self.written > 0 {
                self.buf.push(b',');
            }
            self.written += 1;
            write_finding(&mut self.buf, &mut self.path, &r.path, finding);
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        for p in &r.problems {
            self.errors.push(json!({
                "file": r.path,
                "line": p.pos.map(|p| p.line),
                "column": p.pos.map(|p| p.col),
                "message": p.message,
            }));
        }
        Ok(())
    }

    fn finish(&mut self, s: &Summary) -> std::io::Result<()> {
        self.open()?;
        self.out.write_all(b"],\"errors\":")?;
        serde_json::to_writer(&mut self.out, &self.errors)?;
        self.out.write_all(b",\"summary\":")?;
        serde_json::to_writer(&mut self.out, s)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_core::node::FieldPath;
    use paved_core::object::ObjectRef;
    use paved_core::policy::{Action, Exempted};

    #[test]
    fn escaping_is_detected_anywhere_in_a_word() {
        assert!(!needs_escaping(b"plain text with spaces, 0123456789 and \xc3\xa9"));
        for bad in [b'"', b'\\', b'\n', 0x1f, 0x00] {
            for at in 0..19 {
                let mut v = vec![b'a'; 19];
                v[at] = bad;
                assert!(needs_escaping(&v), "byte {bad:#x} at {at}");
            }
        }
    }

    #[test]
    fn findings_are_valid_json_whatever_their_text() {
        let f = Finding {
            policy: "pss-baseline/privileged".into(),
            action: Action::Deny,
            message: "quote \" backslash \\ newline \n tab \t control \u{1} unicode é ✓".into(),
            short: None,
            object: ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: None,
                name: Some("p\"q".into()),
            }
            .into(),
            path: FieldPath::root().key("metadata").key("annotations").key("a.b/c"),
            span: paved_core::node::Span::NONE,
            exact: false,
            exempted: Some(Exempted { reason: "TICKET-1 \"why\"".into(), until: Some("2026-12-31".into()) }),
        };
        let mut buf = Vec::new();
        write_finding(&mut buf, &mut String::new(), "dir/a \"b\".yaml", &f);
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
        assert_eq!(v["message"], f.message);
        assert_eq!(v["object"]["name"], "p\"q");
        assert_eq!(v["path"], "metadata.annotations[\"a.b/c\"]");
        assert_eq!(v["exempted"]["until"], "2026-12-31");
        assert_eq!(v["file"], "dir/a \"b\".yaml");
        assert!(v.get("line").is_none(), "no location without a span");
    }
}
