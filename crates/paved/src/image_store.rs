//! What images carry, for the CLI: the on-disk cache first, the registry
//! for what is missing (unless `--offline`), each image looked up once per
//! run. It is the [`ImageFacts`] that `check` hands the engine, and the
//! source of `paved images --contents`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use paved_core::image::{ImageFacts, ImageLookup};
use paved_image::auth::Credentials;
use paved_image::cache::Cache;
use paved_image::registry::{Options, Platform, Registry};
use paved_image::{Digest, ImageReport};

use crate::cli::Global;

/// One image's analysis, or why there is none.
pub type Outcome = Result<Arc<ImageReport>, String>;

pub struct ImageStore {
    /// `None` when offline.
    registry: Option<(Registry, tokio::runtime::Runtime)>,
    cache: Option<Cache>,
    platform: String,
    memo: Mutex<HashMap<String, Arc<OnceLock<Outcome>>>>,
    /// The advisory index, when one was imported: policies then see each
    /// image's known vulnerabilities.
    advisories: Option<paved_advisory::index::Index>,
    /// What policies see of each image, matched once (a cell per image, so
    /// one image's matching does not hold up lookups of the others).
    contents: Mutex<HashMap<String, Arc<OnceLock<Arc<paved_core::image::ImageContents>>>>>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore").field("online", &self.registry.is_some()).field("cache", &self.cache).finish()
    }
}

impl ImageStore {
    pub fn from_flags(global: &Global) -> miette::Result<ImageStore> {
        let platform = platform(global)?;
        let cache = match global.image_cache.clone().or_else(Cache::default_dir) {
            Some(dir) => match Cache::open(dir, paved_image::cache::DEFAULT_MAX_BYTES) {
                Ok(cache) => Some(cache),
                Err(e) => {
                    // Analysis still works without a cache, only slower next time.
                    eprintln!("paved: {e}; images are analysed without caching");
                    None
                }
            },
            None => None,
        };
        let registry = if global.offline {
            None
        } else {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| miette::miette!("cannot start the registry client: {e}"))?;
            Some((Registry::new(registry_options(global, platform.clone(), credentials(global)?)?), runtime))
        };
        let advisories = advisories(global)?;
        Ok(ImageStore {
            registry,
            cache,
            platform: platform.to_string(),
            memo: Mutex::default(),
            advisories,
            contents: Mutex::default(),
        })
    }

    /// Whether advisories were found to match images against.
    pub fn has_advisories(&self) -> bool {
        self.advisories.is_some()
    }

    /// The analysis of `image` (as a pod spec names it).
    pub fn report(&self, image: &str) -> Outcome {
        let cell = {
            let mut memo = self.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(memo.entry(image.to_owned()).or_default())
        };
        cell.get_or_init(|| self.look_up(image)).clone()
    }

    /// One line per image that could not be analysed: which, and why its
    /// content findings are missing.
    pub fn failures(&self) -> Vec<String> {
        let memo = self.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut failed: Vec<String> = memo
            .iter()
            .filter_map(|(image, cell)| match cell.get() {
                Some(Err(why)) => {
                    Some(format!("image {image}: contents not known, its supply-chain findings are missing: {why}"))
                }
                _ => None,
            })
            .collect();
        failed.sort();
        failed
    }

    fn look_up(&self, image: &str) -> Outcome {
        let now = paved_core::Timestamp::now().to_string();
        let cached = |digest: &Digest| self.cache.as_ref().and_then(|c| c.get(digest)).map(Arc::new);
        let pinned = image.rsplit_once('@').and_then(|(_, d)| Digest::parse(d).ok());
        if let Some(report) = pinned.as_ref().and_then(cached) {
            return Ok(report);
        }
        let Some((registry, runtime)) = &self.registry else {
            // Offline: what the last online run resolved this reference to.
            let remembered = self.cache.as_ref().and_then(|c| c.resolved(image, &self.platform));
            return remembered.as_ref().and_then(cached).ok_or_else(|| "not analysed yet, and --offline".to_owned());
        };
        // Online: a tag is resolved afresh (it may have moved), which costs
        // one manifest request; the analysis itself only when not cached.
        let outcome = std::thread::scope(|s| {
            s.spawn(|| {
                runtime.block_on(async {
                    let digest = registry.resolve(image).await.map_err(|e| e.to_string())?;
                    if let Some(report) = cached(&digest) {
                        return Ok((report, digest));
                    }
                    let report = registry.analyse(image, &now).await.map_err(|e| e.to_string())?;
                    let digest = report.digest.clone();
                    if let Some(cache) = &self.cache
                        && let Err(e) = cache.put(&report)
                    {
                        eprintln!("paved: {e}");
                    }
                    Ok((Arc::new(report), digest))
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the analysis stopped unexpectedly".to_owned()))
        });
        let (report, digest) = outcome?;
        if let Some(cache) = &self.cache {
            let _ = cache.remember(image, &self.platform, &digest, &now);
        }
        Ok(report)
    }
}

impl Drop for ImageStore {
    /// The store may be dropped inside another runtime (`audit` runs in
    /// one), where dropping a runtime the usual way would panic.
    fn drop(&mut self) {
        if let Some((_, runtime)) = self.registry.take() {
            runtime.shutdown_background();
        }
    }
}

impl ImageFacts for ImageStore {
    fn lookup(&self, image: &str) -> ImageLookup {
        let report = match self.report(image) {
            Ok(report) => report,
            Err(_) => return ImageLookup::Unknown,
        };
        let cell = {
            let mut contents = self.contents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(contents.entry(image.to_owned()).or_default())
        };
        let known = cell.get_or_init(|| {
            let mut summary = report.summary();
            summary.vulnerabilities = self.advisories.as_ref().and_then(|index| crate::vulns::known(index, &report));
            Arc::new(summary)
        });
        ImageLookup::Known(Arc::clone(known))
    }
}

/// The advisory index: `--advisories` must hold one; the default place
/// may hold none (policies then see no vulnerabilities, and say nothing).
pub fn advisories(global: &Global) -> miette::Result<Option<paved_advisory::index::Index>> {
    let Ok(dir) = crate::vulns::advisories_dir(global.advisories.as_deref()) else { return Ok(None) };
    let index =
        paved_advisory::index::Index::open(&dir).map_err(|e| miette::miette!(code = "paved::advisories", "{e}"))?;
    if index.is_none() && global.advisories.is_some() {
        return Err(miette::miette!(
            code = "paved::advisories",
            help = "import some with `paved advisories import PATH --advisories DIR`",
            "no advisories in {}",
            dir.display()
        ));
    }
    Ok(index)
}

/// The registry client's options from the global flags: platform, extra
/// CAs, plain-HTTP registries, and `credentials`.
pub fn registry_options(global: &Global, platform: Platform, credentials: Credentials) -> miette::Result<Options> {
    let mut extra_roots = Vec::new();
    for path in &global.registry_ca {
        extra_roots.push(std::fs::read(path).map_err(|e| miette::miette!("{}: {e}", path.display()))?);
    }
    Ok(Options {
        platform,
        credentials,
        insecure: global.insecure_registry.clone(),
        extra_roots,
        timeout: Some(std::time::Duration::from_secs(60)),
        ..Options::default()
    })
}

/// Registry logins: the `--pull-secret` files first, then the docker configuration's.
pub fn credentials(global: &Global) -> miette::Result<Credentials> {
    let mut credentials = Credentials::default();
    for path in &global.pull_secret {
        credentials.extend(pull_secrets(path)?);
    }
    credentials.extend(Credentials::from_environment().map_err(|e| miette::miette!("{e}"))?);
    Ok(credentials)
}

/// `--platform`, checked.
pub fn platform(global: &Global) -> miette::Result<Platform> {
    global.platform.parse().map_err(|e: String| miette::miette!(code = "paved::platform", "{e}"))
}

/// The logins of every pull secret in a manifest file (YAML or JSON, one or
/// more documents); a document that is not a Secret is an error, since the
/// file was named as pull secrets.
fn pull_secrets(path: &std::path::Path) -> miette::Result<Credentials> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| miette::miette!(code = "paved::pull_secret", "{shown}: {e}"))?;
    let limits = paved_yaml::Limits::default();
    let items = paved_yaml::decode(&bytes, &limits)
        .and_then(|text| paved_yaml::load(text, &limits))
        .map_err(|e| miette::miette!(code = "paved::pull_secret", "{shown}: {e}"))?;
    let mut credentials = Credentials::default();
    for item in items {
        match item {
            paved_yaml::Item::Object(node) => {
                let secret = serde_json::to_value(&node).map_err(|e| miette::miette!("{shown}: {e}"))?;
                let logins = Credentials::from_pull_secret(&secret)
                    .map_err(|e| miette::miette!(code = "paved::pull_secret", "{shown}: {e}"))?;
                credentials.extend(logins);
            }
            paved_yaml::Item::Error(e) => {
                let at = format!("{shown}:{}:{}", e.pos.line, e.pos.col);
                return Err(miette::miette!(code = "paved::pull_secret", "{at}: {}", e.message));
            }
            paved_yaml::Item::Skipped { .. } => {}
        }
    }
    Ok(credentials)
}
