//! Helpers shared by the binary's integration tests.
#![allow(clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The official SARIF 2.1.0 schema (as the serde-sarif crate ships it), compiled.
pub fn sarif_validator() -> jsonschema::Validator {
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sarif_schema()).expect("schema")).expect("schema is JSON");
    // The official schema's language-tag pattern (on run.language and
    // toolComponent.language, which paved never emits) is valid ECMA-262 but
    // not a Rust regex, so the validator refuses the schema itself. Drop it from
    // this in-memory copy; everything else (structure, types, enums, required
    // fields, formats) is checked.
    for owner in ["run", "toolComponent"] {
        let language = &mut schema["definitions"][owner]["properties"]["language"];
        assert!(language.as_object_mut().and_then(|l| l.remove("pattern")).is_some(), "schema changed: revisit");
    }
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// What the SARIF 2.1.0 schema finds wrong with `log`.
pub fn sarif_errors(validator: &jsonschema::Validator, log: &serde_json::Value) -> Vec<String> {
    validator.iter_errors(log).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

fn sarif_schema() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(repo)
        .output()
        .expect("cargo metadata");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "serde-sarif")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("serde-sarif is a dev-dependency");
    Path::new(manifest).parent().expect("crate dir").join("src/schema.json")
}

/// Where the schemas under `docs/schemas/` say they live (their `$id`s).
const SCHEMA_BASE: &str = "https://raw.githubusercontent.com/paved-dev/paved/main/docs/schemas/";

/// Reads the schemas' cross-references (`finding.schema.json`) from the
/// repository's own `docs/schemas/`, never the network.
struct LocalSchemas;

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        let name =
            uri.as_str().strip_prefix(SCHEMA_BASE).ok_or_else(|| format!("not one of paved's schemas: {uri}"))?;
        Ok(serde_json::from_str(&std::fs::read_to_string(schema_dir().join(name))?)?)
    }
}

pub fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas")
}

/// The schema `docs/schemas/<name>.schema.json`, compiled.
pub fn paved_schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(schema_dir().join(format!("{name}.schema.json"))).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options().with_retriever(LocalSchemas).build(&schema).expect("schema compiles")
}

/// A JSON document paved wrote, parsed and checked against the schema of the
/// command that wrote it (told by its top-level fields); SARIF logs are
/// checked against SARIF's own schema by the tests that read them.
pub fn paved_json(stdout: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
    if doc.get("runs").is_some() && doc.get("version").is_some() {
        return doc;
    }
    let schema =
        [("findings", "check"), ("report", "audit"), ("cases", "test"), ("images", "images"), ("policies", "policies")]
            .into_iter()
            .find(|(key, _)| doc.get(key).is_some())
            .map(|(_, schema)| schema)
            .unwrap_or_else(|| panic!("no documented output has this shape:\n{stdout}"));
    let errors: Vec<String> =
        paved_schema(schema).iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{schema}.schema.json refuses the output:\n{}\n{stdout}", errors.join("\n"));
    doc
}

/// A fixture API server on a loopback port, and `dir/.kube/config` naming
/// it (run paved with `HOME=dir`). It serves until dropped.
pub struct Started {
    pub fixture: std::sync::Arc<paved_cluster::fixture::FixtureCluster>,
    _runtime: tokio::runtime::Runtime,
}

pub fn start_cluster(fixture: paved_cluster::fixture::FixtureCluster, dir: &Path) -> Started {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let fixture = std::sync::Arc::new(fixture);
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let addr = listener.local_addr().expect("an address");
    runtime.spawn(std::sync::Arc::clone(&fixture).serve(listener));
    std::fs::create_dir_all(dir.join(".kube")).expect("a .kube directory");
    std::fs::write(
        dir.join(".kube/config"),
        format!(
            "current-context: fx\nclusters:\n- name: fx\n  cluster: {{server: \"http://{addr}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: fx\n  context: {{cluster: fx, user: u}}\n"
        ),
    )
    .expect("a kubeconfig");
    Started { fixture, _runtime: runtime }
}

/// A certificate verifier that trusts only `ca_pem`.
fn client_config(ca_pem: &str) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).expect("a CA certificate");
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// One HTTP/1.1 request over TLS to 127.0.0.1:`port`, with the name the API
/// server would use (`host`); the whole response, head and body.
pub fn https(port: u16, ca_pem: &str, host: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).expect("a server name");
    let mut conn =
        rustls::ClientConnection::new(std::sync::Arc::new(client_config(ca_pem)), name).expect("a TLS connection");
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    tls.write_all(body)?;
    let mut response = String::new();
    match tls.read_to_string(&mut response) {
        Ok(_) => Ok(response),
        // Servers may close without close_notify after Connection: close.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => Ok(response),
        Err(e) => Err(e),
    }
}

/// How a run of the paved binary ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the paved binary in `dir`, with nothing of the user's (kubeconfig,
/// docker logins, image cache) leaking in.
pub fn paved(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        // No credentials or cache of the user's leak in.
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .env_remove("PAVED_CACHE_DIR")
        // A cluster, when a test starts one, is found through dir/.kube/config.
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .output()
        .expect("paved runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A `paved serve` (or any child) killed when the test ends, however it ends.
pub struct Serving(pub std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The AdmissionReview the API server sends when a developer creates Pod
/// `shop/web` running `image`.
pub fn pod_create_review(image: &str) -> Vec<u8> {
    let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "3b0c7f2e-8d5a-4f1e-9c6b-2a7d4e5f6a1b", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": "shop",
        "operation": "CREATE", "userInfo": {"username": "dev", "groups": []},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "web", "image": image}]}}}});
    serde_json::to_vec(&review).expect("JSON")
}

/// `/validate`'s answer (the review's `response`) from a paved serve on
/// `port` with a certificate for `paved.paved-system.svc`; `None` while it
/// does not answer.
pub fn validate(port: u16, ca_pem: &str, body: &[u8]) -> Option<serde_json::Value> {
    let response = https(port, ca_pem, "paved.paved-system.svc", "POST", "/validate", body).ok()?;
    let (_, json) = response.split_once("\r\n\r\n")?;
    serde_json::from_str::<serde_json::Value>(json).ok().map(|v| v["response"].clone())
}
