//! The configuration (`.paved.yaml`) as data. Parsing the file is the
//! binary's job; this module only describes it and validates its meaning.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `.paved.yaml`: see PRODUCT.md section 6.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Profile and optional PSS version: `paved-road`, `pss-restricted:v1.29`.
    #[serde(default)]
    pub profile: Option<String>,
    /// Per-policy action overrides; keys are policy ids or globs (`pss-restricted/*`).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub params: Params,
    #[serde(default)]
    pub exceptions: Exceptions,
    #[serde(default)]
    pub locks: Locks,
    /// More policies (paved, Gatekeeper or ValidatingAdmissionPolicy format).
    #[serde(default)]
    pub policy_paths: Vec<String>,
    /// Which code of a Gatekeeper template runs when it has both Rego and
    /// CEL (`K8sNativeValidation`): `rego` (the default) or `cel`.
    #[serde(default)]
    pub policy_engine: PolicyEngine,
    /// Where each native policy's documentation is, as a page whose anchors
    /// are policy ids: the links of SARIF reports and editor diagnostics.
    /// Unset: the project's `docs/policies.md`; empty: no links.
    #[serde(default)]
    pub docs_url: Option<String>,
    /// What the paved road's defaults set beyond the fixed safe settings.
    #[serde(default)]
    pub defaults: Defaults,
}

/// `defaults:`: values the paved road sets where a workload says nothing.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Requests and limits for containers that name none (`paved-road/default-resources`).
    #[serde(default)]
    pub resources: crate::mutate::ResourceDefaults,
}

/// The engine for Gatekeeper templates that carry code for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyEngine {
    #[default]
    Rego,
    Cel,
}

/// Parameters that native policies read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Registries (host, or host/path prefix) images may come from. Unset: any.
    #[serde(default)]
    pub allowed_registries: Option<Vec<String>>,
    /// The least severity `supply-chain/known-vulnerabilities` reports
    /// (low, medium, high, critical). Unset: high.
    #[serde(default)]
    pub vulnerability_severity: Option<crate::image::Severity>,
}

/// Who may grant exemptions (enforced by `paved serve`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Exceptions {
    /// May grant an exemption from any policy.
    #[serde(default)]
    pub authority: Authority,
    /// May grant exemptions from the policies a key names (an id or `group/*`),
    /// in addition to `authority`.
    #[serde(default)]
    pub policies: BTreeMap<String, Authority>,
    /// Requesters whose objects carry their parent's exemptions (a ReplicaSet's
    /// pods): their exemption annotations are copies, not grants.
    #[serde(default = "default_trusted_controllers")]
    pub trusted_controllers: Vec<String>,
}

impl Default for Exceptions {
    fn default() -> Self {
        Exceptions {
            authority: Authority::default(),
            policies: BTreeMap::new(),
            trusted_controllers: default_trusted_controllers(),
        }
    }
}

/// The kube-controller-manager's controllers that copy a template into objects,
/// as service accounts (`--use-service-account-credentials`) and as itself.
fn default_trusted_controllers() -> Vec<String> {
    let controllers =
        ["replicaset", "deployment", "daemon-set", "statefulset", "job", "cronjob", "replication"].into_iter();
    controllers
        .map(|c| format!("system:serviceaccount:kube-system:{c}-controller"))
        .chain(std::iter::once("system:kube-controller-manager".to_owned()))
        .collect()
}

/// Users and groups trusted with a gesture (granting exemptions, lifting locks).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Authority {
    /// Whether a requester with this username and these groups is trusted.
    pub fn permits(&self, username: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == username) || self.groups.iter().any(|g| groups.contains(g))
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// `users alice, bob; groups platform-admins`, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(", ")));
        }
        parts.join("; ")
    }
}

/// Deletion locks (enforced by `paved serve`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locks {
    #[serde(default)]
    pub authority: Authority,
    #[serde(default)]
    pub protect: Vec<Protect>,
}

/// Objects locked by policy, without an annotation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Protect {
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub label_selector: BTreeMap<String, String>,
}
