//! `AdmissionReview` (`admission.k8s.io/v1` and `v1beta1`, which share one
//! shape) as the API server sends it and expects it back.
//!
//! Written here rather than taken from kube-core because the webhook must
//! decode what the API server sends without loss or refusal: kube-core's
//! `operation` is a closed enum and its response encodes `patch` as an array of
//! numbers instead of base64 (STACK.md). Every field of the upstream type is
//! declared, which a round-trip test over kubernetes/api's fixtures proves.
//!
//! Requests are read by paved-core's JSON reader into one `Node` tree, and
//! the envelope's fields taken out of it by hand (`decode`): the object and
//! old object stay as borrowed subtrees. serde derives only serialize these
//! types; a serde visitor per value cost more than judging the request.

use std::collections::BTreeMap;

use paved_core::node::{Map, Node, Value};
use serde::{Deserialize, Serialize};

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview<'a> {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<AdmissionRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sub_resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_sub_resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// CREATE, UPDATE, DELETE or CONNECT; kept as text so that an operation
    /// added upstream later is answered, not refused.
    pub operation: String,
    pub user_info: UserInfo,
    /// A node tree that borrows from the request body.
    #[serde(skip_serializing_if = "Node::is_null")]
    pub object: Node<'a>,
    #[serde(skip_serializing_if = "Node::is_null")]
    pub old_object: Node<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// CreateOptions, UpdateOptions or DeleteOptions. Locks ignore them on purpose.
    #[serde(skip_serializing_if = "Node::is_null")]
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
    #[error("{field}: expected {expected}")]
    Field { field: &'static str, expected: &'static str },
}

impl<'a> AdmissionReview<'a> {
    /// Decodes a review the webhook can answer: the right version and kind, with a request.
    pub fn decode(body: &'a [u8]) -> Result<(String, AdmissionRequest<'a>), ReviewError> {
        let text = std::str::from_utf8(body).map_err(|e| ReviewError::Json(e.to_string()))?;
        let root = paved_core::json::parse(text).map_err(|e| {
            let (line, col) = line_col(text, e.offset);
            ReviewError::Json(format!("{} at line {line}, column {col}", e.message))
        })?;
        let mut root = object(Some(root), "(the body)")?;
        let api_version = string(take(&mut root, "apiVersion"), "apiVersion")?;
        if api_version != V1 && api_version != V1BETA1 {
            return Err(ReviewError::Version(api_version));
        }
        let kind = string(take(&mut root, "kind"), "kind")?;
        if kind != "AdmissionReview" {
            return Err(ReviewError::Kind(kind));
        }
        let request = take(&mut root, "request").filter(|r| !r.is_null()).ok_or(ReviewError::NoRequest)?;
        let mut r = object(Some(request), "request")?;
        let request = AdmissionRequest {
            uid: string(take(&mut r, "uid"), "request.uid")?,
            kind: gvk(take(&mut r, "kind"), "request.kind")?,
            resource: gvr(take(&mut r, "resource"), "request.resource")?,
            sub_resource: string(take(&mut r, "subResource"), "request.subResource")?,
            request_kind: present(take(&mut r, "requestKind"))
                .map(|n| gvk(Some(n), "request.requestKind"))
                .transpose()?,
            request_resource: present(take(&mut r, "requestResource"))
                .map(|n| gvr(Some(n), "request.requestResource"))
                .transpose()?,
            request_sub_resource: string(take(&mut r, "requestSubResource"), "request.requestSubResource")?,
            name: string(take(&mut r, "name"), "request.name")?,
            namespace: string(take(&mut r, "namespace"), "request.namespace")?,
            operation: string(take(&mut r, "operation"), "request.operation")?,
            user_info: user_info(take(&mut r, "userInfo"))?,
            object: take(&mut r, "object").unwrap_or_default(),
            old_object: take(&mut r, "oldObject").unwrap_or_default(),
            dry_run: match present(take(&mut r, "dryRun")).map(|n| n.value) {
                None => None,
                Some(Value::Bool(b)) => Some(b),
                Some(_) => return Err(ReviewError::Field { field: "request.dryRun", expected: "a boolean" }),
            },
            options: take(&mut r, "options").unwrap_or_default(),
        };
        Ok((api_version, request))
    }

    /// The answer: the same version as the request, the response only.
    pub fn answer(api_version: String, response: AdmissionResponse) -> AdmissionReview<'static> {
        AdmissionReview { api_version, kind: "AdmissionReview".into(), request: None, response: Some(response) }
    }
}

/// Takes a field out of an object (the last one, if a key repeats).
fn take<'a>(map: &mut Map<'a>, key: &str) -> Option<Node<'a>> {
    let i = map.entries.iter().rposition(|e| e.key == key)?;
    Some(map.entries.swap_remove(i).value)
}

/// Absent and null are the same to the API server's decoder.
fn present(node: Option<Node<'_>>) -> Option<Node<'_>> {
    node.filter(|n| !n.is_null())
}

fn string(node: Option<Node<'_>>, field: &'static str) -> Result<String, ReviewError> {
    match present(node).map(|n| n.value) {
        None => Ok(String::new()),
        Some(Value::Str(s)) => Ok(s.into_owned()),
        Some(_) => Err(ReviewError::Field { field, expected: "a string" }),
    }
}

fn strings(node: Option<Node<'_>>, field: &'static str) -> Result<Vec<String>, ReviewError> {
    match present(node).map(|n| n.value) {
        None => Ok(Vec::new()),
        Some(Value::Seq(items)) => items.into_iter().map(|i| string(Some(i), field)).collect(),
        Some(_) => Err(ReviewError::Field { field, expected: "a list of strings" }),
    }
}

fn object<'a>(node: Option<Node<'a>>, field: &'static str) -> Result<Map<'a>, ReviewError> {
    match present(node).map(|n| n.value) {
        None => Ok(Map::default()),
        Some(Value::Map(m)) => Ok(m),
        Some(_) => Err(ReviewError::Field { field, expected: "an object" }),
    }
}

fn gvk(node: Option<Node<'_>>, field: &'static str) -> Result<GroupVersionKind, ReviewError> {
    let mut m = object(node, field)?;
    Ok(GroupVersionKind {
        group: string(take(&mut m, "group"), field)?,
        version: string(take(&mut m, "version"), field)?,
        kind: string(take(&mut m, "kind"), field)?,
    })
}

fn gvr(node: Option<Node<'_>>, field: &'static str) -> Result<GroupVersionResource, ReviewError> {
    let mut m = object(node, field)?;
    Ok(GroupVersionResource {
        group: string(take(&mut m, "group"), field)?,
        version: string(take(&mut m, "version"), field)?,
        resource: string(take(&mut m, "resource"), field)?,
    })
}

fn user_info(node: Option<Node<'_>>) -> Result<UserInfo, ReviewError> {
    let field = "request.userInfo";
    let mut m = object(node, field)?;
    let mut extra = BTreeMap::new();
    for e in object(take(&mut m, "extra"), "request.userInfo.extra")?.entries {
        extra.insert(e.key.into_owned(), strings(Some(e.value), "request.userInfo.extra")?);
    }
    Ok(UserInfo {
        username: string(take(&mut m, "username"), field)?,
        uid: string(take(&mut m, "uid"), field)?,
        groups: strings(take(&mut m, "groups"), "request.userInfo.groups")?,
        extra,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}
