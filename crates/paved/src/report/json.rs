//! Machine output: one JSON document, written as the run goes.
//!
//! `{"findings": [...], "errors": [...], "summary": {...}}`; every finding
//! has `file`, `line`, `column`, `endLine`, `endColumn` beside the engine's fields.

use std::io::Write;

use paved_core::policy::Finding;
use serde_json::json;

use crate::check::{FileReport, Reporter, Summary};

/// A finding with its location, serialised without building a JSON tree.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Located<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_column: Option<u32>,
}

pub struct Json<'w> {
    out: Box<dyn Write + 'w>,
    opened: bool,
    written: usize,
    /// One file's findings, written out in one go.
    buf: Vec<u8>,
    errors: Vec<serde_json::Value>,
}

impl<'w> Json<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Json<'w> {
        Json { out, opened: false, written: 0, buf: Vec::new(), errors: Vec::new() }
    }
}

impl Json<'_> {
    fn open(&mut self) -> std::io::Result<()> {
        if !self.opened {
            self.opened = true;
            self.out.write_all(b"{\"findings\":[")?;
        }
        Ok(())
    }
}

impl Reporter for Json<'_> {
    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        self.open()?;
        for finding in r.objects.iter().flat_map(|o| &o.findings) {
            let at = super::location(finding);
            let v = Located {
                finding,
                file: &r.path,
                line: at.map(|(s, _)| s.line),
                column: at.map(|(s, _)| s.col),
                end_line: at.map(|(_, e)| e.line),
                end_column: at.map(|(_, e)| e.col),
            };
            if self.written > 0 {
                self.buf.push(b',');
            }
            self.written += 1;
            serde_json::to_writer(&mut self.buf, &v)?;
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
