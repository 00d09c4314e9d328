//! Quick fixes for `paved lsp`: the mechanical ones, as text edits on the YAML
//! the user wrote. An edit either sets a scalar in place or inserts the
//! missing keys as a block under the nearest existing mapping, at its
//! indentation; when the shape is anything else (flow style, a null parent),
//! no fix is offered rather than a wrong one.

use std::borrow::Cow;

use paved_core::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL};
use paved_core::mutate::PatchOp;
use paved_core::node::{FieldPath, Node, Seg, Value};
use paved_core::policy::Finding;
pub use paved_yaml::edit::Edit;

/// A value to write: a scalar as YAML text, or a mapping of further values.
#[derive(Clone, Debug)]
pub enum Fix {
    Scalar(Cow<'static, str>),
    Map(Vec<(&'static str, Fix)>),
}

fn scalar(s: &'static str) -> Fix {
    Fix::Scalar(Cow::Borrowed(s))
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

/// The value a fix writes, as JSON: a snippet that is JSON (`true`,
/// `["ALL"]`, `"2026-01-31"`) as such, any other text as a string.
fn to_json(fix: &Fix) -> serde_json::Value {
    match fix {
        Fix::Scalar(s) => serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_string())),
        Fix::Map(entries) => {
            serde_json::Value::Object(entries.iter().map(|(k, v)| ((*k).to_owned(), to_json(v))).collect())
        }
    }
}

/// Where `object` is in its document, as a JSON Pointer: the document
/// itself, or an item of a `List`.
fn pointer_of(text: &str, object: &Node) -> Option<String> {
    let doc = paved_yaml::documents(text).take_while(|d| d.first_line <= object.span.start.line).last()?;
    let root = paved_yaml::parse_one(doc.text, doc.first_line, &paved_yaml::Limits::default()).ok()??;
    if root.span == object.span {
        return Some(String::new());
    }
    let index = root.get("items")?.as_seq().iter().position(|item| item.span == object.span)?;
    Some(format!("/items/{index}"))
}

fn pointer(prefix: &str, segments: &[Seg]) -> String {
    format!("{prefix}{}", paved_core::mutate::pointer(segments))
}

/// The fix's operations made on the text, as one edit (by
/// `paved_yaml::edit`, as `paved fix` writes the paved road's defaults).
fn edit(text: &str, object: &Node, ops: Vec<PatchOp>) -> Option<Edit> {
    paved_yaml::edit::patch_in_file(text, object.span.start.line, &ops, &paved_yaml::Limits::default()).ok()
}

/// Makes `path` hold `value`: replaces a scalar that is there, or adds
/// what is missing under the deepest mapping that exists.
pub fn set_field(text: &str, root: &Node, path: &FieldPath, value: &Fix) -> Option<Edit> {
    let prefix = pointer_of(text, root)?;
    let (node, depth) = walk(root, path);
    if depth == path.0.len() {
        if matches!(value, Fix::Map(_)) || matches!(node.value, Value::Map(_) | Value::Seq(_)) {
            return None;
        }
        let op = PatchOp { op: "replace", path: pointer(&prefix, &path.0), value: Some(to_json(value)) };
        return edit(text, root, vec![op]);
    }
    // What is missing must be keys (list items are never made up), under a mapping.
    if !path.0[depth..].iter().all(|s| matches!(s, Seg::Key(_))) || !matches!(node.value, Value::Map(_)) {
        return None;
    }
    let mut nested = to_json(value);
    for seg in path.0[depth + 1..].iter().rev() {
        let Seg::Key(k) = seg else { return None };
        nested = serde_json::json!({ k.as_ref(): nested });
    }
    let op = PatchOp { op: "add", path: pointer(&prefix, &path.0[..=depth]), value: Some(nested) };
    edit(text, root, vec![op])
}

/// Adds the entries of `map` to the mapping at `path`, made if missing.
fn insert_map(text: &str, root: &Node, path: &FieldPath, map: &Fix) -> Option<Edit> {
    let (node, depth) = walk(root, path);
    let Fix::Map(entries) = map else { return None };
    if depth == path.0.len() && matches!(node.value, Value::Map(_)) {
        let prefix = pointer_of(text, root)?;
        let ops = entries
            .iter()
            .map(|(k, v)| PatchOp {
                op: "add",
                path: pointer(&prefix, &path.clone().key(*k).0),
                value: Some(to_json(v)),
            })
            .collect();
        return edit(text, root, ops);
    }
    set_field(text, root, path, map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, e: &Edit) -> String {
        paved_yaml::edit::apply(text, e)
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
        assert!(fixed.ends_with("      runAsNonRoot: false\n      capabilities:\n        drop: [ALL]\n"), "{fixed}");
        assert!(matches!(
            paved_yaml::load(&fixed, &paved_yaml::Limits::default()).as_deref(),
            Ok([paved_yaml::Item::Object(_)])
        ));
    }

    #[test]
    fn flow_style_is_extended_in_place_and_anchors_get_no_fix() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n";
        let path = FieldPath::parse("spec.containers[0].securityContext.runAsNonRoot");
        let fixed = apply(text, &set_field(text, &object(text), &path, &scalar("true")).unwrap());
        assert_eq!(
            fixed,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b, securityContext: {runAsNonRoot: true}}]}\n"
        );
        let anchored = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [&a {name: a, image: b}]}\n";
        assert_eq!(set_field(anchored, &object(anchored), &path, &scalar("true")), None);
    }
}
