//! Where a problem in a policy file is: the line and column of a field of one
//! of its documents, or of a line of code inside that field. Only errors
//! need this, so the text loading read is parsed again for its positions
//! (never the file read again), rather than keeping every policy's source map.

use paved_core::node::{FieldPath, Pos};

use crate::template::SourceAt;

/// The position of `at` in the document of `kind` named `name` in `text`: the
/// field's value (or its nearest existing parent), moved to the line and
/// column `at.within` names when the field's text maps line for line onto
/// the file (a literal block scalar `|`, or a single-line scalar).
pub fn position(text: &str, kind: &str, name: &str, at: &SourceAt) -> Option<Pos> {
    let items = paved_yaml::load(text, &paved_yaml::Limits::default()).ok()?;
    let doc = items.iter().find_map(|item| match item {
        paved_yaml::Item::Object(node)
            if node.get("kind").and_then(|k| k.as_str()) == Some(kind)
                && node.at(&["metadata", "name"]).and_then(|n| n.as_str()) == Some(name) =>
        {
            Some(node)
        }
        _ => None,
    })?;
    let path = FieldPath::parse(&at.field);
    match (doc.at_path(&path), at.within) {
        (Some(value), Some((line, col))) => Some(inside(text, value.span.start, line, col).unwrap_or(value.span.start)),
        (Some(value), None) => Some(value.span.start),
        // A field that is not there: its nearest existing parent's key.
        (None, _) => Some(doc.locate(&path).0.start).filter(|p| p.line > 0),
    }
}

/// Line `line`, column `col` of the text of the scalar whose value starts at
/// `start` (for a block scalar, where its first non-blank line starts).
fn inside(text: &str, start: Pos, line: u32, col: u32) -> Option<Pos> {
    let lines: Vec<&str> = text.lines().collect();
    let index = start.line.checked_sub(1)? as usize;
    // A literal block: the nearest non-blank line above ends with its header
    // (`|`, `|-`, `|2`), and its text starts on the next line.
    let header = lines.get(..index)?.iter().rposition(|l| !l.trim().is_empty());
    if let Some(h) = header
        && let Some(indicator) = lines[h].split_whitespace().last()
        && indicator.starts_with('|')
        && indicator.chars().skip(1).all(|c| c == '-' || c == '+' || c.is_ascii_digit())
    {
        let block = lines.get(h + 1..)?;
        let indent = leading_spaces(block.iter().find(|l| !l.trim().is_empty())?);
        let header_line = u32::try_from(h + 1).ok()?;
        return Some(Pos { line: header_line + line, col: indent + col });
    }
    let first = *lines.get(index)?;
    let from_value: String = first.chars().skip(start.col.checked_sub(1)? as usize).collect();
    if line != 1 || from_value.starts_with(['|', '>']) {
        return None;
    }
    let quoted = u32::from(from_value.starts_with(['"', '\'']));
    Some(Pos { line: start.line, col: start.col + quoted + col - 1 })
}

fn leading_spaces(line: &str) -> u32 {
    u32::try_from(line.len() - line.trim_start_matches(' ').len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(field: &str, within: Option<(u32, u32)>) -> SourceAt {
        SourceAt { field: field.to_owned(), within }
    }

    #[test]
    fn lines_of_a_block_scalar_map_onto_the_file() {
        let file = String::from(
            "apiVersion: v1\nkind: Other\nmetadata: {name: t}\n---\napiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: t\nspec:\n  targets:\n  - rego: |\n      package t\n      violation[x] {\n        x := \n      }\n    libs: [\"package lib\"]\n",
        );
        let pos = |a| position(&file, "ConstraintTemplate", "t", &a);
        // Rego line 3, column 14 is `x := ` line's end: file line 14, past 6 spaces of indentation.
        assert_eq!(pos(at("spec.targets[0].rego", Some((3, 14)))), Some(Pos { line: 14, col: 20 }));
        // A quoted single-line scalar: past the quote.
        assert_eq!(pos(at("spec.targets[0].libs[0]", Some((1, 9)))), Some(Pos { line: 16, col: 21 }));
        // A missing field: its nearest parent.
        assert_eq!(pos(at("spec.targets[0].code[0].source", None)), Some(Pos { line: 11, col: 5 }));
        assert_eq!(position(&file, "ConstraintTemplate", "other", &at("spec", None)), None);
    }
}
