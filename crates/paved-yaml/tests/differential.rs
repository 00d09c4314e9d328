//! The fast path gives the same nodes as the full parser whenever it answers,
//! on every manifest of the shared corpora and on hand-picked tricky inputs.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use paved_core::node::{Node, Value};
use paved_yaml::{Limits, parse_document, parse_document_fast};

/// Compares two trees: values, key order and positions, scalar positions.
pub fn same(a: &Node, b: &Node, path: &str) -> Result<(), String> {
    let scalar_start = |n: &Node| matches!(n.value, Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_));
    if scalar_start(a) && a.span.start != b.span.start {
        return Err(format!("{path}: scalar starts at {:?} (fast) vs {:?} (full)", a.span.start, b.span.start));
    }
    match (&a.value, &b.value) {
        (Value::Map(x), Value::Map(y)) => {
            if x.entries.len() != y.entries.len() {
                return Err(format!("{path}: {} keys (fast) vs {} (full)", x.entries.len(), y.entries.len()));
            }
            for (e, f) in x.entries.iter().zip(&y.entries) {
                if e.key != f.key || e.key_span.start != f.key_span.start {
                    return Err(format!(
                        "{path}: key {:?}@{:?} (fast) vs {:?}@{:?} (full)",
                        e.key, e.key_span.start, f.key, f.key_span.start
                    ));
                }
                same(&e.value, &f.value, &format!("{path}.{}", e.key))?;
            }
            Ok(())
        }
        (Value::Seq(x), Value::Seq(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} items (fast) vs {} (full)", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().try_for_each(|(i, (p, q))| same(p, q, &format!("{path}[{i}]")))
        }
        (Value::Float(x), Value::Float(y)) if x.is_nan() && y.is_nan() => Ok(()),
        (x, y) if x == y => Ok(()),
        (x, y) => Err(format!("{path}: {x:?} (fast) vs {y:?} (full)")),
    }
}

/// The one refusal of the full parser that the fast path overrules on
/// purpose: libyaml (and so kubectl and Gatekeeper) accepts continuation
/// lines of quoted scalars at any indentation; saphyr does not.
pub const LENIENT: &str = "invalid indentation in quoted scalar";

/// Checks one document; returns whether the fast path answered.
fn check(text: &str, name: &str) -> bool {
    let limits = Limits::default();
    let Some(fast) = parse_document_fast(text, 1, &limits) else { return false };
    let full = match parse_document(text, 1, &limits) {
        Ok(full) => full,
        Err(e) if e.message == LENIENT => return true,
        Err(e) => panic!("{name}: fast path accepted what the full parser refuses ({e})\n{text}"),
    };
    match (&fast, &full) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            if let Err(e) = same(a, b, "") {
                panic!("{name}: {e}\n{text}");
            }
        }
        _ => panic!("{name}: fast {:?} vs full {:?}", fast.is_some(), full.is_some()),
    }
    true
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(p);
        }
    }
}

/// Splits as the loader does: at `---` lines.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.split_inclusive('\n') {
        let marker = line.strip_prefix("---").is_some_and(|r| r.trim().is_empty() || r.starts_with([' ', '#']));
        if marker && !docs.last().is_some_and(String::is_empty) {
            docs.push(String::new());
        }
        docs.last_mut().expect("a document").push_str(line);
    }
    docs
}

#[test]
fn fast_path_agrees_with_the_full_parser_on_the_corpora() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut all = Vec::new();
    for dir in ["../shared/corpus", "examples", "crates/paved/tests"] {
        files(&root.join(dir), &mut all);
    }
    let pss = root.join("../shared/corpus/pod-security");
    let (mut answered, mut total, mut pss_answered, mut pss_total) = (0, 0, 0, 0);
    for f in &all {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        for doc in documents(&text) {
            total += 1;
            let ok = check(&doc, &f.display().to_string());
            answered += usize::from(ok);
            if f.starts_with(&pss) {
                pss_total += 1;
                pss_answered += usize::from(ok);
            }
        }
    }
    eprintln!("fast path answered {answered} of {total} documents ({pss_answered} of {pss_total} PSS fixtures)");
    assert!(total > 1500, "corpora missing: only {total} documents");
    assert_eq!(pss_answered, pss_total, "every PSS fixture is plain manifest YAML: the fast path must take it");
    assert!(answered * 10 >= total * 9, "the fast path should answer for most real manifests");
}

#[test]
fn quoted_continuations_are_taken_as_kubectl_takes_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gatekeeper-library");
    let text = std::fs::read_to_string(root.join("general/httpsonly/template.yaml")).expect("corpus file");
    let items = paved_yaml::load(&text, &Limits::default()).expect("loads");
    let Some(paved_yaml::Item::Object(t)) = items.first() else { panic!("not an object: {items:?}") };
    let description = t
        .at(&["spec", "crd", "spec", "validation", "openAPIV3Schema", "properties", "tlsOptional", "description"])
        .and_then(Node::as_str);
    // What libyaml (PyYAML, go-yaml) gives for this scalar.
    assert_eq!(description, Some("When set to `true` the TLS {} is optional, defaults to false."));
}

#[test]
fn fast_path_agrees_on_tricky_inputs() {
    let cases = [
        "a: 1\nb: yes\nc: ~\nd: 0755\ne: 1e3\nf: .inf\ng: -.5\nh: 0x1F\ni: '0'\nj: \"\\u00e9t\\u00e9\"\n",
        "key : spaced\n\"quoted key\": v\n'single': 'it''s'\nurl: http://x:80/y\nhash: a#b # comment\n",
        "list:\n- a\n- b: 1\n  c: 2\n-\n  d: 3\n- [x, y]\n- {k: v}\n-\n- last\n",
        "compact:\n- a\n- b\nnext: 1\n",
        "lit: |\n  line 1\n    indented\n\n  line 3\n\nafter: x\n",
        "keep: |+\n  a\n\n\nstrip: |-\n  b\n\nclip: >\n  folded\n  text\n\n  para\n",
        "{\"apiVersion\": \"v1\",\n \"items\": [1, 2.5, true, null, \"s\"],\n \"nested\": {\"a\": {\"b\": []}}}\n",
        "flow: {a: 1, b: [c, d], \"e\": f, g: }\nempty: {}\nnone: []\n",
        "deep:\n  deeper:\n    deepest:\n    - x\n  back: 1\n",
        "é: ünïcödé\nnext: 'ß' # comment\n",
        "# comment only\n",
        "---\na: 1\n",
        "--- # marker with comment\na: 1\n",
        // multi-line quoted scalars, folded as YAML folds them
        "a: \"first line\n  second line\"\nb: 'single\n  quoted\n\n  with a blank'\n",
        "a: \"joined\\\n  here\" \n",
        "list:\n- \"item\n  continued\"\n- {k: \"flow\n    value\"}\n",
        // the fast path gives up on these; the test checks only that it never disagrees
        "\"multi\n line key\": 1\n",
        "a: \"unterminated\n",
        "a: \"marker\n---\"\n",
        // found by fuzzing: a document marker inside a flow collection
        "{\n--- :}",
        "a: 1\n--- b: 2\n",
        "a: [1,\n... ]\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: multi\n  line plain\n",
        "a: \"multi\n  line\"\n",
        "? complex\n: key\n",
        "a: 1\n  b: 2\n",
        "a: [1,\n2]\n",
        "a: [1,\n  2]\n",
        "a:\n  - x\n - y\n",
        "- - nested\n",
        "a: |2\n   explicit\n",
        "a: |\n\n  leading blank\n",
        "a: {b: 1\n",
        "a: b: c\n",
        "a:\tb\n",
        "top\n",
        "a: 1\n...\n",
        // found by fuzzing: characters YAML does not allow, or treats as breaks
        "a: b\u{1}c\n",
        "a: b\u{7f}\n",
        "a: b\u{85}c\n",
        "a: b\u{2028}c\n",
    ];
    let mut answered = 0;
    for (i, case) in cases.iter().enumerate() {
        answered += usize::from(check(case, &format!("case {i}")));
    }
    assert!(answered >= 12, "the fast path should take the ordinary cases, took {answered}");
}
