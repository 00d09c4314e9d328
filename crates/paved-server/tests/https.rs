//! `paved serve` over real HTTPS on loopback: generated certificates, HTTP/2
//! and HTTP/1.1 clients, the API server's own AdmissionReview fixtures.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use paved_server::certs::{ServingCerts, generate};
use paved_server::{Options, Server, Shared};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

fn corpus(file: &str) -> PathBuf {
    paved_corpus::path("k8s-api/HEAD").join(file)
}

struct Running {
    addr: SocketAddr,
    ca: String,
    shared: Arc<Shared>,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.done).await.expect("server stops").expect("no panic");
    }
}

fn write_certs(dir: &Path, certs: &ServingCerts) {
    std::fs::write(dir.join("tls.crt"), &certs.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &certs.key_pem).unwrap();
}

async fn start(configure: impl FnOnce(&mut Options), config_yaml: Option<&str>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let certs = generate(&["localhost".into(), "127.0.0.1".into()], 1).unwrap();
    write_certs(dir.path(), &certs);
    let mut options = Options::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.reload_every = Duration::from_millis(50);
    if let Some(yaml) = config_yaml {
        std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
        options.config = Some(dir.path().join("config.yaml"));
    }
    configure(&mut options);
    let server = Server::bind(options).await.unwrap();
    let shared = Arc::clone(&server.shared);
    shared.synced.store(true, Ordering::Release);
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let done = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running { addr, ca: certs.ca_pem, shared, dir, stop: Some(stop), done }
}

fn tls_config(ca_pem: &str, alpn: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

async fn tls_stream(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(ca_pem, alpn)));
    let tcp = TcpStream::connect(addr).await?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// An HTTP/2 connection, as the API server opens.
async fn h2<B>(addr: SocketAddr, ca_pem: &str) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = tls_stream(addr, ca_pem, b"h2").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server must negotiate HTTP/2");
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    send
}

async fn h1(addr: SocketAddr, ca_pem: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tls = tls_stream(addr, ca_pem, b"http/1.1").await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    send
}

fn post(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://localhost{path}")).body(Full::new(Bytes::new())).unwrap()
}

async fn send(server: &Running, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    let mut client = h2(server.addr, &server.ca).await;
    let response = client.send_request(request).await.unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

async fn review(server: &Running, review: &Value) -> Value {
    let (status, body) = send(server, post("/validate", serde_json::to_vec(review).unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn privileged_pod_review(uid: &str, version: &str) -> Value {
    json!({"apiVersion": format!("admission.k8s.io/{version}"), "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "p", "namespace": "shop", "operation": "CREATE",
        "userInfo": {"username": "dev", "groups": ["system:authenticated"]},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}},
        "dryRun": false, "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}}})
}

#[tokio::test]
async fn health_readiness_and_metrics_over_http2() {
    let server = start(|_| {}, None).await;
    for (path, want) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let (status, body) = send(&server, get(path)).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, want.as_bytes()));
    }
    server.shared.synced.store(false, Ordering::Release);
    let (status, body) = send(&server, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&body[..], b"not ready: cluster caches not synced\n");
    server.shared.synced.store(true, Ordering::Release);
    review(&server, &privileged_pod_review("m-1", "v1")).await;
    let (status, body) = send(&server, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains(r#"paved_admission_requests_total{operation="CREATE",verdict="denied"} 1"#), "{text}");
    assert!(
        text.contains(r#"paved_policy_findings_total{policy="pss-baseline/privileged",action="deny"} 1"#),
        "{text}"
    );
    assert!(text.contains("paved_admission_duration_seconds_count 1"), "{text}");
    server.stop().await;
}

/// `/metrics` as a scraper that asks for `accept` gets it.
async fn scrape(server: &Running, accept: Option<&str>) -> (String, String) {
    let mut request = get("/metrics");
    if let Some(accept) = accept {
        request.headers_mut().insert(hyper::header::ACCEPT, accept.parse().unwrap());
    }
    let mut client = h2(server.addr, &server.ca).await;
    let response = client.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[hyper::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (content_type, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_come_in_the_format_the_scraper_asks_for() {
    let server = start(|_| {}, None).await;
    review(&server, &privileged_pod_review("m-2", "v1")).await;
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (content_type, body) = scrape(&server, Some(prometheus)).await;
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    for accept in [Some("text/plain;version=0.0.4"), None] {
        let (content_type, body) = scrape(&server, accept).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(!body.contains("# EOF"), "{body}");
        assert!(body.contains("# TYPE paved_admission_requests_total counter"), "{body}");
        assert!(body.contains(r#"paved_admission_requests_total{operation="CREATE",verdict="denied"} 1"#), "{body}");
    }
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool (Debian's prometheus package), which .ci/run installs"]
async fn promtool_accepts_the_text_format() {
    let server = start(|_| {}, None).await;
    review(&server, &privileged_pod_review("m-3", "v1")).await;
    let (_, body) = scrape(&server, Some("text/plain;version=0.0.4")).await;
    server.stop().await;
    let mut promtool = std::process::Command::new(std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into()))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write;
        promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    }
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{body}");
}

#[tokio::test]
async fn the_api_servers_own_reviews_are_answered_in_their_version() {
    let server = start(|_| {}, None).await;
    for (file, version) in [
        ("admission.k8s.io.v1.AdmissionReview.json", "admission.k8s.io/v1"),
        ("admission.k8s.io.v1beta1.AdmissionReview.json", "admission.k8s.io/v1beta1"),
    ] {
        let body = std::fs::read(corpus(file)).unwrap();
        let (status, answer) = send(&server, post("/validate", body)).await;
        assert_eq!(status, StatusCode::OK);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["apiVersion"], version);
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], "uidValue");
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer.get("request").is_none(), "the answer carries the response only");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_privileged_pod_is_denied_with_403_over_both_protocols() {
    let server = start(|_| {}, None).await;
    let answer = review(&server, &privileged_pod_review("abc-1", "v1beta1")).await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    let response = &answer["response"];
    assert_eq!((response["uid"].as_str(), response["allowed"].as_bool()), (Some("abc-1"), Some(false)));
    assert_eq!(response["status"]["code"], 403);
    assert!(response["status"]["message"].as_str().unwrap().contains("[pss-baseline/privileged]"));
    let mut client = h1(server.addr, &server.ca).await;
    let body = serde_json::to_vec(&privileged_pod_review("abc-2", "v1")).unwrap();
    let answer = client.send_request(post("/validate", body)).await.unwrap();
    assert_eq!(answer.version(), hyper::Version::HTTP_11);
    let answer: Value = serde_json::from_slice(&answer.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_answers_and_the_server_keeps_serving() {
    let server = start(|o| o.max_body_bytes = 64 * 1024, None).await;
    let (status, body) = send(&server, post("/validate", "{\"apiVersion\": ")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "not JSON an AdmissionReview can be read from: EOF while parsing a value at line 1, column 16\n"
    );
    let (status, body) = send(&server, post("/validate", r#"{"apiVersion":"v1","kind":"Pod"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("expected admission.k8s.io/v1"));
    // Declared too large: refused before reading.
    let (status, _) = send(&server, post("/validate", vec![b' '; 64 * 1024 + 1])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length: refused when the cap is crossed.
    let mut client = h2(server.addr, &server.ca).await;
    let (mut tx, body) = Channel::<Bytes>::new(4);
    let request = Request::post("https://localhost/validate").body(body).unwrap();
    let pending = tokio::spawn(async move { client.send_request(request).await.map(|r| r.status()) });
    for _ in 0..32 {
        if tx.send_data(Bytes::from(vec![b' '; 4096])).await.is_err() {
            break;
        }
    }
    assert_eq!(pending.await.unwrap().unwrap(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(review(&server, &privileged_pod_review("after", "v1")).await["response"]["uid"], "after");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_request_is_answered_at_the_deadline() {
    let server = start(|o| o.deadline = Duration::from_millis(300), None).await;
    let mut client = h2(server.addr, &server.ca).await;
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let started = Instant::now();
    let request = Request::post("https://localhost/validate").body(body).unwrap();
    tx.send_data(Bytes::from_static(b"{\"apiVersion\":")).await.unwrap();
    let response = client.send_request(request).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "{waited:?}");
    drop(tx);
    server.stop().await;
}

/// A review's bytes in the order the API server writes them (Go's encoder
/// follows the struct: `kind`, `apiVersion`, then `request` with `uid`
/// first), not serde_json's sorted keys.
fn as_api_server_writes(review: &Value) -> Vec<u8> {
    let mut request = review["request"].clone();
    let uid = request.as_object_mut().unwrap().remove("uid").unwrap();
    let rest = serde_json::to_string(&request).unwrap();
    format!(
        r#"{{"kind":"AdmissionReview","apiVersion":{},"request":{{"uid":{uid},{}"#,
        review["apiVersion"],
        &rest[1..]
    )
    .into_bytes()
    .into_iter()
    .chain(*b"}")
    .collect()
}

/// What a refusal without a judgment looks like: an answer the API server
/// honours (never an error its failurePolicy would let through).
fn assert_refused_unjudged(body: &[u8], uid: &str, why: &str) {
    let answer: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)));
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["response"]["uid"], uid);
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("paved refused this request without judging it: "), "{message}");
    assert!(message.contains(why), "{message}");
    assert_eq!(answer["response"]["status"]["code"], 403);
}

#[tokio::test]
async fn load_beyond_the_limit_is_refused_at_once_never_let_through() {
    let server = start(|o| o.max_in_flight = 1, None).await;
    let mut slow = h2(server.addr, &server.ca).await;
    let (mut tx, body) = Channel::<Bytes>::new(1);
    tx.send_data(Bytes::from_static(b"{")).await.unwrap();
    let holding = tokio::spawn(async move {
        slow.send_request(Request::post("https://localhost/validate").body(body).unwrap()).await
    });
    // Wait until the slow request holds the only slot.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shared.slots.available_permits() > 0 {
        assert!(Instant::now() < deadline, "the slow request never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let (status, body) =
        send(&server, post("/validate", serde_json::to_vec(&privileged_pod_review("x", "v1")).unwrap())).await;
    // A 503 would be an error, and a policies webhook that fails open
    // would admit the privileged pod: a flood must not open that window.
    assert_eq!(status, StatusCode::OK);
    assert_refused_unjudged(&body, "x", "at its limit of reviews in progress");
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once, not queued");
    assert!(metric(&server.shared, "paved_rejected_requests_total{result=\"overloaded\"} 1"));
    // Health checks are not shed.
    assert_eq!(send(&server, get("/healthz")).await.0, StatusCode::OK);
    tx.send_data(Bytes::from_static(
        br#""apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"slow"}}"#,
    ))
    .await
    .unwrap();
    drop(tx);
    assert_eq!(holding.await.unwrap().unwrap().status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn a_review_that_cannot_be_judged_in_time_is_refused() {
    let server = start(|o| (o.max_evaluations, o.deadline) = (1, Duration::from_millis(300)), None).await;
    // Every evaluation slot is busy (a flood of huge dry runs, say).
    let busy = Arc::clone(&server.shared.evaluations).acquire_owned().await.unwrap();
    let started = Instant::now();
    let (status, body) =
        send(&server, post("/validate", serde_json::to_vec(&privileged_pod_review("slow", "v1")).unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused_unjudged(&body, "slow", "at its limit of reviews in progress");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(2), "{waited:?}");
    drop(busy);
    assert_eq!(review(&server, &privileged_pod_review("then", "v1")).await["response"]["allowed"], false);
    assert!(metric(&server.shared, "paved_admission_requests_total{operation=\"CREATE\",verdict=\"denied\"} 1"));
    server.stop().await;
}

#[tokio::test]
async fn a_review_too_large_to_judge_is_refused_with_its_uid() {
    let server = start(|o| o.max_body_bytes = 64 * 1024, None).await;
    // A self-granted exemption riding on an object padded past the cap.
    let mut big = privileged_pod_review("big", "v1");
    big["request"]["object"]["metadata"]["annotations"] = json!({"paved.dev/exempt": "pss-baseline/*",
        "paved.dev/exempt-reason": "me", "pad": "<".repeat(80 * 1024)});
    let (status, body) = send(&server, post("/validate", as_api_server_writes(&big))).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused_unjudged(&body, "big", "over 65536 bytes");
    // Streamed without a declared length, the same.
    let mut client = h2(server.addr, &server.ca).await;
    let (mut tx, stream) = Channel::<Bytes>::new(4);
    let request = Request::post("https://localhost/validate").body(stream).unwrap();
    let pending = tokio::spawn(async move {
        let response = client.send_request(request).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    });
    let json = as_api_server_writes(&big);
    for chunk in json.chunks(4096) {
        if tx.send_data(Bytes::copy_from_slice(chunk)).await.is_err() {
            break;
        }
    }
    drop(tx);
    assert_refused_unjudged(&pending.await.unwrap(), "big", "over 65536 bytes");
    server.stop().await;
}

#[tokio::test]
async fn reviews_beyond_the_memory_budget_are_refused() {
    let server = start(|o| o.body_budget_bytes = 16 * 1024, None).await;
    let mut big = privileged_pod_review("heavy", "v1");
    big["request"]["object"]["metadata"]["annotations"] = json!({"pad": "x".repeat(32 * 1024)});
    let (status, body) = send(&server, post("/validate", as_api_server_writes(&big))).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused_unjudged(&body, "heavy", "memory limit");
    // The budget is given back: small reviews are judged.
    assert_eq!(review(&server, &privileged_pod_review("light", "v1")).await["response"]["allowed"], false);
    assert_eq!(review(&server, &privileged_pod_review("again", "v1")).await["response"]["uid"], "again");
    assert_eq!(server.shared.body_budget.available_permits(), 16);
    server.stop().await;
}

#[test]
fn the_body_cap_admits_the_largest_review_the_api_server_sends() {
    // Two objects at the API server's 3 MiB request limit, every byte a `<`
    // that Go's encoder writes as the six bytes \u003c.
    let object = 3 << 20;
    assert!(paved_server::MAX_REVIEW_BYTES >= 2 * object * "\\u003c".len());
    assert_eq!(Options::new("c".into(), "k".into()).max_body_bytes, paved_server::MAX_REVIEW_BYTES);
}

#[tokio::test]
async fn configuration_reloads_and_a_bad_one_is_refused() {
    let server = start(|_| {}, Some("profile: pss-baseline\n")).await;
    // Runs as root: fine for baseline.
    let mut rv = privileged_pod_review("r", "v1");
    rv["request"]["object"]["spec"]["containers"][0]["securityContext"] = json!({});
    assert_eq!(review(&server, &rv).await["response"]["allowed"], true);
    std::fs::write(server.path("config.yaml"), "profile: pss-restricted\n").unwrap();
    let reloaded = wait_for(|| metric(&server.shared, "paved_config_reloads_total{result=\"ok\"} 1")).await;
    assert!(reloaded, "configuration was not reloaded");
    assert_eq!(review(&server, &rv).await["response"]["allowed"], false);
    std::fs::write(server.path("config.yaml"), "profile: pss-restricted\nnot-a-field: 1\n").unwrap();
    assert!(wait_for(|| metric(&server.shared, "paved_config_reloads_total{result=\"error\"} 1")).await);
    assert_eq!(review(&server, &rv).await["response"]["allowed"], false, "the old configuration stays");
    server.stop().await;
}

/// Policies mounted from a ConfigMap: the volume is a directory of links
/// into `..data`, itself a link the kubelet swaps to update every file at
/// once. serve reads the files through the links and reloads on the swap.
#[cfg(unix)]
#[tokio::test]
async fn policies_in_a_configmap_volume_load_and_reload_when_it_is_updated() {
    let library = paved_corpus::path("gatekeeper-library/pod-security-policy/privileged-containers");
    let template = std::fs::read_to_string(library.join("template.yaml")).unwrap();
    let constraint = std::fs::read_to_string(library.join("samples/psp-privileged-container/constraint.yaml")).unwrap();
    // As the kubelet writes a ConfigMap volume, one timestamped directory per version.
    let publish = |volume: &Path, version: &str, constraint: &str| {
        let dir = volume.join(format!("..{version}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("privileged.yaml"), format!("{template}\n---\n{constraint}")).unwrap();
        let staged = volume.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..{version}"), &staged).unwrap();
        std::fs::rename(&staged, volume.join("..data")).unwrap();
        if !volume.join("privileged.yaml").exists() {
            std::os::unix::fs::symlink("..data/privileged.yaml", volume.join("privileged.yaml")).unwrap();
        }
    };
    let server = start(
        |options| {
            let volume = options.tls_cert.parent().unwrap().join("policies");
            publish(&volume, "2026_11_24_10_00_00.1", &constraint);
        },
        Some("policy-paths: [policies]\n"),
    )
    .await;
    let gatekeeper = "gatekeeper/k8spspprivilegedcontainer/psp-privileged-container";
    let message = |response: &Value| response["response"]["status"]["message"].as_str().unwrap_or("").to_owned();
    let denied = review(&server, &privileged_pod_review("cm-1", "v1")).await;
    assert_eq!(denied["response"]["allowed"], false);
    assert!(message(&denied).contains(gatekeeper), "{denied}");
    assert_eq!(
        message(&denied).matches("Privileged container is not allowed").count(),
        1,
        "each file read once: {denied}"
    );

    // The ConfigMap changes the constraint to dryrun: reloaded, and no longer a denial.
    let dryrun = constraint.replace("spec:\n", "spec:\n  enforcementAction: dryrun\n");
    assert_ne!(dryrun, constraint);
    publish(&server.path("policies"), "2026_11_24_10_05_00.2", &dryrun);
    assert!(
        wait_for(|| metric(&server.shared, "paved_config_reloads_total{result=\"ok\"} 1")).await,
        "policies reloaded"
    );
    let after = review(&server, &privileged_pod_review("cm-2", "v1")).await;
    assert!(!message(&after).contains(gatekeeper), "{after}");
    server.stop().await;
}

fn metric(shared: &Shared, line: &str) -> bool {
    shared.metrics.encode().lines().any(|l| l == line)
}

async fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_failed_request() {
    let server = start(|_| {}, None).await;
    let addr = server.addr;
    let old_ca = server.ca.clone();
    let new = generate(&["localhost".into()], 1).unwrap();
    let both = format!("{old_ca}{}", new.ca_pem);
    // Requests keep coming during the rotation, trusting either CA, as the
    // API server does while caBundle holds both.
    let load = tokio::spawn({
        let both = both.clone();
        async move {
            let mut failures = 0;
            for i in 0..60 {
                let mut client = h2(addr, &both).await;
                let body = serde_json::to_vec(&privileged_pod_review(&format!("rot-{i}"), "v1")).unwrap();
                match client.send_request(post("/validate", body)).await {
                    Ok(r) if r.status() == StatusCode::OK => {}
                    _ => failures += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // As cert-manager's Secret update lands: certificate first, key a moment later.
    std::fs::write(server.path("tls.crt"), &new.cert_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    std::fs::write(server.path("tls.key"), &new.key_pem).unwrap();
    assert!(wait_for(|| metric(&server.shared, "paved_certificate_reloads_total{result=\"ok\"} 1")).await);
    assert_eq!(load.await.unwrap(), 0, "no request may fail during a rotation");
    // New connections get the new certificate: the old CA alone no longer verifies it.
    assert!(tls_stream(addr, &new.ca_pem, b"h2").await.is_ok());
    assert!(tls_stream(addr, &old_ca, b"h2").await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn shutdown_drains_requests_in_progress() {
    let server = start(|_| {}, None).await;
    let mut client = h2(server.addr, &server.ca).await;
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let in_flight = tokio::spawn(async move {
        client.send_request(Request::post("https://localhost/validate").body(body).unwrap()).await
    });
    tx.send_data(Bytes::from_static(b"{")).await.unwrap();
    assert!(wait_for(|| server.shared.slots.available_permits() < server.shared.options.max_in_flight).await);
    let shared = Arc::clone(&server.shared);
    let addr = server.addr;
    let ca = server.ca.clone();
    let stopping = tokio::spawn(server.stop());
    assert!(wait_for(|| !shared.ready()).await, "not ready while draining");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tls_stream(addr, &ca, b"h2").await.is_err(), "no new connections while draining");
    let review = serde_json::to_vec(&privileged_pod_review("drained", "v1")).unwrap();
    tx.send_data(Bytes::from(review[1..].to_vec())).await.unwrap();
    drop(tx);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["response"]["uid"], "drained");
    stopping.await.unwrap();
}

fn locked_pvc_delete(uid: &str, dry_run: bool) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
        "resource": {"group": "", "version": "v1", "resource": "persistentvolumeclaims"},
        "name": "data", "namespace": "shop", "operation": "DELETE",
        "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "oldObject": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop", "annotations": {"paved.dev/lock": "delete"}}},
        "dryRun": dry_run,
        "options": {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "gracePeriodSeconds": 0}}})
}

#[tokio::test]
async fn lock_refusals_are_counted_but_dry_runs_leave_no_trace() {
    let server = start(|_| {}, None).await;
    let dry = review(&server, &locked_pvc_delete("dry", true)).await;
    assert_eq!(dry["response"]["allowed"], false, "a dry run is judged the same");
    assert!(metric(&server.shared, "paved_lock_delete_refusals_total 0"), "{}", server.shared.metrics.encode());
    let real = review(&server, &locked_pvc_delete("real", false)).await;
    assert_eq!(real["response"]["allowed"], false);
    assert!(
        real["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("kubectl annotate persistentvolumeclaims/data -n shop paved.dev/lock-")
    );
    assert!(metric(&server.shared, "paved_lock_delete_refusals_total 1"), "{}", server.shared.metrics.encode());
    assert!(metric(&server.shared, r#"paved_admission_requests_total{operation="DELETE",verdict="denied"} 2"#));
    server.stop().await;
}

#[tokio::test]
async fn gatekeeper_constraints_judge_admission_beside_native_rules() {
    let library = paved_corpus::path("gatekeeper-library/general/requiredlabels/template.yaml");
    let server = start(
        |options| {
            let dir = options.config.as_deref().and_then(Path::parent).unwrap().join("policies");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&library, dir.join("template.yaml")).unwrap();
            std::fs::write(
                dir.join("constraint.yaml"),
                "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata: {name: need-owner}\nspec:\n  match: {kinds: [{apiGroups: [\"\"], kinds: [Pod]}]}\n  parameters: {labels: [{key: owner}]}\n",
            )
            .unwrap();
        },
        Some("policy-paths: [policies]\n"),
    )
    .await;
    let answer = review(&server, &privileged_pod_review("gk-1", "v1")).await;
    let message = answer["response"]["status"]["message"].as_str().unwrap().to_owned();
    assert_eq!(answer["response"]["allowed"], false);
    assert!(message.contains("[gatekeeper/k8srequiredlabels/need-owner]"), "{message}");
    assert!(message.contains("[pss-baseline/privileged]"), "native rules still judge: {message}");
    server.stop().await;
}

/// `/mutate` over HTTPS: the paved road's defaults as a base64 JSON Patch
/// that, applied as the API server applies it (RFC 6902), gives exactly
/// the object with the defaults set, and nothing the user wrote changed;
/// nothing at all for a pod's update, paved's own namespace, or a pod
/// that turned the defaults off by exemption.
#[tokio::test]
async fn mutate_answers_a_json_patch_that_sets_only_what_is_absent() {
    use base64::Engine as _;
    // paved's own namespace is paved-system by default: never mutated.
    // And the configuration's resource defaults.
    let server = start(|_| {}, Some("defaults:\n  resources:\n    requests: {memory: 64Mi}\n")).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [
            {"name": "app", "image": "nginx:1.27", "securityContext": {"allowPrivilegeEscalation": true}},
            {"name": "net", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}});
    let request = |operation: &str, namespace: &str, object: &Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "m-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": namespace,
            "operation": operation, "userInfo": {"username": "dev", "groups": ["system:authenticated"]},
            "object": object, "dryRun": false}})
    };
    let ask = |review: Value| {
        let server = &server;
        async move {
            let (status, body) = send(server, post("/mutate", serde_json::to_vec(&review).unwrap())).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            serde_json::from_slice::<Value>(&body).unwrap()["response"].clone()
        }
    };
    let answer = ask(request("CREATE", "shop", &pod)).await;
    assert_eq!((answer["uid"].as_str(), answer["allowed"].as_bool()), (Some("m-1"), Some(true)));
    assert_eq!(answer["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD.decode(answer["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let mut expected = pod.clone();
    expected["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    expected["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": true, "capabilities": {"drop": ["ALL"]}});
    expected["spec"]["containers"][1]["securityContext"]["allowPrivilegeEscalation"] = json!(false);
    for c in 0..2 {
        expected["spec"]["containers"][c]["resources"] = json!({"requests": {"memory": "64Mi"}});
    }
    assert_eq!(patched, expected, "the user's allowPrivilegeEscalation: true stays; NET_ADMIN keeps its capabilities");
    let warnings = answer["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 5, "{warnings:?}");
    assert!(warnings.iter().all(|w| w.as_str().unwrap().contains("write it explicitly")), "{warnings:?}");
    assert!(answer["auditAnnotations"]["defaults-set"].as_str().unwrap().contains("paved-road/default-seccomp"));
    for quiet in [request("UPDATE", "shop", &pod), request("CREATE", "paved-system", &pod)] {
        let answer = ask(quiet).await;
        assert_eq!(answer["allowed"], true);
        assert!(answer.get("patch").is_none(), "{answer}");
    }
    let mut exempt = pod.clone();
    exempt["metadata"]["annotations"] =
        json!({"paved.dev/exempt": "paved-road/*", "paved.dev/exempt-reason": "OPS-7 legacy agent"});
    assert!(ask(request("CREATE", "shop", &exempt)).await.get("patch").is_none());
    server.stop().await;
}

/// What the API server and the controllers send after a Deployment, in
/// order: the Deployment gets the defaults; the ReplicaSet the deployment
/// controller makes from it is left as it is (a changed template would make
/// the controller make another ReplicaSet, without end); the pods the
/// ReplicaSet makes are left as their template is, and an operator's get
/// them; a scale by `kubectl apply` (the template unchanged) restarts
/// nothing; a new image (a rollout anyway) gets them.
#[tokio::test]
async fn mutate_follows_the_controllers_without_a_loop_or_a_restart() {
    use base64::Engine as _;
    let server = start(|_| {}, None).await;
    let template = json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    let review = |kind: &str, operation: &str, object: Value, old: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "c-1", "kind": {"group": if kind == "Pod" { "" } else { "apps" }, "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "x"}, "name": "web", "namespace": "shop",
            "operation": operation, "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object, "oldObject": old}})
    };
    let patched = |review: Value| {
        let server = &server;
        async move {
            let (status, body) = send(server, post("/mutate", serde_json::to_vec(&review).unwrap())).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let response = serde_json::from_slice::<Value>(&body).unwrap()["response"].clone();
            assert_eq!(response["allowed"], true);
            response["patch"].as_str().map(|p| base64::engine::general_purpose::STANDARD.decode(p).unwrap())
        }
    };
    let deployment = |replicas: u32, image: &str| {
        let mut t = template.clone();
        t["spec"]["containers"][0]["image"] = json!(image);
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": t}})
    };
    assert!(patched(review("Deployment", "CREATE", deployment(2, "nginx:1.27"), Value::Null)).await.is_some());
    let owned =
        |owner: &str| json!({"kind": owner, "name": "web", "controller": true, "apiVersion": "apps/v1", "uid": "u"});
    let replica_set = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "namespace": "shop", "ownerReferences": [owned("Deployment")]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}});
    assert!(
        patched(review("ReplicaSet", "CREATE", replica_set, Value::Null)).await.is_none(),
        "the owner's template stays"
    );
    // The replicaset controller's pod follows its template: the owner got
    // the defaults at its admission, or was exempt from them (an exemption
    // on the Deployment is not on its pods), or predates paved (new pods
    // unlike the running ones would break a scale, and nobody reads a
    // warning answered to a controller).
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-5d4f-x", "namespace": "shop", "ownerReferences": [owned("ReplicaSet")]},
        "spec": template["spec"]});
    assert!(patched(review("Pod", "CREATE", pod.clone(), Value::Null)).await.is_none(), "as its template");
    // An operator that is no trusted controller makes pods from no template
    // paved has seen: they get the defaults.
    let mut by_operator = review("Pod", "CREATE", pod, Value::Null);
    by_operator["request"]["userInfo"]["username"] = json!("system:serviceaccount:ops:db-operator");
    assert!(patched(by_operator).await.is_some(), "an operator's pods get them");
    // The kubelet's mirror of a static pod: what runs is the node's file.
    let mirror = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd-node-1", "namespace": "shop",
            "annotations": {"kubernetes.io/config.mirror": "0f1e2d", "kubernetes.io/config.source": "file"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "n", "controller": true}]},
        "spec": template["spec"]});
    let mut mirrored = review("Pod", "CREATE", mirror, Value::Null);
    mirrored["request"]["userInfo"]["username"] = json!("system:node:node-1");
    assert!(patched(mirrored).await.is_none(), "a mirror pod is left as the kubelet wrote it");
    let scaled = review("Deployment", "UPDATE", deployment(5, "nginx:1.27"), deployment(2, "nginx:1.27"));
    assert!(patched(scaled).await.is_none(), "a scale restarts no pod");
    let rolled = review("Deployment", "UPDATE", deployment(2, "nginx:1.28"), deployment(2, "nginx:1.27"));
    assert!(patched(rolled).await.is_some(), "a new template rolls out anyway");
    // A Job's template is immutable but for the scheduling directives of a
    // suspended Job, which a queue (Kueue) changes before resuming it:
    // defaults there would have the API server refuse the queue's update.
    let job = |selector: Value| {
        let mut t = template.clone();
        t["spec"]["nodeSelector"] = selector;
        t["spec"]["restartPolicy"] = json!("Never");
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train", "namespace": "shop"},
               "spec": {"suspend": true, "template": t}})
    };
    let mut queued = review("Job", "UPDATE", job(json!({"pool": "gpu"})), job(json!({})));
    queued["request"]["userInfo"]["username"] = json!("system:serviceaccount:kueue-system:kueue-controller-manager");
    assert!(patched(queued).await.is_none(), "a Job's update is left as it is");
    // While paved's caches have not synced, an HTTP error: the API server
    // ignores it (failurePolicy: Ignore) and the object goes on unchanged.
    server.shared.synced.store(false, Ordering::Release);
    let (status, _) = send(
        &server,
        post("/mutate", serde_json::to_vec(&review("Deployment", "CREATE", deployment(1, "x"), Value::Null)).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // What an operator sees: three patched, five unchanged, one not answered.
    let metrics = server.shared.metrics.encode();
    for line in [
        "paved_mutation_requests_total{result=\"patched\"} 3",
        "paved_mutation_requests_total{result=\"unchanged\"} 5",
        "paved_mutation_requests_total{result=\"not-synced\"} 1",
        "paved_defaults_set_total{policy=\"paved-road/default-seccomp\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line} in\n{metrics}");
    }
    assert!(metrics.contains("paved_mutation_duration_seconds_count 8"), "{metrics}");
    server.stop().await;
}

/// `/mutate` runs MutatingAdmissionPolicies after the paved road's
/// defaults, on what they left: the patch, applied as the API server
/// applies it, gives both; a policy whose failurePolicy is Fail and that
/// cannot mutate the object refuses the request, as the API server would.
#[tokio::test]
async fn mutate_runs_mutating_admission_policies_after_the_defaults() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let policy = |failure: &str, expression: &str| {
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicy\nmetadata: {{name: team}}\nspec:\n  failurePolicy: {failure}\n  matchConstraints:\n    resourceRules:\n    - {{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}}\n  mutations:\n  - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: '{expression}'\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicyBinding\nmetadata: {{name: team}}\nspec: {{policyName: team}}\n"
        )
    };
    let path = dir.path().join("map.yaml");
    std::fs::write(&path, policy("Fail", r#"Object{metadata: Object.metadata{labels: {"team": "payments"}}}"#))
        .unwrap();
    let policies = vec![path.clone()];
    let server = start(move |o| o.policies = policies, None).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "map-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": "shop",
        "operation": "CREATE", "userInfo": {"username": "dev", "groups": ["system:authenticated"]},
        "object": pod, "dryRun": false}});
    let (status, body) = send(&server, post("/mutate", serde_json::to_vec(&review).unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    let answer = serde_json::from_slice::<Value>(&body).unwrap()["response"].clone();
    assert_eq!(answer["allowed"], true, "{answer}");
    let patch = base64::engine::general_purpose::STANDARD.decode(answer["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(patched["metadata"]["labels"], json!({"team": "payments"}));
    assert_eq!(patched["spec"]["securityContext"], json!({"seccompProfile": {"type": "RuntimeDefault"}}));
    let set = answer["auditAnnotations"]["defaults-set"].as_str().unwrap();
    assert!(set.contains("paved-road/default-seccomp") && set.ends_with("map/team/team"), "{set}");
    // An object exempt from the policy (the grants webhook, after this one,
    // refuses the annotation from anyone but the exception authority).
    let mut exempt = review.clone();
    exempt["request"]["object"]["metadata"]["annotations"] = json!({"paved.dev/exempt": "map/team/team", "paved.dev/exempt-reason": "OPS-3 labelled by the team's operator"});
    let (_, body) = send(&server, post("/mutate", serde_json::to_vec(&exempt).unwrap())).await;
    let answer = serde_json::from_slice::<Value>(&body).unwrap()["response"].clone();
    let set = answer["auditAnnotations"]["defaults-set"].as_str().unwrap();
    assert!(!set.contains("map/team/team") && set.contains("paved-road/default-seccomp"), "{set}");
    server.stop().await;
    // A policy that fails on the object (an atomic list it may not change).
    let failing = dir.path().join("failing.yaml");
    std::fs::write(
        &failing,
        policy(
            "Fail",
            r#"Object{spec: Object.spec{containers: [Object.spec.containers{name: "app", args: ["--x"]}]}}"#,
        ),
    )
    .unwrap();
    let policies = vec![failing];
    let server = start(move |o| o.policies = policies, None).await;
    let mut with_args = review.clone();
    with_args["request"]["object"]["spec"]["containers"][0]["args"] = json!(["--y"]);
    let (_, body) = send(&server, post("/mutate", serde_json::to_vec(&with_args).unwrap())).await;
    let refused = serde_json::from_slice::<Value>(&body).unwrap()["response"].clone();
    assert_eq!(refused["allowed"], false, "{refused}");
    let message = refused["status"]["message"].as_str().unwrap();
    assert!(message.contains("[map/team/team]") && message.contains("atomic list"), "{message}");
    server.stop().await;
}
