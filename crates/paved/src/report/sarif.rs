//! SARIF 2.1.0, streamed: results first, then invocations and the tool's
//! rules (JSON objects are unordered, so this is a valid log).

use std::io::Write;

use paved_core::policy::Finding;
use serde_json::json;

use crate::check::{FileReport, Reporter, Summary};

pub struct Sarif<'w> {
    out: Box<dyn Write + 'w>,
    opened: bool,
    written: usize,
    /// One file's results, written out in one go.
    buf: Vec<u8>,
    notifications: Vec<serde_json::Value>,
    /// Where native policies are documented (`docs-url`).
    docs: String,
}

impl<'w> Sarif<'w> {
    pub fn new(out: Box<dyn Write + 'w>, docs: String) -> Sarif<'w> {
        Sarif { out, opened: false, written: 0, buf: Vec::new(), notifications: Vec::new(), docs }
    }

    fn open(&mut self) -> std::io::Result<()> {
        if !self.opened {
            self.opened = true;
            self.out.write_all(
                br#"{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{"columnKind":"unicodeCodePoints","results":["#,
            )?;
        }
        Ok(())
    }
}

/// A relative URI reference for a path: forward slashes, unsafe bytes escaped.
pub fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rule_index(id: &str) -> Option<usize> {
    paved_core::rules::all().position(|r| r.id == id)
}

fn result(file: &str, f: &Finding) -> serde_json::Value {
    let mut physical = json!({"artifactLocation": {"uri": uri(file)}});
    if let Some((start, end)) = super::location(f) {
        physical["region"] = json!({
            "startLine": start.line, "startColumn": start.col,
            "endLine": end.line, "endColumn": end.col.max(1),
        });
    }
    let mut r = json!({
        "ruleId": f.policy,
        "level": super::level(f.action),
        "message": {"text": f.message},
        "locations": [{
            "physicalLocation": physical,
            "logicalLocations": [{"fullyQualifiedName": f.object.to_string(), "kind": "object"}],
        }],
        "properties": {"action": f.action, "fieldPath": f.path.to_string(), "object": f.object},
    });
    if let Some(i) = rule_index(&f.policy) {
        r["ruleIndex"] = json!(i);
    }
    if let Some(ex) = &f.exempted {
        r["suppressions"] =
            json!([{"kind": "inSource", "justification": ex.reason, "properties": {"until": ex.until}}]);
    }
    r
}

/// Every native rule with its help: as text and as Markdown (the same words
/// `paved explain` and `docs/policies.md` give), and a link to its page.
pub fn rules(docs: &str) -> Vec<serde_json::Value> {
    paved_core::rules::all().map(|r| rule(docs, r)).collect()
}

/// One native rule as a SARIF `reportingDescriptor`.
pub fn rule(docs: &str, r: &paved_core::policy::Rule) -> serde_json::Value {
    let text = format!(
        "{}\n\nWhy: {}\n\nFix: {}\n\nException: annotate the object with paved.dev/exempt: \"{}\", paved.dev/exempt-reason and paved.dev/exempt-until.",
        r.doc.what, r.doc.why, r.doc.fix, r.id
    );
    let mut rule = json!({
        "id": r.id,
        "name": r.doc.title,
        "shortDescription": {"text": r.doc.title},
        "fullDescription": {"text": r.doc.what},
        "help": {"text": text, "markdown": crate::explain::markdown_body(r)},
        "properties": {"group": r.group},
    });
    if let Some(uri) = crate::explain::doc_url(docs, r.id) {
        rule["helpUri"] = json!(uri);
    }
    rule
}

impl Reporter for Sarif<'_> {
    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        self.open()?;
        for f in r.objects.iter().flat_map(|o| &o.findings) {
            if self.written > 0 {
                self.buf.push(b',');
            }
            self.written += 1;
            serde_json::to_writer(&mut self.buf, &result(&r.path, f))?;
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        for p in &r.problems {
            let mut physical = json!({"artifactLocation": {"uri": uri(&r.path)}});
            if let Some(pos) = p.pos {
                physical["region"] = json!({"startLine": pos.line.max(1), "startColumn": pos.col.max(1)});
            }
            self.notifications.push(json!({
                "level": "error",
                "message": {"text": p.message},
                "locations": [{"physicalLocation": physical}],
            }));
        }
        Ok(())
    }

    fn finish(&mut self, s: &Summary) -> std::io::Result<()> {
        self.open()?;
        self.out.write_all(b"],\"invocations\":")?;
        let invocations = json!([{
            "executionSuccessful": s.problems == 0,
            "toolExecutionNotifications": self.notifications,
        }]);
        serde_json::to_writer(&mut self.out, &invocations)?;
        self.out.write_all(b",\"tool\":")?;
        let tool = json!({"driver": {
            "name": "paved",
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": env!("CARGO_PKG_REPOSITORY"),
            "rules": rules(&self.docs),
        }});
        serde_json::to_writer(&mut self.out, &tool)?;
        self.out.write_all(b"}]}\n")?;
        self.out.flush()
    }
}
