//! JUnit XML: a test suite per file, a test case per object; Deny findings
//! are failures, input errors are errors, other findings go to system-out.

use std::fmt::Write as _;
use std::io::Write;

use paved_core::policy::Action;

use crate::check::{FileReport, Reporter, Summary};

pub struct Junit<'w> {
    out: Box<dyn Write + 'w>,
    opened: bool,
}

impl<'w> Junit<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Junit<'w> {
        Junit { out, opened: false }
    }

    fn open(&mut self) -> std::io::Result<()> {
        if !self.opened {
            self.opened = true;
            self.out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"paved\">\n")?;
        }
        Ok(())
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
        let failures =
            r.objects.iter().filter(|o| o.findings.iter().any(|f| f.counts() && f.action == Action::Deny)).count();
        let mut xml = String::new();
        let file = escape(&r.path);
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{file}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\">",
            r.objects.len() + r.problems.len(),
            r.problems.len()
        );
        for o in &r.objects {
            let name = escape(&format!("{} (line {})", o.object, o.pos.line));
            let _ = writeln!(xml, "    <testcase classname=\"{file}\" name=\"{name}\">");
            let mut other = String::new();
            for f in &o.findings {
                let at = f.span.start;
                let line = format!("{}:{}:{}: [{}] {}", r.path, at.line, at.col, f.policy, f.message);
                if f.counts() && f.action == Action::Deny {
                    let _ = writeln!(
                        xml,
                        "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                        escape(&f.policy),
                        escape(&f.message),
                        escape(&format!("{line}\nfield: {}", f.path))
                    );
                } else {
                    let state = if f.counts() { f.action.as_str() } else { "exempted" };
                    let _ = writeln!(other, "{state}: {line}");
                }
            }
            if !other.is_empty() {
                let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&other));
            }
            xml.push_str("    </testcase>\n");
        }
        for p in &r.problems {
            let at = p.pos.map(|p| format!(":{}:{}", p.line, p.col)).unwrap_or_default();
            let _ = writeln!(
                xml,
                "    <testcase classname=\"{file}\" name=\"{}\"><error message=\"{}\"/></testcase>",
                escape(&format!("{}{at}", r.path)),
                escape(&p.message)
            );
        }
        xml.push_str("  </testsuite>\n");
        self.out.write_all(xml.as_bytes())
    }

    fn finish(&mut self, _: &Summary) -> std::io::Result<()> {
        self.open()?;
        self.out.write_all(b"</testsuites>\n")?;
        self.out.flush()
    }
}
