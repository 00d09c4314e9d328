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

use crate::check::{FileReport, Reporter, Source, Summary};

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
        let mut out = String::new();
        self.paint_into(&mut out, code, s);
        out
    }

    /// Writes `s` in the style `code` to `buf`, without a String of its own:
    /// a CI log of thousands of findings paints tens of thousands of pieces.
    fn paint_into(&self, buf: &mut String, code: &str, s: &str) {
        self.open(buf, code);
        buf.push_str(s);
        self.close(buf);
    }

    /// Starts the style `code`, for text written piece by piece; `close` ends it.
    fn open(&self, buf: &mut String, code: &str) {
        if self.color {
            buf.push_str("\x1b[");
            buf.push_str(code);
            buf.push('m');
        }
    }

    fn close(&self, buf: &mut String) {
        if self.color {
            buf.push_str("\x1b[0m");
        }
    }

    fn action_into(&self, buf: &mut String, a: Action) {
        let colour = match a {
            Action::Deny => "1;31",
            Action::Warn => "1;33",
            Action::Audit => "1;36",
        };
        self.paint_into(buf, colour, super::level(a));
    }
}

/// Appends `n` copies of the ASCII character `run` repeats, a slice at a time
/// (character by character was a tenth of the reporter's time).
fn push_repeated(buf: &mut String, run: &str, mut n: usize) {
    while n > 0 {
        let take = n.min(run.len());
        buf.push_str(&run[..take]);
        n -= take;
    }
}

const SPACES: &str = "                                ";
const CARETS: &str = "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^";

fn push_number(buf: &mut String, n: u32) {
    buf.push_str(itoa::Buffer::new().format(n));
}

/// Start offsets of the lines of a text, built once per file with findings.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
    /// Whether the whole text is ASCII (then every line is), found once.
    ascii: bool,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(memchr_newlines(text));
        Lines { text, starts, ascii: text.is_ascii() }
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

/// Characters of a source line shown in a snippet at most; a longer line
/// (minified JSON is one line) is shown around the field, so that each
/// finding's snippet stays small however long the line.
const SHOWN_CHARS: usize = 160;
/// Of those, how many come before the field.
const SHOWN_BEFORE: usize = 40;

/// The part of `line` a snippet shows for columns `start..end` (1-based,
/// in characters), the characters before the field in it, and the field's
/// width (at least one). `ascii`: the line is known to be ASCII (scanning a
/// long line for it on every finding would make many findings quadratic).
fn window(line: &str, start: u32, end: u32, ascii: bool) -> (std::borrow::Cow<'_, str>, usize, usize) {
    let start = start.saturating_sub(1) as usize;
    let end = (end.saturating_sub(1) as usize).max(start);
    if line.len() <= SHOWN_CHARS {
        let chars = line.chars().count();
        let before = start.min(chars);
        return (line.into(), before, end.min(chars).saturating_sub(before).max(1));
    }
    // Byte offsets of character indices: direct on ASCII, which minified
    // manifests are; otherwise counted from the line's start.
    let ascii = ascii || line.is_ascii();
    let offset = |chars: usize| -> usize {
        if ascii { chars.min(line.len()) } else { line.char_indices().nth(chars).map_or(line.len(), |(i, _)| i) }
    };
    let from = start.saturating_sub(SHOWN_BEFORE);
    let to = from + SHOWN_CHARS;
    let (from_byte, to_byte) = (offset(from), offset(to));
    let mut shown = String::with_capacity(to_byte - from_byte + 8);
    if from_byte > 0 {
        shown.push('…');
    }
    shown.push_str(&line[from_byte..to_byte]);
    if to_byte < line.len() {
        shown.push('…');
    }
    let lead = usize::from(from_byte > 0);
    let before = lead + (start - from).min(to_byte - from_byte);
    let width = end.min(to).saturating_sub(start).max(1);
    (shown.into(), before, width)
}

fn render(buf: &mut String, style: &Style, path: &str, lines: Option<&Lines<'_>>, f: &Finding) {
    style.action_into(buf, f.action);
    buf.push('[');
    buf.push_str(&f.policy);
    buf.push_str("]: ");
    style.paint_into(buf, "1", &f.message);
    buf.push('\n');
    let start = f.span.start;
    let gutter = digits(start.line);
    push_repeated(buf, SPACES, gutter);
    style.paint_into(buf, "1;34", "-->");
    buf.push(' ');
    buf.push_str(path);
    if !f.span.is_none() {
        buf.push(':');
        push_number(buf, start.line);
        buf.push(':');
        push_number(buf, start.col);
    }
    buf.push_str(" (");
    let _ = f.object.write_into(buf);
    buf.push_str(")\n");
    let bar = |buf: &mut String| {
        push_repeated(buf, SPACES, gutter);
        buf.push(' ');
        style.paint_into(buf, "1;34", "|");
    };
    let source = lines.filter(|_| !f.span.is_none()).and_then(|l| Some((l.line(start.line)?, l.ascii)));
    match source {
        Some((text, ascii)) => {
            let end_col = if f.span.end.line == start.line { f.span.end.col } else { u32::MAX };
            let (text, before, width) = window(text, start.col, end_col, ascii);
            bar(buf);
            buf.push('\n');
            style.open(buf, "1;34");
            push_number(buf, start.line);
            style.close(buf);
            buf.push(' ');
            style.paint_into(buf, "1;34", "|");
            buf.push(' ');
            buf.push_str(&text);
            buf.push('\n');
            bar(buf);
            buf.push(' ');
            push_repeated(buf, SPACES, before);
            let colour = if f.action == Action::Deny { "1;31" } else { "1;33" };
            style.open(buf, colour);
            push_repeated(buf, CARETS, width);
            style.close(buf);
            buf.push(' ');
            f.path.render_into(buf);
            if !f.exact {
                buf.push_str(" is missing here");
            }
            buf.push('\n');
        }
        None => {
            push_repeated(buf, SPACES, gutter);
            buf.push_str(" = field: ");
            f.path.render_into(buf);
            buf.push('\n');
        }
    }
    if let Some(rule) = paved_core::rules::find(&f.policy) {
        push_repeated(buf, SPACES, gutter);
        buf.push_str(" = help: ");
        buf.push_str(rule.doc.fix);
        buf.push('\n');
    }
    buf.push('\n');
}

/// Decimal digits of `n`, at least one.
fn digits(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
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
        let lines =
            r.source.as_deref().and_then(Source::text).filter(|_| findings().any(Finding::counts)).map(Lines::new);
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
    fn a_long_line_is_shown_around_the_field() {
        let short = "  privileged: true";
        assert_eq!(window(short, 3, 13, true), (short.into(), 2, 10));
        assert_eq!(window(short, 3, u32::MAX, true), (short.into(), 2, 16));
        // A minified manifest: one line, the field far along it.
        let long = format!("{}\"privileged\":true{}", "x".repeat(5000), "y".repeat(5000));
        let (shown, before, width) = window(&long, 5001, 5013, true);
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 2, "clipped both sides, with an ellipsis each");
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(&shown.chars().skip(before).take(width).collect::<String>(), "\"privileged\"");
        // Near the start: nothing clipped before it.
        let (shown, before, _) = window(&long[4990..], 3, 5, false);
        assert!(!shown.starts_with('…') && before == 2);
        // Not ASCII: characters, not bytes.
        let wide = format!("{}é\"k\"{}", "é".repeat(300), "é".repeat(300));
        let (shown, before, width) = window(&wide, 302, 305, false);
        assert_eq!(&shown.chars().skip(before).take(width).collect::<String>(), "\"k\"");
    }

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
