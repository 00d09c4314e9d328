//! A real registry for tests: Debian's `docker-registry` (distribution 2.x)
//! on a loopback port, over TLS with a CA made for the test, optionally
//! behind htpasswd. Tests that use it are `#[ignore]`d with the reason, and
//! `.ci/run` runs them after installing it: a test never passes by skipping.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub struct TestRegistry {
    child: Child,
    pub host: String,
    pub ca_pem: Vec<u8>,
    pub storage: PathBuf,
    pub login: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry; fails the test when the binary cannot run.
    pub fn start(login: Option<(&str, &str)>) -> TestRegistry {
        let binary = std::env::var("PAVED_DOCKER_REGISTRY").unwrap_or_else(|_| "docker-registry".into());
        assert!(
            Command::new(&binary).arg("--version").output().is_ok(),
            "{binary} cannot run: apt-get install docker-registry (.ci/run does), or set PAVED_DOCKER_REGISTRY"
        );
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, cert_pem, key_pem) = certificates();
        std::fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let storage = dir.path().join("storage");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
            storage.display(),
            dir.path().join("cert.pem").display(),
            dir.path().join("key.pem").display(),
        );
        if let Some((user, pass)) = login {
            let hash = bcrypt::hash_with_result(pass, 4).unwrap().format_for_version(bcrypt::Version::TwoY);
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: paved-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(&binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "docker-registry did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry {
            child,
            host: format!("127.0.0.1:{port}"),
            ca_pem: ca_pem.into_bytes(),
            storage,
            login: login.map(|(u, p)| (u.to_owned(), p.to_owned())),
            _dir: dir,
        }
    }

    pub fn options(&self) -> crate::registry::Options {
        crate::registry::Options { extra_roots: vec![self.ca_pem.clone()], ..Default::default() }
    }

    fn client(&self) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client::new(ClientConfig {
            extra_root_certificates: vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: self.ca_pem.clone(),
            }],
            ..ClientConfig::default()
        })
    }

    fn auth(&self) -> RegistryAuth {
        match &self.login {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// Pushes an image of these layers (each a compressed or plain tar) as
    /// `repo:tag`, with the project's registry client; returns the manifest
    /// digest.
    pub async fn push(&self, repo_tag: &str, layers: &[Vec<u8>], os: &str, arch: &str) -> String {
        let reference: Reference = format!("{}/{repo_tag}", self.host).parse().unwrap();
        let layers: Vec<ImageLayer> = layers
            .iter()
            .map(|l| {
                let media_type = if l.starts_with(&[0x1f, 0x8b]) {
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                } else if l.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    "application/vnd.oci.image.layer.v1.tar+zstd"
                } else {
                    "application/vnd.oci.image.layer.v1.tar"
                };
                ImageLayer::new(l.clone(), media_type.into(), None)
            })
            .collect();
        let config = serde_json::json!({"os": os, "architecture": arch, "rootfs": {"type": "layers", "diff_ids": []}});
        let config = oci_client::client::Config::oci_v1(serde_json::to_vec(&config).unwrap(), None);
        let client = self.client();
        client.push(&reference, &layers, config, &self.auth(), None).await.unwrap();
        client.fetch_manifest_digest(&reference, &self.auth()).await.unwrap()
    }

    /// Pushes the image an OCI image layout holds under `tag` (the
    /// `org.opencontainers.image.ref.name` annotation umoci writes ends in
    /// it), config and layers byte for byte, as `repo_tag`; returns the
    /// manifest digest.
    pub async fn push_layout(&self, layout: &std::path::Path, tag: &str, repo_tag: &str) -> String {
        let read_json = |path: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
        };
        let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        let index = read_json(layout.join("index.json"));
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .is_some_and(|n| n == tag || n.ends_with(&format!(":{tag}")))
            })
            .unwrap_or_else(|| panic!("no image tagged {tag} in {}", layout.display()));
        let manifest = read_json(blob(entry["digest"].as_str().unwrap()));
        let layers: Vec<ImageLayer> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let bytes = std::fs::read(blob(l["digest"].as_str().unwrap())).unwrap();
                ImageLayer::new(bytes, l["mediaType"].as_str().unwrap().to_owned(), None)
            })
            .collect();
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        let config = oci_client::client::Config::new(
            std::fs::read(blob(config_digest)).unwrap(),
            manifest["config"]["mediaType"].as_str().unwrap().to_owned(),
            None,
        );
        let reference: Reference = format!("{}/{repo_tag}", self.host).parse().unwrap();
        let client = self.client();
        client.push(&reference, &layers, config, &self.auth(), None).await.unwrap();
        client.fetch_manifest_digest(&reference, &self.auth()).await.unwrap()
    }

    /// Pushes an index of already pushed manifests, `(digest, os, arch)`.
    pub async fn push_index(&self, repo_tag: &str, manifests: &[(&str, &str, &str)]) -> String {
        let reference: Reference = format!("{}/{repo_tag}", self.host).parse().unwrap();
        let client = self.client();
        let mut entries = Vec::new();
        for (digest, os, arch) in manifests {
            let pinned = reference.clone_with_digest((*digest).to_owned());
            let (raw, _) = client
                .pull_manifest_raw(&pinned, &self.auth(), &["application/vnd.oci.image.manifest.v1+json"])
                .await
                .unwrap();
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": raw.len(),
                "platform": {"os": os, "architecture": arch}
            }));
        }
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
        let index: oci_client::manifest::OciImageIndex = serde_json::from_value(index).unwrap();
        client.push_manifest_list(&reference, &self.auth(), index).await.unwrap();
        client.fetch_manifest_digest(&reference, &self.auth()).await.unwrap()
    }

    /// Where the registry keeps a blob's bytes on disk.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a serving certificate it signs for the loopback address: PEM
/// texts of the CA, the certificate, and its key.
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(rcgen::DnType::CommonName, "paved test registry CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
