//! Machine output: one JSON document, written as the run goes.
//!
//! `{"findings": [...], "errors": [...], "summary": {...}}`; every finding
//! has `file`, `line`, `column`, `endLine`, `endColumn` beside the engine's fields.

use std::io::Write;

use serde_json::json;

use crate::check::{FileReport, Reporter, Summary};

pub struct Json<'w> {
    out: Box<dyn Write + 'w>,
    opened: bool,
    written: usize,
    errors: Vec<serde_json::Value>,
}

impl<'w> Json<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Json<'w> {
        Json { out, opened: false, written: 0, errors: Vec::new() }
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
            let mut v = serde_json::to_value(finding)?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("file".into(), json!(r.path));
                if let Some((start, end)) = super::location(finding) {
                    obj.insert("line".into(), json!(start.line));
                    obj.insert("column".into(), json!(start.col));
                    obj.insert("endLine".into(), json!(end.line));
                    obj.insert("endColumn".into(), json!(end.col));
                }
            }
            if self.written > 0 {
                self.out.write_all(b",")?;
            }
            self.written += 1;
            serde_json::to_writer(&mut self.out, &v)?;
        }
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
