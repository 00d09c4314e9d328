//! Each best-practice rule on real manifests it must allow and must flag:
//! `tests/best-practices/<rule>/{allow,flag}-*.yaml`, evaluated with the
//! `best-practices` profile and `allowed-registries: [registry.example.com]`.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use paved_core::config::Config;
use paved_core::eval::Engine;
use paved_core::profile::Mode;
use paved_yaml::{Item, Limits};

#[test]
fn every_rule_allows_and_flags_what_it_should() {
    let mut config = Config::default();
    config.params.allowed_registries = Some(vec!["registry.example.com".into()]);
    let engine = Engine::new(&config, Some("best-practices"), Mode::Enforce).expect("profile compiles");
    let now = "2026-01-01T00:00:00Z".parse().expect("timestamp");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/best-practices");
    let mut checked = 0;
    let mut failures = Vec::new();
    for rule_dir in std::fs::read_dir(&root).expect("fixture directory") {
        let rule_dir = rule_dir.expect("entry").path();
        let rule = format!("best-practices/{}", rule_dir.file_name().expect("name").to_string_lossy());
        assert!(paved_core::rules::find(&rule).is_some(), "fixture directory for unknown rule {rule}");
        let (mut allows, mut flags) = (0, 0);
        for file in std::fs::read_dir(&rule_dir).expect("rule directory") {
            let file = file.expect("entry").path();
            let name = file.file_name().expect("name").to_string_lossy().into_owned();
            let must_flag = name.starts_with("flag");
            if must_flag {
                flags += 1
            } else {
                allows += 1
            }
            let text = std::fs::read_to_string(&file).expect("fixture");
            let items = paved_yaml::load(&text, &Limits::default()).expect("fixture loads");
            for item in items {
                let Item::Object(obj) = item else { panic!("{name}: not an object") };
                let findings = engine.evaluate(&obj, now);
                let mine: Vec<_> = findings.iter().filter(|f| f.policy == rule).collect();
                checked += 1;
                if must_flag && mine.is_empty() {
                    failures.push(format!("{rule}: {name} should be flagged"));
                }
                if !must_flag && !mine.is_empty() {
                    failures.push(format!("{rule}: {name} should be allowed, got {:?}", mine[0].message));
                }
                for f in &mine {
                    assert!(f.exact || !f.span.is_none(), "{name}: finding has no location");
                }
            }
        }
        assert!(allows > 0 && flags > 0, "{rule} needs both allow and flag fixtures");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("best-practices: {checked} fixtures checked");
}

#[test]
fn every_best_practice_rule_has_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/best-practices");
    for rule in paved_core::rules::all().filter(|r| r.group == "best-practices") {
        let name = rule.id.trim_start_matches("best-practices/");
        assert!(root.join(name).is_dir(), "no fixtures for {}", rule.id);
    }
}
