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
use paved_server::{Options, Shared, compile, compile_with_inventory};
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
    /// How long each answer takes, as a loaded API server's would.
    latency: Duration,
    /// (path, body) of every PATCH.
    patches: Mutex<Vec<(String, String)>>,
}

impl MockApiServer {
    fn answer(&self, request: &Request<kube::client::Body>) -> Response<BoxBody<Bytes, Infallible>> {
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let accept = request.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        self.requests.lock().unwrap().push((path.clone(), query.clone(), accept.clone()));
        let response = Response::builder().header("content-type", "application/json");
        if self.forbidden.contains(&path) {
            let status: &'static str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ingresses.networking.k8s.io is forbidden: User \"system:serviceaccount:paved-system:paved\" cannot list resource \"ingresses\" in API group \"networking.k8s.io\" at the cluster scope","reason":"Forbidden","details":{"group":"networking.k8s.io","kind":"ingresses"},"code":403}"#;
            return response.status(403).body(Full::new(Bytes::from_static(status.as_bytes())).boxed()).unwrap();
        }
        // Discovery, answered with the API server's recorded documents; a
        // group version it does not serve is a 404.
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if matches!(segments.as_slice(), ["api", "v1"] | ["apis", _, _]) {
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../paved-cluster/fixtures")
                .join(format!("{}.json", segments.join("-")));
            return match std::fs::read(file) {
                Ok(body) => response.body(Full::new(Bytes::from(body)).boxed()).unwrap(),
                Err(_) => response.status(404).body(Full::new(Bytes::from_static(b"{}")).boxed()).unwrap(),
            };
        }
        // Metadata-only requests and whole-object ones (the inventory) are told apart.
        let whole = !accept.contains("as=PartialObjectMetadata");
        if query.split('&').any(|p| p == "watch=true") {
            let (tx, body) = Channel::<Bytes, Infallible>::new(16);
            let key = if whole { format!("{path}#objects") } else { path };
            self.watches.lock().unwrap().insert(key, tx);
            return response.body(body.boxed()).unwrap();
        }
        let resource = path.rsplit('/').next().unwrap_or("");
        let file = if whole { format!("{resource}.objects.list.json") } else { format!("{resource}.list.json") };
        let body = recorded(&file).unwrap_or_else(|| {
            br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"48211"},"items":[]}"#.to_vec()
        });
        response.body(Full::new(Bytes::from(body)).boxed()).unwrap()
    }

    /// Sends the recorded watch events of `resource` on its open stream
    /// (`<path>#objects` for a whole-object watch).
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
        let mock = Arc::clone(&mock);
        async move {
            tokio::time::sleep(mock.latency).await;
            if request.method() == hyper::Method::PATCH {
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                mock.patches.lock().unwrap().push((path.clone(), String::from_utf8_lossy(&body).into_owned()));
                let name = path.rsplit('/').next().unwrap_or("").to_owned();
                let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
                let response = Response::builder().header("content-type", "application/json");
                return Ok::<_, Infallible>(response.body(Full::new(Bytes::from(object.to_string())).boxed()).unwrap());
            }
            Ok::<_, Infallible>(mock.answer(&request))
        }
    });
    kube::Client::new(service, "default")
}

fn config(yaml: &str) -> Config {
    serde_saphyr::from_str(yaml).unwrap()
}

fn shared(yaml: &str) -> Arc<Shared> {
    let options = Options::new("unused.crt".into(), "unused.key".into());
    let (admission, plan) = compile_with_inventory(config(yaml), &options, None).unwrap();
    let shared = Shared::new(options, admission);
    *shared.inventory.write().unwrap() = plan;
    Arc::new(shared)
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

/// An AdmissionReview of the creation of an Ingress, as the API server sends it.
fn ingress_review(uid: &str, name: &str, host: &str) -> Vec<u8> {
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "nginx", "port": {"number": 80}}}}]}}]}});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
        "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
        "name": name, "namespace": "default", "operation": "CREATE",
        "userInfo": {"username": "dev", "groups": []}, "object": ingress}});
    serde_json::to_vec(&review).unwrap()
}

fn denials(shared: &Shared, review: &[u8]) -> Vec<String> {
    let (_, request) = AdmissionReview::decode(review).unwrap();
    let request = &request;
    let cluster = shared.cluster.read().unwrap();
    shared.admission.load().review(request, &cluster, paved_core::Timestamp::now()).denials
}

/// The library's unique-ingress-host template reads other Ingresses through
/// `data.inventory`; serve fills it from a watch of the kinds the template's
/// `requires-sync-data` names, and follows changes.
#[tokio::test]
async fn gatekeeper_inventory_follows_the_kinds_templates_sync() {
    let library = paved_corpus::path("gatekeeper-library/general/uniqueingresshost");
    let yaml = format!("policy-paths: [{:?}]\n", library.display().to_string());
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, &yaml).await;
    let kinds: Vec<String> =
        shared.inventory.read().unwrap().kinds.iter().map(|k| format!("{}/{}", k.api_version(), k.kind)).collect();
    assert_eq!(
        kinds,
        ["extensions/v1beta1/Ingress", "networking.k8s.io/v1/Ingress", "networking.k8s.io/v1beta1/Ingress"]
    );

    // The served version was listed whole (not metadata-only); the others are not served and were skipped.
    let whole_lists: Vec<String> = mock
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, q, a)| {
            p.ends_with("/ingresses") && !q.contains("watch=true") && !a.contains("as=PartialObjectMetadata")
        })
        .map(|(p, _, _)| p.clone())
        .collect();
    assert_eq!(whole_lists, ["/apis/networking.k8s.io/v1/ingresses"]);
    let inventory = shared.inventory.read().unwrap().inventory.get();
    let listed =
        inventory.doc().pointer("/namespace/default/networking.k8s.io~1v1/Ingress/ingress-host-example").unwrap();
    assert!(listed.pointer("/metadata/managedFields").is_none(), "managedFields are dropped");

    // The same host as the listed Ingress is refused; another host is not.
    let duplicate = ingress_review("1", "ingress-host-disallowed", "example-host.example.com");
    let denied = denials(&shared, &duplicate);
    assert!(denied.iter().any(|d| d.contains("gatekeeper/k8suniqueingresshost/unique-ingress-host")), "{denied:?}");
    assert!(denials(&shared, &ingress_review("2", "fresh", "fresh.example.com")).is_empty());

    // The watch adds shop.example.com and deletes the listed Ingress.
    eventually("inventory watch open", || {
        mock.watches.lock().unwrap().contains_key("/apis/networking.k8s.io/v1/ingresses#objects")
    })
    .await;
    mock.replay("/apis/networking.k8s.io/v1/ingresses#objects", "ingresses.objects.watch.jsonl");
    eventually("inventory follows the watch", || {
        denials(&shared, &duplicate).is_empty()
            && !denials(&shared, &ingress_review("3", "shop2", "shop.example.com")).is_empty()
    })
    .await;
}

const REPLICA_LIMIT_VAP: &str = "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: replica-limit}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: object.spec.replicas <= int(params.data.max)
    messageExpression: \"'at most ' + params.data.max + ' replicas in ' + namespaceObject.metadata.name\"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: profiled-namespaces}
spec:
  policyName: replica-limit
  validationActions: [Deny]
  paramRef: {name: replica-limit, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchExpressions: [{key: paved.dev/profile, operator: Exists}]
";

fn deployment_review(uid: &str, namespace: &str, replicas: u32) -> Vec<u8> {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": namespace, "operation": "CREATE",
        "userInfo": {"username": "dev", "groups": []}, "object": deployment}});
    serde_json::to_vec(&review).unwrap()
}

/// A ValidatingAdmissionPolicy's params live in the cluster: serve watches
/// the `paramKind` (and Namespaces, which the binding selects by label and
/// the message reads), finds each object's params in its own namespace, as
/// the API server does, and follows changes to them.
#[tokio::test]
async fn vap_params_and_namespaces_come_from_the_cluster_and_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vap.yaml"), REPLICA_LIMIT_VAP).unwrap();
    let yaml = format!("policy-paths: [{:?}]\n", dir.path().display().to_string());
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, &yaml).await;
    let kinds: Vec<String> =
        shared.inventory.read().unwrap().kinds.iter().map(|k| format!("{}/{}", k.api_version(), k.kind)).collect();
    assert_eq!(kinds, ["v1/ConfigMap", "v1/Namespace"]);

    let vap = |denials: Vec<String>| -> Vec<String> {
        denials.into_iter().filter(|d| d.contains("vap/replica-limit/profiled-namespaces")).collect()
    };
    let denied = vap(denials(&shared, &deployment_review("1", "payments", 10)));
    assert_eq!(denied.len(), 1, "payments' own limit is 3");
    assert!(denied[0].contains("at most 3 replicas in payments"), "{denied:?}");
    assert!(vap(denials(&shared, &deployment_review("2", "payments", 2))).is_empty());
    // lab has a limit of 1 but no paved.dev/profile label: the binding does not select it.
    assert!(vap(denials(&shared, &deployment_review("3", "lab", 10))).is_empty());

    // The watch raises payments' limit to 20.
    eventually("configmap watch open", || mock.watches.lock().unwrap().contains_key("/api/v1/configmaps#objects"))
        .await;
    mock.replay("/api/v1/configmaps#objects", "configmaps.objects.watch.jsonl");
    eventually("params follow the watch", || vap(denials(&shared, &deployment_review("4", "payments", 10))).is_empty())
        .await;
    let denied = vap(denials(&shared, &deployment_review("5", "payments", 25)));
    assert!(denied.len() == 1 && denied[0].contains("at most 20"), "{denied:?}");
}

/// A Kyverno policy's `resource.Get` is answered from the cluster's state
/// as serve keeps it: the kind it reads is watched (whole objects, only
/// because a policy asks), never fetched while judging, and follows changes.
#[tokio::test]
async fn kyverno_resource_get_reads_the_synced_cluster_state() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("limit.yaml"),
        "apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: replica-limit}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  variables:
  - name: limit
    expression: int(resource.Get('v1', 'configmaps', object.metadata.namespace, 'replica-limit').data.max)
  validations:
  - expression: object.spec.replicas <= variables.limit
    messageExpression: \"'at most ' + string(variables.limit) + ' replicas'\"
",
    )
    .unwrap();
    let yaml = format!("policy-paths: [{:?}]\n", dir.path().display().to_string());
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, &yaml).await;
    let kinds: Vec<String> =
        shared.inventory.read().unwrap().kinds.iter().map(|k| format!("{}/{}", k.api_version(), k.kind)).collect();
    // And Kyverno's PolicyExceptions, which this cluster does not serve: it has none.
    assert_eq!(kinds, ["v1/ConfigMap", "kyverno.io/v2/PolicyException", "policies.kyverno.io/v1/PolicyException"]);
    let kyverno = |denials: Vec<String>| -> Vec<String> {
        denials.into_iter().filter(|d| d.contains("kyverno/replica-limit")).collect()
    };
    let denied = kyverno(denials(&shared, &deployment_review("1", "payments", 10)));
    assert!(denied.len() == 1 && denied[0].contains("at most 3 replicas"), "{denied:?}");
    assert!(kyverno(denials(&shared, &deployment_review("2", "payments", 3))).is_empty());

    eventually("configmap watch open", || mock.watches.lock().unwrap().contains_key("/api/v1/configmaps#objects"))
        .await;
    mock.replay("/api/v1/configmaps#objects", "configmaps.objects.watch.jsonl");
    eventually("the limit follows the watch", || {
        kyverno(denials(&shared, &deployment_review("3", "payments", 10))).is_empty()
    })
    .await;
    assert!(!kyverno(denials(&shared, &deployment_review("4", "payments", 25))).is_empty());
}

/// The start race: reviews sent from the moment the watches start, before
/// and after the caches sync, through the server's own routes. None may
/// allow deleting a namespace that holds a locked object: before the sync
/// the answer is 503 (the API server then applies the failure policy,
/// which for locks refuses), after it a refusal.
#[tokio::test]
async fn no_review_is_allowed_before_the_caches_have_synced() {
    use tower::ServiceExt;
    let mock = Arc::new(MockApiServer { latency: Duration::from_millis(30), ..MockApiServer::default() });
    let shared = shared(PROTECT_PROD);
    let router = paved_server::http::router(Arc::clone(&shared));
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "1",
        "kind": {"group": "", "version": "v1", "kind": "Namespace"},
        "resource": {"group": "", "version": "v1", "resource": "namespaces"}, "name": "payments", "namespace": "payments",
        "operation": "DELETE", "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "oldObject": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}}});
    let body = serde_json::to_vec(&review).unwrap();
    let ask = || {
        let request = Request::post("/validate/locks")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, bytes)
        }
    };
    let (status, _) = ask().await;
    assert_eq!(status, 503, "before any watch has listed");
    let _watching = Watching(paved_server::watch::spawn(client(&mock), &shared));
    let (mut before, mut after) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while after < 20 {
        assert!(Instant::now() < deadline, "caches never synced");
        // One thread runs this test: let the watches make progress between reviews.
        tokio::task::yield_now().await;
        let synced_before = shared.synced.load(Ordering::Acquire);
        let (status, bytes) = ask().await;
        if status == 503 {
            assert!(!synced_before, "503 after the caches synced");
            before += 1;
            continue;
        }
        assert_eq!(status, 200);
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(answer["response"]["allowed"], false, "allowed while racing the start: {answer}");
        after += 1;
    }
    assert!(before > 0, "the race was not observed: the caches synced before the first review");
}

/// Locked namespaces are known (a Secret's lock needs one), and kinds paved
/// may not list are marked outside the index.
#[tokio::test]
async fn locked_namespaces_and_unlisted_kinds_are_known() {
    let mock = Arc::new(MockApiServer {
        forbidden: vec!["/apis/networking.k8s.io/v1/ingresses".into()],
        ..MockApiServer::default()
    });
    let protect = "locks:\n  protect:\n  - {kinds: [Namespace], namespaces: [\"pay*\"]}\n";
    let (shared, _watching) = synced(&mock, protect).await;
    let cluster = shared.cluster.read().unwrap();
    assert!(cluster.locked_namespaces.contains("payments"), "{:?}", cluster.locked_namespaces);
    assert!(!cluster.locked_namespaces.contains("lab") && !cluster.locked_namespaces.contains("default"));
    assert!(cluster.unlisted.contains("Ingress") && !cluster.unlisted.contains("Deployment"), "{:?}", cluster.unlisted);
}

/// paved marks the Namespaces that hold locks (payments holds ledger-0), so
/// that only their deletes fail closed while paved is down; a marker on a
/// Namespace without locks comes off.
#[tokio::test]
async fn namespaces_holding_locks_are_marked_and_only_they() {
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, PROTECT_PROD).await;
    shared.cluster.write().unwrap().marked_namespaces.insert("lab".into());
    eventually("markers patched", || mock.patches.lock().unwrap().len() >= 3).await;
    let patches = mock.patches.lock().unwrap().clone();
    let body = |path: &str| patches.iter().find(|(p, _)| p == path).map(|(_, b)| b.clone());
    let mark = r#"{"metadata":{"annotations":{"paved.dev/holds-locks":"true"}}}"#;
    assert_eq!(body("/api/v1/namespaces/payments").as_deref(), Some(mark), "{patches:?}");
    assert_eq!(body("/api/v1/namespaces/prod-eu").as_deref(), Some(mark), "{patches:?}");
    let unmark = r#"{"metadata":{"annotations":{"paved.dev/holds-locks":null}}}"#;
    assert_eq!(body("/api/v1/namespaces/lab").as_deref(), Some(unmark), "{patches:?}");
    // Once marked, nothing is patched again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(mock.patches.lock().unwrap().len(), patches.len());
}

/// A protect rule that comes with a reload locks the Namespaces it names.
#[tokio::test]
async fn a_reload_relists_which_namespaces_are_locked() {
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, PROTECT_PROD).await;
    assert!(shared.cluster.read().unwrap().locked_namespaces.is_empty());
    let protect = "locks:\n  protect:\n  - {kinds: [Namespace], namespaces: [\"pay*\"]}\n";
    shared.admission.store(Arc::new(compile(config(protect), &shared.options).unwrap()));
    shared.reloads.send_modify(|g| *g += 1);
    eventually("payments locked", || shared.cluster.read().unwrap().locked_namespaces.contains("payments")).await;
    assert_eq!(mock.lists_of("/api/v1/namespaces"), 2);
}

/// Labelling a namespace with a stricter profile answers with warnings that
/// name the existing workloads it breaks, listed from the cluster, as Pod
/// Security Admission does; the label change itself is allowed.
#[tokio::test]
async fn a_stricter_profile_label_names_the_workloads_it_breaks() {
    use tower::ServiceExt;
    let mock = Arc::new(MockApiServer::default());
    let (shared, _watching) = synced(&mock, "exceptions:\n  authority: {groups: [platform-admins]}\n").await;
    shared.client.set(client(&mock)).ok();
    let review = json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "relabel",
        "kind": {"group": "", "version": "v1", "kind": "Namespace"},
        "resource": {"group": "", "version": "v1", "resource": "namespaces"}, "name": "payments", "namespace": "payments",
        "operation": "UPDATE", "userInfo": {"username": "root", "groups": ["platform-admins"]},
        "object": {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "payments", "labels": {"paved.dev/profile": "pss-baseline"}}},
        "oldObject": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}}});
    let request = Request::post("/validate/grants")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    let response = paved_server::http::router(Arc::clone(&shared)).oneshot(request).await.unwrap();
    let answer: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings: Vec<&str> =
        answer["response"]["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    assert_eq!(
        warnings,
        [
            "paved: 1 existing workloads in payments would be denied now; they keep running.",
            "paved: existing Deployment web breaks pss-baseline/privileged.",
        ]
    );
    let listed = mock
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|(p, q, _)| p == "/apis/apps/v1/namespaces/payments/deployments" && q.contains("limit=200"));
    assert!(listed, "the namespace's deployments were not listed with a bound");
}

/// A policy that reads Secrets does not make serve list them: that would
/// hold every Secret of the cluster in paved's memory.
#[test]
fn a_policy_reading_secrets_does_not_make_serve_list_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: secret-reader}
spec:
  validationActions: [Audit]
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: \"resource.Get('v1', 'secrets', 'a', 'b') != null && resource.Get('v1', 'configmaps', 'a', 'b') != null\"
",
    )
    .unwrap();
    let shared = shared(&format!("policy-paths: [{:?}]\n", dir.path().display().to_string()));
    let kinds: Vec<String> = shared.inventory.read().unwrap().kinds.iter().map(|k| k.kind.clone()).collect();
    assert!(kinds.contains(&"ConfigMap".to_owned()) && !kinds.contains(&"Secret".to_owned()), "{kinds:?}");
}
