//! Human output: rustc/miette-style snippets with the field underlined.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity, SourceCode};
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
    handler: GraphicalReportHandler,
}

impl<'w> Text<'w> {
    pub fn new(out: Box<dyn Write + 'w>, options: TextOptions) -> Text<'w> {
        let theme = if options.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(120);
        Text { out, options, handler }
    }
}

/// A finding as a miette diagnostic.
struct FindingDiagnostic<'a> {
    finding: &'a Finding,
    source: Option<NamedSource<Arc<str>>>,
    span: Option<(usize, usize)>,
    help: Option<String>,
}

impl fmt::Debug for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.finding.message)
    }
}

impl fmt::Display for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.finding.message, self.finding.object)
    }
}

impl std::error::Error for FindingDiagnostic<'_> {}

impl Diagnostic for FindingDiagnostic<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.finding.policy))
    }

    fn severity(&self) -> Option<Severity> {
        Some(match self.finding.action {
            Action::Deny => Severity::Error,
            Action::Warn => Severity::Warning,
            Action::Audit => Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (start, end) = self.span?;
        let label = if self.finding.exact {
            self.finding.path.to_string()
        } else {
            format!("{} is missing here", self.finding.path)
        };
        Some(Box::new(std::iter::once(LabeledSpan::new(Some(label), start, end - start))))
    }
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
}

impl Reporter for Text<'_> {
    fn wants_source(&self) -> bool {
        true
    }

    fn file(&mut self, r: &FileReport) -> std::io::Result<()> {
        let color = self.options.color;
        for p in &r.problems {
            let at = p.pos.map(|p| format!(":{}:{}", p.line, p.col)).unwrap_or_default();
            writeln!(self.out, "{}: {}{at}: {}", paint(color, "1;31", "error"), r.path, p.message)?;
        }
        if self.options.verbose {
            for (pos, reason) in &r.skipped {
                writeln!(
                    self.out,
                    "{}: {}:{}:{}: skipped: {reason}",
                    paint(color, "1;36", "note"),
                    r.path,
                    pos.line,
                    pos.col
                )?;
            }
        }
        for finding in r.objects.iter().flat_map(|o| &o.findings) {
            let at = super::location(finding).map(|(s, _)| format!(":{}:{}", s.line, s.col)).unwrap_or_default();
            if let Some(ex) = &finding.exempted {
                let until = ex.until.as_deref().map(|u| format!(" until {u}")).unwrap_or_default();
                writeln!(
                    self.out,
                    "{}[{}]: {}{at}: {} ({}; reason: {}{until})",
                    paint(color, "1;36", "exempted"),
                    finding.policy,
                    r.path,
                    finding.message,
                    finding.object,
                    ex.reason
                )?;
                continue;
            }
            let span = r.source.as_deref().and_then(|s| super::byte_range(s, finding.span));
            let source = r.source.as_ref().filter(|_| span.is_some()).map(|s| NamedSource::new(&r.path, Arc::clone(s)));
            let help = paved_core::rules::find(&finding.policy).map(|rule| rule.doc.fix.to_string());
            let diagnostic = FindingDiagnostic { finding, source, span, help };
            let mut rendered = String::new();
            if self.handler.render_report(&mut rendered, &diagnostic).is_err() {
                rendered = format!("{}: {}{at}: {}\n", super::level(finding.action), r.path, finding.message);
            }
            if diagnostic.source.is_none() {
                rendered.push_str(&format!("    at {}{at} ({})\n", r.path, finding.path));
            }
            self.out.write_all(rendered.as_bytes())?;
        }
        Ok(())
    }

    fn finish(&mut self, s: &Summary) -> std::io::Result<()> {
        let color = self.options.color;
        let verdict = if s.deny > 0 || s.problems > 0 {
            paint(color, "1;31", "✗")
        } else if s.warn > 0 {
            paint(color, "1;33", "!")
        } else {
            paint(color, "1;32", "✓")
        };
        writeln!(
            self.out,
            "{verdict} {} objects in {} files: {} denied, {} warnings, {} audit, {} exempted, {} input errors",
            s.objects, s.files, s.deny, s.warn, s.audit, s.exempted, s.problems
        )?;
        self.out.flush()
    }
}
