//! Known vulnerabilities through the real binary: `paved advisories import`
//! and `paved images --vulns`, with images built from this machine's own
//! dpkg database and pushed to a real registry, and advisories written from
//! published Debian and Alpine ones with their real version ranges.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::Command;

mod support;

use paved_image::build::TarBuilder;
use paved_image::test_registry::TestRegistry;
use serde_json::json;

fn record(id: &str, aliases: &[&str], affected: serde_json::Value) -> serde_json::Value {
    json!({"schema_version": "1.6.0", "id": id, "modified": "2024-06-01T00:00:00Z", "aliases": aliases,
           "summary": format!("{id} (test record)"), "affected": affected})
}

fn debian(release: &str, package: &str, fixed: Option<&str>) -> serde_json::Value {
    let mut events = vec![json!({"introduced": "0"})];
    events.extend(fixed.map(|f| json!({"fixed": f})));
    json!({"package": {"ecosystem": format!("Debian:{release}"), "name": package},
           "ranges": [{"type": "ECOSYSTEM", "events": events}]})
}

/// Advisories as Debian and Alpine published them (their OSV exports, as
/// osv.dev and the distributions' trackers show them).
fn advisories(dir: &std::path::Path) {
    let records = [
        // CVE-2026-4438: glibc 2.34 to 2.43 upstream; Debian fixed bookworm in
        // 2.36-9+deb12u14, a fix backported far below upstream's versions.
        {
            let mut r = record(
                "DEBIAN-CVE-2026-4438",
                &["CVE-2026-4438"],
                json!([debian("12", "glibc", Some("2.36-9+deb12u14"))]),
            );
            r["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"}]);
            r
        },
        // CVE-2005-2541: tar, "unimportant", never fixed in any release (the
        // CVSS vector is added here, to see a score computed and shown).
        {
            let mut r = record(
                "DEBIAN-CVE-2005-2541",
                &["CVE-2005-2541"],
                json!([debian("11", "tar", None), debian("12", "tar", None)]),
            );
            r["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
            r
        },
        // CVE-2022-37434: zlib, fixed in unstable's 1:1.2.11.dfsg-4.1, which
        // bookworm's zlib is already past (a version with an epoch).
        record("DEBIAN-CVE-2022-37434", &["CVE-2022-37434"], json!([debian("12", "zlib", Some("1:1.2.11.dfsg-4.1"))])),
        // A withdrawn record says nothing.
        {
            let mut r = record("DEBIAN-CVE-2099-0001", &[], json!([debian("12", "coreutils", None)]));
            r["withdrawn"] = json!("2024-06-02T00:00:00Z");
            r
        },
        // Another distribution's record for the same name does not apply.
        record(
            "UBUNTU-CVE-2005-2541",
            &["CVE-2005-2541"],
            json!([{"package": {"ecosystem": "Ubuntu:22.04", "name": "coreutils"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]),
        ),
        // Alpine: BIND's CVE-2023-4408, fixed on v3.16 in 9.16.48-r0; the
        // image's bind-libs comes from bind (its origin).
        record(
            "ALPINE-CVE-2023-4408",
            &["CVE-2023-4408"],
            json!([{"package": {"ecosystem": "Alpine:v3.16", "name": "bind", "purl": "pkg:apk/alpine/bind?arch=source"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.16.48-r0"}]}]}]),
        ),
    ];
    std::fs::create_dir_all(dir).unwrap();
    for r in records {
        let name = format!("{}.json", r["id"].as_str().unwrap());
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    }
}

/// This machine's own view of a package, by dpkg-query: an independent reader.
fn dpkg_query(package: &str) -> (String, String) {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${source:Package} ${source:Version}", package])
        .output()
        .expect("dpkg-query");
    let text = String::from_utf8(out.stdout).unwrap();
    let (name, version) = text.split_once(' ').unwrap();
    (name.to_owned(), version.to_owned())
}

fn dpkg_lt(a: &str, b: &str) -> bool {
    Command::new("dpkg").args(["--compare-versions", a, "lt", b]).status().unwrap().success()
}

/// A registry holding an image of this machine's own dpkg database and
/// os-release (`os/debian:12`) and an Alpine one (`os/alpine:3.16`); their digests.
fn push_os_images() -> (TestRegistry, String, String) {
    let registry = TestRegistry::start(None);
    let status = std::fs::read("/var/lib/dpkg/status").expect("this machine's dpkg database");
    let os_release = std::fs::read("/etc/os-release").expect("this machine's os-release");
    let (debian_image, alpine_image) = {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let debian = TarBuilder::new()
                .file("usr/lib/os-release", 0o644, &os_release)
                .symlink("etc/os-release", "../usr/lib/os-release")
                .file("var/lib/dpkg/status", 0o644, &status)
                .gzip();
            let alpine = TarBuilder::new()
                .file("etc/os-release", 0o644, b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.16.9\n")
                .file(
                    "lib/apk/db/installed",
                    0o644,
                    b"P:bind-libs\nV:9.16.45-r0\nA:x86_64\no:bind\n\n\
                      P:bind-tools\nV:9.16.48-r0\nA:x86_64\no:bind\n\n\
                      P:musl\nV:1.2.3-r3\nA:x86_64\no:musl\n",
                )
                .gzip();
            (
                registry.push("os/debian:12", &[debian], "linux", "amd64").await,
                registry.push("os/alpine:3.16", &[alpine], "linux", "amd64").await,
            )
        })
    };
    (registry, debian_image, alpine_image)
}

#[test]
#[ignore = "needs docker-registry and dpkg; .ci/run installs them and runs the ignored tests"]
fn images_are_matched_against_imported_advisories() {
    let (registry, debian_image, alpine_image) = push_os_images();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    let host = &registry.host;
    std::fs::write(
        dir.path().join("pods.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: shop}}\nspec:\n  containers:\n  \
             - {{name: app, image: {host}/os/debian:12@{debian_image}}}\n  - {{name: side, image: {host}/os/alpine:3.16@{alpine_image}}}\n"
        ),
    )
    .unwrap();
    advisories(&dir.path().join("osv"));
    let import = support::paved(dir.path(), &["advisories", "import", "--advisories", "index", "osv"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert!(import.stdout.contains("holds 6 records"), "{}", import.stdout);
    let base = ["images", "--vulns", "--advisories", "index", "--registry-ca", "ca.pem", "--image-cache", "cache"];
    let run = support::paved(dir.path(), &[&base[..], &["--format", "json", "pods.yaml"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = support::paved_json(&run.stdout);
    assert_eq!(doc["advisories"]["records"], 6);
    let found = |image: &str| -> Vec<String> {
        let row =
            doc["images"].as_array().unwrap().iter().find(|r| r["image"].as_str().unwrap().contains(image)).unwrap();
        row["vulnerabilities"]["vulnerabilities"]
            .as_array()
            .unwrap_or_else(|| panic!("{row}"))
            .iter()
            .map(|v| {
                format!(
                    "{} {} {} {}",
                    v["id"].as_str().unwrap(),
                    v["package"].as_str().unwrap(),
                    v["installed"].as_str().unwrap(),
                    v["fixed"].as_str().unwrap_or("-")
                )
            })
            .collect()
    };
    // What the machine's own dpkg says decides what must be reported.
    let (tar, tar_version) = dpkg_query("tar");
    let (glibc, glibc_version) = dpkg_query("libc6");
    let (zlib, zlib_version) = dpkg_query("zlib1g");
    let mut expected = vec![format!("DEBIAN-CVE-2005-2541 {tar} {tar_version} -")];
    if dpkg_lt(&glibc_version, "2.36-9+deb12u14") {
        expected.push(format!("DEBIAN-CVE-2026-4438 {glibc} {glibc_version} 2.36-9+deb12u14"));
    }
    if dpkg_lt(&zlib_version, "1:1.2.11.dfsg-4.1") {
        expected.push(format!("DEBIAN-CVE-2022-37434 {zlib} {zlib_version} 1:1.2.11.dfsg-4.1"));
    }
    let mut debian = found("os/debian");
    debian.sort();
    expected.sort();
    assert_eq!(debian, expected, "withdrawn, other-release and other-distribution records are not reported");
    // Alpine: by origin, per release, with apk's ordering of revisions
    // (bind-tools at the fixed version is not reported).
    let alpine = found("os/alpine");
    assert_eq!(alpine, ["ALPINE-CVE-2023-4408 bind 9.16.45-r0 9.16.48-r0"]);
    // The same answers as a table, as CSV (a line per vulnerability and use) and as SARIF.
    let table = support::paved(dir.path(), &[&base[..], &["--offline", "pods.yaml"]].concat());
    assert!(table.stdout.contains("critical 9.8  DEBIAN-CVE-2005-2541 (CVE-2005-2541): tar"), "{}", table.stdout);
    let csv = support::paved(dir.path(), &[&base[..], &["--offline", "--format", "csv", "pods.yaml"]].concat());
    assert_eq!(csv.stdout.lines().count(), 1 + expected.len() + 1, "{}", csv.stdout);
    let sarif = support::paved(dir.path(), &[&base[..], &["--offline", "--format", "sarif", "pods.yaml"]].concat());
    let log: serde_json::Value = serde_json::from_str(&sarif.stdout).unwrap();
    let errors = support::sarif_errors(&support::sarif_validator(), &log);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), expected.len() + 1);
    // The policy: at the default severity (high), the Debian container's
    // tar (critical) is reported, Alpine's unscored records are not.
    let check = ["check", "--profile", "supply-chain", "--advisories", "index", "--registry-ca", "ca.pem"];
    let run = support::paved(
        dir.path(),
        &[&check[..], &["--image-cache", "cache", "--format", "json", "pods.yaml"]].concat(),
    );
    let doc = support::paved_json(&run.stdout);
    let known: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == "supply-chain/known-vulnerabilities")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(known.len(), 1, "{known:?}");
    assert!(
        known[0].starts_with(
            "container \"app\"'s image has 1 known vulnerabilities at high or above: CVE-2005-2541 critical (tar "
        ),
        "{}",
        known[0]
    );
    // The bar comes from the configuration: at `unknown`, Alpine's unscored records count too.
    std::fs::write(dir.path().join(".paved.yaml"), "params:\n  vulnerability-severity: unknown\n").unwrap();
    let run = support::paved(
        dir.path(),
        &[&check[..], &["--image-cache", "cache", "--format", "json", "pods.yaml"]].concat(),
    );
    let doc = support::paved_json(&run.stdout);
    let count = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == "supply-chain/known-vulnerabilities")
        .count();
    assert_eq!(count, 2, "both containers, at the lowest bar");
}

#[test]
fn import_checks_its_input_and_reports_the_index() {
    let dir = tempfile::tempdir().unwrap();
    advisories(&dir.path().join("osv"));
    let go = paved_corpus::path("osv/golang-vulndb/osv");
    let run =
        support::paved(dir.path(), &["advisories", "import", "--advisories", "index", "osv", go.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("holds {} records", 4291 + 6)), "{}", run.stdout);
    let before = std::fs::read(dir.path().join("index/osv-index.bin")).unwrap();
    std::fs::write(dir.path().join("broken.json"), "{\"id\": \"X\", \"affected\": [{\"ranges\": 3}]}").unwrap();
    let run = support::paved(dir.path(), &["advisories", "import", "--advisories", "index", "broken.json"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("broken.json: line 1, column"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.path().join("index/osv-index.bin")).unwrap(), before, "the index stays as it was");
    let status = support::paved(dir.path(), &["advisories", "status", "--advisories", "index"]);
    assert!(status.stdout.contains("Go 4291") && status.stdout.contains("Debian 4"), "{}", status.stdout);
    // Without --advisories, every command finds the same index, whatever
    // --image-cache says (`paved advisories` has no such flag).
    let import = support::paved(dir.path(), &["advisories", "import", "osv"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let status = support::paved(dir.path(), &["advisories", "status"]);
    assert!(status.stdout.contains("holds 6 records"), "{}", status.stdout);
    let images = support::paved(
        dir.path(),
        &["images", "--vulns", "--offline", "--image-cache", "elsewhere", "--image", "example.com/app:1"],
    );
    assert_eq!(images.code, 0, "{}", images.stderr);
    assert!(images.stdout.contains("from 6 advisories"), "{}", images.stdout);
    let refused = support::paved(dir.path(), &["images", "--format", "sarif", "."]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--vulns"), "{}", refused.stderr);
}

/// The Go advisories of `../shared/corpus/osv` that affect the standard
/// library at `version`, by a reading of the records independent of
/// paved's (Python, semver by tuples).
fn stdlib_advisories(version: &str) -> Vec<String> {
    let script = r#"
import json, os, sys
def key(v):
    core, _, pre = v.partition("-")
    nums = [int(x) for x in core.split(".")] + [0, 0]
    return (nums[0], nums[1], nums[2], 0 if pre else 1, pre)
version, root = sys.argv[1].removeprefix("go"), sys.argv[2]
out = []
for name in sorted(os.listdir(root)):
    r = json.load(open(os.path.join(root, name)))
    if r.get("withdrawn"):
        continue
    for a in r.get("affected", []):
        if a["package"]["name"] != "stdlib":
            continue
        for rng in a.get("ranges", []):
            if rng["type"] != "SEMVER":
                continue
            hit = False
            for e in sorted(rng["events"], key=lambda e: (0, ()) if list(e.values())[0] == "0" else (1, key(list(e.values())[0]))):
                (kind, at), = e.items()
                if kind == "introduced" and (at == "0" or key(version) >= key(at)): hit = True
                if kind == "fixed" and key(version) >= key(at): hit = False
            if hit and r["id"] not in out:
                out.append(r["id"])
print("\n".join(out))
"#;
    let go = paved_corpus::path("osv/golang-vulndb/osv");
    let out = Command::new("python3").args(["-c", script, version, go.to_str().unwrap()]).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// kubectl is a real Go binary: its build information is read from the
/// layer, checked against kubectl's own account of itself, and its Go
/// version matched against Go's real database.
#[test]
#[ignore = "needs docker-registry and kubectl; .ci/run installs them and runs the ignored tests"]
fn a_real_go_binary_is_read_and_matched_against_gos_database() {
    let kubectl = which("kubectl");
    let own: serde_json::Value = serde_json::from_slice(
        &Command::new(&kubectl).args(["version", "--client", "-o", "json"]).output().expect("kubectl version").stdout,
    )
    .unwrap();
    let go_version = own["clientVersion"]["goVersion"].as_str().unwrap().to_owned();
    let registry = TestRegistry::start(None);
    let binary = std::fs::read(&kubectl).unwrap();
    let digest = {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let layer = TarBuilder::new().file("usr/local/bin/kubectl", 0o755, &binary).finish();
        rt.block_on(registry.push("tools/kubectl:1", &[layer], "linux", "amd64"))
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    std::fs::write(
        dir.path().join("pod.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: tools}}\nspec:\n  containers:\n  - {{name: k, image: {}/tools/kubectl:1@{digest}}}\n",
            registry.host
        ),
    )
    .unwrap();
    let go = paved_corpus::path("osv/golang-vulndb/osv");
    let import = support::paved(dir.path(), &["advisories", "import", "--advisories", "index", go.to_str().unwrap()]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let run = support::paved(
        dir.path(),
        &[
            "images",
            "--vulns",
            "--advisories",
            "index",
            "--registry-ca",
            "ca.pem",
            "--image-cache",
            "cache",
            "--format",
            "json",
            "pod.yaml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = support::paved_json(&run.stdout);
    let image = &doc["images"][0];
    let packages = image["contents"]["contents"]["packages"].as_array().unwrap();
    let go_packages: Vec<(&str, &str)> = packages
        .iter()
        .filter(|p| p["source"] == "go")
        .map(|p| (p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect();
    assert!(go_packages.contains(&("stdlib", go_version.as_str())), "kubectl says {go_version}: {go_packages:?}");
    // The module lines read another way: a regular expression over the bytes
    // after the build information's header (dependencies built from the
    // work tree, `(devel)`, name no version to match).
    let script = r#"
import re, sys
b = open(sys.argv[1], "rb").read()
region = b[b.find(b"\xff Go buildinf:"):][:1 << 19]
lines = re.findall(rb"\n(dep|=>)\t([^\t\n]+)\t([^\t\n]*)", region)
out = []
for kind, path, version in lines:
    if kind == b"=>":
        out[-1] = (path, version)
    else:
        out.append((path, version))
for path, version in out:
    if version and version != b"(devel)":
        print(path.decode(), version.decode())
"#;
    let listed = Command::new("python3").args(["-c", script, kubectl.to_str().unwrap()]).output().expect("python3");
    let mut theirs: Vec<String> = String::from_utf8(listed.stdout).unwrap().lines().map(str::to_owned).collect();
    let mut ours: Vec<String> =
        go_packages.iter().filter(|(m, _)| *m != "stdlib").map(|(m, v)| format!("{m} {v}")).collect();
    theirs.sort();
    ours.sort();
    assert!(ours.len() > 50, "kubectl has many modules: {ours:?}");
    assert_eq!(ours, theirs, "the modules of kubectl's build information");
    let mut stdlib: Vec<String> = image["vulnerabilities"]["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["package"] == "stdlib")
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    stdlib.sort();
    let mut expected = stdlib_advisories(&go_version);
    expected.sort();
    assert_eq!(stdlib, expected, "the standard library's advisories for {go_version}");
}

fn which(tool: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

/// `paved audit --vulns`: the images the cluster's pods run, matched, by
/// digest, counted per namespace.
#[test]
#[ignore = "needs docker-registry and dpkg; .ci/run installs them and runs the ignored tests"]
fn audit_lists_the_vulnerable_images_running() {
    let (registry, debian_image, alpine_image) = push_os_images();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    advisories(&dir.path().join("osv"));
    let import = support::paved(dir.path(), &["advisories", "import", "--advisories", "index", "osv"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let host = &registry.host;
    let mut fixture = paved_cluster::fixture::FixtureCluster::default();
    for ns in ["shop", "billing"] {
        fixture.add("/api/v1/namespaces", json!({"metadata": {"name": ns}}));
    }
    let pod = |ns: &str, name: &str, image: String| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"containers": [{"name": "app", "image": image}]}})
    };
    fixture.add("/api/v1/pods", pod("shop", "web-1", format!("{host}/os/debian:12@{debian_image}")));
    fixture.add("/api/v1/pods", pod("shop", "web-2", format!("{host}/os/debian:12@{debian_image}")));
    fixture.add("/api/v1/pods", pod("billing", "batch", format!("{host}/os/debian:12")));
    fixture.add("/api/v1/pods", pod("billing", "edge", format!("{host}/os/alpine:3.16@{alpine_image}")));
    let _cluster = support::start_cluster(fixture, dir.path());
    let base = ["audit", "--vulns", "--advisories", "index", "--registry-ca", "ca.pem", "--image-cache", "cache"];
    let run = support::paved(dir.path(), &[&base[..], &["--format", "json"]].concat());
    assert!(!run.stdout.is_empty(), "{}", run.stderr);
    let doc = support::paved_json(&run.stdout);
    let images = doc["vulnerableImages"]["images"].as_array().unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(images.len(), 2, "{images:#?}");
    // The Debian image first (a critical one), under both its references, in both namespaces.
    let debian = &images[0];
    assert_eq!(debian["digest"], debian_image.as_str());
    assert_eq!(debian["images"].as_array().unwrap().len(), 2, "by digest and by tag: {debian}");
    assert_eq!(debian["namespaces"], json!({"shop": 2, "billing": 1}));
    assert_eq!(debian["counts"]["critical"], 1);
    assert!(debian["worst"][0].as_str().unwrap().starts_with("CVE-2005-2541 critical (tar "), "{debian}");
    assert_eq!(images[1]["digest"], alpine_image.as_str());
    assert_eq!(images[1]["counts"], json!({"unknown": 1}));
    assert_eq!(doc["vulnerableImages"]["moreImages"], 0);
    // Capped like the rest; and said in the text report.
    let capped = support::paved(dir.path(), &[&base[..], &["--format", "json", "--max-listed", "1"]].concat());
    let capped = support::paved_json(&capped.stdout);
    assert_eq!(capped["vulnerableImages"]["images"].as_array().unwrap().len(), 1);
    assert_eq!(capped["vulnerableImages"]["moreImages"], 1);
    let text = support::paved(dir.path(), &base);
    assert!(text.stdout.contains("VULNERABLE IMAGES RUNNING"), "{}", text.stdout);
    // `paved images --cluster --vulns` reads the same pods.
    let listed = support::paved(
        dir.path(),
        &[
            "images",
            "--cluster",
            "--vulns",
            "--advisories",
            "index",
            "--registry-ca",
            "ca.pem",
            "--image-cache",
            "cache",
            "--format",
            "json",
        ],
    );
    let listed = support::paved_json(&listed.stdout);
    let vulnerable = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["vulnerabilities"]["vulnerabilities"].as_array().is_some_and(|v| !v.is_empty()))
        .count();
    assert_eq!(vulnerable, 3, "three references (two of the Debian image): {listed:#}");
    assert!(text.stdout.contains("running in billing (1), shop (2)"), "{}", text.stdout);
}

/// `paved serve` matches what it analyses against the advisories; admission
/// then judges from memory, and a deny at the configured severity refuses.
#[test]
#[ignore = "needs docker-registry and dpkg; .ci/run installs them and runs the ignored tests"]
fn serve_refuses_a_known_vulnerable_image_once_analysed() {
    let (registry, debian_image, _) = push_os_images();
    let dir = tempfile::tempdir().unwrap();
    advisories(&dir.path().join("osv"));
    let import = support::paved(dir.path(), &["advisories", "import", "--advisories", "index", "osv"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let certs = paved_server::certs::generate(&["paved.paved-system.svc".into()], 1).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &certs.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &certs.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "profile: supply-chain\npolicies:\n  supply-chain/no-*: off\n  supply-chain/known-vulnerabilities: deny\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _serving = support::Serving(
        Command::new(env!("CARGO_BIN_EXE_paved"))
            .args(["serve", "--config", "config.yaml", "--registry-ca", "ca.pem", "--advisories", "index"])
            .args(["--no-cluster", "--image-cache", "cache"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--tls-cert", "tls.crt", "--tls-key", "tls.key"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = support::pod_create_review(&format!("{}/os/debian:12@{debian_image}", registry.host));
    let ask = || support::validate(port, &certs.ca_pem, &body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let judged = loop {
        if let Some(answer) = ask()
            && answer["allowed"] == false
        {
            break answer;
        }
        assert!(std::time::Instant::now() < deadline, "never refused");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let message = judged["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("[supply-chain/known-vulnerabilities]") && message.contains("CVE-2005-2541 critical (tar"),
        "{message}"
    );
}

/// `paved images --sbom`: CycloneDX 1.5 that CycloneDX's own validator
/// (its official JSON schema) accepts, and SPDX 2.3 that the SPDX tools
/// accept, listing what the layers carry with package URLs.
#[test]
#[ignore = "needs docker-registry, dpkg, and Python's cyclonedx-python-lib and spdx-tools; .ci/run installs them"]
fn sboms_pass_the_official_validators() {
    let (registry, debian_image, _) = push_os_images();
    let apps = {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let layer = TarBuilder::new()
            .file(
                "usr/lib/python3/site-packages/Jinja2-3.1.2.dist-info/METADATA",
                0o644,
                b"Name: Jinja2\nVersion: 3.1.2\n",
            )
            .file(
                "app/node_modules/@babel/core/package.json",
                0o644,
                br#"{"name": "@babel/core", "version": "7.22.0"}"#,
            )
            .gzip();
        rt.block_on(registry.push("apps/web:1", &[layer], "linux", "amd64"))
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    let python = std::env::var("PAVED_PYTHON").unwrap_or_else(|_| "python3".into());
    let host = &registry.host;
    for (image, packages) in
        [(format!("{host}/os/debian:12@{debian_image}"), None), (format!("{host}/apps/web:1@{apps}"), Some(2))]
    {
        let base = ["images", "--registry-ca", "ca.pem", "--image-cache", "cache", "--sbom"];
        let cdx = support::paved(dir.path(), &[&base[..], &["cyclonedx", image.as_str()]].concat());
        assert_eq!(cdx.code, 0, "{}", cdx.stderr);
        let bom: serde_json::Value = serde_json::from_str(&cdx.stdout).unwrap();
        std::fs::write(dir.path().join("bom.json"), &cdx.stdout).unwrap();
        let validate = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())
print(error or "valid")
"#;
        let out = Command::new(&python).args(["-c", validate, "bom.json"]).current_dir(dir.path()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid", "{}", String::from_utf8_lossy(&out.stderr));
        let components = bom["components"].as_array().unwrap();
        if let Some(n) = packages {
            let purls: Vec<&str> = components.iter().filter_map(|c| c["purl"].as_str()).collect();
            assert_eq!(purls, ["pkg:npm/%40babel/core@7.22.0", "pkg:pypi/jinja2@3.1.2"], "sorted as analysed");
            assert_eq!(components.len(), n);
        } else {
            // Every installed dpkg package, by dpkg's own count, and the distribution.
            let listed = Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}\n"]).output().unwrap();
            let installed = String::from_utf8_lossy(&listed.stdout).lines().filter(|l| l.starts_with("ii")).count();
            assert_eq!(components.len(), installed + 1, "{installed} installed packages and the OS");
            assert!(
                components.iter().any(|c| c["purl"].as_str().is_some_and(|p| p.starts_with("pkg:deb/debian/libc6@")))
            );
        }
        let spdx = support::paved(dir.path(), &[&base[..], &["spdx", image.as_str()]].concat());
        assert_eq!(spdx.code, 0, "{}", spdx.stderr);
        std::fs::write(dir.path().join("sbom.spdx.json"), &spdx.stdout).unwrap();
        let tools = std::path::Path::new(&python).with_file_name("pyspdxtools");
        let tools = if tools.exists() { tools } else { "pyspdxtools".into() };
        let out = Command::new(&tools).args(["-i", "sbom.spdx.json"]).current_dir(dir.path()).output().unwrap();
        assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("validation"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--advisories` names an index that must be there, whether or not this
/// run's policies read it: a typo does not wait for the day it matters.
#[test]
fn an_advisories_directory_without_an_index_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["check", "--advisories", "missing", "."][..], &["audit", "--advisories", "missing"][..]] {
        let run = support::paved(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains("no advisories in missing"), "{args:?}: {}", run.stderr);
    }
}
