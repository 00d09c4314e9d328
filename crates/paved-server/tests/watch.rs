//! The watches that feed admission, against a mock API server answering with
//! responses in the API server's own shape (as kube-rs tests its watchers).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Request, Response};
use paved_admission::review::AdmissionReview;
use paved_core::config::Config;
use paved_server::{Options, Shared, compile};
use serde_json::json;

fn recorded(name: &str) -> Option<Vec<u8>> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recorded").join(name)).ok()
}

#[derive(Default)]
struct MockApiServer {
    /// (path, query, accept) of every request.
    requests: Mutex<Vec<(String, String, String)>>,
    /// The open watch stream of each path.
    watches: Mutex<HashMap<String, Sender<Bytes, Infallible>>>,
    /// Paths answered 403 Forbidden, as RBAC would.
    forbidden: Vec<String>,
}

impl MockApiServer {
    fn answer(&self, request: &Request<kube::client::Body>) -> Response<BoxBody<Bytes, Infallible>> {
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let accept = request.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        self.requests.lock().unwrap().push((path.clone(), query.clone(), accept));
        let response = Response::builder().header("content-type", "application/json");
        if self.forbidden.contains(&path) {
            let status: &'static str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ingresses.networking.k8s.io is forbidden: User \"system:serviceaccount:paved-system:paved\" cannot list resource \"ingresses\" in API group \"networking.k8s.io\" at the cluster scope","reason":"Forbidden","details":{"group":"networking.k8s.io","kind":"ingresses"},"code":403}"#;
            return response.status(403).body(Full::new(Bytes::from_static(status.as_bytes())).boxed()).unwrap();
        }
        if query.split('&').any(|p| p == "watch=true") {
            let (tx, body) = Channel::<Bytes, Infallible>::new(16);
            self.watches.lock().unwrap().insert(path, tx);
            return response.body(body.boxed()).unwrap();
        }
        let resource = path.rsplit('/').next().unwrap_or("");
        let body = recorded(&format!("{resource}.list.json")).unwrap_or_else(|| {
            br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"48211"},"items":[]}"#.to_vec()
        });
        response.body(Full::new(Bytes::from(body)).boxed()).unwrap()
    }

    /// Sends the recorded watch events of `resource` on its open stream.
    fn replay(&self, path: &str, file: &str) {
        let events = recorded(file).unwrap();
        let mut watches = self.watches.lock().unwrap();
        let tx = watches.get_mut(path).unwrap_or_else(|| panic!("no watch open on {path}"));
        for line in events.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut line = line.to_vec();
            line.push(b'\n');
            tx.try_send(Frame::data(Bytes::from(line))).map_err(|_| "watch buffer full").unwrap();
        }
    }

    fn lists_of(&self, path: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|(p, q, _)| p == path && !q.contains("watch=true")).count()
    }
}

fn client(mock: &Arc<MockApiServer>) -> kube::Client {
    let mock = Arc::clone(mock);
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let response = mock.answer(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    kube::Client::new(service, "default")
}

fn config(yaml: &str) -> Config {
    serde_saphyr::from_str(yaml).unwrap()
}

fn shared(yaml: &str) -> Arc<Shared> {
    let options = Options::new("unused.crt".into(), "unused.key".into());
    let admission = compile(config(yaml), &options).unwrap();
    Arc::new(Shared::new(options, admission))
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn locked_in(shared: &Shared, ns: &str) -> Vec<String> {
    shared.cluster.read().unwrap().locks.locked_in(ns, 10).0
}

/// Watches running against the mock, stopped when dropped.
struct Watching(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Watching {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts the watches with a configuration and waits until they have listed everything.
async fn synced(mock: &Arc<MockApiServer>, yaml: &str) -> (Arc<Shared>, Watching) {
    let shared = shared(yaml);
    assert!(!shared.synced.load(Ordering::Acquire));
    let watching = Watching(paved_server::watch::spawn(client(mock), &shared));
    eventually("caches synced", || shared.synced.load(Ordering::Acquire)).await;
    (shared, watching)
}

const PROTECT_PROD: &str = "locks:\n  protect:\n  - {kinds: [PersistentVolumeClaim], namespaces: [\"prod-*\"]}\n";

#[tokio::test]
async fn watches_sync_then_follow_changes() {
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, PROTECT_PROD).await;

    {
        let cluster = shared.cluster.read().unwrap();
        let payments = cluster.labels_of("payments").unwrap();
        assert_eq!((payments.profile.as_deref(), payments.version.as_deref()), (Some("pss-restricted"), Some("v1.29")));
        assert_eq!(cluster.labels_of("lab").unwrap().mode.as_deref(), Some("warn"));
        assert!(cluster.labels_of("default").is_none(), "namespaces without paved labels are not kept");
    }
    // ledger-0 by its annotation, orders by the protect rule; scratch and cache (lock: off) are free.
    assert_eq!(locked_in(&shared, "payments"), ["persistentvolumeclaims/ledger-0"]);
    assert_eq!(locked_in(&shared, "prod-eu"), ["persistentvolumeclaims/orders"]);

    // Every request was metadata-only.
    for (path, query, accept) in mock.requests.lock().unwrap().iter() {
        assert!(accept.contains("as=PartialObjectMetadata"), "{path}?{query} asked for {accept}");
    }
    let paths: Vec<String> = mock.requests.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    for want in [
        "/api/v1/namespaces",
        "/api/v1/persistentvolumeclaims",
        "/apis/apps/v1/deployments",
        "/apis/networking.k8s.io/v1/ingresses",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} never listed: {paths:?}");
    }

    eventually("watches open", || mock.watches.lock().unwrap().contains_key("/api/v1/persistentvolumeclaims")).await;
    mock.replay("/api/v1/namespaces", "namespaces.watch.jsonl");
    mock.replay("/api/v1/persistentvolumeclaims", "persistentvolumeclaims.watch.jsonl");
    eventually("namespace events applied", || {
        let cluster = shared.cluster.read().unwrap();
        cluster.labels_of("audit-only").is_some() && cluster.labels_of("lab").is_none()
    })
    .await;
    // audit-log was locked, ledger-0 unlocked, orders deleted.
    eventually("lock events applied", || {
        locked_in(&shared, "payments") == ["persistentvolumeclaims/audit-log"]
            && locked_in(&shared, "prod-eu").is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_new_protect_rule_relists_the_lockable_kinds() {
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, PROTECT_PROD).await;
    assert_eq!(mock.lists_of("/api/v1/persistentvolumeclaims"), 1);
    let protect_payments = "locks:\n  protect:\n  - {kinds: [PersistentVolumeClaim], namespaces: [payments]}\n";
    shared.admission.store(Arc::new(compile(config(protect_payments), &shared.options).unwrap()));
    shared.reloads.send_modify(|g| *g += 1);
    eventually("relisted", || mock.lists_of("/api/v1/persistentvolumeclaims") == 2).await;
    eventually("index rebuilt under the new rule", || {
        locked_in(&shared, "payments") == ["persistentvolumeclaims/ledger-0", "persistentvolumeclaims/scratch"]
            && locked_in(&shared, "prod-eu").is_empty()
    })
    .await;
}

#[tokio::test]
async fn admission_uses_what_the_watches_found() {
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, PROTECT_PROD).await;
    let review = |request: serde_json::Value| json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let delete_ns = serde_json::to_vec(&review(json!({"uid": "1", "kind": {"group": "", "version": "v1", "kind": "Namespace"},
        "resource": {"group": "", "version": "v1", "resource": "namespaces"}, "name": "payments", "namespace": "payments",
        "operation": "DELETE", "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "oldObject": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}})))
    .unwrap();
    let root_pod =
        serde_json::to_vec(&review(json!({"uid": "2", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "p", "namespace": "payments",
        "operation": "CREATE", "userInfo": {"username": "dev", "groups": []},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "payments"},
            "spec": {"containers": [{"name": "c", "image": "registry.example.com/c:1"}]}}})))
        .unwrap();
    let (_, delete_ns) = AdmissionReview::decode(&delete_ns).unwrap();
    let (_, root_pod) = AdmissionReview::decode(&root_pod).unwrap();
    let now = paved_core::Timestamp::now();
    let (delete, pod) = {
        let cluster = shared.cluster.read().unwrap();
        let admission = shared.admission.load();
        (admission.review(&delete_ns, &cluster, now), admission.review(&root_pod, &cluster, now))
    };
    assert!(!delete.allowed());
    assert!(
        delete.denials[0].contains("it holds locked objects: persistentvolumeclaims/ledger-0"),
        "{:?}",
        delete.denials
    );
    assert!(!pod.allowed(), "payments is labelled pss-restricted");
    assert!(pod.denials.iter().any(|d| d.starts_with("[pss-restricted/run-as-non-root]")), "{:?}", pod.denials);
}

#[tokio::test]
async fn a_kind_paved_may_not_list_does_not_keep_it_unready() {
    let mock = Arc::new(MockApiServer {
        forbidden: vec!["/apis/networking.k8s.io/v1/ingresses".into()],
        ..MockApiServer::default()
    });
    let (shared, _watching) = synced(&mock, PROTECT_PROD).await;
    assert_eq!(
        locked_in(&shared, "payments"),
        ["persistentvolumeclaims/ledger-0"],
        "the other kinds are still indexed"
    );
}
