#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The registry client against a real registry (Debian's docker-registry):
//! images built and pushed here, then pulled and analysed.

use base64::Engine as _;
use paved_image::auth::Credentials;
use paved_image::build::TarBuilder;
use paved_image::registry::{Registry, RegistryError};
use paved_image::test_registry::TestRegistry;

const NOW: &str = "2026-11-24T12:00:00Z";

fn shell_layer() -> Vec<u8> {
    TarBuilder::new()
        .file("bin/bash", 0o755, b"\x7fELF")
        .symlink("bin/sh", "bash")
        .file("usr/bin/apt-get", 0o755, b"\x7fELF")
        .file("usr/bin/su", 0o4755, b"\x7fELF")
        .file("var/lib/dpkg/status", 0o644, b"Package: bash\nStatus: install ok installed\nVersion: 5.2\n")
        .gzip()
}

fn app_layer() -> Vec<u8> {
    TarBuilder::new().file("app/server", 0o755, b"\x7fELF").file("usr/bin/.wh.apt-get", 0o644, b"").zstd()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn an_image_pushed_to_a_registry_is_pulled_layer_by_layer_and_analysed() {
    let registry = TestRegistry::start(None);
    runtime().block_on(async {
        let digest = registry.push("shop/app:1.0", &[shell_layer(), app_layer()], "linux", "amd64").await;
        let client = Registry::new(registry.options());
        let image = format!("{}/shop/app:1.0", registry.host);
        assert_eq!(client.resolve(&image).await.unwrap().as_str(), digest);
        let report = client.analyse(&image, NOW).await.unwrap();
        assert_eq!(report.digest.as_str(), digest);
        assert_eq!(report.platform, "linux/amd64");
        assert_eq!(report.layers.len(), 2);
        let shells: Vec<&str> = report.contents.shells.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(shells, ["/bin/bash", "/bin/sh"]);
        // The upper layer's whiteout took apt-get away.
        assert!(report.contents.package_managers.is_empty(), "{:?}", report.contents.package_managers);
        assert_eq!(report.contents.setuid.len(), 1);
        assert_eq!(report.contents.packages.len(), 1);
        // By digest, the same answer.
        let by_digest = client.analyse(&format!("{}/shop/app@{digest}", registry.host), NOW).await.unwrap();
        assert_eq!(by_digest, report);
    });
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn a_multi_platform_index_gives_linux_amd64_unless_another_platform_is_asked_for() {
    let registry = TestRegistry::start(None);
    runtime().block_on(async {
        let amd = registry.push("multi:amd64", &[shell_layer()], "linux", "amd64").await;
        let arm = registry.push("multi:arm64", &[app_layer()], "linux", "arm64").await;
        registry.push_index("multi:1", &[(&arm, "linux", "arm64"), (&amd, "linux", "amd64")]).await;
        let image = format!("{}/multi:1", registry.host);

        let report = Registry::new(registry.options()).analyse(&image, NOW).await.unwrap();
        assert_eq!((report.digest.as_str(), report.platform.as_str()), (amd.as_str(), "linux/amd64"));
        assert!(!report.contents.shells.is_empty());

        let arm_options =
            paved_image::registry::Options { platform: "linux/arm64".parse().unwrap(), ..registry.options() };
        let report = Registry::new(arm_options).analyse(&image, NOW).await.unwrap();
        assert_eq!((report.digest.as_str(), report.platform.as_str()), (arm.as_str(), "linux/arm64"));
        assert!(report.contents.shells.is_empty());

        let s390 = paved_image::registry::Options { platform: "linux/s390x".parse().unwrap(), ..registry.options() };
        let err = Registry::new(s390).analyse(&image, NOW).await.unwrap_err().to_string();
        assert!(err.starts_with(&image) && err.contains("no manifest for the platform"), "{err}");
    });
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn a_registry_behind_htpasswd_takes_the_login_from_a_pull_secret() {
    let registry = TestRegistry::start(Some(("ci", "hunter2")));
    runtime().block_on(async {
        registry.push("private/app:1", &[shell_layer()], "linux", "amd64").await;
        let image = format!("{}/private/app:1", registry.host);

        let err = Registry::new(registry.options()).analyse(&image, NOW).await.unwrap_err();
        assert!(
            matches!(&err, RegistryError::Registry { message, .. } if message.starts_with("not authorized")),
            "{err}"
        );

        let secret = |password: &str| {
            let config =
                serde_json::json!({"auths": {registry.host.clone(): {"username": "ci", "password": password}}});
            serde_json::json!({
                "metadata": {"name": "regcred", "namespace": "shop"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config.to_string())}
            })
        };
        let with = |password: &str| paved_image::registry::Options {
            credentials: Credentials::from_pull_secret(&secret(password)).unwrap(),
            ..registry.options()
        };
        assert!(Registry::new(with("wrong")).analyse(&image, NOW).await.is_err());
        let report = Registry::new(with("hunter2")).analyse(&image, NOW).await.unwrap();
        assert_eq!(report.contents.shells.len(), 2);
    });
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn a_blob_altered_in_the_registry_fails_its_image_with_the_layer_named() {
    let registry = TestRegistry::start(None);
    runtime().block_on(async {
        registry.push("tampered:1", &[shell_layer(), app_layer()], "linux", "amd64").await;
        registry.push("cut:1", &[app_layer(), shell_layer()], "linux", "amd64").await;
        let bad = paved_image::Digest::of_bytes(&shell_layer());
        let file = registry.blob_file(bad.as_str());
        let mut bytes = std::fs::read(&file).unwrap();
        // Same length, one bit changed inside the compressed data.
        bytes[40] ^= 0x10;
        std::fs::write(&file, &bytes).unwrap();
        let client = Registry::new(registry.options());
        for tag in ["tampered:1", "cut:1"] {
            let err = client.analyse(&format!("{}/{tag}", registry.host), NOW).await.unwrap_err().to_string();
            assert!(err.contains(&bad.to_string()) && err.contains("digest mismatch"), "{tag}: {err}");
        }
        // Truncated on disk: the stream ends early.
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = client.analyse(&format!("{}/tampered:1", registry.host), NOW).await.unwrap_err().to_string();
        assert!(err.contains(&bad.to_string()), "{err}");
        // Gone from the registry's storage: the layer is named, with the registry's answer.
        std::fs::remove_file(&file).unwrap();
        let err = client.analyse(&format!("{}/tampered:1", registry.host), NOW).await.unwrap_err().to_string();
        assert!(err.contains(&format!("layer 1 of 2 ({bad})")) && err.contains("reading the blob"), "{err}");
        // And an image that is not there is an error, not a hang.
        let err = client.analyse(&format!("{}/nothing:here", registry.host), NOW).await.unwrap_err().to_string();
        assert!(err.contains("nothing:here") && err.contains("the registry says: manifest unknown"), "{err}");
    });
}
