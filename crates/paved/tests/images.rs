//! What images carry, through the real binary: `paved check` with the
//! supply-chain profile and `paved images --contents`, against a real
//! registry (docker-registry) holding images built here.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::Command;

mod support;

use paved_image::build::TarBuilder;
use paved_image::test_registry::TestRegistry;

/// Two images: one with a shell, apt and a setuid file; one with only the app.
fn push_images(registry: &TestRegistry) -> (String, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let fat = TarBuilder::new()
            .file("bin/bash", 0o755, b"\x7fELF")
            .symlink("bin/sh", "bash")
            .file("usr/bin/apt", 0o755, b"\x7fELF")
            .file("usr/bin/passwd", 0o4755, b"\x7fELF")
            .file("var/lib/dpkg/status", 0o644, b"Package: bash\nStatus: install ok installed\nVersion: 5.2\n")
            .gzip();
        let slim = TarBuilder::new().file("app/server", 0o755, b"\x7fELF").gzip();
        let fat = registry.push("shop/fat:1.0", &[fat], "linux", "amd64").await;
        let slim = registry.push("shop/slim:1.0", &[slim], "linux", "amd64").await;
        (fat, slim)
    })
}

fn deployment(host: &str, slim_digest: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: shop
spec:
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata:
      labels: {{app: shop}}
    spec:
      containers:
      - name: fat
        image: {host}/shop/fat:1.0
      - name: slim
        image: {host}/shop/slim:1.0@{slim_digest}
"
    )
}

/// A registry holding both images, and a directory with its CA (`ca.pem`)
/// and a Deployment running them (`deploy.yaml`); the fat image's digest.
fn workspace() -> (TestRegistry, tempfile::TempDir, String) {
    let registry = TestRegistry::start(None);
    let (fat, slim) = push_images(&registry);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), deployment(&registry.host, &slim)).unwrap();
    (registry, dir, fat)
}

fn findings(run: &support::Run) -> Vec<String> {
    let v: serde_json::Value = {
        assert!(!run.stdout.is_empty(), "{}", run.stderr);
        support::paved_json(&run.stdout)
    };
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"].as_str().unwrap().starts_with("supply-chain/"))
        .map(|f| {
            format!(
                "{} {} {}:{} {}",
                f["policy"].as_str().unwrap(),
                f["action"].as_str().unwrap(),
                f["line"],
                f["column"],
                f["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn check_with_the_supply_chain_profile_reports_what_each_image_carries_online_then_offline() {
    let (registry, dir, _) = workspace();
    let base = ["check", "--profile", "supply-chain", "--format", "json", "--registry-ca", "ca.pem"];

    let online = support::paved(dir.path(), &[&base[..], &["--image-cache", "cache", "deploy.yaml"]].concat());
    assert_eq!(online.code, 1, "{}", online.stderr);
    let fat = format!("{}/shop/fat:1.0", registry.host);
    let expected = [
        format!(
            "supply-chain/no-shell warn 14:9 container \"fat\"'s image carries a shell: /bin/bash, /bin/sh -> /bin/bash ({fat})"
        ),
        format!(
            "supply-chain/no-package-manager warn 14:9 container \"fat\"'s image carries a package manager: /usr/bin/apt ({fat})"
        ),
        format!(
            "supply-chain/no-setuid warn 14:9 container \"fat\"'s image carries setuid/setgid files: /usr/bin/passwd ({fat})"
        ),
        format!(
            "supply-chain/pinned-digest deny 14:9 container \"fat\" image {fat:?} is not pinned by digest; use repo:tag@sha256:…"
        ),
    ];
    assert_eq!(findings(&online), expected, "{}", online.stderr);

    // The registry gone, the cache answers, the tag through what it last resolved to.
    drop(registry);
    let offline =
        support::paved(dir.path(), &[&base[..], &["--offline", "--image-cache", "cache", "deploy.yaml"]].concat());
    assert_eq!(findings(&offline), expected, "{}", offline.stderr);
    assert!(offline.stderr.is_empty(), "{}", offline.stderr);

    // Nothing cached and offline: the content findings are missing, and paved says so.
    let empty =
        support::paved(dir.path(), &[&base[..], &["--offline", "--image-cache", "empty", "deploy.yaml"]].concat());
    assert_eq!(findings(&empty).len(), 1, "only pinned-digest: {:?}", findings(&empty));
    assert!(empty.stderr.contains(&format!("paved: image {fat}: contents not known")), "{}", empty.stderr);
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn images_contents_lists_shells_package_managers_setuid_files_and_packages() {
    let (registry, dir, fat_digest) = workspace();
    let args = ["images", "--contents", "--registry-ca", "ca.pem", "--image-cache", "cache", "deploy.yaml"];

    let text = support::paved(dir.path(), &args);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let fat = text.stdout.split(&format!("{}/shop/fat:1.0", registry.host)).nth(1).unwrap();
    assert!(fat.contains("    shells: /bin/bash, /bin/sh -> /bin/bash\n"), "{}", text.stdout);
    assert!(fat.contains("    package managers: /usr/bin/apt\n"), "{}", text.stdout);
    assert!(fat.contains("    setuid/setgid: /usr/bin/passwd (4755)\n"), "{}", text.stdout);
    assert!(fat.contains("    packages: 1 (dpkg)\n"), "{}", text.stdout);
    let slim_part = text.stdout.split("/shop/slim:1.0").nth(1).unwrap();
    assert!(slim_part.contains("    shells: none\n"), "{}", text.stdout);

    let json = support::paved(dir.path(), &[&args[..], &["--format", "json"][..]].concat());
    let v = support::paved_json(&json.stdout);
    let row =
        v["images"].as_array().unwrap().iter().find(|r| r["image"].as_str().unwrap().contains("/shop/fat:")).unwrap();
    assert_eq!(row["contents"]["digest"], fat_digest.as_str());
    assert_eq!(row["contents"]["contents"]["packages"][0]["name"], "bash");

    // An image the registry does not have: the others still listed, the error named.
    let missing = format!(
        "{}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: gone}}\nspec:\n  containers:\n  - name: c\n    image: {}/shop/gone:1\n",
        std::fs::read_to_string(dir.path().join("deploy.yaml")).unwrap(),
        registry.host
    );
    std::fs::write(dir.path().join("deploy.yaml"), missing).unwrap();
    let text = support::paved(dir.path(), &args);
    assert!(text.stdout.contains("    not analysed: ") && text.stdout.contains("manifest unknown"), "{}", text.stdout);
    assert!(text.stdout.contains("    shells: /bin/bash"), "{}", text.stdout);
}

/// `paved audit` reads image contents only where a namespace's profile
/// asks, from the registry and then from the cache, and says which images
/// it could not analyse.
#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn audit_reads_image_contents_where_a_namespace_profile_asks() {
    let registry = TestRegistry::start(None);
    push_images(&registry);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    let mut fixture = paved_cluster::fixture::FixtureCluster::default();
    for (ns, labels) in
        [("shop", serde_json::json!({"paved.dev/profile": "supply-chain"})), ("plain", serde_json::json!({}))]
    {
        fixture.add("/api/v1/namespaces", serde_json::json!({"metadata": {"name": ns, "labels": labels}}));
        fixture.add(
            "/apis/apps/v1/deployments",
            serde_json::json!({"metadata": {"name": "web", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "fat", "image": format!("{}/shop/fat:1.0", registry.host)}]}}}}),
        );
    }
    let _cluster = support::start_cluster(fixture, dir.path());
    let audit = |extra: &[&str]| {
        let run =
            support::paved(dir.path(), &[&["audit", "--format", "json", "--registry-ca", "ca.pem"], extra].concat());
        let doc: serde_json::Value = {
            assert!(!run.stdout.is_empty(), "{}", run.stderr);
            support::paved_json(&run.stdout)
        };
        doc
    };
    let policies = |doc: &serde_json::Value, ns: &str| -> Vec<String> {
        let faults = doc["report"]["namespaces"][ns]["faults"].as_array().cloned().unwrap_or_default();
        let mut policies: Vec<String> = faults
            .iter()
            .filter_map(|f| f["policy"].as_str().map(str::to_owned))
            .filter(|p| p.starts_with("supply-chain/"))
            .collect();
        policies.sort();
        policies
    };
    let online = audit(&["--image-cache", "cache"]);
    let expected = [
        "supply-chain/no-package-manager",
        "supply-chain/no-setuid",
        "supply-chain/no-shell",
        "supply-chain/pinned-digest",
    ];
    assert_eq!(policies(&online, "shop"), expected, "{online:#}");
    assert!(policies(&online, "plain").is_empty(), "the default profile reads no image contents");
    let image_problems = |doc: &serde_json::Value| -> Vec<String> {
        let problems = doc["problems"].as_array().cloned().unwrap_or_default();
        problems.iter().filter_map(|p| p.as_str()).filter(|p| p.starts_with("image ")).map(str::to_owned).collect()
    };
    assert!(image_problems(&online).is_empty(), "{}", online["problems"]);

    // Offline, from the cache; with an empty cache, said to be missing.
    assert_eq!(policies(&audit(&["--offline", "--image-cache", "cache"]), "shop"), expected);
    let empty = audit(&["--offline", "--image-cache", "empty"]);
    assert_eq!(policies(&empty, "shop"), ["supply-chain/pinned-digest"]);
    let problems = image_problems(&empty);
    assert_eq!(problems.len(), 1, "one problem per image, not per object: {problems:?}");
    assert!(
        problems[0].contains("shop/fat:1.0: contents not known") && problems[0].contains("--offline"),
        "{problems:?}"
    );
}

/// `paved serve` over real HTTPS: the first review of a pod whose image is
/// not analysed yet is answered at once, allowed with a warning; the image
/// is analysed in the background, and later reviews carry its findings.
#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn serve_admits_an_unknown_image_with_a_warning_then_judges_it() {
    let registry = TestRegistry::start(None);
    let (fat, _) = push_images(&registry);
    let dir = tempfile::tempdir().unwrap();
    let certs = paved_server::certs::generate(&["paved.paved-system.svc".into()], 1).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &certs.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &certs.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    std::fs::create_dir(dir.path().join("broken-docker-config")).unwrap();
    std::fs::write(dir.path().join("broken-docker-config/config.json"), "{\"auths\": [").unwrap();
    std::fs::write(dir.path().join("config.yaml"), "profile: supply-chain\npolicies:\n  supply-chain/no-shell: deny\n")
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _serving = support::Serving(
        Command::new(env!("CARGO_BIN_EXE_paved"))
            .args(["serve", "--config", "config.yaml", "--registry-ca", "ca.pem", "--no-cluster"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--tls-cert", "tls.crt", "--tls-key", "tls.key"])
            .current_dir(dir.path())
            // Unreadable logins do not keep the webhook from starting.
            .env("DOCKER_CONFIG", dir.path().join("broken-docker-config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );

    let body = support::pod_create_review(&format!("{}/shop/fat:1.0@{fat}", registry.host));
    let ask = || support::validate(port, &certs.ca_pem, &body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = loop {
        if let Some(answer) = ask() {
            break answer;
        }
        assert!(std::time::Instant::now() < deadline, "paved serve never answered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(first["allowed"], true, "{first}");
    assert!(first["warnings"].to_string().contains("is being analysed"), "{first}");
    let judged = loop {
        let answer = ask().unwrap();
        if answer["allowed"] == false {
            break answer;
        }
        assert!(std::time::Instant::now() < deadline, "never analysed: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let message = judged["status"]["message"].as_str().unwrap();
    assert!(message.contains("[supply-chain/no-shell]") && message.contains("carries a shell: /bin/bash"), "{message}");
}

/// A private registry: the login comes from a pull secret as `kubectl get
/// secret -o yaml` prints it (or as written by hand, with stringData).
#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn pull_secrets_log_in_to_a_private_registry() {
    let registry = TestRegistry::start(Some(("ci", "hunter2")));
    let (fat, _) = push_images(&registry);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: {}/shop/fat:1.0\n",
        registry.host
    );
    std::fs::write(dir.path().join("pod.yaml"), pod).unwrap();
    let config = format!(r#"{{"auths": {{"{}": {{"username": "ci", "password": "hunter2"}}}}}}"#, registry.host);
    std::fs::write(
        dir.path().join("regcred.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: regcred, namespace: shop}}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{config}'\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("opaque.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: shop}\ntype: Opaque\ndata: {}\n",
    )
    .unwrap();
    let base = ["images", "--contents", "--format", "json", "--registry-ca", "ca.pem", "--image-cache", "cache"];
    let contents = |extra: &[&str]| {
        let run = support::paved(dir.path(), &[&base[..], extra, &["pod.yaml"]].concat());
        let v: serde_json::Value = {
            assert!(!run.stdout.is_empty(), "{}", run.stderr);
            support::paved_json(&run.stdout)
        };
        v["images"][0].clone()
    };
    let anonymous = contents(&[]);
    assert!(anonymous["analysisError"].as_str().unwrap().contains("not authorized"), "{anonymous}");
    let logged_in = contents(&["--pull-secret", "regcred.yaml"]);
    assert_eq!(logged_in["contents"]["digest"], fat.as_str(), "{logged_in}");

    let wrong = support::paved(dir.path(), &[&base[..], &["--pull-secret", "opaque.yaml", "pod.yaml"]].concat());
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("opaque.yaml") && wrong.stderr.contains("\"Opaque\" is not an image pull"),
        "{}",
        wrong.stderr
    );
}
