//! What an image carries, read straight from its layers.
//!
//! `layer` streams one blob (digest checked, gzip or zstd or plain, tar walked
//! by the bounded reader in `tar`) into the changes it makes; `view` applies
//! the layers in order with their whiteouts; `contents` looks at the result:
//! shells, package managers, interpreters, setuid files, the package
//! inventory. The results are an [`ImageReport`], keyed by the digest of the
//! image's (platform) manifest.

pub mod auth;
#[cfg(feature = "testing")]
pub mod build;
pub mod cache;
pub mod contents;
pub mod gobuild;
pub mod layer;
pub mod registry;
pub mod rpm;
pub mod sbom;
pub mod tar;
#[cfg(feature = "testing")]
pub mod test_registry;
pub mod view;

use std::io::Read;

use serde::{Deserialize, Serialize};

pub use contents::{Contents, OsRelease, Package, SpecialFile, Tool};
pub use layer::{Digest, LayerError, Limits};
pub use view::View;

/// Bumped whenever the analysis changes what it finds (2: the distribution's
/// release and packages' source packages, for advisories; 3: Go, Python,
/// npm and Maven packages; 4: rpm's SQLite database), so that cached
/// reports from an older paved are redone rather than trusted.
pub const ANALYSIS_VERSION: u32 = 4;

/// What paved knows about one image manifest.
/// Written camelCase, as every JSON paved writes; a report cached by an older
/// paved under snake_case names does not parse and is analysed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    pub analysis_version: u32,
    /// The digest of the platform manifest the layers came from.
    pub digest: Digest,
    /// `os/arch[/variant]`, from the image configuration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
    pub layers: Vec<Digest>,
    pub contents: Contents,
    /// When the analysis ran (RFC 3339).
    pub analysed_at: String,
}

impl ImageReport {
    /// What policies read of the report: each tool as `path -> target`
    /// when it is a link, the setuid and setgid files by path.
    pub fn summary(&self) -> paved_core::image::ImageContents {
        let tool = |t: &Tool| match &t.target {
            Some(target) => format!("{} -> {target}", t.path),
            None => t.path.clone(),
        };
        let c = &self.contents;
        paved_core::image::ImageContents {
            digest: self.digest.to_string(),
            shells: c.shells.iter().map(tool).collect(),
            package_managers: c.package_managers.iter().map(tool).collect(),
            setuid: c.setuid.iter().map(|s| s.path.clone()).collect(),
            // Matched by the surface that holds the advisories.
            vulnerabilities: None,
        }
    }
}

/// A layer that could not be read, and which one.
#[derive(Debug, thiserror::Error)]
#[error("layer {number} of {count} ({digest}): {source}")]
pub struct LayerFailure {
    pub number: usize,
    pub count: usize,
    pub digest: String,
    #[source]
    pub source: LayerError,
}

/// Applies layers in order, bottom first; each comes with the digest it
/// must have (when known). Memory grows with the number of entries, not
/// with the layers' size.
pub fn analyse_layers<R: Read>(
    layers: impl IntoIterator<Item = (R, Option<Digest>)>,
    count: usize,
    limits: &Limits,
) -> Result<Contents, LayerFailure> {
    let mut view = View::default();
    for (i, (blob, digest)) in layers.into_iter().enumerate() {
        let failure = |source| LayerFailure {
            number: i + 1,
            count,
            digest: digest.as_ref().map_or_else(|| "digest unknown".to_owned(), Digest::to_string),
            source,
        };
        let layer = layer::read_layer(blob, digest.as_ref(), limits, view.len()).map_err(failure)?;
        view.apply(layer);
    }
    Ok(Contents::of(&view))
}
