//! Reads images from their registry (the OCI distribution API, through
//! `oci-client`): the manifest for one platform out of an index, the
//! configuration, then each layer streamed through the analysis. Nothing is
//! written to disk.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::auth::Credentials;
use crate::layer::{Digest, Limits};
use crate::{ANALYSIS_VERSION, Contents, ImageReport, LayerFailure};

/// Largest image configuration read (real ones are a few KiB).
const MAX_CONFIG: u64 = 4 << 20;

/// `os/architecture[/variant]`, as in `docker pull --platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Platform { os: "linux".into(), architecture: "amd64".into(), variant: None }
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: (*os).into(), architecture: (*arch).into(), variant: None })
            }
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform { os: (*os).into(), architecture: (*arch).into(), variant: Some((*variant).into()) })
            }
            _ => Err(format!("platform {s:?} is not os/architecture[/variant], e.g. linux/arm64")),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    fn pick(&self, entries: &[ImageIndexEntry]) -> Option<String> {
        let matches = |e: &&ImageIndexEntry, variant_must_match: bool| {
            e.platform.as_ref().is_some_and(|p| {
                p.os.to_string() == self.os
                    && p.architecture.to_string() == self.architecture
                    && (!variant_must_match
                        || self.variant.is_none()
                        || p.variant.as_deref() == self.variant.as_deref())
            })
        };
        entries
            .iter()
            .find(|e| matches(e, true))
            .or_else(|| entries.iter().find(|e| matches(e, false)))
            .map(|e| e.digest.clone())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub platform: Platform,
    pub credentials: Credentials,
    /// Registries (`host:port`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// PEM certificates trusted besides the system's roots.
    pub extra_roots: Vec<Vec<u8>>,
    pub limits: Limits,
    /// Per-request connect and read timeout.
    pub timeout: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{image:?} is not an image reference: {message}")]
    Reference { image: String, message: String },
    #[error("{image}: {message}")]
    Registry { image: String, message: String },
    #[error("{image}: {source}")]
    Layer {
        image: String,
        #[source]
        source: LayerFailure,
    },
}

/// A registry client that analyses images.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    options: Arc<Options>,
}

impl Registry {
    pub fn new(options: Options) -> Registry {
        // One TLS provider for the whole process (ring, as the rest of paved).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let platform = options.platform.clone();
        let config = ClientConfig {
            protocol: if options.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(options.insecure.clone())
            },
            extra_root_certificates: options
                .extra_roots
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            platform_resolver: Some(Box::new(move |entries: &[ImageIndexEntry]| platform.pick(entries))),
            connect_timeout: options.timeout,
            read_timeout: options.timeout,
            user_agent: concat!("paved/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Registry { client: Client::new(config), options: Arc::new(options) }
    }

    fn auth_for(&self, reference: &Reference) -> RegistryAuth {
        match self
            .options
            .credentials
            .login_for(reference.resolve_registry())
            .or_else(|| self.options.credentials.login_for(reference.registry()))
        {
            Some(login) => RegistryAuth::Basic(login.username.clone(), login.password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    fn parse(image: &str) -> Result<Reference, RegistryError> {
        Reference::from_str(image)
            .map_err(|e| RegistryError::Reference { image: image.to_owned(), message: e.to_string() })
    }

    /// The digest of the image's manifest for the configured platform: the
    /// key its analysis is stored under.
    pub async fn resolve(&self, image: &str) -> Result<Digest, RegistryError> {
        let reference = Registry::parse(image)?;
        let (_, digest) = self
            .client
            .pull_image_manifest(&reference, &self.auth_for(&reference))
            .await
            .map_err(|e| registry_error(image, e))?;
        Digest::parse(&digest).map_err(|message| RegistryError::Registry { image: image.to_owned(), message })
    }

    /// Fetches the image's manifest, configuration and layers and analyses
    /// them. `now` is the time recorded in the report.
    pub async fn analyse(&self, image: &str, now: &str) -> Result<ImageReport, RegistryError> {
        let reference = Registry::parse(image)?;
        let auth = self.auth_for(&reference);
        let fail = |message: String| RegistryError::Registry { image: image.to_owned(), message };
        let (manifest, digest) =
            self.client.pull_image_manifest(&reference, &auth).await.map_err(|e| registry_error(image, e))?;
        let digest = Digest::parse(&digest).map_err(fail)?;
        // Later reads by digest, so a tag moved meanwhile cannot mix images.
        let pinned = reference.clone_with_digest(digest.to_string());
        let platform = self.platform_of(&pinned, &manifest.config).await.map_err(|e| registry_error(image, e))?;
        let limits = self.options.limits.clone();
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            let d = Digest::parse(&layer.digest).map_err(fail)?;
            if !is_layer_media_type(&layer.media_type) {
                return Err(fail(format!("layer {d}: media type {:?} is not a filesystem layer", layer.media_type)));
            }
            if u64::try_from(layer.size).is_ok_and(|s| s > limits.max_layer_bytes) {
                return Err(fail(format!(
                    "layer {d}: {} bytes, over the limit of {}",
                    layer.size, limits.max_layer_bytes
                )));
            }
            layers.push((d, layer.clone()));
        }
        let contents = self.analyse_layers(image, &pinned, layers.clone(), limits).await?;
        Ok(ImageReport {
            analysis_version: ANALYSIS_VERSION,
            digest,
            platform,
            layers: layers.into_iter().map(|(d, _)| d).collect(),
            contents,
            analysed_at: now.to_owned(),
        })
    }

    async fn platform_of(
        &self,
        image: &Reference,
        config: &OciDescriptor,
    ) -> Result<String, oci_client::errors::OciDistributionError> {
        if u64::try_from(config.size).is_ok_and(|s| s > MAX_CONFIG) {
            return Ok(String::new());
        }
        let mut bytes = Vec::new();
        self.client.pull_blob(image, config, &mut bytes).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str).unwrap_or("");
        let mut platform = format!("{}/{}", field("os"), field("architecture"));
        if !field("variant").is_empty() {
            platform = format!("{platform}/{}", field("variant"));
        }
        Ok(if platform == "/" { String::new() } else { platform })
    }

    /// Streams each layer through the analysis on a blocking thread; the
    /// layers are read in order because each applies on top of the last.
    /// `shown` is the image as the user wrote it, for errors.
    async fn analyse_layers(
        &self,
        shown: &str,
        image: &Reference,
        layers: Vec<(Digest, OciDescriptor)>,
        limits: Limits,
    ) -> Result<Contents, RegistryError> {
        let client = self.client.clone();
        let image = image.clone();
        let handle = tokio::runtime::Handle::current();
        let count = layers.len();
        let task = tokio::task::spawn_blocking(move || {
            // Each blob is asked for when the analysis reaches it.
            let blobs = layers.into_iter().map(|(digest, descriptor)| {
                let blob: Box<dyn std::io::Read> = match handle.block_on(client.pull_blob_stream(&image, &descriptor)) {
                    Ok(stream) => {
                        // oci-client checks the digest too, and fails the
                        // stream's last read when it differs. The analysis
                        // checks it itself, and says which layer and what was
                        // expected, so the client's verdict ends the stream instead.
                        let stream = stream.stream.take_while(|item| {
                            let client_digest_error = matches!(item, Err(e) if e.get_ref().is_some_and(|inner| inner.is::<oci_client::errors::DigestError>()));
                            std::future::ready(!client_digest_error)
                        });
                        let reader = tokio_util::io::StreamReader::new(stream);
                        Box::new(tokio_util::io::SyncIoBridge::new_with_handle(reader, handle.clone()))
                    }
                    Err(e) => Box::new(Unavailable(Some(std::io::Error::other(e.to_string())))),
                };
                (blob, Some(digest))
            });
            crate::analyse_layers(blobs, count, &limits)
        });
        match task.await {
            Ok(analysed) => analysed.map_err(|source| RegistryError::Layer { image: shown.to_owned(), source }),
            Err(e) => {
                Err(RegistryError::Registry { image: shown.to_owned(), message: format!("the analysis stopped: {e}") })
            }
        }
    }
}

/// A blob the registry would not give: its first read fails with why.
struct Unavailable(Option<std::io::Error>);

impl std::io::Read for Unavailable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| std::io::Error::other("the blob is unavailable")))
    }
}

fn is_layer_media_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.diff.tar")
        || media_type.is_empty()
}

fn registry_error(image: &str, e: oci_client::errors::OciDistributionError) -> RegistryError {
    use oci_client::errors::OciDistributionError as E;
    let message = match e {
        E::RegistryError { envelope, .. } => {
            let said: Vec<String> = envelope.errors.iter().map(|e| if e.message.is_empty() { format!("{:?}", e.code) } else { e.message.clone() }).collect();
            format!("the registry says: {}", said.join("; "))
        }
        E::UnauthorizedError { .. } => "not authorized: no login for this registry, or the login is refused (docker config.json, or an image pull secret)".to_owned(),
        E::ImageManifestNotFoundError(m) if m.contains("no entry found") => "the image index has no manifest for the platform asked for (--platform)".to_owned(),
        other => other.to_string(),
    };
    RegistryError::Registry { image: image.to_owned(), message }
}
