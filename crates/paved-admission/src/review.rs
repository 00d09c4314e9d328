//! `AdmissionReview` (`admission.k8s.io/v1` and `v1beta1`, which share one
//! shape) as the API server sends it and expects it back.
//!
//! Written here rather than taken from kube-core because the webhook must
//! decode what the API server sends without loss or refusal: kube-core's
//! `operation` is a closed enum and its response encodes `patch` as an array of
//! numbers instead of base64 (STACK.md). Every field of the upstream type is
//! declared, which a round-trip test over kubernetes/api's fixtures proves.

use std::collections::BTreeMap;

use paved_core::node::Node;
use serde::{Deserialize, Serialize};

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview<'a> {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub request: Option<AdmissionRequest<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub resource: GroupVersionResource,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_sub_resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// CREATE, UPDATE, DELETE or CONNECT; kept as text so that an operation
    /// added upstream later is answered, not refused.
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub user_info: UserInfo,
    /// Read straight into a node tree that borrows from the request body.
    #[serde(borrow, default, skip_serializing_if = "Node::is_null")]
    pub object: Node<'a>,
    #[serde(borrow, default, skip_serializing_if = "Node::is_null")]
    pub old_object: Node<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// CreateOptions, UpdateOptions or DeleteOptions. Locks ignore them on purpose.
    #[serde(borrow, default, skip_serializing_if = "Node::is_null")]
    pub options: Node<'a>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 of a JSON patch, as the API server expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `metav1.Status`, as far as a webhook fills it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("not JSON an AdmissionReview can be read from: {0}")]
    Json(String),
    #[error("apiVersion {0:?}: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1")]
    Version(String),
    #[error("kind {0:?}: expected AdmissionReview")]
    Kind(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
}

impl<'a> AdmissionReview<'a> {
    /// Decodes a review the webhook can answer: the right version and kind, with a request.
    pub fn decode(body: &'a [u8]) -> Result<(String, AdmissionRequest<'a>), ReviewError> {
        // Validating UTF-8 once up front is much cheaper than string by string.
        let text = std::str::from_utf8(body).map_err(|e| ReviewError::Json(e.to_string()))?;
        let review: AdmissionReview = serde_json::from_str(text).map_err(|e| ReviewError::Json(e.to_string()))?;
        if review.api_version != V1 && review.api_version != V1BETA1 {
            return Err(ReviewError::Version(review.api_version));
        }
        if review.kind != "AdmissionReview" {
            return Err(ReviewError::Kind(review.kind));
        }
        let request = review.request.ok_or(ReviewError::NoRequest)?;
        Ok((review.api_version, request))
    }

    /// The answer: the same version as the request, the response only.
    pub fn answer(api_version: String, response: AdmissionResponse) -> AdmissionReview<'static> {
        AdmissionReview { api_version, kind: "AdmissionReview".into(), request: None, response: Some(response) }
    }
}
