//! Discovery and paginated lists: what the cluster serves, and every object
//! of a kind, a page at a time so memory stays bounded by the page size.

use std::borrow::Cow;
use std::time::Duration;

use http::Request;
use kube::api::ListParams;
use paved_core::node::{Entry, Node, Span, Value};
use serde::Deserialize;

/// Objects per list request: small enough that a page of large objects stays
/// a few megabytes, large enough that round trips do not dominate.
pub const DEFAULT_PAGE: u32 = 500;

/// Kinds an audit never lists: derived or high-churn objects no policy judges
/// (events, leases, endpoints), and Secrets, whose contents paved must not read.
pub const NEVER_LISTED: &[(&str, &str)] = &[
    ("", "events"),
    ("events.k8s.io", "events"),
    ("", "secrets"),
    ("", "endpoints"),
    ("discovery.k8s.io", "endpointslices"),
    ("coordination.k8s.io", "leases"),
    ("", "componentstatuses"),
];

/// A served kind, in its group's preferred version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    /// The plural name used in paths: `deployments`.
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    /// List in this namespace only (namespaced kinds).
    pub namespace: Option<String>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn list_path(&self) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match self.namespace.as_deref().filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }

    /// `deployments.apps`, as kubectl names a resource.
    pub fn display(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{what}: {message}")]
    Request {
        what: String,
        message: String,
        code: Option<u16>,
        /// The fresh continue token a 410 Gone may carry in its Status.
        fresh_continue: Option<String>,
    },
    #[error("{what}: the response is not JSON the API server sends: {message}")]
    Malformed { what: String, message: String },
}

impl ListError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ListError::Request { code, .. } => *code,
            ListError::Malformed { .. } => None,
        }
    }
}

/// What discovery found; groups that failed (an aggregated API that is down)
/// are problems, not failures, as kubectl treats them.
#[derive(Debug, Default)]
pub struct Discovery {
    pub resources: Vec<Resource>,
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
struct GroupList {
    #[serde(default)]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    name: String,
    #[serde(rename = "preferredVersion")]
    preferred: Option<GroupVersion>,
    #[serde(default)]
    versions: Vec<GroupVersion>,
}

#[derive(Deserialize)]
struct GroupVersion {
    version: String,
}

#[derive(Deserialize)]
struct ResourceList {
    #[serde(default)]
    resources: Vec<ApiResource>,
}

#[derive(Deserialize)]
struct ApiResource {
    name: String,
    kind: String,
    namespaced: bool,
    #[serde(default)]
    verbs: Vec<String>,
}

/// Sends a GET built by kube's request builder; 429, 503 and 504 are tried
/// again up to `retries` times. `what` names it in errors.
async fn get_text(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
    what: &str,
    retries: u64,
) -> Result<String, ListError> {
    let mut attempt = 0;
    loop {
        match client.request_text(request.clone()).await {
            Ok(text) => return Ok(text),
            // Overload and timeouts are worth one more try; anything else is the answer.
            Err(kube::Error::Api(status)) if matches!(status.code, 429 | 503 | 504) && attempt < retries => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            Err(e) => return Err(request_error(what, e)),
        }
    }
}

fn request_error(what: &str, e: kube::Error) -> ListError {
    match e {
        kube::Error::Api(status) => ListError::Request {
            what: what.to_owned(),
            message: if status.message.is_empty() { status.reason.clone() } else { status.message.clone() },
            code: Some(status.code),
            fresh_continue: status.metadata.and_then(|m| m.continue_).filter(|t| !t.is_empty()),
        },
        other => {
            ListError::Request { what: what.to_owned(), message: other.to_string(), code: None, fresh_continue: None }
        }
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(client: &kube::Client, path: &str) -> Result<T, ListError> {
    // Discovery is not retried: like kubectl, an unavailable aggregated API is
    // reported at once and the rest goes on.
    let request = Request::get(path).body(Vec::new()).map_err(|e| request_error(path, kube::Error::HttpError(e)))?;
    let text = get_text(client, request, path, 0).await?;
    serde_json::from_str(&text).map_err(|e| ListError::Malformed { what: path.to_owned(), message: e.to_string() })
}

/// Every listable kind the cluster serves, in each group's preferred version.
pub async fn discover(client: &kube::Client) -> Result<Discovery, ListError> {
    let mut found = Discovery::default();
    let mut versions: Vec<(String, String)> = vec![(String::new(), "v1".to_owned())];
    let groups: GroupList = get_json(client, "/apis").await?;
    for g in groups.groups {
        let version = g.preferred.or_else(|| g.versions.into_iter().next());
        if let Some(v) = version {
            versions.push((g.name, v.version));
        }
    }
    for (group, version) in versions {
        let path = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let list: ResourceList = match get_json(client, &path).await {
            Ok(list) => list,
            Err(e) if group.is_empty() => return Err(e),
            Err(e) => {
                found.problems.push(format!("discovery of {group}/{version} failed: {e}"));
                continue;
            }
        };
        for r in list.resources {
            // Subresources (pods/log) are not kinds; some kinds cannot be listed.
            if r.name.contains('/') || !r.verbs.iter().any(|v| v == "list") {
                continue;
            }
            if NEVER_LISTED.iter().any(|(g, p)| *g == group && *p == r.name) {
                continue;
            }
            found.resources.push(Resource {
                group: group.clone(),
                version: version.clone(),
                plural: r.name,
                kind: r.kind,
                namespaced: r.namespaced,
                namespace: None,
            });
        }
    }
    Ok(found)
}

/// How a list ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub objects: u64,
    pub pages: u32,
    /// A continue token expired (410 Gone) mid-list and the server offered a
    /// fresh one: the result is complete but not one consistent snapshot.
    pub inconsistent: bool,
}

/// Lists every object of `resource`, `page` at a time, calling `each` with
/// every object (with `kind` and `apiVersion` filled in, which list items lack).
///
/// A 410 Gone on an expired continue token continues with the token the
/// server sends with it; without one the list ends in the error, because
/// restarting would count objects twice.
pub async fn list_all(
    client: &kube::Client,
    resource: &Resource,
    page: u32,
    mut each: impl FnMut(&Node<'_>),
) -> Result<Listed, ListError> {
    let base = resource.list_path();
    let api_version = resource.api_version();
    let mut listed = Listed::default();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(page);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let request = kube::core::Request::new(&base).list(&params).map_err(|e| ListError::Request {
            what: base.clone(),
            message: e.to_string(),
            code: None,
            fresh_continue: None,
        })?;
        let text = match get_text(client, request, &base, 2).await {
            Ok(text) => text,
            Err(ListError::Request { code: Some(410), fresh_continue: Some(fresh), .. }) if token.is_some() => {
                listed.inconsistent = true;
                token = Some(fresh);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut root = paved_core::json::parse(&text)
            .map_err(|e| ListError::Malformed { what: base.clone(), message: e.to_string() })?;
        listed.pages += 1;
        let next =
            root.at(&["metadata", "continue"]).and_then(Node::as_str).filter(|t| !t.is_empty()).map(str::to_owned);
        if let Value::Map(map) = &mut root.value
            && let Some(items) = map.entries.iter_mut().find(|e| e.key == "items")
            && let Value::Seq(items) = &mut items.value.value
        {
            for item in items.iter_mut() {
                set_type(item, &resource.kind, &api_version);
                each(item);
                listed.objects += 1;
            }
        }
        match next {
            Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
            // No token, or the same token again (a broken server): done.
            _ => return Ok(listed),
        }
    }
}

fn set_type<'a>(item: &mut Node<'a>, kind: &str, api_version: &str) {
    let Value::Map(map) = &mut item.value else { return };
    for (key, value) in [("apiVersion", api_version), ("kind", kind)] {
        if map.get(key).is_none() {
            map.entries.insert(
                0,
                Entry {
                    key: Cow::Borrowed(key),
                    key_span: Span::NONE,
                    value: Node::new(Value::Str(Cow::Owned(value.to_owned()))),
                },
            );
        }
    }
}
