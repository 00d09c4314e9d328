//! Any bytes through the whole `paved check` path: decode, split, parse (fast
//! path and full parser), evaluate with the default profile; and the same text
//! read as data (`.paved.yaml`) under both YAML schemas. It must never
//! panic, hang or allocate without bound; and wherever the fast path answers,
//! the full parser must give the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_core::config::Config;
use paved_core::eval::Engine;
use paved_core::profile::Mode;
use paved_yaml::{Item, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_nodes: 20_000, ..Limits::default() };
    let Ok(text) = paved_yaml::decode(data, &limits) else { return };
    // The fast path never disagrees with the full parser.
    if let Err(e) = paved_yaml::fast_path_agreement(text, 1, &limits) {
        panic!("{e}");
    }
    // The data path (configuration, suites) under both schemas: YAML 1.2's
    // re-reading of scalars by their spans must hold on any text.
    for schema in [paved_yaml::Schema::Core, paved_yaml::Schema::Kubernetes] {
        let _ = paved_yaml::load_values(text, &limits, schema);
        let _ = paved_yaml::from_str::<Config>(text, &limits, schema);
    }
    let Ok(items) = paved_yaml::load(text, &limits) else { return };
    let Ok(engine) = Engine::new(&Config::default(), None, Mode::Enforce) else { return };
    let now = paved_core::Timestamp::UNIX_EPOCH;
    for item in items {
        if let Item::Object(node) = item {
            for f in engine.evaluate(&node, now) {
                assert!(f.message.chars().count() <= paved_core::policy::MAX_MESSAGE, "{}", f.message);
            }
        }
    }
});
