//! Human output in the style of rustc: a header with the policy, the
//! location, the source line with the field underlined, and how to fix it.
//!
//! ```text
//! error[pss-baseline/privileged]: privileged (container "agent" must not set securityContext.privileged=true)
//!   --> examples/bad/node-agent.yaml:21:11 (DaemonSet monitoring/node-agent)
//!    |
//! 21 |           privileged: true
//!    |           ^^^^^^^^^^^^^^^^ spec.template.spec.containers[0].securityContext.privileged
//!    = help: Remove securityContext.privileged or set it to false.
//! ```
//!
//! Written here rather than through miette's graphical handler, which costs
//! tens of microseconds a snippet: a CI log of thousands of findings must not
//! take longer to print than to find (bench/RESULTS.md).

use std::fmt::Write as _;
use std::io::Write;

use paved_core::policy::{Action, Finding};

use crate::check::{FileReport, Reporter, Summary};

#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    pub color: bool,
    pub verbose: bool,
}

pub struct Text<'w> {
    out: Box<dyn Write + 'w>,
    options: TextOptions,
    buf: String,
}

impl<'w> Text<'w> {
    pub fn new(out: Box<dyn Write + 'w>, options: TextOptions) -> Text<'w> {
        Text { out, options, buf: String::new() }
    }
}

/// ANSI styles, or nothing when colour is off.
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }

    fn action(&self, a: Action) -> String {
        let colour = match a {
            Action::Deny => "1;31",
            Action::Warn => "1;33",
            Action::Audit => "1;36",
        };
        self.paint(colour, super::level(a))
    }
}

/// Start offsets of the lines of a text, built once per file with findings.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(memchr_newlines(text));
        Lines { text, starts }
    }

    /// The text of a 1-based line, without its line break.
    fn line(&self, n: u32) -> Option<&'a str> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).map_or(self.text.len(), |e| e - 1);
        self.text.get(start..end)
    }
}

fn memchr_newlines(text: &str) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)
}

/// Display width of the first `col - 1` characters of a line (tabs count as one).
fn width_before(line: &str, col: u32) -> usize {
    line.chars().take(col.saturating_sub(1) as usize).count()
}

fn render(buf: &mut String, style: &Style, path: &str, lines: Option<&Lines<'_>>, f: &Finding) {
    let _ = writeln!(buf, "{}[{}]: {}", style.action(f.action), f.policy, style.paint("1", &f.message));
    let start = f.span.start;
    let at = if f.span.is_none() { String::new() } else { format!(":{}:{}", start.line, start.col) };
    let gutter = start.line.to_string().len().max(1);
    let pad = " ".repeat(gutter);
    let arrow = style.paint("1;34", "-->");
    let _ = writeln!(buf, "{pad}{arrow} {path}{at} ({})", f.object);
    let bar = style.paint("1;34", "|");
    let source = lines.filter(|_| !f.span.is_none()).and_then(|l| l.line(start.line));
    match source {
        Some(text) => {
            let end_col = if f.span.end.line == start.line { f.span.end.col } else { u32::MAX };
            let before = width_before(text, start.col);
            let width = text.chars().count().min(width_before(text, end_col)).saturating_sub(before).max(1);
            let label = if f.exact { f.path.to_string() } else { format!("{} is missing here", f.path) };
            let marks = style.paint(if f.action == Action::Deny { "1;31" } else { "1;33" }, &"^".repeat(width));
            let _ = writeln!(buf, "{pad} {bar}");
            let _ = writeln!(buf, "{} {bar} {text}", style.paint("1;34", &start.line.to_string()));
            let _ = writeln!(buf, "{pad} {bar} {}{marks} {label}", " ".repeat(before));
        }
        None => {
            let _ = writeln!(buf, "{pad} = field: {}", f.path);
        }
    }
    if let Some(rule) = paved_core::rules::find(&f.policy) {
        let _ = writeln!(buf, "{pad} = help: {}", rule.doc.fix);
    }
    buf.push('\n');
}

impl Reporter for Text<'_> {
    fn wants_source(&self) -> bool {
        true
    }

    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        let style = Style { color: self.options.color };
        let buf = &mut self.buf;
        buf.clear();
        for p in &r.problems {
            let at = p.pos.map(|p| format!(":{}:{}", p.line, p.col)).unwrap_or_default();
            let _ = writeln!(buf, "{}: {}{at}: {}", style.paint("1;31", "error"), r.path, p.message);
        }
        if self.options.verbose {
            for (pos, reason) in &r.skipped {
                let _ = writeln!(
                    buf,
                    "{}: {}:{}:{}: skipped: {reason}",
                    style.paint("1;36", "note"),
                    r.path,
                    pos.line,
                    pos.col
                );
            }
        }
        let findings = || r.objects.iter().flat_map(|o| &o.findings);
        let lines = r.source.as_deref().filter(|_| findings().any(Finding::counts)).map(Lines::new);
        for f in findings() {
            match &f.exempted {
                None => render(buf, &style, &r.path, lines.as_ref(), f),
                Some(ex) => {
                    let until = ex.until.as_deref().map(|u| format!(", until {u}")).unwrap_or_default();
                    let at = format!(":{}:{}", f.span.start.line, f.span.start.col);
                    let _ = writeln!(
                        buf,
                        "{}[{}]: {}{at}: {} ({}; reason: {}{until})",
                        style.paint("1;36", "exempted"),
                        f.policy,
                        r.path,
                        f.message,
                        f.object,
                        ex.reason
                    );
                }
            }
        }
        self.out.write_all(buf.as_bytes())
    }

    fn finish(&mut self, s: &Summary) -> std::io::Result<()> {
        let style = Style { color: self.options.color };
        let verdict = if s.deny > 0 || s.problems > 0 {
            style.paint("1;31", "✗")
        } else if s.warn > 0 {
            style.paint("1;33", "!")
        } else {
            style.paint("1;32", "✓")
        };
        writeln!(self.out, "{verdict} {s}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_by_number() {
        let l = Lines::new("a: 1\nb: 2\n\nc: 3");
        assert_eq!(l.line(1), Some("a: 1"));
        assert_eq!(l.line(3), Some(""));
        assert_eq!(l.line(4), Some("c: 3"));
        assert_eq!(l.line(5), None);
        assert_eq!(l.line(0), None);
    }
}
