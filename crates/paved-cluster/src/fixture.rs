//! A stand-in API server for tests and benchmarks (feature `fixture`): no
//! Kubernetes can run here, so this answers discovery with recorded documents
//! (`fixtures/`, in the shape a v1.33 API server sends), paginates lists with
//! `limit` and `continue` as the API server does, answers 403 for kinds the
//! user may not list, 410 Gone for an expired continue token (with the fresh
//! token the real server offers), and records server-side apply writes.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::json;

const DISCOVERY: &[(&str, &str)] = &[
    ("/api/v1", include_str!("../fixtures/api-v1.json")),
    ("/apis", include_str!("../fixtures/apis.json")),
    ("/apis/apps/v1", include_str!("../fixtures/apis-apps-v1.json")),
    ("/apis/batch/v1", include_str!("../fixtures/apis-batch-v1.json")),
    ("/apis/networking.k8s.io/v1", include_str!("../fixtures/apis-networking.k8s.io-v1.json")),
    ("/apis/coordination.k8s.io/v1", include_str!("../fixtures/apis-coordination.k8s.io-v1.json")),
    ("/apis/wgpolicyk8s.io/v1alpha2", include_str!("../fixtures/apis-wgpolicyk8s.io-v1alpha2.json")),
    ("/apis/kyverno.io/v2", include_str!("../fixtures/apis-kyverno.io-v2.json")),
];
const METRICS_DOWN: &str = include_str!("../fixtures/metrics-unavailable.json");
const FORBIDDEN: &str = include_str!("../fixtures/forbidden.json");
const EXPIRED: &str = include_str!("../fixtures/expired.json");

/// The kinds the fixture serves: (list path, list kind, apiVersion).
const LISTS: &[(&str, &str, &str)] = &[
    ("/api/v1/namespaces", "NamespaceList", "v1"),
    ("/api/v1/pods", "PodList", "v1"),
    ("/api/v1/services", "ServiceList", "v1"),
    ("/api/v1/configmaps", "ConfigMapList", "v1"),
    ("/api/v1/serviceaccounts", "ServiceAccountList", "v1"),
    ("/api/v1/persistentvolumeclaims", "PersistentVolumeClaimList", "v1"),
    ("/apis/apps/v1/deployments", "DeploymentList", "apps/v1"),
    ("/apis/apps/v1/replicasets", "ReplicaSetList", "apps/v1"),
    ("/apis/apps/v1/statefulsets", "StatefulSetList", "apps/v1"),
    ("/apis/apps/v1/daemonsets", "DaemonSetList", "apps/v1"),
    ("/apis/apps/v1/controllerrevisions", "ControllerRevisionList", "apps/v1"),
    ("/apis/batch/v1/jobs", "JobList", "batch/v1"),
    ("/apis/batch/v1/cronjobs", "CronJobList", "batch/v1"),
    ("/apis/networking.k8s.io/v1/ingresses", "IngressList", "networking.k8s.io/v1"),
    ("/apis/networking.k8s.io/v1/ingressclasses", "IngressClassList", "networking.k8s.io/v1"),
    ("/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicyList", "networking.k8s.io/v1"),
    ("/apis/wgpolicyk8s.io/v1alpha2/policyreports", "PolicyReportList", "wgpolicyk8s.io/v1alpha2"),
    ("/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports", "ClusterPolicyReportList", "wgpolicyk8s.io/v1alpha2"),
    ("/apis/kyverno.io/v2/policyexceptions", "PolicyExceptionList", "kyverno.io/v2"),
];

/// One request as the fixture saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub body: Vec<u8>,
    /// The Authorization header, to check credentials (tokens, exec plugins).
    pub authorization: Option<String>,
}

#[derive(Default)]
pub struct FixtureCluster {
    /// List path → the JSON text of each object (without kind/apiVersion, as lists carry them).
    pub objects: BTreeMap<String, Vec<String>>,
    /// List paths answered 403 Forbidden.
    pub forbidden: BTreeSet<String>,
    /// List paths whose continue tokens expire from this page on: the first
    /// request with such a token gets 410 Gone and a fresh token.
    pub expire_from_page: BTreeMap<String, u32>,
    /// Discovery documents answered 404, as by a cluster without that API
    /// group (a CRD not installed): `/apis/wgpolicyk8s.io/v1alpha2`.
    pub absent: BTreeSet<String>,
    /// Single objects by path, as server-side apply stored them (GET reads,
    /// DELETE removes them); a dry run stores nothing.
    pub stored: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Every request, in order.
    pub seen: Mutex<Vec<Seen>>,
}

impl FixtureCluster {
    pub fn add(&mut self, list_path: &str, object: serde_json::Value) {
        self.objects.entry(list_path.to_owned()).or_default().push(object.to_string());
    }

    /// The group list without the groups whose documents are `absent`.
    fn groups_present(&self, doc: &str) -> String {
        let Ok(mut list) = serde_json::from_str::<serde_json::Value>(doc) else { return doc.to_owned() };
        if let Some(groups) = list["groups"].as_array_mut() {
            groups.retain(|g| {
                let version = g["preferredVersion"]["groupVersion"].as_str().unwrap_or_default();
                !self.absent.contains(&format!("/apis/{version}"))
            });
        }
        list.to_string()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The answer to one request (status and JSON body); the request is
    /// recorded with its Authorization header.
    pub fn answer(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        authorization: Option<String>,
    ) -> (u16, String) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(Seen {
                method: method.to_owned(),
                path_and_query: path_and_query.to_owned(),
                body: body.to_vec(),
                authorization,
            });
        }
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let dry_run = query.split('&').any(|kv| kv == "dryRun=All");
        if method == "PATCH" {
            // Server-side apply: the object back, as the server would after merging.
            let Ok(mut object) = serde_json::from_slice::<serde_json::Value>(body) else {
                return (400, bad_request("the body is not JSON"));
            };
            store_as_the_api_server_does(&mut object);
            if !dry_run && let Ok(mut stored) = self.stored.lock() {
                stored.insert(path.to_owned(), object.clone());
            }
            return (200, object.to_string());
        }
        if method == "GET"
            && let Some(object) = self.stored.lock().ok().and_then(|s| s.get(path).cloned())
        {
            return (200, object.to_string());
        }
        if method == "DELETE" {
            let Some(object) =
                self.stored.lock().ok().and_then(|mut s| if dry_run { s.get(path).cloned() } else { s.remove(path) })
            else {
                return (404, not_found(path));
            };
            return (200, object.to_string());
        }
        if self.absent.contains(path) {
            return (404, not_found(path));
        }
        if let Some((_, doc)) = DISCOVERY.iter().find(|(p, _)| *p == path) {
            return (200, if path == "/apis" { self.groups_present(doc) } else { (*doc).to_owned() });
        }
        if path == "/apis/metrics.k8s.io/v1beta1" {
            return (503, METRICS_DOWN.to_owned());
        }
        // `/api/v1/namespaces/NS/pods` lists the objects of `/api/v1/pods` in NS.
        let (path, in_namespace) = match namespaced_list(path) {
            Some((all, ns)) => (all, Some(ns)),
            None => (path.to_owned(), None),
        };
        let path = path.as_str();
        let Some((_, list_kind, api_version)) = LISTS.iter().find(|(p, _, _)| *p == path) else {
            return (404, not_found(path));
        };
        if self.forbidden.contains(path) {
            return (403, FORBIDDEN.to_owned());
        }
        let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
        let limit: usize = param("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
        let (offset, stale) = match param("continue") {
            None => (0, false),
            Some(token) => match decode_token(token) {
                Some(t) => t,
                None => return (400, bad_request("invalid continue token")),
            },
        };
        let all = self.objects.get(path).map(Vec::as_slice).unwrap_or_default();
        let filtered: Vec<String>;
        let items = match &in_namespace {
            Some(ns) => {
                let needle = format!("\"namespace\":\"{ns}\"");
                filtered = all.iter().filter(|o| o.contains(&needle)).cloned().collect();
                filtered.as_slice()
            }
            None => all,
        };
        let page_number = offset.checked_div(limit).unwrap_or(0) as u32;
        let expires = self.expire_from_page.get(path).is_some_and(|from| page_number >= *from);
        if stale {
            return (410, EXPIRED.replace("CONTINUE", &format!("p{offset}")));
        }
        let end = offset.saturating_add(limit).min(items.len());
        let start = offset.min(end);
        let mut metadata = json!({"resourceVersion": "48211"});
        if end < items.len() {
            let next_page_expires =
                self.expire_from_page.get(path).is_some_and(|from| (end / limit.max(1)) as u32 >= *from);
            let token = if next_page_expires && !expires { format!("e{end}") } else { format!("p{end}") };
            metadata["continue"] = json!(token);
            metadata["remainingItemCount"] = json!(items.len() - end);
        }
        let mut out = format!(r#"{{"kind":"{list_kind}","apiVersion":"{api_version}","metadata":{metadata},"items":["#);
        for (i, item) in items[start..end].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item);
        }
        out.push_str("]}");
        (200, out)
    }

    /// Serves plain HTTP/1.1 on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let fixture = Arc::clone(&self);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let fixture = Arc::clone(&fixture);
                    async move {
                        let method = request.method().as_str().to_owned();
                        let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
                        let authorization =
                            request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let (status, text) = fixture.answer(&method, &path, &body, authorization);
                        let response = Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(text)));
                        Ok::<_, Infallible>(response.unwrap_or_default())
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    }

    /// A cluster of about `total` objects: namespaces choosing profiles by
    /// label, Deployments with their ReplicaSets and Pods, Services and
    /// ConfigMaps; some locked, some exempted, some breaking the profiles.
    pub fn generated(total: usize) -> FixtureCluster {
        let mut f = FixtureCluster::default();
        let namespaces = (total / 2000).max(2);
        for n in 0..namespaces {
            let labels = match n % 4 {
                0 => json!({"paved.dev/profile": "pss-restricted"}),
                1 => json!({"paved.dev/profile": "pss-baseline", "paved.dev/mode": "audit"}),
                2 => json!({"kubernetes.io/metadata.name": format!("team-{n}")}),
                _ => json!({"paved.dev/profile": "paved-road", "paved.dev/mode": "warn"}),
            };
            f.add(
                "/api/v1/namespaces",
                json!({"metadata": {"name": format!("team-{n}"), "uid": format!("ns-{n}"), "resourceVersion": "1",
                       "labels": labels}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            );
        }
        let mut made = namespaces;
        let mut i = 0usize;
        while made < total {
            let ns = format!("team-{}", i % namespaces);
            let app = format!("app-{i}");
            let image = match i % 5 {
                0 => "registry.example.com/shop/api@sha256:4c1e1b8a0c5b4f7d9e2a3b6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a".to_owned(),
                1 => format!("docker.io/library/nginx:1.{}", 20 + i % 7),
                2 => "quay.io/prometheus/node-exporter:v1.8.2".to_owned(),
                3 => "registry.example.com/shop/worker:latest".to_owned(),
                _ => "ghcr.io/example/tool:2.1".to_owned(),
            };
            let mut annotations = json!({"deployment.kubernetes.io/revision": "3"});
            if i.is_multiple_of(50) {
                annotations["paved.dev/lock"] = json!("delete");
            }
            if i % 40 == 7 {
                annotations["paved.dev/exempt"] = json!("pss-restricted/run-as-non-root");
                annotations["paved.dev/exempt-reason"] = json!("vendor image runs as root; ticket OPS-12");
                annotations["paved.dev/exempt-until"] = json!(if i % 80 == 7 { "2025-01-31" } else { "2027-06-30" });
            }
            let secure = !i.is_multiple_of(3);
            let container = json!({
                "name": "main", "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": if secure { json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}) } else { json!({}) },
                "securityContext": if secure { json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}) } else { json!({"privileged": i.is_multiple_of(9)}) },
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
            });
            let pod_spec = json!({"containers": [container], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default", "securityContext": {}, "schedulerName": "default-scheduler",
                "terminationGracePeriodSeconds": 30});
            let meta = |name: &str, extra: serde_json::Value| {
                let mut m = json!({"name": name, "namespace": ns, "uid": format!("{name}-uid"), "resourceVersion": "4711",
                    "creationTimestamp": "2026-10-01T12:00:00Z", "labels": {"app": app}});
                if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
                    for (k, v) in extra {
                        m.insert(k.clone(), v.clone());
                    }
                }
                m
            };
            f.add(
                "/apis/apps/v1/deployments",
                json!({"metadata": meta(&app, json!({"annotations": annotations, "generation": 3})),
                       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                                "template": {"metadata": {"labels": {"app": app}}, "spec": pod_spec}},
                       "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}}),
            );
            let rs = format!("{app}-7d9f8b6c5");
            f.add(
                "/apis/apps/v1/replicasets",
                json!({"metadata": meta(&rs, json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": format!("{app}-uid"), "controller": true}]})),
                       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                                "template": {"metadata": {"labels": {"app": app}}, "spec": pod_spec}}}),
            );
            made += 2;
            for p in 0..2 {
                let pod = format!("{rs}-{p:05}");
                let digest = "sha256:9b2a7d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
                let repo = image.split(['@', ':']).next().unwrap_or("");
                f.add(
                    "/api/v1/pods",
                    json!({"metadata": meta(&pod, json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": format!("{rs}-uid"), "controller": true}]})),
                           "spec": pod_spec,
                           "status": {"phase": "Running", "podIP": "10.0.0.1", "hostIP": "192.168.0.1",
                                      "containerStatuses": [{"name": "main", "image": image, "imageID": format!("{repo}@{digest}"),
                                                             "ready": true, "restartCount": 0, "started": true,
                                                             "state": {"running": {"startedAt": "2026-10-01T12:00:05Z"}}}]}}),
                );
                made += 1;
            }
            f.add(
                "/api/v1/services",
                json!({"metadata": meta(&app, json!({})), "spec": {"type": if i.is_multiple_of(11) { "NodePort" } else { "ClusterIP" },
                       "selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
            );
            f.add(
                "/api/v1/configmaps",
                json!({"metadata": meta(&format!("{app}-config"), json!({})), "data": {"LOG_LEVEL": "info", "FEATURES": "a,b,c"}}),
            );
            made += 2;
            i += 1;
        }
        f
    }
}

/// `/api/v1/namespaces/NS/pods` → (`/api/v1/pods`, NS).
fn namespaced_list(path: &str) -> Option<(String, String)> {
    let (prefix, rest) = path.split_once("/namespaces/")?;
    let (ns, plural) = rest.split_once('/')?;
    if plural.contains('/') || ns.is_empty() {
        return None;
    }
    Some((format!("{prefix}/{plural}"), ns.to_owned()))
}

/// Continue tokens are `p<offset>`; `e<offset>` is one that has expired.
fn decode_token(token: &str) -> Option<(usize, bool)> {
    let (stale, rest) = match token.split_at_checked(1)? {
        ("p", rest) => (false, rest),
        ("e", rest) => (true, rest),
        _ => return None,
    };
    Some((rest.parse().ok()?, stale))
}

/// What the API server keeps of a written object: a Secret's `stringData`
/// is merged into `data`, base64-encoded, and never read back.
fn store_as_the_api_server_does(object: &mut serde_json::Value) {
    use base64::Engine as _;
    if object["kind"] != "Secret" {
        return;
    }
    let Some(map) = object.as_object_mut() else { return };
    let Some(serde_json::Value::Object(strings)) = map.remove("stringData") else { return };
    let data = map.entry("data").or_insert_with(|| json!({}));
    for (key, value) in strings {
        let text = value.as_str().unwrap_or_default();
        data[key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

fn not_found(path: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("the server could not find the requested resource ({path})"), "reason": "NotFound",
           "details": {}, "code": 404})
    .to_string()
}

fn bad_request(message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": "BadRequest", "code": 400})
    .to_string()
}
