//! Output formats. Each reporter receives file reports in input order and
//! streams what it can, so memory does not grow with the number of files.

mod github;
mod json;
mod junit;
mod sarif;
mod text;

use std::io::Write;

use paved_core::node::Pos;
use paved_core::policy::{Action, Finding};

use crate::check::Reporter;
use crate::cli::CheckFormat;

pub use sarif::rule as sarif_rule;

/// The version of every JSON document paved writes (`schemaVersion`), and of
/// the schemas under `docs/schemas/`. Adding a field keeps it; renaming,
/// removing or retyping one raises it.
pub const JSON_SCHEMA_VERSION: u32 = 1;
pub use text::TextOptions;

/// What the reporters need besides the findings.
pub struct ReportOptions {
    pub text: TextOptions,
    /// Where native policies are documented (see [`crate::explain::doc_url`]).
    pub docs: String,
    /// `--fail-on warn`: warnings fail the run, so reports count them as failures.
    pub fail_on_warn: bool,
}

/// A reporter for a format, writing to `out`.
pub fn reporter<'w>(format: CheckFormat, out: Box<dyn Write + 'w>, options: ReportOptions) -> Box<dyn Reporter + 'w> {
    match format {
        CheckFormat::Text => Box::new(text::Text::new(out, options.text)),
        CheckFormat::Json => Box::new(json::Json::new(out)),
        CheckFormat::Sarif => Box::new(sarif::Sarif::new(out, options.docs)),
        CheckFormat::Junit => Box::new(junit::Junit::new(out, options.fail_on_warn)),
        CheckFormat::Github => Box::new(github::Github::new(out)),
    }
}

/// Byte offset of a 1-based line and 1-based character column.
pub fn byte_offset(text: &str, line: usize, col: usize) -> Option<usize> {
    let start = if line <= 1 { 0 } else { text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)? };
    let rest = &text[start..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let in_line = rest[..line_len].char_indices().nth(col.saturating_sub(1)).map_or(line_len, |(i, _)| i);
    Some(start + in_line)
}

/// Where a finding points, as a position pair (start, end) when it has one.
pub fn location(f: &Finding) -> Option<(Pos, Pos)> {
    (!f.span.is_none()).then_some((f.span.start, f.span.end))
}

/// The severity word used by text, SARIF and GitHub output.
pub fn level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Warn => "warning",
        Action::Audit => "note",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "a: 1\nbé: x\n";
        assert_eq!(byte_offset(text, 1, 1), Some(0));
        assert_eq!(byte_offset(text, 2, 1), Some(5));
        assert_eq!(byte_offset(text, 2, 3), Some(8));
        assert_eq!(byte_offset(text, 9, 1), None);
    }
}
