//! Who is as powerful as paved's authorities: the RBAC rights that let a
//! user act as a trusted controller or an authority, act where paved never
//! judges, change paved's configuration, or take paved out of the request
//! path (README, "The trust model"). `paved audit` lists who holds them,
//! from the cluster's roles and bindings. Pure: objects in, rows out.

use std::collections::BTreeMap;

/// Namespaces the webhook never judges, beside its own.
pub const ALWAYS_EXCLUDED: [&str; 2] = ["kube-system", "kube-node-lease"];
/// paved's own namespace as installed, which `paved audit` assumes.
pub const DEFAULT_NAMESPACE: &str = "paved-system";

use paved_core::node::Node;
use serde::Serialize;

/// One subject holding one such right.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PowerRow {
    /// `User alice`, `Group platform`, `ServiceAccount ns/name`.
    pub subject: String,
    /// What the right lets them do, in words.
    pub right: String,
    /// The binding and role that grant it: `ClusterRoleBinding x (ClusterRole y)`.
    pub via: String,
}

/// A rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default)]
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Vec<String>,
}

impl Rule {
    fn of(node: &Node) -> Rule {
        let list = |key: &str| -> Vec<String> {
            node.get(key)
                .map(|l| l.as_seq().iter().filter_map(Node::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Rule {
            groups: list("apiGroups"),
            resources: list("resources"),
            verbs: list("verbs"),
            names: list("resourceNames"),
        }
    }

    /// Whether the rule allows `verb` on `group`'s `resource` (which may
    /// name a subresource, `pods/exec`), as RBAC matches.
    fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let (parent, _) = resource.split_once('/').unwrap_or((resource, ""));
        let resource_ok = self
            .resources
            .iter()
            .any(|r| r == "*" || r == resource || (resource.contains('/') && r.strip_suffix("/*") == Some(parent)));
        any(&self.verbs, verb) && any(&self.groups, group) && resource_ok
    }

    fn names_allow(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }
}

/// The roles and bindings of a cluster, as listed.
#[derive(Debug, Default)]
pub struct Rbac {
    /// `(namespace, name)` of each Role; `("", name)` of each ClusterRole.
    roles: BTreeMap<(String, String), Vec<Rule>>,
    bindings: Vec<Binding>,
}

#[derive(Debug)]
struct Binding {
    /// `ClusterRoleBinding name` or `RoleBinding ns/name`.
    name: String,
    /// Where it grants: `None` everywhere (a ClusterRoleBinding).
    namespace: Option<String>,
    role: (String, String),
    role_name: String,
    subjects: Vec<String>,
}

/// Namespaces that matter to the trust model.
pub struct Places<'a> {
    /// Namespaces paved never judges (kube-system, its own, …).
    pub excluded: &'a [String],
    /// paved's own namespace.
    pub paved: &'a str,
}

impl Rbac {
    /// Takes a Role, ClusterRole, RoleBinding or ClusterRoleBinding; other kinds are ignored.
    pub fn add(&mut self, obj: &Node) {
        let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
        let meta = |key: &str| obj.at(&["metadata", key]).and_then(Node::as_str).unwrap_or("").to_owned();
        let (name, namespace) = (meta("name"), meta("namespace"));
        match kind {
            "Role" | "ClusterRole" => {
                let rules = obj.get("rules").map(|r| r.as_seq().iter().map(Rule::of).collect()).unwrap_or_default();
                let key = if kind == "Role" { (namespace, name) } else { (String::new(), name) };
                self.roles.insert(key, rules);
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let role_kind = obj.at(&["roleRef", "kind"]).and_then(Node::as_str).unwrap_or("");
                let role_name = obj.at(&["roleRef", "name"]).and_then(Node::as_str).unwrap_or("").to_owned();
                let role_ns = if role_kind == "Role" { namespace.clone() } else { String::new() };
                let subjects =
                    obj.get("subjects").map(|s| s.as_seq().iter().map(subject).collect()).unwrap_or_default();
                let (label, scope) = if kind == "ClusterRoleBinding" {
                    (format!("ClusterRoleBinding {name}"), None)
                } else {
                    (format!("RoleBinding {namespace}/{name}"), Some(namespace))
                };
                self.bindings.push(Binding {
                    name: label,
                    namespace: scope,
                    role: (role_ns, role_name.clone()),
                    role_name: format!("{role_kind} {role_name}"),
                    subjects,
                });
            }
            _ => {}
        }
    }

    /// Every subject holding a right that makes it as powerful as the
    /// authorities, sorted, once per (subject, right, binding).
    pub fn powerful(&self, places: &Places) -> Vec<PowerRow> {
        let mut rows = Vec::new();
        for b in &self.bindings {
            let Some(rules) = self.roles.get(&b.role) else { continue };
            // Where the binding grants: everywhere, or its namespace.
            let covers = |ns: &str| b.namespace.as_deref().is_none_or(|n| n == ns);
            let mut rights: Vec<String> = Vec::new();
            let mut grant = |right: String| {
                if !rights.contains(&right) {
                    rights.push(right);
                }
            };
            for r in rules {
                if covers("kube-system") && r.allows("create", "", "serviceaccounts/token") {
                    grant("mint tokens for kube-system's service accounts (the trusted controllers)".into());
                }
                for what in ["users", "groups", "serviceaccounts"] {
                    if r.allows("impersonate", "", what) {
                        grant(format!("impersonate {what}"));
                    }
                }
                for ns in places.excluded {
                    if covers(ns)
                        && ["pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"]
                            .iter()
                            .any(|res| {
                                let group = match *res {
                                    "pods" => "",
                                    "jobs" | "cronjobs" => "batch",
                                    _ => "apps",
                                };
                                r.allows("create", group, res)
                            })
                    {
                        grant(format!("create workloads in {ns}, which paved never judges"));
                    }
                }
                if covers(places.paved)
                    && ["update", "patch", "delete"].iter().any(|v| r.allows(v, "", "configmaps"))
                    && r.names_allow("paved-config")
                {
                    grant(format!("change paved's configuration (ConfigMap {}/paved-config)", places.paved));
                }
                if b.namespace.is_none()
                    && ["update", "patch", "delete"]
                        .iter()
                        .any(|v| r.allows(v, "admissionregistration.k8s.io", "validatingwebhookconfigurations"))
                {
                    grant("change or remove paved's webhook configurations".into());
                }
                if ["escalate", "bind"].iter().any(|v| {
                    r.allows(v, "rbac.authorization.k8s.io", "clusterroles")
                        || r.allows(v, "rbac.authorization.k8s.io", "roles")
                }) {
                    grant("grant themselves any of these (escalate or bind roles)".into());
                }
            }
            for right in rights {
                for s in &b.subjects {
                    rows.push(PowerRow {
                        subject: s.clone(),
                        right: right.clone(),
                        via: format!("{} ({})", b.name, b.role_name),
                    });
                }
            }
        }
        rows.sort();
        rows.dedup();
        rows
    }
}

fn subject(node: &Node) -> String {
    let field = |k: &str| node.get(k).and_then(Node::as_str).unwrap_or("");
    match field("kind") {
        "ServiceAccount" => format!("ServiceAccount {}/{}", field("namespace"), field("name")),
        kind => format!("{kind} {}", field("name")),
    }
}
