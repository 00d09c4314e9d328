//! Any bytes through the whole `paved check` path: decode, split, parse (fast
//! path and full parser), evaluate with the default profile. It must never
//! panic, hang or allocate without bound; and wherever the fast path answers,
//! the full parser must give the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_core::config::Config;
use paved_core::eval::Engine;
use paved_core::node::{Node, Value};
use paved_core::profile::Mode;
use paved_yaml::{Item, Limits};

fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Map(x), Value::Map(y)) => {
            x.entries.len() == y.entries.len()
                && x.entries.iter().zip(&y.entries).all(|(e, f)| {
                    e.key == f.key && e.key_span.start == f.key_span.start && same(&e.value, &f.value)
                })
        }
        (Value::Seq(x), Value::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Float(x), Value::Float(y)) if x.is_nan() && y.is_nan() => true,
        (x, y) => x == y && (matches!(x, Value::Null) || a.span.start == b.span.start),
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_nodes: 20_000, ..Limits::default() };
    let Ok(text) = paved_yaml::decode(data, &limits) else { return };
    // The fast path never disagrees with the full parser.
    if let Some(fast) = paved_yaml::parse_document_fast(text, 1, &limits) {
        match (fast, paved_yaml::parse_document(text, 1, &limits)) {
            (None, Ok(None)) => {}
            (Some(a), Ok(Some(b))) => assert!(same(&a, &b), "fast and full parsers disagree"),
            // On purpose: libyaml, and so kubectl, accepts quoted-scalar
            // continuation lines at any indentation; saphyr does not.
            (Some(_), Err(e)) if e.message == "invalid indentation in quoted scalar" => {}
            (f, full) => panic!("fast path answered {:?}, full parser {:?}", f.is_some(), full.map(|n| n.is_some())),
        }
    }
    let Ok(items) = paved_yaml::load(text, &limits) else { return };
    let Ok(engine) = Engine::new(&Config::default(), None, Mode::Enforce) else { return };
    let now = paved_core::Timestamp::UNIX_EPOCH;
    for item in items {
        if let Item::Object(node) = item {
            for f in engine.evaluate(&node, now) {
                assert!(f.message.chars().count() <= 120);
            }
        }
    }
});
