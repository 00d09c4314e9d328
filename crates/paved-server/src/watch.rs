//! The cluster as admission needs it, kept current by watches: namespaces
//! (for their profile labels) and the metadata of the lock index's kinds (for
//! the lock index). Metadata-only, and only what matters is kept: labelled
//! namespaces and locked objects, so memory follows those counts, not the
//! cluster's size. The exception is Gatekeeper's `data.inventory`: whole
//! objects of the kinds templates ask for, and only when they ask.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use paved_admission::cluster::NamespaceLabels;
use paved_admission::locks::{LOCKABLE, Labels, Meta, Resource};
use serde_json::json;

use crate::Shared;

/// Counts watches that have listed everything once; the server is ready when all have.
struct Sync {
    done: AtomicUsize,
    total: usize,
}

impl Sync {
    fn listed(&self, shared: &Shared, first: &mut bool) {
        if std::mem::take(first) && self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.total {
            shared.synced.store(true, Ordering::Release);
            tracing::info!("cluster caches synced");
        }
    }
}

/// Starts every watch; they run until the runtime stops. `shared.synced`
/// turns true once each has listed its kind.
pub fn spawn(client: kube::Client, shared: &Arc<Shared>) -> Vec<tokio::task::JoinHandle<()>> {
    let sync = Arc::new(Sync { done: AtomicUsize::new(0), total: 2 + LOCKABLE.len() });
    let mut tasks = vec![
        tokio::spawn(namespaces(client.clone(), Arc::clone(shared), Arc::clone(&sync))),
        tokio::spawn(inventory(client.clone(), Arc::clone(shared), Arc::clone(&sync))),
        tokio::spawn(markers(client.clone(), Arc::clone(shared))),
    ];
    for resource in LOCKABLE {
        tasks.push(tokio::spawn(locks(client.clone(), Arc::clone(shared), Arc::clone(&sync), resource)));
    }
    tasks
}

fn labels_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> NamespaceLabels {
    NamespaceLabels::of(meta.labels.as_ref().map_or(Labels::None, Labels::Map))
}

/// Watches Namespaces: their labels, and whether each is locked (by a
/// protect rule too, so a configuration reload relists) or marked.
async fn namespaces(client: kube::Client, shared: Arc<Shared>, sync: Arc<Sync>) {
    let mut reloads = shared.reloads.subscribe();
    let mut first = true;
    loop {
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
        if !follow_namespaces(stream, &shared, &sync, &mut first, &mut reloads).await {
            return;
        }
        tracing::info!("configuration changed; relisting namespaces");
    }
}

/// One generation of the namespace watch; false when the server is going away.
async fn follow_namespaces(
    stream: impl futures_util::Stream<Item = Result<Event<PartialObjectMeta<Namespace>>, watcher::Error>>,
    shared: &Arc<Shared>,
    sync: &Sync,
    first: &mut bool,
    reloads: &mut tokio::sync::watch::Receiver<u64>,
) -> bool {
    let mut stream = std::pin::pin!(stream);
    let shared = Arc::clone(shared);
    let mut relist: HashMap<String, NamespaceLabels> = HashMap::new();
    let mut relist_locked: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut relist_marked: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            changed = reloads.changed() => return changed.is_ok(),
        };
        let Some(event) = event else { return false };
        match event {
            Ok(Event::Init) => {
                relist.clear();
                relist_locked.clear();
                relist_marked.clear();
            }
            Ok(Event::InitApply(ns)) => {
                let labels = labels_of(&ns.metadata);
                let locked = is_locked(&shared, "Namespace", &ns.metadata);
                let marked = is_marked(&ns.metadata);
                if let Some(name) = ns.metadata.name {
                    if locked {
                        relist_locked.insert(name.clone());
                    }
                    if marked {
                        relist_marked.insert(name.clone());
                    }
                    if !labels.is_empty() {
                        relist.insert(name, labels);
                    }
                }
            }
            Ok(Event::InitDone) => {
                if let Ok(mut cluster) = shared.cluster.write() {
                    cluster.namespaces = std::mem::take(&mut relist);
                    cluster.locked_namespaces = std::mem::take(&mut relist_locked);
                    cluster.marked_namespaces = std::mem::take(&mut relist_marked);
                }
                sync.listed(&shared, first);
            }
            Ok(Event::Apply(ns)) => {
                let labels = labels_of(&ns.metadata);
                let locked = is_locked(&shared, "Namespace", &ns.metadata);
                let marked = is_marked(&ns.metadata);
                if let (Some(name), Ok(mut cluster)) = (ns.metadata.name, shared.cluster.write()) {
                    let cluster = &mut *cluster;
                    for (set, member) in
                        [(&mut cluster.locked_namespaces, locked), (&mut cluster.marked_namespaces, marked)]
                    {
                        if member {
                            set.insert(name.clone());
                        } else {
                            set.remove(&name);
                        }
                    }
                    cluster.set_namespace(&name, labels);
                }
            }
            Ok(Event::Delete(ns)) => {
                if let (Some(name), Ok(mut cluster)) = (ns.metadata.name, shared.cluster.write()) {
                    cluster.namespaces.remove(&name);
                    cluster.locked_namespaces.remove(&name);
                    cluster.marked_namespaces.remove(&name);
                }
            }
            Err(e) => tracing::warn!(error = %e, "namespace watch failed; retrying"),
        }
    }
}

fn is_marked(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.annotations.as_ref().is_some_and(|a| a.contains_key(paved_admission::locks::HOLDS_LOCKS))
}

/// How often the holds-locks markers are brought in line with the lock index.
const MARK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps `paved.dev/holds-locks` on exactly the Namespaces that hold a
/// locked object, so that the webhook configuration sends paved the deletes
/// of those Namespaces alone: while paved is down every other Namespace can
/// be deleted. Starts once every cache has synced (a marker is never taken
/// off on a partial view). Several replicas patch alike; a merge patch is
/// idempotent.
async fn markers(client: kube::Client, shared: Arc<Shared>) {
    let api: Api<Namespace> = Api::all(client);
    let mut tick = tokio::time::interval(MARK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !shared.synced.load(Ordering::Acquire) {
            continue;
        }
        // (namespace, whether it should carry the marker) for each that differs.
        let changes: Vec<(String, bool)> = match shared.cluster.read() {
            Ok(cluster) => {
                let holding: std::collections::BTreeSet<&str> = cluster.locks.namespaces().collect();
                let add = holding
                    .iter()
                    .filter(|ns| !cluster.marked_namespaces.contains(**ns))
                    .map(|ns| (ns.to_string(), true));
                let remove = cluster
                    .marked_namespaces
                    .iter()
                    .filter(|ns| !holding.contains(ns.as_str()))
                    .map(|ns| (ns.clone(), false));
                add.chain(remove).collect()
            }
            Err(_) => return,
        };
        for (namespace, mark) in changes {
            let value = if mark { json!("true") } else { serde_json::Value::Null };
            let patch = json!({"metadata": {"annotations": {paved_admission::locks::HOLDS_LOCKS: value}}});
            match api.patch(&namespace, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await {
                // The namespace watch will see the change; until then, do not patch again.
                Ok(_) => {
                    if let Ok(mut cluster) = shared.cluster.write() {
                        if mark {
                            cluster.marked_namespaces.insert(namespace);
                        } else {
                            cluster.marked_namespaces.remove(&namespace);
                        }
                    }
                }
                Err(e) => tracing::warn!(%namespace, error = %e, "cannot mark whether the namespace holds locks"),
            }
        }
    }
}

/// Whether an object of `kind` is locked, by its annotation or by the
/// configuration's protect rules (a Namespace by its own name).
fn is_locked(shared: &Shared, kind: &str, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    let lock = meta.annotations.as_ref().and_then(|a| a.get(paved_admission::locks::LOCK)).map(String::as_str);
    let namespace = if kind == "Namespace" { &meta.name } else { &meta.namespace };
    let m = Meta {
        kind,
        namespace: namespace.as_deref().unwrap_or(""),
        labels: meta.labels.as_ref().map_or(Labels::None, Labels::Map),
        lock,
    };
    shared.admission.load().protection().lock_of(&m).is_some()
}

/// Watches one lockable kind. A configuration reload restarts the watch, so
/// that a changed `locks.protect` is applied to every object again.
async fn locks(client: kube::Client, shared: Arc<Shared>, sync: Arc<Sync>, resource: &'static Resource) {
    let gvk = GroupVersionKind::gvk(resource.group, resource.version, resource.kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, resource.resource);
    let mut reloads = shared.reloads.subscribe();
    let mut first = true;
    loop {
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &ar);
        let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
        let mut relist: Vec<(String, String)> = Vec::new();
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                changed = reloads.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
            };
            let Some(event) = event else { return };
            match event {
                Ok(Event::Init) => relist.clear(),
                Ok(Event::InitApply(obj)) => {
                    if is_locked(&shared, resource.kind, &obj.metadata)
                        && let (Some(ns), Some(name)) = (obj.metadata.namespace, obj.metadata.name)
                    {
                        relist.push((ns, name));
                    }
                }
                Ok(Event::InitDone) => {
                    if let Ok(mut cluster) = shared.cluster.write() {
                        cluster.locks.replace_resource(resource.resource, std::mem::take(&mut relist));
                        cluster.unlisted.remove(resource.kind);
                    }
                    sync.listed(&shared, &mut first);
                }
                Ok(Event::Apply(obj)) => {
                    let locked = is_locked(&shared, resource.kind, &obj.metadata);
                    set(&shared, resource, &obj.metadata, locked);
                }
                Ok(Event::Delete(obj)) => set(&shared, resource, &obj.metadata, false),
                // A kind this cluster does not serve, or paved may not list, must not
                // keep the webhook from ever becoming ready: count it as listed (empty).
                Err(e) if first && unlistable(&e) => {
                    tracing::warn!(resource = resource.resource, error = %e, "cannot list this kind; a lock on one is refused");
                    if let Ok(mut cluster) = shared.cluster.write() {
                        cluster.unlisted.insert(resource.kind);
                    }
                    sync.listed(&shared, &mut first);
                }
                Err(e) => tracing::warn!(resource = resource.resource, error = %e, "lock watch failed; retrying"),
            }
        }
        tracing::info!(resource = resource.resource, "configuration changed; relisting locked objects");
    }
}

fn set(
    shared: &Shared,
    resource: &Resource,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    locked: bool,
) {
    if let (Some(ns), Some(name), Ok(mut cluster)) = (&meta.namespace, &meta.name, shared.cluster.write()) {
        cluster.locks.set(ns, &format!("{}/{name}", resource.resource), locked);
    }
}

/// 403 or 404 on the first list: RBAC or the cluster says no, retrying will not help soon.
fn unlistable(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.code == 403 || status.code == 404)
}

/// How often the inventory snapshot is rebuilt while objects change: a burst
/// of events costs one rebuild (and one reload of the data into regorus).
const INVENTORY_REBUILD_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Keeps `data.inventory` current: watches the kinds the loaded templates
/// declare (found through discovery) and swaps in a new snapshot after
/// changes. A reload restarts it with the new kinds. A kind the cluster does
/// not serve, or paved may not list, is logged and left empty.
async fn inventory(client: kube::Client, shared: Arc<Shared>, sync: Arc<Sync>) {
    let mut reloads = shared.reloads.subscribe();
    let mut first = true;
    loop {
        let plan = match shared.inventory.read() {
            Ok(plan) => plan.clone(),
            Err(_) => return,
        };
        let stop = follow_inventory(&client, &shared, &sync, &mut first, &plan, &mut reloads).await;
        if stop {
            return;
        }
        tracing::info!("configuration changed; relisting the inventory");
    }
}

/// One generation of the inventory watch; returns true when the server is
/// going away, false on a reload.
async fn follow_inventory(
    client: &kube::Client,
    shared: &Shared,
    sync: &Sync,
    first: &mut bool,
    plan: &crate::InventoryPlan,
    reloads: &mut tokio::sync::watch::Receiver<u64>,
) -> bool {
    let mut synced: Vec<Synced> = Vec::new();
    let mut streams = Vec::new();
    for (i, kind) in plan.kinds.iter().enumerate() {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let listed = match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((resource, _)) => {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
                let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
                streams.push(events.map(move |event| (i, event)).boxed());
                false
            }
            Err(e) => {
                tracing::warn!(kind = %kind.kind, api_version = %kind.api_version(), error = %e,
                    "cannot find this kind in the cluster; templates reading it see none");
                true
            }
        };
        synced.push(Synced { kind, objects: HashMap::new(), relist: HashMap::new(), listed });
    }
    let mut events = futures_util::stream::select_all(streams);
    let mut dirty = plan.kinds.is_empty();
    // A rebuild is due at once for the first full listing, then at most once per tick.
    let mut due = true;
    let mut tick = tokio::time::interval(INVENTORY_REBUILD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if dirty && due && synced.iter().all(|s| s.listed) {
            // The cluster's objects, and the `--inventory` objects beside them.
            let objects: Vec<serde_json::Value> = synced
                .iter()
                .flat_map(|s| s.objects.values().cloned())
                .chain(shared.options.inventory.iter().cloned())
                .collect();
            let count = objects.len();
            plan.inventory.set(Arc::new(paved_gatekeeper::suite::Inventory::new(objects)));
            (dirty, due) = (false, false);
            if *first {
                tracing::info!(objects = count, kinds = plan.kinds.len(), "inventory synced");
            }
            sync.listed(shared, first);
        }
        tokio::select! {
            event = events.next(), if !events.is_empty() => {
                let Some((i, event)) = event else { return true };
                if let Some(kind) = synced.get_mut(i) {
                    dirty |= kind.apply(event);
                }
            }
            _ = tick.tick(), if dirty => due = true,
            changed = reloads.changed() => return changed.is_err(),
        }
    }
}

/// One synced kind: its objects by (namespace, name), the listing in
/// progress, and whether it has been listed once.
struct Synced<'a> {
    kind: &'a paved_gatekeeper::template::SyncKind,
    objects: HashMap<(String, String), serde_json::Value>,
    relist: HashMap<(String, String), serde_json::Value>,
    listed: bool,
}

impl Synced<'_> {
    /// Applies one watch event; true when the objects changed.
    fn apply(&mut self, event: Result<Event<DynamicObject>, watcher::Error>) -> bool {
        let kind = self.kind;
        match event {
            Ok(Event::Init) => self.relist.clear(),
            Ok(Event::InitApply(obj)) => {
                if let Some((key, value)) = inventory_entry(kind, obj) {
                    self.relist.insert(key, value);
                }
            }
            Ok(Event::InitDone) => {
                self.objects = std::mem::take(&mut self.relist);
                self.listed = true;
                return true;
            }
            Ok(Event::Apply(obj)) => {
                if let Some((key, value)) = inventory_entry(kind, obj) {
                    self.objects.insert(key, value);
                    return true;
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(key) = key_of(&obj) {
                    return self.objects.remove(&key).is_some();
                }
            }
            Err(e) if !self.listed && unlistable(&e) => {
                tracing::warn!(kind = %kind.kind, error = %e, "cannot list this kind; templates reading it see none");
                self.listed = true;
                return true;
            }
            Err(e) => tracing::warn!(kind = %kind.kind, error = %e, "inventory watch failed; retrying"),
        }
        false
    }
}

fn key_of(obj: &DynamicObject) -> Option<(String, String)> {
    Some((obj.metadata.namespace.clone().unwrap_or_default(), obj.metadata.name.clone()?))
}

/// An object as `data.inventory` holds it: with its `apiVersion` and `kind`
/// (list items come without them) and without `managedFields`, which no
/// policy reads and which is often half an object's size.
fn inventory_entry(
    kind: &paved_gatekeeper::template::SyncKind,
    obj: DynamicObject,
) -> Option<((String, String), serde_json::Value)> {
    let key = key_of(&obj)?;
    let mut value = serde_json::to_value(&obj).ok()?;
    let map = value.as_object_mut()?;
    map.insert("apiVersion".into(), serde_json::Value::String(kind.api_version()));
    map.insert("kind".into(), serde_json::Value::String(kind.kind.clone()));
    if let Some(meta) = map.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        meta.remove("managedFields");
    }
    Some((key, value))
}
