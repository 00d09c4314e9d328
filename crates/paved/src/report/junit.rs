//! JUnit XML, counted alike by every common reader: a test suite per file;
//! a test case per object and policy with findings (one per clean object),
//! at most one `<failure>` each (readers disagree on several); Deny findings
//! fail, and Warn findings too under `--fail-on warn`, so the report agrees
//! with the exit code; exempted findings are skipped cases; input errors are
//! errors; other findings are the case's output.

use std::fmt::Write as _;
use std::io::Write;

use paved_core::policy::{Action, Finding};

use crate::check::{FileReport, Reporter, Summary};

pub struct Junit<'w> {
    out: Box<dyn Write + 'w>,
    opened: bool,
    fail_on_warn: bool,
}

impl<'w> Junit<'w> {
    pub fn new(out: Box<dyn Write + 'w>, fail_on_warn: bool) -> Junit<'w> {
        Junit { out, opened: false, fail_on_warn }
    }

    fn open(&mut self) -> std::io::Result<()> {
        if !self.opened {
            self.opened = true;
            self.out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"paved\">\n")?;
        }
        Ok(())
    }

    fn fails(&self, f: &Finding) -> bool {
        f.counts() && (f.action == Action::Deny || (self.fail_on_warn && f.action == Action::Warn))
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

impl Reporter for Junit<'_> {
    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        self.open()?;
        let file = escape(&r.path);
        let (mut tests, mut failures, mut skipped) = (0, 0, 0);
        let mut cases = String::new();
        for o in &r.objects {
            let object = format!("{} (line {})", o.object, o.pos.line);
            // Its policies in the order their first finding comes.
            let mut policies: Vec<&str> = Vec::new();
            for f in &o.findings {
                if !policies.contains(&&*f.policy) {
                    policies.push(&f.policy);
                }
            }
            if policies.is_empty() {
                tests += 1;
                let _ = writeln!(cases, "    <testcase classname=\"{file}\" name=\"{}\"/>", escape(&object));
                continue;
            }
            for policy in policies {
                tests += 1;
                let findings: Vec<&Finding> = o.findings.iter().filter(|f| f.policy == policy).collect();
                let name = escape(&format!("{object} [{policy}]"));
                let _ = writeln!(cases, "    <testcase classname=\"{file}\" name=\"{name}\">");
                let lines: Vec<String> = findings
                    .iter()
                    .map(|f| {
                        let state = if f.counts() { f.action.as_str() } else { "exempted" };
                        let at = f.span.start;
                        format!("{state}: {}:{}:{}: {} (field {})", r.path, at.line, at.col, f.message, f.path)
                    })
                    .collect();
                let body = escape(&lines.join("\n"));
                if let Some(first) = findings.iter().find(|f| self.fails(f)) {
                    failures += 1;
                    let _ = writeln!(
                        cases,
                        "      <failure type=\"{}\" message=\"{}\">{body}</failure>",
                        first.action.as_str(),
                        escape(&first.message)
                    );
                } else if findings.iter().all(|f| !f.counts()) {
                    skipped += 1;
                    let reason = findings.iter().find_map(|f| f.exempted.as_ref()).map_or("", |e| e.reason.as_str());
                    let _ = writeln!(cases, "      <skipped message=\"exempted: {}\"/>", escape(reason));
                    let _ = writeln!(cases, "      <system-out>{body}</system-out>");
                } else {
                    let _ = writeln!(cases, "      <system-out>{body}</system-out>");
                }
                cases.push_str("    </testcase>\n");
            }
        }
        for p in &r.problems {
            tests += 1;
            let at = p.pos.map(|p| format!(":{}:{}", p.line, p.col)).unwrap_or_default();
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{file}\" name=\"{}\"><error message=\"{}\"/></testcase>",
                escape(&format!("{}{at}", r.path)),
                escape(&p.message)
            );
        }
        let errors = r.problems.len();
        let mut xml = format!(
            "  <testsuite name=\"{file}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">\n"
        );
        xml.push_str(&cases);
        xml.push_str("  </testsuite>\n");
        self.out.write_all(xml.as_bytes())
    }

    fn finish(&mut self, _: &Summary) -> std::io::Result<()> {
        self.open()?;
        self.out.write_all(b"</testsuites>\n")?;
        self.out.flush()
    }
}
