//! Any text through the paved road's mutations and `paved fix`'s edits:
//! the patch builder's operations, applied by an independent RFC 6902
//! implementation, give exactly the object it says; and a document the
//! text edits change reads back as that object. Nothing may panic or hang;
//! a document the edits refuse is fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_core::mutate::{DEFAULTS, ResourceDefaults, paved_road_defaults, patch};
use paved_yaml::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_nodes: 20_000, ..Limits::default() };
    let Ok(text) = paved_yaml::decode(data, &limits) else { return };
    let enabled: Vec<&str> = DEFAULTS.iter().map(|(id, _)| *id).collect();
    let resources: ResourceDefaults = serde_json::from_value(
        serde_json::json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}),
    )
    .expect("valid defaults");
    let now = paved_core::Timestamp::UNIX_EPOCH;
    for doc in paved_yaml::documents(text) {
        let Ok(Some(root)) = paved_yaml::parse_one(doc.text, 1, &limits) else { continue };
        let Some(kind) = root.get("kind").and_then(paved_core::node::Node::as_str) else { continue };
        let mutations = paved_road_defaults(&root, kind, &enabled, &resources, now);
        let Ok(object) = serde_json::to_value(&root) else { continue };
        let (ops, mutated, _) = patch(&object, &mutations);
        let json_ops: json_patch::Patch =
            serde_json::from_value(serde_json::to_value(&ops).expect("ops serialize")).expect("ops are a JSON Patch");
        let mut applied = object.clone();
        json_patch::patch(&mut applied, &json_ops).expect("the builder's patch applies");
        assert_eq!(applied, mutated, "the patch gives the object the builder says");
        if let Ok(edited) = paved_yaml::edit::patch_document(doc.text, &ops, &limits) {
            let back = paved_yaml::parse_one(&edited, 1, &limits).expect("edited text parses").expect("a document");
            assert_eq!(serde_json::to_value(&back).expect("json"), mutated, "the edited text is the mutated object");
        }
    }
});
