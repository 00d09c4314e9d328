//! Splits a YAML stream into documents at `---` marker lines.

use std::sync::LazyLock;

use memchr::memmem;

/// One document's text and the line (1-based) it starts on.
pub struct Doc<'a> {
    pub text: &'a str,
    pub first_line: u32,
}

/// Built once: a `memmem::find` call builds its searcher each time, which
/// cost more than the search itself on a manifest's few kilobytes.
static MARKER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\n---"));

/// A `---` at column 0, followed by white space or the end of the line.
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Documents in order. A marker line belongs to the document it opens (it
/// may carry content, as in `--- {a: 1}`); text that is only comments and
/// blank lines still comes out, and parses to nothing.
pub fn documents(text: &str) -> impl Iterator<Item = Doc<'_>> {
    let mut start = 0usize;
    let mut start_line = 1u32;
    // Where to look for the next marker; lines are counted only between markers.
    let mut search = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        loop {
            // A marker opens the text (skipped: it opens the first document) or follows a newline.
            let found = MARKER.find(&text.as_bytes()[search..]).map(|i| search + i + 1);
            let Some(at) = found else { break };
            search = at;
            let line_end = memchr::memchr(b'\n', &text.as_bytes()[at..]).map_or(text.len(), |i| at + i + 1);
            if !is_marker(&text[at..line_end]) {
                continue;
            }
            let doc = Doc { text: &text[start..at], first_line: start_line };
            start_line += count_lines(doc.text);
            start = at;
            // From the marker line's own newline, so that a marker on the very
            // next line (`---` twice: an empty document) is found too.
            search = line_end.saturating_sub(1).max(at);
            return Some(doc);
        }
        done = true;
        Some(Doc { text: &text[start..], first_line: start_line })
    })
}

fn count_lines(s: &str) -> u32 {
    u32::try_from(memchr::memchr_iter(b'\n', s.as_bytes()).count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_markers_only() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: |\n  ---x\n----\n";
        let docs: Vec<_> = documents(text).map(|d| (d.first_line, d.text)).collect();
        assert_eq!(docs, vec![(1, "a: 1\n"), (2, "---\nb: 2\n"), (4, "--- # c\nc: |\n  ---x\n----\n")]);
    }

    #[test]
    fn a_marker_right_after_a_marker_opens_an_empty_document() {
        let docs: Vec<_> = documents("a: 1\n---\n---\nb: 2\n").map(|d| (d.first_line, d.text)).collect();
        assert_eq!(docs, vec![(1, "a: 1\n"), (2, "---\n"), (3, "---\nb: 2\n")]);
    }

    #[test]
    fn leading_marker_is_not_an_empty_document() {
        let docs: Vec<_> = documents("---\na: 1\n").map(|d| d.first_line).collect();
        assert_eq!(docs, vec![1]);
    }
}
