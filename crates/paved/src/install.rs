//! `paved install`: everything `paved serve` needs in a cluster, as manifests.
//!
//! Two webhook configurations, so that each fails the right way: locks fail
//! closed (`Fail`) but are only asked about objects that can be locked, so an
//! outage of paved blocks no ordinary request; policies fail open by default.

use base64::Engine as _;
use paved_admission::locks::{LOCK, LOCKABLE};
use paved_core::config::Config;
use paved_server::ALWAYS_EXCLUDED;
use paved_server::images;
use serde_json::{Value, json};

/// Kinds the policies webhook is asked about: every kind a native rule judges.
pub const JUDGED: &[(&str, &str, &[&str])] = &[
    ("", "v1", &["pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates", "services"]),
    ("apps", "v1", &["deployments", "statefulsets", "daemonsets", "replicasets"]),
    ("batch", "v1", &["jobs", "cronjobs"]),
    ("networking.k8s.io", "v1", &["networkpolicies"]),
];

pub struct Install {
    pub namespace: String,
    pub image: String,
    pub replicas: u32,
    /// `Ignore` or `Fail`, for the policies webhook.
    pub failure_policy: &'static str,
    pub timeout_seconds: u32,
    /// The configuration file's text, mounted as the ConfigMap.
    pub config_text: String,
    pub config: Config,
    pub certs: paved_server::certs::ServingCerts,
}

/// The configuration installed when none is given: visible, and explicit about who holds authority.
pub const DEFAULT_CONFIG: &str = "\
# paved's configuration (reloaded on change). See `paved policies` and `paved explain`.
profile: paved-road
exceptions:
  # Who may add or change paved.dev/exempt annotations.
  authority: {groups: [\"system:masters\"]}
locks:
  # Who may lift a deletion lock.
  authority: {groups: [\"system:masters\"]}
  protect: []
";

const NAME: &str = "paved";

impl Install {
    /// The service's DNS names, which the serving certificate must carry.
    pub fn dns_names(namespace: &str) -> Vec<String> {
        vec![
            format!("{NAME}.{namespace}.svc"),
            format!("{NAME}.{namespace}.svc.cluster.local"),
            format!("{NAME}.{namespace}"),
        ]
    }

    pub fn manifests(&self) -> Vec<Value> {
        let ns = self.namespace.as_str();
        let labels = json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "webhook"});
        let meta = |name: &str| json!({"name": name, "namespace": ns, "labels": labels});
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&self.certs.ca_pem);
        let excluded: Vec<&str> = ALWAYS_EXCLUDED.iter().copied().chain([ns]).collect();
        let namespace_selector = json!({"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
        ]});
        let client = |path: &str| json!({"caBundle": ca_bundle, "service": {"name": NAME, "namespace": ns, "path": path, "port": 443}});
        let mut rbac_rules: Vec<Value> =
            vec![json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]})];
        for group in LOCKABLE.iter().map(|r| r.group).collect::<std::collections::BTreeSet<_>>() {
            let resources: Vec<&str> = LOCKABLE.iter().filter(|r| r.group == group).map(|r| r.resource).collect();
            rbac_rules.push(json!({"apiGroups": [group], "resources": resources, "verbs": ["list", "watch"]}));
        }
        // Image analyses, shared between replicas: paved writes them, and is
        // the only one that should (an analysis vouches for an image).
        rbac_rules.push(json!({"apiGroups": [images::GROUP], "resources": [images::PLURAL],
            "verbs": ["get", "list", "watch", "create", "patch"]}));
        let judged: Vec<Value> = JUDGED
            .iter()
            .map(|(group, version, resources)| {
                json!({"apiGroups": [group], "apiVersions": [version], "resources": resources,
                       "operations": ["CREATE", "UPDATE"], "scope": "*"})
            })
            .collect();
        vec![
            image_analysis_crd(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest"}}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME)}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": NAME, "labels": labels}, "rules": rbac_rules}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": NAME, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
                "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("paved-config"),
                "data": {"config.yaml": self.config_text}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("paved-tls"), "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": self.certs.cert_pem, "tls.key": self.certs.key_pem, "ca.crt": self.certs.ca_pem}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME), "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
            self.deployment(meta(NAME)),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(NAME), "spec": {
                "minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}}}}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "paved-locks", "labels": labels},
            "webhooks": [{
                "name": "locks.paved.dev",
                "clientConfig": client("/validate/locks"),
                "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"],
                           "operations": ["CREATE", "UPDATE", "DELETE"], "scope": "*"}],
                "matchConditions": [{"name": "lockable", "expression": lock_condition(&self.config)}],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": self.timeout_seconds,
                "admissionReviewVersions": ["v1", "v1beta1"],
                "namespaceSelector": namespace_selector,
            }]}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "paved-policies", "labels": labels},
            "webhooks": [{
                "name": "policies.paved.dev",
                "clientConfig": client("/validate/policies"),
                "rules": judged,
                "failurePolicy": self.failure_policy,
                "sideEffects": "None",
                "timeoutSeconds": self.timeout_seconds,
                "admissionReviewVersions": ["v1", "v1beta1"],
                "namespaceSelector": namespace_selector,
            }]}),
        ]
    }

    fn deployment(&self, meta: Value) -> Value {
        let selector = json!({"app.kubernetes.io/name": NAME});
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": self.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "webhook"},
                    "annotations": {
                        "paved.dev/exempt": "best-practices/no-token-automount",
                        "paved.dev/exempt-reason": "paved watches namespaces and locked objects through the API",
                    },
                },
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": true,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": selector}}}]}},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": NAME,
                        "image": self.image,
                        "args": ["serve", "--config", "/etc/paved/config/config.yaml",
                            "--tls-cert", "/etc/paved/tls/tls.crt", "--tls-key", "/etc/paved/tls/tls.key"],
                        "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                        "ports": [{"name": "https", "containerPort": 8443, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 5},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10},
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/paved/config", "readOnly": true},
                            {"name": "tls", "mountPath": "/etc/paved/tls", "readOnly": true},
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "paved-config"}},
                        {"name": "tls", "secret": {"secretName": "paved-tls"}},
                    ],
                },
            },
        }})
    }
}

/// The `ImageAnalysis` kind: one cluster-scoped object per image digest,
/// in which `paved serve` shares what an image carries with its other
/// replicas (see paved-server's `images`); `kubectl get imageanalyses`
/// shows them.
fn image_analysis_crd() -> Value {
    let paths = |what: &str| {
        json!({"type": "array", "description": what, "maxItems": 64,
               "items": {"type": "string", "maxLength": 512}})
    };
    let count = |what: &str| json!({"type": "integer", "minimum": 0, "description": what});
    let column = |name: &str, kind: &str, path: &str| json!({"name": name, "type": kind, "jsonPath": path});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": format!("{}.{}", images::PLURAL, images::GROUP),
        "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "webhook"}},
    "spec": {
        "group": images::GROUP,
        "scope": "Cluster",
        "names": {"kind": images::KIND, "listKind": format!("{}List", images::KIND), "plural": images::PLURAL,
            "singular": "imageanalysis"},
        "versions": [{
            "name": images::VERSION,
            "served": true,
            "storage": true,
            "additionalPrinterColumns": [
                column("Platform", "string", ".spec.platform"),
                column("Shells", "string", ".spec.shells"),
                column("Package-Managers", "string", ".spec.packageManagers"),
                column("Setuid", "string", ".spec.setuid"),
                column("Packages", "integer", ".spec.packages"),
                column("Analysed", "date", ".spec.analysedAt"),
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": "What one image manifest carries, as paved's layer analysis found. Named after its digest (sha256-<hex>).",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {
                        "type": "object",
                        "required": ["digest", "analysisVersion"],
                        "properties": {
                            "digest": {"type": "string", "pattern": "^sha(256|512):[0-9a-f]+$",
                                "description": "The platform manifest's digest."},
                            "platform": {"type": "string", "description": "os/arch[/variant]"},
                            "analysisVersion": count("paved's analysis version; other versions' results are redone."),
                            "analysedAt": {"type": "string", "format": "date-time"},
                            "layers": count("Layers."),
                            "files": count("Entries in the final filesystem."),
                            "bytes": count("Bytes of regular files in the final filesystem."),
                            "packages": count("Packages in the dpkg and apk inventories."),
                            "shells": paths("Shells on the PATH, as path -> target for links."),
                            "packageManagers": paths("Package managers on the PATH."),
                            "interpreters": paths("Interpreters on the PATH."),
                            "setuid": paths("Files with the setuid or setgid bit."),
                        },
                    },
                },
            }},
        }],
    }})
}

/// The locks webhook's CEL match condition: only requests that could touch a
/// lock reach paved (an object or old object carrying `paved.dev/lock`, a
/// Namespace, or a kind a `locks.protect` rule names), so that failing closed
/// never blocks an ordinary request.
pub fn lock_condition(config: &Config) -> String {
    let annotated = |var: &str| {
        format!("({var} != null && has({var}.metadata.annotations) && '{LOCK}' in {var}.metadata.annotations)")
    };
    let mut kinds: Vec<String> = vec!["Namespace".into()];
    let mut any_kind = false;
    let mut by_labels: Vec<String> = Vec::new();
    for rule in &config.locks.protect {
        if !rule.kinds.is_empty() {
            kinds.extend(rule.kinds.iter().cloned());
        } else if rule.label_selector.is_empty() {
            any_kind = true;
        } else {
            let terms: Vec<String> = rule
                .label_selector
                .iter()
                .map(|(k, v)| {
                    format!(
                        "'{k}' in oldObject.metadata.labels && oldObject.metadata.labels['{k}'] == '{v}'",
                        k = cel_escape(k),
                        v = cel_escape(v)
                    )
                })
                .collect();
            by_labels.push(format!("(oldObject != null && has(oldObject.metadata.labels) && {})", terms.join(" && ")));
        }
    }
    if any_kind {
        return "true".into();
    }
    kinds.sort();
    kinds.dedup();
    let kinds: Vec<String> = kinds.iter().map(|k| format!("'{}'", cel_escape(k))).collect();
    let mut terms =
        vec![annotated("object"), annotated("oldObject"), format!("request.kind.kind in [{}]", kinds.join(", "))];
    terms.extend(by_labels);
    terms.join(" || ")
}

fn cel_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Multi-document YAML, as `kubectl apply -f -` takes it.
pub fn to_yaml(docs: &[Value]) -> Result<String, String> {
    let mut out = String::from("# Generated by `paved install`. Apply with: kubectl apply -f -\n");
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(doc).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
