//! What images carry, at admission. Admission never waits on a registry:
//! a lookup answers from memory at once, and an image not known yet is
//! queued for analysis in the background (a bounded queue, a bounded number
//! of analyses at a time) while the request goes through with a warning.
//!
//! Results are keyed by manifest digest. A tag is resolved to its digest in
//! the background too, and again after [`ImageOptions::refresh`], since tags
//! move. Every replica shares what any of them analysed through the cluster
//! itself: one `ImageAnalysis` object (`paved.dev/v1alpha1`, cluster-scoped)
//! per digest, written by server-side apply and read back by a watch, so
//! an image is pulled and analysed once per cluster, not once per replica.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use paved_core::image::{ImageContents, ImageFacts, ImageLookup, KnownVulnerability};
use paved_image::registry::Registry;
use paved_image::{Digest, ImageReport};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::metrics::ResultLabels;

pub const GROUP: &str = "paved.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "ImageAnalysis";
pub const PLURAL: &str = "imageanalyses";
/// Server-side apply's field manager for the objects paved writes.
pub const FIELD_MANAGER: &str = "paved";

/// Entries of each list an `ImageAnalysis` keeps, and characters of each
/// entry, so that an object stays far below etcd's size limit whatever
/// the image holds.
const MAX_LISTED: usize = 64;
const MAX_ENTRY: usize = 512;

/// How the background analysis runs.
#[derive(Clone, Debug)]
pub struct ImageOptions {
    /// Analyses at a time.
    pub workers: usize,
    /// Images waiting for a worker; beyond, a request is dropped (and asked
    /// again at the next admission that names the image).
    pub queue: usize,
    /// How long a tag's digest is trusted before it is resolved again.
    pub refresh: Duration,
    /// How long a failed image is left alone before it is tried again.
    pub retry: Duration,
    /// Longest an analysis may take, registry round trips included.
    pub timeout: Duration,
    /// Entries kept in memory, each of digests, resolved references and
    /// failures; beyond, the oldest are forgotten (and asked for again).
    pub max_known: usize,
}

impl Default for ImageOptions {
    fn default() -> ImageOptions {
        ImageOptions {
            workers: 1,
            queue: 256,
            refresh: Duration::from_secs(600),
            retry: Duration::from_secs(600),
            timeout: Duration::from_secs(600),
            max_known: 20_000,
        }
    }
}

#[derive(Default)]
struct State {
    /// What each manifest digest carries, and when it was learnt (for eviction).
    contents: HashMap<String, (Arc<ImageContents>, Instant)>,
    /// What digest each reference (as pod specs write it) resolved to, and when.
    refs: HashMap<String, (String, Instant)>,
    /// References whose analysis failed, why, and when.
    failed: HashMap<String, (Arc<str>, Instant)>,
    /// References in the queue or being analysed.
    queued: HashSet<String>,
}

/// Matches an analysed image against advisories: the known vulnerabilities
/// of what it carries, or `None` when there are no advisories to ask.
pub type Matcher = Arc<dyn Fn(&ImageReport) -> Option<Vec<KnownVulnerability>> + Send + Sync>;

/// The image facts `paved serve` hands every engine.
pub struct Analyses {
    /// Matches each image this replica analyses; the result is shared with
    /// the others through its `ImageAnalysis` object. Admission reads only
    /// what is in memory: it never waits on the advisories.
    matcher: Option<Matcher>,
    state: RwLock<State>,
    queue: mpsc::Sender<String>,
    receiver: Mutex<Option<mpsc::Receiver<String>>>,
    /// Whether a registry can be asked (not with `--offline`): without one,
    /// only what the cluster shares is known.
    online: bool,
    options: ImageOptions,
    /// Analyses by result: analysed, known (the digest was known already),
    /// failed, dropped (the queue was full), shared (read from the cluster).
    pub counts: Family<ResultLabels, Counter>,
}

impl std::fmt::Debug for Analyses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyses").field("online", &self.online).field("options", &self.options).finish()
    }
}

impl Analyses {
    pub fn new(options: ImageOptions, online: bool) -> Analyses {
        let (queue, receiver) = mpsc::channel(options.queue.max(1));
        Analyses {
            matcher: None,
            state: RwLock::default(),
            queue,
            receiver: Mutex::new(Some(receiver)),
            online,
            options,
            counts: Family::default(),
        }
    }

    /// Matches every image this replica analyses with `matcher`.
    #[must_use]
    pub fn with_matcher(mut self, matcher: Matcher) -> Analyses {
        self.matcher = Some(matcher);
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, result: &'static str) {
        self.counts.get_or_create(&ResultLabels { result }).inc();
    }

    /// Asks for `image` to be analysed, unless it already is waiting.
    fn enqueue(&self, state: &mut State, image: &str) {
        if state.queued.contains(image) {
            return;
        }
        match self.queue.try_send(image.to_owned()) {
            Ok(()) => {
                state.queued.insert(image.to_owned());
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.count("dropped"),
            // No workers (they stopped with the runtime): nothing to ask.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Records what a digest carries.
    pub fn learn(&self, contents: ImageContents) {
        let mut state = self.write();
        make_room(&mut state.contents, &contents.digest, self.options.max_known);
        state.contents.insert(contents.digest.clone(), (Arc::new(contents), Instant::now()));
    }

    /// Records how an analysis of `image` ended: the manifest digest it
    /// names, or why it failed.
    fn settle(&self, image: &str, outcome: Result<String, String>) {
        let max = self.options.max_known;
        let mut state = self.write();
        state.queued.remove(image);
        match outcome {
            Ok(digest) => {
                state.failed.remove(image);
                make_room(&mut state.refs, image, max);
                state.refs.insert(image.to_owned(), (digest, Instant::now()));
            }
            Err(why) => {
                make_room(&mut state.failed, image, max);
                state.failed.insert(image.to_owned(), (why.into(), Instant::now()));
            }
        }
    }

    /// Forgets a digest (its `ImageAnalysis` was deleted: analyse it again).
    pub fn forget(&self, digest: &str) {
        self.write().contents.remove(digest);
    }

    /// Starts the background work on the current runtime: the analyses
    /// (with `registry`, when online) and, with a cluster, the watch that
    /// reads what other replicas analysed. Results are written to the
    /// cluster when `client` is given.
    pub fn spawn(
        self: &Arc<Self>,
        registry: Option<Registry>,
        client: Option<kube::Client>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(client) = &client {
            tasks.push(tokio::spawn(watch_shared(Arc::clone(self), client.clone())));
        }
        let receiver = self.receiver.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let (Some(registry), Some(receiver)) = (registry, receiver) {
            tasks.push(tokio::spawn(dispatch(Arc::clone(self), registry, client, receiver)));
        }
        tasks
    }

    async fn analyse(&self, registry: &Registry, client: Option<&kube::Client>, image: &str) {
        let known = |digest: &Digest| self.read().contents.contains_key(digest.as_str());
        let work = async {
            let digest = registry.resolve(image).await?;
            if known(&digest) {
                return Ok((digest, None));
            }
            let now = paved_core::Timestamp::now().to_string();
            let report = registry.analyse(image, &now).await?;
            Ok::<_, paved_image::registry::RegistryError>((report.digest.clone(), Some(report)))
        };
        let outcome = match tokio::time::timeout(self.options.timeout, work).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => {
                // The reference is in the finding already.
                let why = e.to_string();
                Err(why.strip_prefix(&format!("{image}: ")).map_or_else(|| why.clone(), str::to_owned))
            }
            Err(_) => Err(format!("the analysis took longer than {:?}", self.options.timeout)),
        };
        match outcome {
            Ok((digest, report)) => {
                if let Some(report) = report.map(Arc::new) {
                    let mut summary = report.summary();
                    // Reading the index is blocking work: off the runtime that answers reviews.
                    if let Some(matcher) = self.matcher.clone() {
                        let report = Arc::clone(&report);
                        summary.vulnerabilities =
                            tokio::task::spawn_blocking(move || matcher(&report)).await.ok().flatten();
                    }
                    let vulnerabilities = summary.vulnerabilities.clone();
                    self.learn(summary);
                    self.count("analysed");
                    tracing::info!(%image, %digest, shells = report.contents.shells.len(), "image analysed");
                    if let Some(client) = client {
                        publish(client, &report, vulnerabilities.as_deref()).await;
                    }
                } else {
                    self.count("known");
                }
                self.settle(image, Ok(digest.to_string()));
            }
            Err(why) => {
                self.count("failed");
                tracing::warn!(%image, error = %why, "image not analysed");
                self.settle(image, Err(why));
            }
        }
    }
}

impl ImageFacts for Analyses {
    fn lookup(&self, image: &str) -> ImageLookup {
        // Under a shared lock: admission asks from many requests at once,
        // and nearly always about an image it knows.
        let stale = {
            let state = self.read();
            let pinned = image.rsplit_once('@').map(|(_, digest)| digest);
            // A digest that names a platform's manifest is the key itself;
            // one that names an index (the usual pin of a multi-platform
            // image) was resolved to the platform's manifest like a tag, but
            // never moves.
            let by_pin = pinned.and_then(|digest| state.contents.get(digest)).map(|(c, _)| (c, None));
            let by_ref = || {
                let (digest, at) = state.refs.get(image)?;
                let (contents, _) = state.contents.get(digest)?;
                Some((contents, if pinned.is_some() { None } else { Some(*at) }))
            };
            match by_pin.or_else(by_ref).map(|(c, at)| (Arc::clone(c), at)) {
                // The tag may have moved since: look again, answering
                // meanwhile with what it named last.
                Some((contents, Some(at))) if at.elapsed() >= self.options.refresh => Some(contents),
                Some((contents, _)) => return ImageLookup::Known(contents),
                None => match state.failed.get(image) {
                    Some((why, at)) if at.elapsed() < self.options.retry => {
                        return ImageLookup::Failed(Arc::clone(why));
                    }
                    _ => None,
                },
            }
        };
        if !self.online {
            return stale.map_or(ImageLookup::Unknown, ImageLookup::Known);
        }
        self.enqueue(&mut self.write(), image);
        stale.map_or(ImageLookup::Pending, ImageLookup::Known)
    }
}

/// Keeps a map that is about to get `key` within `max` entries: when full,
/// the oldest tenth goes (each value carries when it was learnt). Every map
/// here is keyed by what admission requests name, so none may grow without
/// bound.
fn make_room<T>(map: &mut HashMap<String, (T, Instant)>, key: &str, max: usize) {
    if map.len() < max || map.contains_key(key) {
        return;
    }
    let mut ages: Vec<(Instant, String)> = map.iter().map(|(k, (_, at))| (*at, k.clone())).collect();
    ages.sort();
    for (_, old) in ages.into_iter().take(max / 10 + 1) {
        map.remove(&old);
    }
}

/// Hands queued images to at most `workers` analyses at a time.
async fn dispatch(
    analyses: Arc<Analyses>,
    registry: Registry,
    client: Option<kube::Client>,
    mut receiver: mpsc::Receiver<String>,
) {
    let slots = Arc::new(Semaphore::new(analyses.options.workers.max(1)));
    while let Some(image) = receiver.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let (analyses, registry, client) = (Arc::clone(&analyses), registry.clone(), client.clone());
        tokio::spawn(async move {
            analyses.analyse(&registry, client.as_ref(), &image).await;
            drop(slot);
        });
    }
}

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// The object name of a digest's analysis: `sha256-<hex>`.
pub fn object_name(digest: &Digest) -> String {
    digest.file_stem()
}

/// The `ImageAnalysis` object that shares `report` with the other replicas
/// (and with `kubectl get imageanalyses`).
pub fn object_of(report: &ImageReport, vulnerabilities: Option<&[KnownVulnerability]>) -> serde_json::Value {
    let listed = |entries: Vec<String>| -> Vec<String> {
        entries.into_iter().take(MAX_LISTED).map(|e| paved_core::policy::clip_chars(e, MAX_ENTRY)).collect()
    };
    let summary = report.summary();
    let c = &report.contents;
    let interpreters = c.interpreters.iter().map(|t| t.path.clone()).collect();
    let mut object = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "metadata": {
            "name": object_name(&report.digest),
            "labels": {"app.kubernetes.io/managed-by": "paved"},
        },
        "spec": {
            "digest": report.digest.to_string(),
            "platform": report.platform,
            "analysisVersion": report.analysis_version,
            "analysedAt": report.analysed_at,
            "layers": report.layers.len(),
            "files": c.files,
            "bytes": c.bytes,
            "packages": c.packages.len(),
            "shells": listed(summary.shells),
            "packageManagers": listed(summary.package_managers),
            "interpreters": listed(interpreters),
            "setuid": listed(summary.setuid),
        },
    });
    // Worst first, as matched; absent when this replica had no advisories.
    if let Some(vulns) = vulnerabilities {
        object["spec"]["vulnerabilities"] = vulns
            .iter()
            .take(MAX_LISTED)
            .map(|v| {
                json!({"id": v.id, "cve": v.cve, "severity": v.severity, "package": v.package,
                       "installed": v.installed, "fixed": v.fixed})
            })
            .collect();
    }
    object
}

/// What an `ImageAnalysis` object says, if it is one paved can trust to be
/// current: its name matches its digest and the analysis is this version's.
pub fn contents_of(obj: &serde_json::Value) -> Option<ImageContents> {
    let spec = obj.get("spec")?;
    let digest = Digest::parse(spec.get("digest")?.as_str()?).ok()?;
    if obj.pointer("/metadata/name").and_then(serde_json::Value::as_str) != Some(object_name(&digest).as_str())
        || spec.get("analysisVersion").and_then(serde_json::Value::as_u64) != Some(paved_image::ANALYSIS_VERSION.into())
    {
        return None;
    }
    let list = |key: &str| -> Vec<String> {
        spec.get(key)
            .and_then(serde_json::Value::as_array)
            .map(|items| items.iter().filter_map(|i| i.as_str().map(str::to_owned)).take(MAX_LISTED).collect())
            .unwrap_or_default()
    };
    Some(ImageContents {
        digest: digest.to_string(),
        shells: list("shells"),
        package_managers: list("packageManagers"),
        setuid: list("setuid"),
        vulnerabilities: spec.get("vulnerabilities").and_then(serde_json::Value::as_array).map(|items| {
            items
                .iter()
                .take(MAX_LISTED)
                .filter_map(|v| {
                    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
                    Some(KnownVulnerability {
                        id: text("id")?,
                        cve: text("cve"),
                        severity: serde_json::from_value(v.get("severity")?.clone()).unwrap_or_default(),
                        package: text("package")?,
                        installed: text("installed")?,
                        fixed: text("fixed"),
                    })
                })
                .collect()
        }),
    })
}

async fn publish(client: &kube::Client, report: &ImageReport, vulnerabilities: Option<&[KnownVulnerability]>) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource());
    let name = object_name(&report.digest);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    if let Err(e) = api.patch(&name, &params, &Patch::Apply(object_of(report, vulnerabilities))).await {
        // The other replicas analyse it themselves: slower, not wrong.
        tracing::warn!(%name, error = %e, "cannot share the image analysis through the cluster");
    }
}

/// Reads what any replica analysed. Without the `ImageAnalysis` kind
/// installed this only logs: every replica then analyses for itself.
async fn watch_shared(analyses: Arc<Analyses>, client: kube::Client) {
    let api: Api<DynamicObject> = Api::all_with(client, &resource());
    let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut warned = false;
    while let Some(event) = stream.next().await {
        let obj = match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => obj,
            Ok(Event::Delete(obj)) => {
                if let Some(c) = serde_json::to_value(&obj).ok().as_ref().and_then(contents_of) {
                    analyses.forget(&c.digest);
                }
                continue;
            }
            Ok(Event::Init | Event::InitDone) => continue,
            Err(e) => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(error = %e, "cannot watch ImageAnalysis objects; each replica analyses images itself");
                }
                continue;
            }
        };
        match serde_json::to_value(&obj).ok().as_ref().and_then(contents_of) {
            Some(contents) => {
                analyses.learn(contents);
                analyses.count("shared");
            }
            None => {
                tracing::debug!(name = ?obj.metadata.name, "ImageAnalysis ignored: not this version's, or its name is not its digest")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn memory_is_bounded_whatever_requests_name() {
        let analyses = Analyses::new(ImageOptions { max_known: 10, ..ImageOptions::default() }, true);
        for i in 0..25 {
            let digest = format!("sha256:{i:064x}");
            analyses.learn(ImageContents { digest: digest.clone(), ..ImageContents::default() });
            analyses.settle(&format!("app{i}:1"), Ok(digest));
            analyses.settle(&format!("gone{i}:1"), Err("manifest unknown".into()));
        }
        let state = analyses.read();
        assert!(state.contents.len() <= 10 && state.refs.len() <= 10 && state.failed.len() <= 10);
        // The newest stay.
        assert!(state.refs.contains_key("app24:1") && state.failed.contains_key("gone24:1"));
        assert!(state.contents.contains_key(&format!("sha256:{:064x}", 24)));
        drop(state);
        assert!(matches!(analyses.lookup("app24:1"), ImageLookup::Known(_)));
        assert!(matches!(analyses.lookup("gone24:1"), ImageLookup::Failed(_)));
    }

    /// What the analysing replica matched reaches the others through the
    /// `ImageAnalysis` object; a replica without advisories shares none.
    #[test]
    fn known_vulnerabilities_travel_with_the_shared_analysis() {
        let report = ImageReport {
            analysis_version: paved_image::ANALYSIS_VERSION,
            digest: Digest::of_bytes(b"image"),
            platform: "linux/amd64".into(),
            layers: vec![],
            contents: paved_image::Contents::default(),
            analysed_at: "2026-12-02T00:00:00Z".into(),
        };
        let tar = KnownVulnerability {
            id: "DEBIAN-CVE-2005-2541".into(),
            cve: Some("CVE-2005-2541".into()),
            severity: paved_core::image::Severity::Critical,
            package: "tar".into(),
            installed: "1.34+dfsg-1.2+deb12u1".into(),
            fixed: None,
        };
        let shared = contents_of(&object_of(&report, Some(std::slice::from_ref(&tar)))).expect("trusted");
        assert_eq!(shared.vulnerabilities, Some(vec![tar]));
        let none = contents_of(&object_of(&report, None)).expect("trusted");
        assert_eq!(none.vulnerabilities, None, "not matched is not the same as none known");
    }
}
