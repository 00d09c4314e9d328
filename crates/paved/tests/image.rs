//! paved's own container image, as `deploy/image/build.sh` builds it:
//! pushed to a real registry (docker-registry) and read back by paved, it
//! carries no shell, package manager or setuid file, runs as non-root, and
//! the manifests `paved install` prints for it pass paved's own
//! supply-chain profile. `.ci/run` builds the image, then runs this.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

mod support;

use paved_image::test_registry::TestRegistry;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn layout() -> PathBuf {
    std::env::var_os("PAVED_IMAGE_LAYOUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/image"))
}

fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
#[ignore = "needs the image deploy/image/build.sh builds (target/image, or PAVED_IMAGE_LAYOUT); .ci/run builds it"]
fn the_image_runs_as_non_root_without_a_shell_and_passes_the_supply_chain_profile() {
    let layout = layout();
    // The layout as build.sh tags it: the published name, the crate's version.
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], VERSION);
    let manifest = blob(&layout, entry["digest"].as_str().unwrap());
    let published = &manifest["annotations"]["org.opencontainers.image.ref.name"];
    assert_eq!(*published, format!("ghcr.io/paved-dev/paved:{VERSION}"));
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["User"], "65532:65532", "runs as non-root");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/paved"]));
    assert_eq!((config["os"].as_str(), config["architecture"].as_str()), (Some("linux"), Some("amd64")));

    let registry = TestRegistry::start(None);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let digest = rt.block_on(registry.push_layout(&layout, VERSION, &format!("paved-dev/paved:{VERSION}")));
    let image = format!("{}/paved-dev/paved:{VERSION}@{digest}", registry.host);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();

    // The manifests paved installs, running this image.
    let install = support::paved(dir.path(), &["install", "--image", &image]);
    assert_eq!(install.code, 0, "{}", install.stderr);
    std::fs::write(dir.path().join("install.yaml"), &install.stdout).unwrap();

    let contents = support::paved(
        dir.path(),
        &[
            "images",
            "--contents",
            "--format",
            "json",
            "--registry-ca",
            "ca.pem",
            "--image-cache",
            "cache",
            "install.yaml",
        ],
    );
    assert_eq!(contents.code, 0, "{}", contents.stderr);
    let v = support::paved_json(&contents.stdout);
    let row = &v["images"][0];
    assert_eq!(row["image"], image.as_str());
    let carried = &row["contents"]["contents"];
    assert_eq!(row["contents"]["digest"], digest.as_str(), "{row}");
    for what in ["shells", "packageManagers", "setuid"] {
        assert_eq!(carried[what], serde_json::json!([]), "the image carries {what}: {row}");
    }
    let text = support::paved(
        dir.path(),
        &["images", "--contents", "--registry-ca", "ca.pem", "--image-cache", "cache", "install.yaml"],
    );
    assert!(text.stdout.contains("    shells: none\n"), "{}", text.stdout);

    let check = support::paved(
        dir.path(),
        &[
            "check",
            "--profile",
            "supply-chain",
            "--fail-on",
            "warn",
            "--registry-ca",
            "ca.pem",
            "--image-cache",
            "cache",
            "install.yaml",
        ],
    );
    assert_eq!(check.code, 0, "paved's own supply-chain profile fails on its image:\n{}{}", check.stdout, check.stderr);
}
