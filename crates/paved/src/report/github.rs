//! GitHub Actions workflow commands: an annotation per finding.

use std::io::Write;

use paved_core::policy::Action;

use crate::check::{FileReport, Reporter, Summary};

pub struct Github<'w> {
    out: Box<dyn Write + 'w>,
}

impl<'w> Github<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Github<'w> {
        Github { out }
    }
}

/// Escaping for the message part of a workflow command.
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escaping for a property value (also `:` and `,`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

impl Reporter for Github<'_> {
    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        let file = property(r.path.strip_prefix("./").unwrap_or(&r.path));
        for f in r.objects.iter().flat_map(|o| &o.findings) {
            if !f.counts() {
                continue;
            }
            let command = match f.action {
                Action::Deny => "error",
                Action::Warn => "warning",
                Action::Audit => "notice",
            };
            // The runner uses columns only on a one-line annotation (and drops
            // them otherwise), so a finding over several lines names lines only.
            let at = super::location(f)
                .map(|(s, e)| match s.line == e.line {
                    true => format!(",line={},endLine={},col={},endColumn={}", s.line, e.line, s.col, e.col),
                    false => format!(",line={},endLine={}", s.line, e.line),
                })
                .unwrap_or_default();
            writeln!(self.out, "::{command} file={file}{at},title={}::{}", property(&f.policy), data(&f.message))?;
        }
        for p in &r.problems {
            let at = p.pos.map(|p| format!(",line={},col={}", p.line, p.col)).unwrap_or_default();
            writeln!(self.out, "::error file={file}{at},title=paved::{}", data(&p.message))?;
        }
        Ok(())
    }

    fn finish(&mut self, s: &Summary) -> std::io::Result<()> {
        writeln!(self.out, "paved: {s}")?;
        self.out.flush()
    }
}
