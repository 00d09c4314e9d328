//! Splits a YAML stream into documents at `---` marker lines.

/// One document's text and the line (1-based) it starts on.
pub struct Doc<'a> {
    pub text: &'a str,
    pub first_line: u32,
}

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
    let mut line_no = 1u32;
    let mut offset = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while offset < text.len() {
            let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i + 1);
            let line = &text[offset..end];
            if is_marker(line) && offset > start {
                let doc = Doc { text: &text[start..offset], first_line: start_line };
                start = offset;
                start_line = line_no;
                offset = end;
                line_no += 1;
                return Some(doc);
            }
            offset = end;
            line_no += 1;
        }
        done = true;
        Some(Doc { text: &text[start..], first_line: start_line })
    })
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
    fn leading_marker_is_not_an_empty_document() {
        let docs: Vec<_> = documents("---\na: 1\n").map(|d| d.first_line).collect();
        assert_eq!(docs, vec![1]);
    }
}
