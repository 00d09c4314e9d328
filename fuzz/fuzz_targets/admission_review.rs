//! Any bytes as an AdmissionReview body: decoding never panics, and a decoded
//! review always gets a well-formed answer within the webhook's bounds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paved_admission::Admission;
use paved_admission::cluster::{ClusterState, NamespaceLabels};
use paved_admission::review::AdmissionReview;

const CONFIG: &str = r#"
exceptions:
  authority: {groups: [admins]}
  policies: {best-practices/*: {users: [alice]}}
locks:
  authority: {groups: [sre]}
  protect:
  - {kinds: [PersistentVolumeClaim, Namespace], namespaces: ["prod-*"]}
  - {labelSelector: {tier: data}}
"#;

fn setup() -> &'static (Admission, ClusterState) {
    static SETUP: OnceLock<(Admission, ClusterState)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let config = serde_saphyr::from_str(CONFIG).expect("fuzz configuration");
        let admission = Admission::new(config, None, vec!["paved-system".into()]).expect("compiles");
        let mut cluster = ClusterState::default();
        let labels = |p: Option<&str>, v: Option<&str>, m: Option<&str>| NamespaceLabels {
            profile: p.map(str::to_owned),
            version: v.map(str::to_owned),
            mode: m.map(str::to_owned),
        };
        cluster.set_namespace("secure", labels(Some("pss-restricted"), Some("v1.25"), None));
        cluster.set_namespace("lab", labels(None, None, Some("warn")));
        cluster.set_namespace("odd", labels(Some("nonsense"), None, Some("loud")));
        cluster.locks.set("prod-eu", "persistentvolumeclaims/data", true);
        (admission, cluster)
    })
}

/// Same acceptance and the same values as serde_json. Numbers are compared as
/// f64 within a relative 1e-15: the node model keeps integers beyond i64 as
/// floats, and serde_json's default float parsing is not correctly rounded
/// (without its `float_roundtrip` feature) where Rust's `str::parse` is.
fn same(ours: &serde_json::Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (ours, theirs) {
        (V::Number(a), V::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y || ((x - y) / y).abs() < 1e-15,
            _ => false,
        },
        (V::Array(a), V::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (V::Object(a), V::Object(b)) => a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w))),
        _ => ours == theirs,
    }
}

fn json_agrees_with_serde(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let theirs = serde_json::from_str::<serde_json::Value>(text);
    match (paved_core::json::parse(text), theirs) {
        // Nesting limits differ by a level or two between the readers.
        (Err(e), Err(_)) | (Err(e), Ok(_)) if e.message == "nested too deeply" => {}
        (Ok(_), Err(e)) if e.to_string().contains("recursion limit") => {}
        (Ok(node), Ok(value)) => {
            // Written back through serde_json, duplicate keys keep the last, as serde_json reads them.
            let ours = serde_json::to_value(&node).expect("a node writes as JSON");
            assert!(same(&ours, &value), "{text:?}: {ours} vs {value}");
        }
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!("{text:?}: ours {:?}, serde_json {:?}", ours.err(), theirs.err()),
    }
}

fuzz_target!(|data: &[u8]| {
    json_agrees_with_serde(data);
    let Ok((version, request)) = AdmissionReview::decode(data) else { return };
    let (admission, cluster) = setup();
    let now = "2026-11-24T12:00:00Z".parse().expect("timestamp");
    let verdict = admission.review(&request, cluster, now);
    let response = verdict.into_response(request.uid.clone());
    assert_eq!(response.uid, request.uid);
    assert_eq!(response.allowed, response.status.is_none());
    let bytes: usize = response.warnings.iter().map(String::len).sum();
    assert!(bytes <= 4096, "{bytes} bytes of warnings");
    for w in &response.warnings {
        assert!(w.chars().count() <= 120 && !w.chars().any(char::is_control), "{w:?}");
    }
    let answer = serde_json::to_vec(&AdmissionReview::answer(version, response)).expect("encodes");
    let back: serde_json::Value = serde_json::from_slice(&answer).expect("valid JSON");
    assert!(back["response"]["uid"].is_string());
});
