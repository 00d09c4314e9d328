//! Routes: `/validate` (everything), `/validate/locks`, `/validate/grants`,
//! `/validate/policies` (one webhook's part each), `/healthz`, `/readyz`,
//! `/metrics`; and what paved answers when it cannot judge.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use paved_admission::review::AdmissionReview;
use paved_admission::warning::first_fitting;
use paved_admission::{Event, Scope};
use paved_core::Timestamp;

use crate::Shared;
use crate::metrics::{FindingLabels, PolicyLabels, ResultLabels, VerdictLabels};

pub fn router(shared: Arc<Shared>) -> Router {
    let router = if shared.options.floor_endpoint { Router::new().route("/allow", post(allow)) } else { Router::new() };
    router
        .route("/validate", post(|s, r| validate(s, r, Scope::All)))
        .route("/validate/locks", post(|s, r| validate(s, r, Scope::Locks)))
        .route("/validate/grants", post(|s, r| validate(s, r, Scope::Grants)))
        .route("/validate/policies", post(|s, r| validate(s, r, Scope::Policies)))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = if shared.draining.load(Ordering::Acquire) {
            "draining"
        } else if !shared.certs.is_loaded() {
            "no TLS certificate loaded"
        } else {
            "cluster caches not synced"
        };
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Exposition::negotiate(accept);
    ([(header::CONTENT_TYPE, format.content_type())], shared.metrics.encode_as(format)).into_response()
}

fn plain(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message + "\n").into_response()
}

/// How much of a body is read to find the review's `apiVersion` and
/// `request.uid` when the rest will not be judged: the API server writes
/// both first.
const ENVELOPE_PREFIX: usize = 64 * 1024;

/// Why a body was not read whole.
enum Unread {
    /// Over the size cap, or over the memory budget for bodies in progress:
    /// what was read so far.
    TooLarge { prefix: Bytes, over_budget: bool },
    /// An answer already made (a broken body, a deadline).
    Answer(Response),
}

/// A body read whole, with its share of the memory budget (released when
/// the request is done).
struct Read {
    bytes: Bytes,
    _budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Reads the body within the size cap, the memory budget and the deadline.
async fn read_body(shared: &Shared, body: Body, started: Instant) -> Result<Read, Unread> {
    let max = shared.options.max_body_bytes;
    let mut body = std::pin::pin!(body);
    let mut buffer = bytes::BytesMut::new();
    let mut budget: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let deadline = shared.options.deadline.saturating_sub(started.elapsed());
    let read = tokio::time::timeout(deadline, async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                shared.metrics.reject("read-error");
                Unread::Answer(plain(StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}")))
            })?;
            let Ok(data) = frame.into_data() else { continue };
            let over_cap = buffer.len() + data.len() > max;
            // Each KiB read holds a KiB of the budget, so that bodies in
            // progress together stay within it.
            let kib = u32::try_from(data.len().div_ceil(1024)).unwrap_or(u32::MAX);
            let granted =
                if over_cap { None } else { Arc::clone(&shared.body_budget).try_acquire_many_owned(kib).ok() };
            match (over_cap, granted) {
                (false, Some(permit)) => match budget.as_mut() {
                    Some(held) => held.merge(permit),
                    None => budget = Some(permit),
                },
                _ => {
                    let keep = ENVELOPE_PREFIX.saturating_sub(buffer.len()).min(data.len());
                    buffer.extend_from_slice(&data[..keep]);
                    return Err(Unread::TooLarge { prefix: buffer.split().freeze(), over_budget: !over_cap });
                }
            }
            buffer.extend_from_slice(&data);
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => Ok(Read { bytes: buffer.freeze(), _budget: budget }),
        Ok(Err(unread)) => Err(unread),
        Err(_) => {
            shared.metrics.reject("deadline");
            Err(Unread::Answer(plain(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {:?}", shared.options.deadline),
            )))
        }
    }
}

/// Reads up to `ENVELOPE_PREFIX` bytes of a body that will not be judged.
async fn read_prefix(body: Body, within: std::time::Duration) -> Bytes {
    let mut body = std::pin::pin!(body);
    let mut buffer = bytes::BytesMut::new();
    let _ = tokio::time::timeout(within, async {
        while buffer.len() < ENVELOPE_PREFIX {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let keep = (ENVELOPE_PREFIX - buffer.len()).min(data.len());
                        buffer.extend_from_slice(&data[..keep]);
                    }
                }
                _ => break,
            }
        }
    })
    .await;
    buffer.freeze()
}

/// The review's `apiVersion` and `request.uid`, from the start of its body.
/// The API server writes `apiVersion` and `kind` before `request`, and
/// `uid` first in `request`, so the first `"uid"` key is the request's.
fn envelope(body: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(&body[..body.len().min(ENVELOPE_PREFIX)]);
    let value_of = |key: &str| -> Option<String> {
        let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
        let rest = text[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
        let end = rest.find('"')?;
        let value = &rest[..end];
        // A uid or an apiVersion is plain text: no escapes, no control characters.
        (!value.is_empty() && !value.contains('\\') && value.len() <= 128).then(|| value.to_owned())
    };
    let api_version = value_of("apiVersion").filter(|v| v.starts_with("admission.k8s.io/"))?;
    Some((api_version, value_of("uid")?))
}

/// Why CPU work gave no answer: no evaluation could start, it panicked,
/// or the deadline came first.
enum Unfinished {
    Busy,
    Panicked(tokio::task::JoinError),
    Late,
}

/// Runs `work` on a blocking thread, as one of a bounded number of
/// evaluations at a time, awaited only until the request's deadline:
/// judging and mutating are CPU work. A review that cannot start or finish
/// by then gets no answer from it; the work in progress finishes in the
/// background (it is linear in the object and capped).
async fn within_deadline<T: Send + 'static>(
    shared: &Arc<Shared>,
    started: Instant,
    work: impl FnOnce(&Shared) -> T + Send + 'static,
) -> Result<T, Unfinished> {
    let remaining = || shared.options.deadline.saturating_sub(started.elapsed());
    let Ok(Ok(evaluation)) = tokio::time::timeout(remaining(), Arc::clone(&shared.evaluations).acquire_owned()).await
    else {
        return Err(Unfinished::Busy);
    };
    let worker = {
        let shared = Arc::clone(shared);
        tokio::task::spawn_blocking(move || {
            let _evaluation = evaluation;
            work(&shared)
        })
    };
    match tokio::time::timeout(remaining(), worker).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(Unfinished::Panicked(e)),
        Err(_) => Err(Unfinished::Late),
    }
}

/// A refusal for a review paved cannot judge (too large, too slow, over
/// its limits): an answer the API server honours, never an error it would
/// apply the failure policy to, so that no failure lets a request through
/// unjudged. Without the envelope (not a review the API server sent), a
/// plain error.
fn refuse(shared: &Shared, prefix: &[u8], reason: &'static str, message: String, fallback: StatusCode) -> Response {
    shared.metrics.reject(reason);
    let Some((api_version, uid)) = envelope(prefix) else { return plain(fallback, message) };
    tracing::warn!(%uid, reason, "refused without a judgment");
    shared.metrics.requests.get_or_create(&VerdictLabels { operation: "other", verdict: "refused" }).inc();
    let response = paved_admission::review::AdmissionResponse {
        uid,
        allowed: false,
        status: Some(paved_admission::review::Status {
            status: "Failure".into(),
            message: format!("paved refused this request without judging it: {message}"),
            reason: "Forbidden".into(),
            code: Some(403),
            ..Default::default()
        }),
        ..Default::default()
    };
    match serde_json::to_vec(&AdmissionReview::answer(api_version, response)) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the response: {e}")),
    }
}

/// The benchmark's floor: the same TLS, HTTP and body handling, then "allowed"
/// without a judgment. Only served with `--floor-endpoint`.
async fn allow(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    #[derive(serde::Deserialize)]
    struct Uid {
        uid: String,
    }
    #[derive(serde::Deserialize)]
    struct Review {
        #[serde(rename = "apiVersion")]
        api_version: String,
        request: Uid,
    }
    let body = match read_body(&shared, request.into_body(), Instant::now()).await {
        Ok(read) => read.bytes,
        Err(Unread::Answer(response)) => return response,
        Err(Unread::TooLarge { .. }) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "too large".into()),
    };
    match serde_json::from_slice::<Review>(&body) {
        Ok(r) => {
            let response =
                paved_admission::review::AdmissionResponse { uid: r.request.uid, allowed: true, ..Default::default() };
            let json = serde_json::to_vec(&AdmissionReview::answer(r.api_version, response)).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Err(e) => plain(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn validate(State(shared): State<Arc<Shared>>, request: Request, scope: Scope) -> Response {
    let started = Instant::now();
    // Until every cache has listed once, paved does not know which namespaces
    // hold locks, which pods are locked, or how namespaces choose their
    // policies: an answer now could allow what it should refuse. 503 makes
    // the API server apply the webhook's failurePolicy, as if paved were down.
    if !shared.synced.load(Ordering::Acquire) {
        shared.metrics.reject("not-synced");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "paved's cluster caches have not synced yet; retry".into());
    }
    let remaining = || shared.options.deadline.saturating_sub(started.elapsed());
    // Beyond the limit of reviews in progress, refuse at once rather than
    // queue (the API server would only wait for its own timeout) or answer
    // an error (which the policies webhook's failurePolicy would let
    // through: a flood must not open a window for other requests).
    let Ok(_slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
        let prefix = read_prefix(request.into_body(), remaining()).await;
        return refuse(
            &shared,
            &prefix,
            "overloaded",
            "paved is at its limit of reviews in progress; retry".into(),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    let max = shared.options.max_body_bytes;
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let too_large = format!("the review is over {max} bytes, more than paved judges");
    if declared.is_some_and(|n| n > max) {
        let prefix = read_prefix(request.into_body(), remaining()).await;
        return refuse(&shared, &prefix, "too-large", too_large, StatusCode::PAYLOAD_TOO_LARGE);
    }
    let read = match read_body(&shared, request.into_body(), started).await {
        Ok(read) => read,
        Err(Unread::Answer(response)) => return response,
        Err(Unread::TooLarge { prefix, over_budget: false }) => {
            return refuse(&shared, &prefix, "too-large", too_large, StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(Unread::TooLarge { prefix, over_budget: true }) => {
            return refuse(
                &shared,
                &prefix,
                "overloaded",
                "paved is at its memory limit for reviews in progress; retry".into(),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    // A review that cannot be judged in time is refused, never answered
    // with an error, which a webhook that fails open would let through.
    let judged = {
        let bytes = read.bytes.clone();
        within_deadline(&shared, started, move |shared| judge(shared, &bytes, scope, started)).await
    };
    match judged {
        Ok(Ok(mut judged)) => {
            if let Some((namespace, labels)) = judged.relabelled.take()
                && judged.response.allowed
            {
                let extra = relabel_warnings(&shared, namespace, labels, remaining()).await;
                if !extra.is_empty() {
                    let mut warnings = std::mem::take(&mut judged.response.warnings);
                    warnings.extend(extra);
                    judged.response.warnings = paved_admission::decide::bound_warnings(warnings);
                }
            }
            let answer = AdmissionReview::answer(judged.api_version, judged.response);
            match serde_json::to_vec(&answer) {
                Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
                Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the response: {e}")),
            }
        }
        Ok(Err(malformed)) => plain(StatusCode::BAD_REQUEST, malformed),
        Err(Unfinished::Busy) => refuse(
            &shared,
            &read.bytes,
            "overloaded",
            "paved is at its limit of reviews in progress; retry".into(),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(Unfinished::Panicked(e)) => {
            tracing::error!(error = %e, "judging a review failed");
            refuse(
                &shared,
                &read.bytes,
                "panic",
                "paved failed while judging it; this is a bug, please report it".into(),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
        Err(Unfinished::Late) => refuse(
            &shared,
            &read.bytes,
            "deadline",
            format!("it could not be judged within {:?}; a smaller object would be", shared.options.deadline),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

/// `/mutate`: the paved road's defaults as a base64 JSON Patch. The
/// mutating webhook fails open (`failurePolicy: Ignore`), so anything but an
/// answer in time (not synced, overloaded, too large, late, broken) is an
/// HTTP error, which the API server ignores: the object goes on unchanged.
/// Never an answer that refuses.
async fn mutate(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let failed = |reason: &'static str, status: StatusCode, message: &str| {
        shared.metrics.mutation(reason);
        plain(status, message.to_owned())
    };
    if !shared.synced.load(Ordering::Acquire) {
        return failed("not-synced", StatusCode::SERVICE_UNAVAILABLE, "paved's cluster caches have not synced yet");
    }
    let Ok(_slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
        return failed("overloaded", StatusCode::SERVICE_UNAVAILABLE, "paved is at its limit of reviews in progress");
    };
    let read = match read_body(&shared, request.into_body(), started).await {
        Ok(read) => read,
        Err(Unread::Answer(response)) => {
            shared.metrics.mutation("unread");
            return response;
        }
        Err(Unread::TooLarge { .. }) => {
            return failed("too-large", StatusCode::PAYLOAD_TOO_LARGE, "the review is larger than paved mutates");
        }
    };
    let mutated = within_deadline(&shared, started, move |shared| mutation(shared, &read.bytes)).await;
    let response = match mutated {
        Ok(Ok(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Ok(Err(malformed)) => failed("malformed", StatusCode::BAD_REQUEST, &malformed),
        Err(Unfinished::Busy) => {
            failed("overloaded", StatusCode::SERVICE_UNAVAILABLE, "paved is at its limit of reviews in progress")
        }
        Err(Unfinished::Panicked(e)) => {
            tracing::error!(error = %e, "mutating a review failed");
            failed("panic", StatusCode::INTERNAL_SERVER_ERROR, "paved failed while mutating it")
        }
        Err(Unfinished::Late) => failed("deadline", StatusCode::SERVICE_UNAVAILABLE, "no time left to mutate it"),
    };
    shared.metrics.mutation_latency.observe(started.elapsed().as_secs_f64());
    response
}

/// The answer to one `/mutate` review, encoded.
fn mutation(shared: &Shared, body: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let (api_version, review) = AdmissionReview::decode(body).map_err(|e| e.to_string())?;
    let mutated = {
        let admission = shared.admission.load();
        match shared.cluster.read() {
            Ok(cluster) => admission.mutate(&review, &cluster, Timestamp::now()),
            Err(poisoned) => admission.mutate(&review, &poisoned.into_inner(), Timestamp::now()),
        }
    };
    let mut response = paved_admission::review::AdmissionResponse {
        uid: review.uid.clone(),
        allowed: true,
        warnings: mutated.warnings,
        ..Default::default()
    };
    if let Some(why) = mutated.refused {
        // A MutatingAdmissionPolicy with failurePolicy Fail that could not
        // mutate the object: refused, as the API server refuses it.
        shared.metrics.mutation("refused");
        let verdict = paved_admission::Verdict {
            denials: vec![format!("a MutatingAdmissionPolicy could not mutate it: {why}")],
            ..Default::default()
        };
        let refused = verdict.into_response(review.uid.clone());
        return serde_json::to_vec(&AdmissionReview::answer(api_version, refused)).map_err(|e| e.to_string());
    }
    if mutated.patch.is_empty() {
        shared.metrics.mutation("unchanged");
    } else {
        let patch = serde_json::to_vec(&mutated.patch).map_err(|e| e.to_string())?;
        response.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch));
        response.patch_type = Some("JSONPatch".into());
        let set: Vec<&str> = mutated.policies.iter().map(|p| p.as_ref()).collect();
        response.audit_annotations.insert("defaults-set".into(), set.join(","));
        // A dry run sets nothing: counted as asked, not as set.
        shared.metrics.mutation(if review.dry_run == Some(true) { "patched-dry-run" } else { "patched" });
        if review.dry_run != Some(true) {
            for policy in mutated.policies {
                shared.metrics.defaults_set.get_or_create(&PolicyLabels { policy }).inc();
            }
        }
    }
    serde_json::to_vec(&AdmissionReview::answer(api_version, response)).map_err(|e| e.to_string())
}

/// A review judged, and what is left to do before answering.
struct Judged {
    api_version: String,
    response: paved_admission::review::AdmissionResponse,
    /// A Namespace relabelled: its workloads are listed for warnings.
    relabelled: Option<(String, paved_admission::cluster::NamespaceLabels)>,
}

/// How long listing a relabelled Namespace's workloads may take, at most.
const RELABEL_LIST_BUDGET: std::time::Duration = std::time::Duration::from_millis(1000);
/// Objects of each workload kind listed for those warnings (one page).
const RELABEL_LIST_LIMIT: u32 = 200;

/// Warnings naming the workloads a Namespace's new labels would refuse
/// (see `Admission::relabel_warnings`), from one bounded page of each
/// workload kind, listed within the budget; a listing that fails or is
/// slow is a warning saying so, never a reason to refuse.
async fn relabel_warnings(
    shared: &Arc<Shared>,
    namespace: String,
    labels: paved_admission::cluster::NamespaceLabels,
    within: std::time::Duration,
) -> Vec<String> {
    let Some(client) = shared.client.get().cloned() else { return Vec::new() };
    let listed = tokio::time::timeout(within.min(RELABEL_LIST_BUDGET), list_workloads(client, &namespace)).await;
    let objects = match listed {
        Ok(Ok(objects)) => objects,
        Ok(Err(e)) => {
            return vec![first_fitting(
                [
                    format!("paved: could not list the workloads of {namespace} to check them: {e}."),
                    format!("paved: could not list the workloads of {namespace} to check them."),
                ],
                "paved: could not list this namespace's workloads to check them.",
            )];
        }
        Err(_) => {
            return vec![first_fitting(
                [format!("paved: no time to check the workloads of {namespace}; run paved audit -n {namespace}.")],
                "paved: no time to check this namespace's workloads; run paved audit.",
            )];
        }
    };
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let nodes: Vec<paved_core::node::Node> = objects.iter().map(paved_core::node::Node::from_json).collect();
        shared.admission.load().relabel_warnings(&namespace, &labels, &nodes, Timestamp::now())
    })
    .await
    .unwrap_or_default()
}

/// One page of each workload kind in a namespace, as JSON with kind and apiVersion.
async fn list_workloads(client: kube::Client, namespace: &str) -> Result<Vec<serde_json::Value>, kube::Error> {
    use kube::api::{Api, ApiResource, DynamicObject, ListParams};
    use kube::core::GroupVersionKind;
    const WORKLOADS: [(&str, &str, &str, &str); 8] = [
        ("", "v1", "Pod", "pods"),
        ("", "v1", "ReplicationController", "replicationcontrollers"),
        ("apps", "v1", "Deployment", "deployments"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        ("apps", "v1", "DaemonSet", "daemonsets"),
        ("apps", "v1", "ReplicaSet", "replicasets"),
        ("batch", "v1", "Job", "jobs"),
        ("batch", "v1", "CronJob", "cronjobs"),
    ];
    let lists = WORKLOADS.iter().map(|(group, version, kind, plural)| {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        async move {
            let list = api.list(&ListParams::default().limit(RELABEL_LIST_LIMIT)).await?;
            Ok::<_, kube::Error>((resource, list.items))
        }
    });
    let mut objects = Vec::new();
    for listed in futures_util::future::join_all(lists).await {
        let (resource, items) = listed?;
        for item in items {
            let Ok(mut value) = serde_json::to_value(&item) else { continue };
            if let Some(map) = value.as_object_mut() {
                map.insert("apiVersion".into(), resource.api_version.clone().into());
                map.insert("kind".into(), resource.kind.clone().into());
            }
            objects.push(value);
        }
    }
    Ok(objects)
}

/// Decodes and judges one review (on a blocking thread); `Err` is why the
/// body is not a review.
fn judge(shared: &Shared, body: &[u8], scope: Scope, started: Instant) -> Result<Judged, String> {
    let (api_version, review) = match AdmissionReview::decode(body) {
        Ok(decoded) => decoded,
        Err(e) => {
            shared.metrics.reject("malformed");
            return Err(e.to_string());
        }
    };
    let mut verdict = {
        let admission = shared.admission.load();
        match shared.cluster.read() {
            Ok(cluster) => admission.review_scoped(&review, &cluster, Timestamp::now(), scope),
            // A writer panicked mid-update; the state it left is still the best we know.
            Err(poisoned) => admission.review_scoped(&review, &poisoned.into_inner(), Timestamp::now(), scope),
        }
    };
    record(shared, &review, &verdict);
    shared.metrics.latency.observe(started.elapsed().as_secs_f64());
    let relabelled = verdict.relabelled.take();
    Ok(Judged { api_version, response: verdict.into_response(review.uid.clone()), relabelled })
}

/// Metrics and log lines. Dry runs count as requests, but not as gestures on
/// locks or exemptions: nothing was deleted, unlocked or granted.
fn record(shared: &Shared, review: &paved_admission::review::AdmissionRequest, verdict: &paved_admission::Verdict) {
    let m = &shared.metrics;
    let verdict_label = verdict.outcome();
    let operation = match review.operation.as_str() {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        // Whatever a client sends must not grow the metric's label set.
        _ => "other",
    };
    m.requests.get_or_create(&VerdictLabels { operation, verdict: verdict_label }).inc();
    for (policy, action) in &verdict.findings {
        m.findings.get_or_create(&FindingLabels { policy: policy.clone(), action: action.as_str() }).inc();
    }
    let user = review.user_info.username.as_str();
    let dry_run = verdict.dry_run;
    for event in &verdict.events {
        match event {
            Event::DeleteRefused { object } => {
                if !dry_run {
                    m.delete_refusals.inc();
                }
                tracing::warn!(uid = %review.uid, %object, %user, dry_run, "delete refused: locked");
            }
            Event::Unlocked { object, by } => {
                if !dry_run {
                    m.unlocks.get_or_create(&ResultLabels { result: "lifted" }).inc();
                }
                tracing::warn!(uid = %review.uid, %object, %by, dry_run, "lock lifted");
            }
            Event::UnlockRefused { object, by } => {
                if !dry_run {
                    m.unlocks.get_or_create(&ResultLabels { result: "refused" }).inc();
                }
                tracing::warn!(uid = %review.uid, %object, %by, dry_run, "unlock refused: not the lock authority");
            }
            Event::ExemptionGranted { policy, by } => {
                if !dry_run {
                    m.exemptions.get_or_create(&ResultLabels { result: "granted" }).inc();
                }
                tracing::info!(uid = %review.uid, subject = %verdict.subject, %policy, %by, dry_run, "exemption granted");
            }
            Event::ExemptionRefused { policy, by } => {
                if !dry_run {
                    m.exemptions.get_or_create(&ResultLabels { result: "refused" }).inc();
                }
                tracing::warn!(uid = %review.uid, subject = %verdict.subject, %policy, %by, dry_run, "exemption refused: not the exception authority");
            }
        }
    }
    if !verdict.allowed() {
        tracing::info!(uid = %review.uid, subject = %verdict.subject, %user, operation = %review.operation, dry_run, reasons = verdict.denials.len(), "denied");
    } else {
        tracing::debug!(uid = %review.uid, subject = %verdict.subject, verdict = verdict_label, "admitted");
    }
}
