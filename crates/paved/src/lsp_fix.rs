//! Quick fixes for `paved lsp`: the mechanical ones, as text edits on the YAML
//! the user wrote. An edit either sets a scalar in place or inserts the
//! missing keys as a block under the nearest existing mapping, at its
//! indentation; when the shape is anything else (flow style, a null parent),
//! no fix is offered rather than a wrong one.

use std::borrow::Cow;

use paved_core::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL};
use paved_core::node::{FieldPath, Node, Pos, Seg, Value};
use paved_core::policy::Finding;

/// A value to write: a scalar as YAML text, or a mapping of further values.
#[derive(Clone, Debug)]
pub enum Fix {
    Scalar(Cow<'static, str>),
    Map(Vec<(&'static str, Fix)>),
}

fn scalar(s: &'static str) -> Fix {
    Fix::Scalar(Cow::Borrowed(s))
}

/// A replacement of the text between two positions (1-based lines and
/// columns in characters; `start == end` inserts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub start: Pos,
    pub end: Pos,
    pub text: String,
}

/// A quick fix: its title, its edit, and whether it is the one fix that
/// clears the finding (editors apply a preferred fix on a keystroke).
#[derive(Clone, Debug)]
pub struct QuickFix {
    pub title: String,
    pub edit: Edit,
    pub preferred: bool,
}

/// The fixes for a finding: what clears it, and the exemption that lifts it
/// (a new one with a reason to write, or the object's existing one widened
/// to the policy).
pub fn fixes_for(finding: &Finding, object: &Node, text: &str, today_plus_30: &str) -> Vec<QuickFix> {
    let mut out = Vec::new();
    let path = &finding.path;
    let set = |title: &str, path: &FieldPath, value: Fix, out: &mut Vec<QuickFix>| {
        if let Some(edit) = set_field(text, object, path, &value) {
            out.push(QuickFix { title: title.to_owned(), edit, preferred: true });
        }
    };
    match &*finding.policy {
        "pss-restricted/run-as-non-root" => set("Set runAsNonRoot: true", path, scalar("true"), &mut out),
        "pss-restricted/privilege-escalation" => {
            set("Set allowPrivilegeEscalation: false", path, scalar("false"), &mut out)
        }
        "pss-restricted/capabilities" => set("Drop ALL capabilities", path, scalar("[\"ALL\"]"), &mut out),
        "pss-restricted/seccomp-profile" => {
            set("Set seccompProfile type RuntimeDefault", path, scalar("RuntimeDefault"), &mut out)
        }
        "pss-baseline/privileged" => set("Set privileged: false", path, scalar("false"), &mut out),
        "best-practices/no-token-automount" => {
            set("Set automountServiceAccountToken: false", path, scalar("false"), &mut out)
        }
        "best-practices/require-resources" => {
            // Only a whole missing block: partial ones need the user's numbers.
            if let Some(resources) = prefix_through(path, "resources") {
                let placeholders = Fix::Map(vec![
                    ("requests", Fix::Map(vec![("cpu", scalar("100m")), ("memory", scalar("128Mi"))])),
                    ("limits", Fix::Map(vec![("cpu", scalar("\"1\"")), ("memory", scalar("256Mi"))])),
                ]);
                set("Add a resources block (placeholder values)", &resources, placeholders, &mut out);
            }
        }
        "paved/exemption-expired" => {
            // The finding is at the exemption's own date (the object's, or its
            // pod template's), moved on: the reason stays the person's.
            let date = Fix::Scalar(Cow::Owned(format!("\"{today_plus_30}\"")));
            set(&format!("Extend the exemption to {today_plus_30}"), path, date, &mut out);
        }
        _ => {}
    }
    // More than one fix for the finding: none is the obvious one.
    if out.len() > 1 {
        out.iter_mut().for_each(|f| f.preferred = false);
    }
    if finding.policy.starts_with("paved/") {
        return out;
    }
    let annotations = FieldPath::root().key("metadata").key("annotations");
    match object.at(&["metadata", "annotations", EXEMPT]).and_then(Node::as_str) {
        // An exemption is there, without this policy: add it to the list.
        Some(list) => {
            let listed = list.split(',').map(str::trim).any(|p| paved_core::exempt::pattern_covers(p, &finding.policy));
            let widened = Fix::Scalar(Cow::Owned(format!("\"{}, {}\"", list.trim(), finding.policy)));
            if !listed && let Some(edit) = set_field(text, object, &annotations.clone().key(EXEMPT), &widened) {
                let title = format!("Add {} to the object's exemption", finding.policy);
                out.push(QuickFix { title, edit, preferred: false });
            }
        }
        // None: a stub whose reason a person must write (until then it is not honoured).
        None => {
            let stub = Fix::Map(vec![
                (EXEMPT, Fix::Scalar(Cow::Owned(format!("\"{}\"", finding.policy)))),
                (EXEMPT_REASON, Fix::Scalar(Cow::Owned(format!("\"{}\"", paved_core::exempt::REASON_STUB)))),
                (EXEMPT_UNTIL, Fix::Scalar(Cow::Owned(format!("\"{today_plus_30}\"")))),
            ]);
            if let Some(edit) = insert_map(text, object, &annotations, &stub) {
                let title = format!("Add an exemption from {} (write its reason)", finding.policy);
                out.push(QuickFix { title, edit, preferred: false });
            }
        }
    }
    out
}

/// `path` cut just after the key `key`.
fn prefix_through(path: &FieldPath, key: &str) -> Option<FieldPath> {
    let end = path.0.iter().position(|s| matches!(s, Seg::Key(k) if k == key))?;
    Some(FieldPath(path.0[..=end].to_vec()))
}

/// Walks `path` as far as it exists: the deepest node and how many segments it took.
fn walk<'n, 'a>(root: &'n Node<'a>, path: &FieldPath) -> (&'n Node<'a>, usize) {
    let mut node = root;
    for (i, seg) in path.0.iter().enumerate() {
        let next = match seg {
            Seg::Key(k) => node.get(k),
            Seg::Index(n) => node.as_seq().get(*n as usize),
        };
        match next {
            Some(n) => node = n,
            None => return (node, i),
        }
    }
    (node, path.0.len())
}

/// Makes `path` hold `value`: replaces a scalar that is there, or inserts
/// what is missing under the deepest mapping that exists.
pub fn set_field(text: &str, root: &Node, path: &FieldPath, value: &Fix) -> Option<Edit> {
    let (node, depth) = walk(root, path);
    if depth == path.0.len() {
        let scalar = match value {
            Fix::Scalar(s) => s.to_string(),
            Fix::Map(_) => return None,
        };
        return match node.value {
            Value::Map(_) | Value::Seq(_) if !is_flow(text, node) => None,
            _ if node.span.is_none() || node.span.start.line != node.span.end.line => None,
            _ => Some(Edit { start: node.span.start, end: node.span.end, text: scalar }),
        };
    }
    let missing: Vec<&str> = path.0[depth..]
        .iter()
        .map(|s| match s {
            Seg::Key(k) => Some(k.as_ref()),
            Seg::Index(_) => None,
        })
        .collect::<Option<_>>()?;
    let mut nested = value.clone();
    for key in missing.iter().skip(1).rev() {
        nested = Fix::Map(vec![(static_key(key)?, nested)]);
    }
    let first = *missing.first()?;
    insert_entries(text, node, &[(first, &nested)])
}

/// Inserts the entries of `map` under the mapping at `path`, creating it if missing.
fn insert_map(text: &str, root: &Node, path: &FieldPath, map: &Fix) -> Option<Edit> {
    let (node, depth) = walk(root, path);
    let Fix::Map(entries) = map else { return None };
    if depth == path.0.len() {
        let entries: Vec<(&str, &Fix)> = entries.iter().map(|(k, v)| (*k, v)).collect();
        return insert_entries(text, node, &entries);
    }
    set_field(text, root, path, map)
}

/// A key a fix may create, as a static string (`Fix` holds no borrowed text).
/// Fixes only create the keys that the rules' field paths name.
fn static_key(key: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "securityContext",
        "capabilities",
        "drop",
        "seccompProfile",
        "type",
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "privileged",
        "resources",
        "annotations",
    ];
    KNOWN.iter().copied().find(|k| *k == key)
}

/// Whether a collection is written in flow style (`{...}`, `[...]`).
fn is_flow(text: &str, node: &Node) -> bool {
    line_of(text, node.span.start.line)
        .and_then(|l| l.chars().nth(node.span.start.col.saturating_sub(1) as usize))
        .is_some_and(|c| c == '{' || c == '[')
}

fn line_of(text: &str, line: u32) -> Option<&str> {
    text.split('\n').nth(line.checked_sub(1)? as usize).map(|l| l.trim_end_matches('\r'))
}

/// New lines after the last entry of a block mapping, at its indentation.
fn insert_entries(text: &str, parent: &Node, entries: &[(&str, &Fix)]) -> Option<Edit> {
    let Value::Map(map) = &parent.value else { return None };
    let first = map.entries.first()?;
    let last = map.entries.last()?;
    let key_line = line_of(text, first.key_span.start.line)?;
    let indent = first.key_span.start.col.checked_sub(1)? as usize;
    // Block style only: nothing but spaces (or a list item's "- ") before the first key.
    let before: String = key_line.chars().take(indent).collect();
    if !before.chars().all(|c| c == ' ' || c == '-') || is_flow(text, parent) {
        return None;
    }
    let end_line = last.value.span.end.line.max(last.key_span.end.line);
    let end_col = line_of(text, end_line)?.chars().count() as u32 + 1;
    let mut out = String::new();
    for (key, value) in entries {
        write_entry(&mut out, indent, key, value);
    }
    let at = Pos { line: end_line, col: end_col };
    Some(Edit { start: at, end: at, text: out })
}

fn write_entry(out: &mut String, indent: usize, key: &str, value: &Fix) {
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push_str(key);
    out.push(':');
    match value {
        Fix::Scalar(s) => {
            out.push(' ');
            out.push_str(s);
        }
        Fix::Map(entries) => {
            for (k, v) in entries {
                write_entry(out, indent + 2, k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, e: &Edit) -> String {
        let offset = |p: Pos| crate::report::byte_offset(text, p.line as usize, p.col as usize).unwrap_or(text.len());
        let (start, end) = (offset(e.start), offset(e.end));
        format!("{}{}{}", &text[..start], e.text, &text[end..])
    }

    fn object(text: &str) -> Node<'_> {
        match paved_yaml::load(text, &paved_yaml::Limits::default()).ok().and_then(|mut i| i.pop()) {
            Some(paved_yaml::Item::Object(n)) => n,
            other => panic!("not an object: {other:?}"),
        }
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    image: nginx:1\n    securityContext:\n      runAsNonRoot: false\n";

    #[test]
    fn replaces_a_scalar_in_place() {
        let path = FieldPath::parse("spec.containers[0].securityContext.runAsNonRoot");
        let edit = set_field(POD, &object(POD), &path, &scalar("true"));
        let fixed = apply(POD, &edit.unwrap_or_else(|| panic!("no edit")));
        assert!(fixed.contains("      runAsNonRoot: true\n"), "{fixed}");
    }

    #[test]
    fn inserts_missing_keys_at_the_mappings_indentation() {
        let path = FieldPath::parse("spec.containers[0].securityContext.capabilities.drop");
        let edit = set_field(POD, &object(POD), &path, &scalar("[\"ALL\"]"));
        let fixed = apply(POD, &edit.unwrap_or_else(|| panic!("no edit")));
        assert!(
            fixed.ends_with("      runAsNonRoot: false\n      capabilities:\n        drop: [\"ALL\"]\n"),
            "{fixed}"
        );
        assert!(matches!(
            paved_yaml::load(&fixed, &paved_yaml::Limits::default()).as_deref(),
            Ok([paved_yaml::Item::Object(_)])
        ));
    }

    #[test]
    fn no_fix_for_flow_style() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n";
        let path = FieldPath::parse("spec.containers[0].securityContext.runAsNonRoot");
        assert_eq!(set_field(text, &object(text), &path, &scalar("true")), None);
    }
}
