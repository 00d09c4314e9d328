//! Routes: `/validate`, `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use paved_admission::review::AdmissionReview;
use paved_admission::{Event, Scope};
use paved_core::Timestamp;

use crate::Shared;
use crate::metrics::{FindingLabels, ResultLabels, VerdictLabels};

pub fn router(shared: Arc<Shared>) -> Router {
    let router = if shared.options.floor_endpoint { Router::new().route("/allow", post(allow)) } else { Router::new() };
    router
        .route("/validate", post(|s, r| validate(s, r, Scope::All)))
        .route("/validate/locks", post(|s, r| validate(s, r, Scope::Locks)))
        .route("/validate/grants", post(|s, r| validate(s, r, Scope::Grants)))
        .route("/validate/policies", post(|s, r| validate(s, r, Scope::Policies)))
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

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.metrics.encode();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

fn plain(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message + "\n").into_response()
}

/// Reads the body within the size cap and the deadline.
async fn read_body(shared: &Shared, body: Body) -> Result<Bytes, Response> {
    let max = shared.options.max_body_bytes;
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(shared.options.deadline, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            shared.metrics.reject("too-large");
            Err(plain(StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {max} bytes")))
        }
        Ok(Err(e)) => {
            shared.metrics.reject("read-error");
            Err(plain(StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}")))
        }
        Err(_) => {
            shared.metrics.reject("deadline");
            Err(plain(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {:?}", shared.options.deadline),
            ))
        }
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
    let body = match read_body(&shared, request.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
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
    // Shed rather than queue: a queue would only make the API server wait
    // until its own timeout.
    let Ok(_slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
        shared.metrics.reject("overloaded");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "paved is at its limit of reviews in progress; retry".into());
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > shared.options.max_body_bytes) {
        shared.metrics.reject("too-large");
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {} bytes", shared.options.max_body_bytes),
        );
    }
    let body = match read_body(&shared, request.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (api_version, review) = match AdmissionReview::decode(&body) {
        Ok(decoded) => decoded,
        Err(e) => {
            shared.metrics.reject("malformed");
            return plain(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let verdict = {
        let admission = shared.admission.load();
        match shared.cluster.read() {
            Ok(cluster) => admission.review_scoped(&review, &cluster, Timestamp::now(), scope),
            // A writer panicked mid-update; the state it left is still the best we know.
            Err(poisoned) => admission.review_scoped(&review, &poisoned.into_inner(), Timestamp::now(), scope),
        }
    };
    record(&shared, &review, &verdict);
    let answer = AdmissionReview::answer(api_version, verdict.into_response(review.uid.clone()));
    let json = match serde_json::to_vec(&answer) {
        Ok(json) => json,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the response: {e}")),
    };
    shared.metrics.latency.observe(started.elapsed().as_secs_f64());
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
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
