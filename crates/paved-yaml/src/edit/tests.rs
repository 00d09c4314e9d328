#![allow(clippy::unwrap_used, clippy::panic)]

use paved_core::mutate::PatchOp;
use serde_json::json;

use super::*;

fn op(op: &'static str, path: &str, value: Option<Json>) -> PatchOp {
    PatchOp { op, path: path.into(), value }
}

fn patched(doc: &str, ops: &[PatchOp]) -> String {
    patch_document(doc, ops, &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

#[test]
fn inserts_into_block_mappings_at_their_indentation_keeping_the_rest() {
    let doc = "apiVersion: v1\nkind: Pod   # a comment\nmetadata:\n    name: 'p'\nspec:\n    containers:\n    -   name: app\n        image: \"nginx:1\"\n        securityContext:\n            runAsUser: 1000\n";
    let out = patched(
        doc,
        &[
            op("add", "/spec/securityContext", Some(json!({"seccompProfile": {"type": "RuntimeDefault"}}))),
            op("add", "/spec/containers/0/securityContext/allowPrivilegeEscalation", Some(json!(false))),
            op("add", "/spec/containers/0/securityContext/capabilities", Some(json!({"drop": ["ALL"]}))),
            op("add", "/spec/containers/0/resources", Some(json!({"requests": {"cpu": "100m", "memory": "1"}}))),
        ],
    );
    assert_eq!(
        out,
        "apiVersion: v1\nkind: Pod   # a comment\nmetadata:\n    name: 'p'\nspec:\n    containers:\n    -   name: app\n        image: \"nginx:1\"\n        securityContext:\n            runAsUser: 1000\n            allowPrivilegeEscalation: false\n            capabilities:\n                drop: [ALL]\n        resources:\n            requests:\n                cpu: 100m\n                memory: \"1\"\n    securityContext:\n        seccompProfile:\n            type: RuntimeDefault\n"
    );
}

#[test]
fn extends_one_line_flow_collections_and_appends_to_lists() {
    let doc = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: b}\n  tolerations: []\n  volumes:\n  - name: x\n    emptyDir: {}\n";
    let out = patched(
        doc,
        &[
            op("add", "/spec/containers/0/securityContext", Some(json!({"allowPrivilegeEscalation": false}))),
            op("add", "/metadata/labels", Some(json!({"app.kubernetes.io/name": "web"}))),
            op("add", "/spec/tolerations/-", Some(json!({"key": "k", "operator": "Exists"}))),
            op("add", "/spec/volumes/-", Some(json!({"name": "cache", "emptyDir": {"medium": "Memory"}}))),
        ],
    );
    assert_eq!(
        out,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app.kubernetes.io/name: web}}\nspec:\n  containers:\n  - {name: a, image: b, securityContext: {allowPrivilegeEscalation: false}}\n  tolerations: [{key: k, operator: Exists}]\n  volumes:\n  - name: x\n    emptyDir: {}\n  - name: cache\n    emptyDir:\n      medium: Memory\n"
    );
}

#[test]
fn replaces_nulls_and_scalars_and_removes_lines() {
    let doc = "kind: Pod\nspec:\n  securityContext:\n  hostNetwork: true # why\n  dnsPolicy: Default\n";
    let out = patched(
        doc,
        &[
            op("replace", "/spec/securityContext", Some(json!({"runAsNonRoot": true}))),
            op("replace", "/spec/hostNetwork", Some(json!(false))),
            op("remove", "/spec/dnsPolicy", None),
        ],
    );
    assert_eq!(out, "kind: Pod\nspec:\n  securityContext:\n    runAsNonRoot: true\n  hostNetwork: false # why\n");
}

#[test]
fn strings_are_quoted_where_yaml_would_read_something_else() {
    for (s, text) in [
        ("RuntimeDefault", "RuntimeDefault"),
        ("100m", "100m"),
        ("256Mi", "256Mi"),
        ("1", "\"1\""),
        ("1e3", "\"1e3\""),
        ("yes", "\"yes\""),
        ("off", "\"off\""),
        ("null", "\"null\""),
        ("a b", "\"a b\""),
        ("x: y", "\"x: y\""),
        ("nginx:1.27", "nginx:1.27"),
        ("repo@sha256:ab12", "repo@sha256:ab12"),
        ("1:30", "\"1:30\""),
        ("a:", "\"a:\""),
        ("0x1F", "\"0x1F\""),
        ("", "\"\""),
    ] {
        assert_eq!(flow(&json!(s)), text, "{s:?}");
    }
}

#[test]
fn crlf_documents_keep_their_line_ends() {
    let doc = "kind: Pod\r\nspec:\r\n  hostPID: false\r\n";
    let out = patched(doc, &[op("add", "/spec/hostIPC", Some(json!(false)))]);
    assert_eq!(out, "kind: Pod\r\nspec:\r\n  hostPID: false\r\n  hostIPC: false\r\n");
}

#[test]
fn what_cannot_be_edited_safely_is_refused_and_says_where() {
    let anchors = "kind: Pod\nx: &sc {runAsUser: 1}\nspec:\n  securityContext: *sc\n";
    let err = patch_document(anchors, &[op("add", "/spec/securityContext/a", Some(json!(1)))], &Limits::default());
    assert_eq!(err, Err(CannotEdit::Anchors));
    let list = "kind: Pod\nspec:\n  args:\n  - a\n";
    let err = patch_document(list, &[op("add", "/spec/args/0", Some(json!("b")))], &Limits::default()).unwrap_err();
    assert_eq!(err.to_string(), "4:3: inserting into a list by position");
    let missing = patch_document("kind: Pod\n", &[op("add", "/spec/c/d", Some(json!(1)))], &Limits::default());
    assert!(matches!(missing, Err(CannotEdit::Patch(_))), "{missing:?}");
}

#[test]
fn json_documents_get_json() {
    let doc = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"spec\": {\n    \"containers\": [\n      {\"name\": \"a\", \"image\": \"b\"}\n    ],\n    \"volumes\": [\n      {\"name\": \"v\"}\n    ]\n  }\n}\n";
    let out = patched(
        doc,
        &[
            op("add", "/spec/securityContext", Some(json!({"seccompProfile": {"type": "RuntimeDefault"}}))),
            op("add", "/spec/containers/0/securityContext", Some(json!({"allowPrivilegeEscalation": false}))),
            op("add", "/spec/volumes/-", Some(json!({"name": "w"}))),
        ],
    );
    assert_eq!(
        out,
        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"spec\": {\n    \"containers\": [\n      {\"name\": \"a\", \"image\": \"b\", \"securityContext\": {\"allowPrivilegeEscalation\":false}}\n    ],\n    \"volumes\": [\n      {\"name\": \"v\"},\n      {\"name\":\"w\"}\n    ],\n    \"securityContext\": {\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}\n  }\n}\n"
    );
    assert!(serde_json::from_str::<Json>(&out).is_ok(), "still JSON");
}
