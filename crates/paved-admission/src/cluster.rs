//! What admission needs to know about the cluster beyond the request: each
//! namespace's profile labels, and which objects are locked. Fed by watches
//! in `paved serve`, or empty with `--no-cluster`.

use std::collections::{HashMap, HashSet};

use crate::locks::{Labels, LockIndex};

pub const PROFILE_LABEL: &str = "paved.dev/profile";
/// Label values cannot hold `:`, so the version has a label of its own, as in
/// Pod Security Admission (`pod-security.kubernetes.io/enforce-version`).
pub const VERSION_LABEL: &str = "paved.dev/profile-version";
pub const MODE_LABEL: &str = "paved.dev/mode";

/// A namespace's `paved.dev/profile` and `paved.dev/mode` labels, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NamespaceLabels {
    pub profile: Option<String>,
    pub version: Option<String>,
    pub mode: Option<String>,
}

impl NamespaceLabels {
    /// From a Namespace's labels, as a request or a watch carries them.
    pub fn of(labels: Labels<'_>) -> NamespaceLabels {
        let get = |k: &str| labels.get(k).map(str::to_owned);
        NamespaceLabels { profile: get(PROFILE_LABEL), version: get(VERSION_LABEL), mode: get(MODE_LABEL) }
    }

    /// `name[:version]` as `--profile` takes it, or `None` for the cluster default.
    pub fn profile_ref(&self, default: Option<&str>) -> Option<String> {
        let name = self.profile.as_deref().or(default)?;
        Some(match (&self.version, name.contains(':')) {
            (Some(version), false) => format!("{name}:{version}"),
            _ => name.to_owned(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.profile.is_none() && self.version.is_none() && self.mode.is_none()
    }
}

/// The cluster as admission sees it.
#[derive(Debug, Default, Clone)]
pub struct ClusterState {
    /// Only namespaces that carry paved labels.
    pub namespaces: HashMap<String, NamespaceLabels>,
    /// Namespaces that are locked themselves (by annotation or a protect rule).
    pub locked_namespaces: HashSet<String>,
    /// Namespaces that carry the `paved.dev/holds-locks` marker.
    pub marked_namespaces: HashSet<String>,
    pub locks: LockIndex,
    /// Kinds of the lock index that paved may not list (403) or the cluster
    /// does not serve: a lock on one is refused, as on any unindexed kind.
    pub unlisted: HashSet<&'static str>,
}

impl ClusterState {
    pub fn labels_of(&self, namespace: &str) -> Option<&NamespaceLabels> {
        self.namespaces.get(namespace)
    }

    /// Records a namespace's labels; forgets namespaces without paved labels.
    pub fn set_namespace(&mut self, name: &str, labels: NamespaceLabels) {
        if labels.is_empty() {
            self.namespaces.remove(name);
        } else {
            self.namespaces.insert(name.to_owned(), labels);
        }
    }
}
