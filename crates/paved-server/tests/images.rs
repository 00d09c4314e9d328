//! Image contents at admission: answered from memory at once, analysed in
//! the background against a real registry (Debian's docker-registry), and
//! shared between replicas through `ImageAnalysis` objects, here served by
//! a mock API server answering in the API server's shape.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Request, Response};
use paved_admission::cluster::ClusterState;
use paved_admission::review::AdmissionReview;
use paved_core::image::{ImageFacts, ImageLookup};
use paved_image::build::TarBuilder;
use paved_image::registry::Registry;
use paved_image::test_registry::TestRegistry;
use paved_server::images::{Analyses, ImageOptions};
use paved_server::metrics::ResultLabels;
use paved_server::{Options, compile};
use serde_json::json;

const LEGACY: &str = "sha256:c49fea7425fa7f8699897a97c159c6690267d9003bb78c53fafa8fc15c325d84";
const STALE: &str = "sha256:a03f2386ae06b21109577020844df367857b72c2fcce384c1896fed98a89c82b";
const MISNAMED: &str = "sha256:3b74f1061e7386d784e826ea5ce1f39f57552904194621f21c4d1d6cc777604e";
const LATER: &str = "sha256:1d9283d848ea941ace1fe0d2378ef8b70056a0d4d1648b95a322d90163e78285";
const PATH: &str = "/apis/paved.dev/v1alpha1/imageanalyses";

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recorded").join(name)).unwrap()
}

/// The API server's side of `ImageAnalysis` objects: the recorded list, a
/// watch, and server-side apply (recorded, echoed to the watch as the API
/// server does).
#[derive(Default)]
struct MockApiServer {
    watch: Mutex<Option<Sender<Bytes, Infallible>>>,
    /// (path and query, body) of every PATCH.
    applied: Mutex<Vec<(String, serde_json::Value)>>,
}

impl MockApiServer {
    fn answer(&self, method: &hyper::Method, uri: &hyper::Uri, body: &[u8]) -> Response<BoxBody<Bytes, Infallible>> {
        let response = Response::builder().header("content-type", "application/json");
        let query = uri.query().unwrap_or("");
        if method == hyper::Method::PATCH {
            let mut obj: serde_json::Value = serde_json::from_slice(body).unwrap();
            self.applied.lock().unwrap().push((format!("{}?{query}", uri.path()), obj.clone()));
            obj["metadata"]["resourceVersion"] = json!("51300");
            self.send(&json!({"type": "ADDED", "object": obj}));
            return response.body(Full::new(Bytes::from(obj.to_string())).boxed()).unwrap();
        }
        assert_eq!(uri.path(), PATH, "only ImageAnalysis objects are asked for");
        if query.split('&').any(|p| p == "watch=true") {
            let (tx, body) = Channel::<Bytes, Infallible>::new(16);
            *self.watch.lock().unwrap() = Some(tx);
            return response.body(body.boxed()).unwrap();
        }
        response.body(Full::new(Bytes::from(recorded("imageanalyses.list.json"))).boxed()).unwrap()
    }

    fn send(&self, event: &serde_json::Value) {
        if let Some(tx) = self.watch.lock().unwrap().as_mut() {
            let line = format!("{event}\n");
            tx.try_send(Frame::data(Bytes::from(line))).map_err(|_| "watch buffer full").unwrap();
        }
    }

    fn replay(&self, file: &str) {
        for line in recorded(file).split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.send(&serde_json::from_slice(line).unwrap());
        }
    }
}

fn client(mock: &Arc<MockApiServer>) -> kube::Client {
    let mock = Arc::clone(mock);
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let mock = Arc::clone(&mock);
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            Ok::<_, Infallible>(mock.answer(&parts.method, &parts.uri, &body))
        }
    });
    kube::Client::new(service, "default")
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn shells(analyses: &Analyses, image: &str) -> Option<Vec<String>> {
    match analyses.lookup(image) {
        ImageLookup::Known(contents) => Some(contents.shells.clone()),
        _ => None,
    }
}

fn count(analyses: &Analyses, result: &'static str) -> u64 {
    analyses.counts.get_or_create(&ResultLabels { result }).get()
}

/// An admission whose namespaces run the supply-chain profile with shells
/// denied (and tags allowed, to keep the answers short).
fn admission(analyses: &Arc<Analyses>) -> paved_admission::Admission {
    let mut options = Options::new("unused.crt".into(), "unused.key".into());
    options.images = Some(Arc::clone(analyses));
    let config = serde_saphyr::from_str(
        "profile: supply-chain\npolicies:\n  supply-chain/no-shell: deny\n  supply-chain/pinned-digest: off\n",
    )
    .unwrap();
    compile(config, &options).unwrap()
}

/// (denials, warnings) for the creation of a pod running `image`.
fn review(admission: &paved_admission::Admission, image: &str) -> (Vec<String>, Vec<String>) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": image}]}});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "7d3c3c4e-0c3f-4a52-9a49-3f0e0c2d9b11", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": "shop",
        "operation": "CREATE", "userInfo": {"username": "dev", "groups": []}, "object": pod}});
    let body = serde_json::to_vec(&review).unwrap();
    let (_, request) = AdmissionReview::decode(&body).unwrap();
    let verdict = admission.review(&request, &ClusterState::default(), paved_core::Timestamp::now());
    (verdict.denials, verdict.warnings)
}

#[tokio::test]
async fn analyses_shared_through_the_cluster_answer_without_a_registry() {
    let mock = Arc::new(MockApiServer::default());
    // Offline: only what the cluster shares can be known.
    let analyses = Arc::new(Analyses::new(ImageOptions::default(), false));
    let _tasks = analyses.spawn(None, Some(client(&mock)));
    let legacy = format!("registry.example/shop/legacy:3.1@{LEGACY}");
    eventually("the listed analyses are read", || shells(&analyses, &legacy).is_some()).await;
    assert_eq!(shells(&analyses, &legacy).unwrap(), ["/bin/sh -> /bin/busybox", "/bin/ash -> /bin/busybox"]);
    // An older analysis version, and an object whose name is not its digest, are not trusted.
    assert_eq!(analyses.lookup(&format!("registry.example/stale@{STALE}")), ImageLookup::Unknown);
    assert_eq!(analyses.lookup(&format!("registry.example/misnamed@{MISNAMED}")), ImageLookup::Unknown);
    // Nothing is queued offline: a tag nobody resolved stays unknown.
    assert_eq!(analyses.lookup("registry.example/shop/legacy:3.1"), ImageLookup::Unknown);

    let admission = admission(&analyses);
    let (denials, _) = review(&admission, &legacy);
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert!(
        denials[0].contains("[supply-chain/no-shell]") && denials[0].contains("carries a shell: /bin/sh"),
        "{denials:?}"
    );

    // Another replica analyses an image; an admin deletes an analysis to have it redone.
    eventually("the watch is open", || mock.watch.lock().unwrap().is_some()).await;
    mock.replay("imageanalyses.watch.jsonl");
    let later = format!("registry.example/tools@{LATER}");
    eventually("the new analysis is read", || shells(&analyses, &later).is_some()).await;
    assert_eq!(shells(&analyses, &later).unwrap(), Vec::<String>::new());
    eventually("the deleted analysis is forgotten", || shells(&analyses, &legacy).is_none()).await;
    assert!(review(&admission, &legacy).0.is_empty(), "not known any more, so not refused");
    assert!(mock.applied.lock().unwrap().is_empty(), "nothing analysed, nothing written");
}

fn layer_with_shell() -> Vec<u8> {
    TarBuilder::new()
        .file("bin/bash", 0o755, b"\x7fELF")
        .symlink("bin/sh", "bash")
        .file("usr/bin/su", 0o4755, b"\x7fELF")
        .gzip()
}

/// For the tests with a registry: its pushes and the analyses run side by side.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn layer_without_shell() -> Vec<u8> {
    TarBuilder::new().file("app/server", 0o755, b"\x7fELF").zstd()
}

#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn unknown_images_are_admitted_with_a_warning_and_analysed_in_the_background() {
    let registry = TestRegistry::start(None);
    runtime().block_on(async {
        let digest = registry.push("shop/app:1", &[layer_with_shell()], "linux", "amd64").await;
        registry.push("shop/clean:1", &[layer_without_shell()], "linux", "amd64").await;
        let mock = Arc::new(MockApiServer::default());
        let analyses = Arc::new(Analyses::new(ImageOptions { workers: 1, queue: 8, ..ImageOptions::default() }, true));
        let _tasks = analyses.spawn(Some(Registry::new(registry.options())), Some(client(&mock)));
        let admission = admission(&analyses);
        let app = format!("{}/shop/app:1", registry.host);
        let clean = format!("{}/shop/clean:1", registry.host);
        let missing = format!("{}/shop/missing:1", registry.host);

        // The first admission does not wait: allowed, with a warning.
        let (denials, warnings) = review(&admission, &app);
        assert!(denials.is_empty(), "{denials:?}");
        assert!(
            warnings.iter().any(|w| w.starts_with("[supply-chain/no-shell]") && w.contains("is being analysed")),
            "{warnings:?}"
        );
        review(&admission, &clean);
        review(&admission, &missing);

        eventually("the image is analysed", || !review(&admission, &app).0.is_empty()).await;
        let (denials, _) = review(&admission, &app);
        assert!(denials[0].contains("carries a shell: /bin/bash, /bin/sh -> /bin/bash"), "{denials:?}");
        eventually("the clean image is analysed", || shells(&analyses, &clean).is_some()).await;
        assert!(review(&admission, &clean) == (vec![], vec![]), "nothing to say about a clean image");
        eventually("the missing image failed", || matches!(analyses.lookup(&missing), ImageLookup::Failed(_))).await;
        let (denials, warnings) = review(&admission, &missing);
        assert!(denials.is_empty());
        assert!(
            warnings.iter().any(|w| w.contains("could not be analysed") && w.contains("manifest unknown")),
            "{warnings:?}"
        );
        // A failure is not retried at every admission.
        assert_eq!((count(&analyses, "analysed"), count(&analyses, "failed")), (2, 1));

        // What was analysed is shared with the other replicas, by server-side apply.
        let applied = mock.applied.lock().unwrap().clone();
        let (target, obj) = applied
            .iter()
            .find(|(_, obj)| obj["spec"]["digest"] == json!(digest))
            .expect("the analysis of shop/app:1 was written");
        assert_eq!(target, &format!("{PATH}/{}?&force=true&fieldManager=paved", digest.replace(':', "-")));
        assert_eq!(obj["kind"], "ImageAnalysis");
        assert_eq!(obj["spec"]["shells"], json!(["/bin/bash", "/bin/sh -> /bin/bash"]));
        assert_eq!(obj["spec"]["setuid"], json!(["/usr/bin/su"]));
        assert_eq!(obj["spec"]["analysisVersion"], json!(paved_image::ANALYSIS_VERSION));
        assert_eq!(applied.len(), 2, "one object per image analysed");
    });
}

#[tokio::test]
async fn a_full_queue_drops_rather_than_waits() {
    // A registry that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap();
    let analyses = Arc::new(Analyses::new(ImageOptions { workers: 1, queue: 2, ..ImageOptions::default() }, true));
    let _tasks = analyses.spawn(Some(Registry::new(paved_image::registry::Options::default())), None);
    let images: Vec<String> = (0..10).map(|i| format!("{host}/app{i}:1")).collect();
    let mut answers = HashMap::new();
    for image in &images {
        answers.insert(image.clone(), analyses.lookup(image));
    }
    assert!(answers.values().all(|a| *a == ImageLookup::Pending), "{answers:?}");
    // At most: one analysing, one held by the dispatcher, two in the queue.
    let dropped = count(&analyses, "dropped");
    assert!((6..=8).contains(&dropped), "{dropped} dropped");
    // Asking again for a queued image queues nothing more.
    tokio::task::yield_now().await;
    let before = count(&analyses, "dropped");
    assert_eq!(analyses.lookup(&images[0]), ImageLookup::Pending);
    assert_eq!(count(&analyses, "dropped"), before, "already queued, not asked again");
}

/// Multi-platform images are usually pinned by their index's digest; the
/// analysis is of one platform's manifest, under that manifest's digest.
#[test]
#[ignore = "needs docker-registry; .ci/run installs it and runs the ignored tests"]
fn an_image_pinned_by_its_index_digest_is_known_once_analysed() {
    let registry = TestRegistry::start(None);
    runtime().block_on(async {
        let amd = registry.push("multi:amd64", &[layer_with_shell()], "linux", "amd64").await;
        let arm = registry.push("multi:arm64", &[layer_without_shell()], "linux", "arm64").await;
        let index = registry.push_index("multi:1", &[(&arm, "linux", "arm64"), (&amd, "linux", "amd64")]).await;
        let analyses = Arc::new(Analyses::new(ImageOptions::default(), true));
        let _tasks = analyses.spawn(Some(Registry::new(registry.options())), None);
        let image = format!("{}/multi:1@{index}", registry.host);
        assert_eq!(analyses.lookup(&image), ImageLookup::Pending);
        eventually("the pinned index is known", || shells(&analyses, &image).is_some()).await;
        assert_eq!(shells(&analyses, &image).unwrap(), ["/bin/bash", "/bin/sh -> /bin/bash"], "linux/amd64's");
        assert_eq!(count(&analyses, "analysed"), 1, "analysed once, not again at every admission");
    });
}
