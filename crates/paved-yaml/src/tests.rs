use super::*;
use paved_core::node::FieldPath;

fn objects(text: &str) -> Vec<Node<'_>> {
    load(text, &Limits::default())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i {
            Item::Object(n) => Some(n),
            _ => None,
        })
        .collect()
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx
    securityContext:
      privileged: true
";

#[test]
fn positions_are_one_based_lines_and_columns() {
    let pods = objects(POD);
    let (span, exact) = pods[0].locate(&FieldPath::parse("spec.containers[0].securityContext.privileged"));
    assert!(exact);
    assert_eq!((span.start.line, span.start.col), (10, 7));
    assert_eq!((span.end.line, span.end.col), (10, 23));
    // a missing field falls back to its nearest existing parent
    let (span, exact) = pods[0].locate(&FieldPath::parse("spec.containers[0].securityContext.runAsNonRoot"));
    assert!(!exact);
    assert_eq!(span.start.line, 9);
}

#[test]
fn multi_document_lines_are_absolute() {
    let text = format!("# leading comment\n---\n{POD}---\n{POD}");
    let pods = objects(&text);
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[0].span.start.line, 3);
    assert_eq!(pods[1].get("kind").map(|k| k.span.start.line), Some(15));
}

#[test]
fn a_bad_document_is_reported_and_the_rest_still_load() {
    let text = format!("{POD}---\nkind: [unclosed\n---\n{POD}");
    let items = load(&text, &Limits::default()).unwrap_or_default();
    assert_eq!(items.len(), 3);
    assert!(matches!(&items[1], Item::Error(e) if e.pos.line >= 12));
    assert!(matches!(&items[2], Item::Object(_)));
}

#[test]
fn scalars_resolve_like_kubectl() {
    for (text, want) in [
        ("yes", Value::Bool(true)),
        ("off", Value::Bool(false)),
        ("~", Value::Null),
        ("0", Value::Int(0)),
        ("0x1F", Value::Int(31)),
        ("0755", Value::Int(493)),
        ("-12", Value::Int(-12)),
        ("1.5", Value::Float(1.5)),
        ("1Gi", Value::Str("1Gi".into())),
        ("100m", Value::Str("100m".into())),
        ("1.2.3", Value::Str("1.2.3".into())),
        ("infinity", Value::Str("infinity".into())),
    ] {
        assert_eq!(build::resolve_plain(text), want, "{text}");
    }
    let n = objects("apiVersion: v1\nkind: X\na: 'yes'\nb: \"0\"\nc: !!str 12\n");
    assert_eq!(n[0].get("a").and_then(Node::as_str), Some("yes"));
    assert_eq!(n[0].get("b").and_then(Node::as_str), Some("0"));
    assert_eq!(n[0].get("c").and_then(Node::as_str), Some("12"));
}

#[test]
fn json_loads_with_positions() {
    let n = objects("{\"apiVersion\": \"v1\",\n \"kind\": \"Pod\",\n \"spec\": {\"hostPID\": true}}");
    let (span, exact) = n[0].locate(&FieldPath::parse("spec.hostPID"));
    assert!(exact);
    assert_eq!(span.start.line, 3);
    assert_eq!(n[0].at(&["spec", "hostPID"]).and_then(Node::as_bool), Some(true));
}

#[test]
fn lists_are_flattened() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n";
    let n = objects(text);
    assert_eq!(n.len(), 2);
    assert_eq!(n[1].get("kind").and_then(Node::as_str), Some("Service"));
    assert_eq!(n[1].span.start.line, 7);
}

#[test]
fn documents_without_kind_are_skipped() {
    let items = load("foo: bar\n---\n# only a comment\n---\n", &Limits::default()).unwrap_or_default();
    assert_eq!(items.len(), 1);
    assert!(matches!(items[0], Item::Skipped { pos: Pos { line: 1, .. }, .. }));
}

#[test]
fn merge_keys_and_aliases() {
    let text = "apiVersion: v1\nkind: X\nbase: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n";
    let n = objects(text);
    let d = n[0].get("derived");
    assert_eq!(d.and_then(|d| d.get("a")).and_then(Node::as_i64), Some(1));
    assert_eq!(d.and_then(|d| d.get("b")).and_then(Node::as_i64), Some(3));
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let mut text =
        String::from("apiVersion: v1\nkind: X\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let items = load(&text, &Limits::default()).unwrap_or_default();
    assert!(matches!(&items[0], Item::Error(e) if e.message.contains("alias expansion")), "{items:?}");
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("apiVersion: v1\nkind: X\na: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let items = load(&deep, &Limits::default()).unwrap_or_default();
    assert!(matches!(&items[0], Item::Error(e) if e.message.contains("nesting")), "{items:?}");
}

#[test]
fn helm_templates_get_a_suggestion() {
    let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n";
    assert_eq!(load(text, &Limits::default()).err(), Some(FileError::HelmTemplate { line: 4 }));
    let message = FileError::HelmTemplate { line: 4 }.to_string();
    assert!(message.contains("helm template"));
    assert_eq!(load("a:\n  b: {{.}}\n", &Limits::default()).err(), Some(FileError::HelmTemplate { line: 2 }));
    assert_eq!(load("a: \"{{ .Values.x }}\"\n", &Limits::default()).err(), Some(FileError::HelmTemplate { line: 1 }));
    // braces in ordinary strings are fine: an ellipsis, and JSON (which Helm does not render)
    assert!(load("details: |\n  use Django's `{{ ... }}` syntax\n", &Limits::default()).is_ok());
    assert!(load("{\"details\": \"e.g. \\\"var a = {{.}}\\\"\"}\n", &Limits::default()).is_ok());
    assert!(load("apiVersion: v1\nkind: ConfigMap\ndata: {a: \"{{not a template}}\"}\n", &Limits::default()).is_ok());
}

#[test]
fn binary_and_non_utf8_files_are_reported() {
    assert_eq!(decode(b"abc\0def", &Limits::default()), Err(FileError::Binary { offset: 3 }));
    assert_eq!(
        decode(b"a: 1\nb: \xff\n", &Limits::default()),
        Err(FileError::NotUtf8 { pos: Pos { line: 2, col: 4 } })
    );
    let limits = Limits { max_file_bytes: 4, ..Limits::default() };
    assert!(matches!(decode(b"12345", &limits), Err(FileError::TooLarge { .. })));
    assert_eq!(decode(b"\xEF\xBB\xBFa: 1", &Limits::default()), Ok("a: 1"));
}

#[test]
fn too_many_documents() {
    let limits = Limits { max_documents: 2, ..Limits::default() };
    assert_eq!(load("a: 1\n---\nb: 2\n---\nc: 3\n", &limits).err(), Some(FileError::TooManyDocuments { limit: 2 }));
}
