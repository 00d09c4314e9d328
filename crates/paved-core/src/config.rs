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
}

/// Parameters that native policies read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Registries (host, or host/path prefix) images may come from. Unset: any.
    #[serde(default)]
    pub allowed_registries: Option<Vec<String>>,
}

/// Who may grant exemptions.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    #[serde(default)]
    pub authority: Authority,
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
