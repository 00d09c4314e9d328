//! `paved test` on Gatekeeper suites: the public library passes in place, and
//! a wrong expectation fails with its reason and exit 1.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn paved_test(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paved")).arg("test").args(args).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_gatekeeper_library_passes_in_place() {
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gatekeeper-library");
    let (code, stdout, stderr) = paved_test(Path::new("."), &["--format", "json", library.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(doc["suites"].as_u64().unwrap() >= 30);
    assert!(doc["passed"].as_u64().unwrap() >= 150);
    assert_eq!(doc["failed"], 0);
}

#[test]
fn a_wrong_expectation_fails_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let library =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gatekeeper-library/general/requiredlabels");
    let template = library.join("template.yaml");
    let constraint = library.join("samples/all-must-have-owner/constraint.yaml");
    let allowed = library.join("samples/all-must-have-owner/example_allowed.yaml");
    let disallowed = library.join("samples/all-must-have-owner/example_disallowed.yaml");
    std::fs::write(
        dir.path().join("suite.yaml"),
        format!(
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: owner\n  template: {}\n  constraint: {}\n  cases:\n  - name: right\n    object: {}\n    assertions:\n    - violations: no\n  - name: wrong\n    object: {}\n    assertions:\n    - violations: 0\n",
            template.display(),
            constraint.display(),
            allowed.display(),
            disallowed.display()
        ),
    )
    .unwrap();
    let (code, stdout, _) = paved_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("PASS ./suite.yaml: owner / right"), "{stdout}");
    assert!(stdout.contains("FAIL ./suite.yaml: owner / wrong: expected 0 violations, got 1"), "{stdout}");
    assert!(stdout.contains("1 suites: 1 cases passed, 1 failed"), "{stdout}");
}
