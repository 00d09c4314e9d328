//! The fast path gives the same nodes as the full parser whenever it answers,
//! on every manifest of the shared corpora and on hand-picked tricky inputs.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use paved_core::node::Node;
use paved_yaml::{Agreement, Limits, fast_path_agreement};

/// Checks one document; returns whether the fast path answered.
fn check(text: &str, name: &str) -> bool {
    match fast_path_agreement(text, 1, &Limits::default()) {
        Ok(agreement) => agreement != Agreement::FellBack,
        Err(e) => panic!("{name}: {e}\n{text}"),
    }
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

#[test]
fn fast_path_agrees_with_the_full_parser_on_the_corpora() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut all = Vec::new();
    files(&paved_corpus::path(""), &mut all);
    for dir in ["examples", "crates/paved/tests"] {
        files(&root.join(dir), &mut all);
    }
    let pss = paved_corpus::path("pod-security");
    // Advisories (OSV) are YAML and JSON too, and must agree, but they are
    // prose-heavy documents, not manifests: the fast path's share is about manifests.
    let osv = paved_corpus::path("osv");
    let (mut answered, mut total, mut pss_answered, mut pss_total) = (0, 0, 0, 0);
    for f in &all {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        // Split exactly as the loader does.
        for doc in paved_yaml::documents(&text) {
            total += usize::from(!f.starts_with(&osv));
            let ok = check(doc.text, &f.display().to_string());
            if f.starts_with(&osv) {
                continue;
            }
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
    let root = paved_corpus::path("gatekeeper-library");
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
