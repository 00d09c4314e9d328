//! `paved install`: everything `paved serve` needs in a cluster, as manifests.
//!
//! Webhooks that each fail the right way: the gestures that need authority
//! (locks, grants) fail closed (`Fail`) but a match condition asks them only
//! about requests that are such a gesture, so an outage of paved refuses no
//! ordinary request (`tests/outage.rs` proves it); evictions and policies
//! fail open by default.

use std::io::Write;

use base64::Engine as _;
use paved_admission::cluster::{MODE_LABEL, PROFILE_LABEL, VERSION_LABEL};
use paved_admission::locks::{HOLDS_LOCKS, LOCK, LOCKABLE, LOCKED, MIRROR_KEEPERS};
use paved_cluster::apply::{self, Deleted, ObjectName};
use paved_core::config::Config;
use paved_core::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL};
use paved_server::ALWAYS_EXCLUDED;
use paved_server::images;
use serde_json::{Value, json};

use crate::cli::{FailurePolicy, InstallArgs, UninstallArgs};
use crate::config_file;

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
    /// Webhook rules for the kinds the configuration's policy files judge,
    /// beside those of the native rules; `None` asks about every kind.
    pub policy_rules: Option<Vec<Value>>,
    /// The kinds the policy files' mutating policies may change, asked of
    /// the defaults webhook beside the pods and workloads; `None`: every kind.
    pub mutating_rules: Option<Vec<Value>>,
    /// `(apiGroup, resource)` the policy files read besides the object
    /// judged (params, Gatekeeper's inventory, Kyverno's `resource.Get`),
    /// which paved must list and watch.
    pub policy_reads: Vec<(String, String)>,
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
/// The Secret holding the serving certificate, its key and its CA.
const TLS_SECRET: &str = "paved-tls";
/// A kept serving certificate must have at least this many days left.
const REUSE_MIN_DAYS: i64 = 30;
/// Namespaces `paved uninstall` never deletes, whatever `--namespace` says.
const NEVER_DELETED: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// `paved install`: the manifests on standard output, or with `--apply`
/// server-side applied to the cluster.
/// What `paved install` derives from the configuration's policy files.
#[derive(Clone, Default)]
pub struct FromPolicies {
    /// See [`Install::policy_rules`].
    pub rules: Option<Vec<Value>>,
    /// See [`Install::mutating_rules`].
    pub mutating: Option<Vec<Value>>,
    /// See [`Install::policy_reads`].
    pub reads: Vec<(String, String)>,
}

pub fn run(
    args: &InstallArgs,
    config: Config,
    path: Option<&std::path::Path>,
    from_policies: FromPolicies,
) -> miette::Result<u8> {
    let (config_text, config) = match path {
        Some(p) => (std::fs::read_to_string(p).map_err(|e| miette::miette!("{}: {e}", p.display()))?, config),
        None => (DEFAULT_CONFIG.to_owned(), config_file::parse(DEFAULT_CONFIG, "(default configuration)")?),
    };
    let names = Install::dns_names(&args.namespace);
    let install = |certs| Install {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        replicas: args.replicas,
        failure_policy: match args.failure_policy {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        },
        timeout_seconds: args.timeout_seconds,
        config_text: config_text.clone(),
        config: config.clone(),
        certs,
        policy_rules: from_policies.rules.clone(),
        mutating_rules: from_policies.mutating.clone(),
        policy_reads: from_policies.reads.clone(),
    };
    let generate = || paved_server::certs::generate(&names, args.cert_days).map_err(|e| miette::miette!("{e}"));
    if !args.apply {
        let yaml = to_yaml(&install(generate()?).manifests()).map_err(|e| miette::miette!("cannot write YAML: {e}"))?;
        let mut out = std::io::stdout().lock();
        return match out.write_all(yaml.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(crate::io_error(e)),
            _ => Ok(0),
        };
    }
    crate::audit::runtime()?.block_on(async {
        let (client, source) = crate::audit::connect_to(&args.connect.target(None)).await?;
        // The certificate of an earlier install is kept while it serves: a
        // new CA in the webhook configurations before the pods reload the
        // new certificate would fail every call, and lock gestures fail closed.
        let secret = ObjectName::new("v1", "Secret", Some(&args.namespace), TLS_SECRET).map_err(cluster_error)?;
        let certs = match apply::get(&client, &secret).await.map_err(cluster_error)?.as_ref().and_then(certs_of) {
            Some(certs) => match certs.still_serve(&names, REUSE_MIN_DAYS) {
                Ok(()) => certs,
                Err(why) => {
                    eprintln!("paved: a new serving certificate replaces the one installed: {why}");
                    generate()?
                }
            },
            None => generate()?,
        };
        let suffix = if args.dry_run { " (server dry run)" } else { "" };
        let mut out = std::io::stdout().lock();
        for object in in_apply_order(install(certs).manifests()) {
            let name = apply::apply(&client, &object, args.dry_run).await.map_err(cluster_error)?;
            let _ = writeln!(out, "{name} serverside-applied{suffix}");
        }
        let _ = out.flush();
        if !args.dry_run {
            eprintln!(
                "paved: installed in {source}; `kubectl -n {} rollout status deployment/{NAME}` waits for it",
                args.namespace
            );
        }
        Ok(0)
    })
}

/// The webhook configurations last: each calls a Service that must be there
/// first, and the locks webhook fails closed.
fn in_apply_order(manifests: Vec<Value>) -> Vec<Value> {
    let is_webhook = |o: &Value| o["kind"].as_str().is_some_and(|k| k.ends_with("WebhookConfiguration"));
    let (webhooks, rest): (Vec<Value>, Vec<Value>) = manifests.into_iter().partition(is_webhook);
    rest.into_iter().chain(webhooks).collect()
}

/// The certificates in an installed Secret, as the API server returns it (`data`, base64).
fn certs_of(secret: &Value) -> Option<paved_server::certs::ServingCerts> {
    let field = |key: &str| {
        let encoded = secret["data"][key].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        String::from_utf8(bytes).ok()
    };
    Some(paved_server::certs::ServingCerts {
        ca_pem: field("ca.crt")?,
        cert_pem: field("tls.crt")?,
        key_pem: field("tls.key")?,
    })
}

/// `paved uninstall`: the webhook configurations first, so the API server
/// stops calling paved before it goes; then every other object `paved
/// install` made, its Namespace last. What is not there is said, not an error.
pub fn uninstall(args: &UninstallArgs) -> miette::Result<u8> {
    if NEVER_DELETED.contains(&args.namespace.as_str()) {
        return Err(miette::miette!(
            code = "paved::uninstall",
            "paved uninstall never deletes the namespace {:?}; delete paved's objects in it by hand",
            args.namespace
        ));
    }
    let placeholder =
        paved_server::certs::ServingCerts { ca_pem: String::new(), cert_pem: String::new(), key_pem: String::new() };
    let installed = Install {
        namespace: args.namespace.clone(),
        image: String::new(),
        replicas: 1,
        failure_policy: "Ignore",
        timeout_seconds: 5,
        config_text: String::new(),
        config: Config::default(),
        certs: placeholder,
        policy_rules: Some(Vec::new()),
        mutating_rules: Some(Vec::new()),
        policy_reads: Vec::new(),
    };
    let mut objects = in_apply_order(installed.manifests());
    objects.reverse();
    // The Namespace after everything in it.
    objects.sort_by_key(|o| o["kind"] == "Namespace");
    crate::audit::runtime()?.block_on(async {
        let (client, _) = crate::audit::connect_to(&args.connect.target(None)).await?;
        let suffix = if args.dry_run { " (server dry run)" } else { "" };
        let mut out = std::io::stdout().lock();
        for object in &objects {
            let name = ObjectName::of(object).map_err(cluster_error)?;
            let said = match apply::delete(&client, &name, args.dry_run).await.map_err(cluster_error)? {
                Deleted::Deleted => "deleted",
                Deleted::NotFound => "not found",
            };
            let _ = writeln!(out, "{name} {said}{suffix}");
        }
        let _ = out.flush();
        Ok(0)
    })
}

fn cluster_error(e: apply::ApplyError) -> miette::Report {
    let help = match e.code() {
        Some(403) => "paved install --apply needs cluster-admin rights: it creates RBAC and webhook configurations",
        _ => "paved install prints the same objects for kubectl apply -f -",
    };
    miette::miette!(code = "paved::cluster", help = help, "{e}")
}

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
        let webhook =
            |name: &str, path: &str, rules: Value, condition: Option<(&str, String)>, failure_policy: &str| {
                let mut webhook = json!({
                    "name": name,
                    "clientConfig": client(path),
                    "rules": rules,
                    "failurePolicy": failure_policy,
                    "sideEffects": "None",
                    "timeoutSeconds": self.timeout_seconds,
                    "admissionReviewVersions": ["v1", "v1beta1"],
                    "namespaceSelector": namespace_selector,
                });
                if let Some((name, condition)) = condition {
                    webhook["matchConditions"] = json!([{"name": name, "expression": condition}]);
                }
                webhook
            };
        // Namespaces: read for their labels, patched for the holds-locks marker.
        let mut rbac_rules: Vec<Value> =
            vec![json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "patch"]})];
        for group in LOCKABLE.iter().map(|r| r.group).collect::<std::collections::BTreeSet<_>>() {
            let resources: Vec<&str> = LOCKABLE.iter().filter(|r| r.group == group).map(|r| r.resource).collect();
            rbac_rules.push(json!({"apiGroups": [group], "resources": resources, "verbs": ["list", "watch"]}));
        }
        // Image analyses, shared between replicas: paved writes them, and is
        // the only one that should (an analysis vouches for an image).
        rbac_rules.push(json!({"apiGroups": [images::GROUP], "resources": [images::PLURAL],
            "verbs": ["get", "list", "watch", "create", "patch"]}));
        // What the policy files read besides the object judged, beyond what
        // the lock index lists already. Never Secrets: a policy that reads
        // them is refused before this (see `main`).
        let listed = |group: &str, resource: &str| {
            (group.is_empty() && resource == "namespaces")
                || LOCKABLE.iter().any(|r| r.group == group && r.resource == resource)
        };
        for (group, resource) in self.policy_reads.iter().filter(|(g, r)| !listed(g, r)) {
            rbac_rules.push(json!({"apiGroups": [group], "resources": [resource], "verbs": ["list", "watch"]}));
        }
        // Kyverno PolicyExceptions, honoured when Kyverno policies are loaded
        // (the grants webhook lets only the exception authority make them).
        rbac_rules.push(json!({"apiGroups": ["kyverno.io", "policies.kyverno.io"], "resources": ["policyexceptions"],
            "verbs": ["list", "watch"]}));
        // The kinds the native rules judge, and those the policy files'
        // matches name (Gatekeeper's `match.kinds`, VAPs' and Kyverno's
        // `matchConstraints`, ClusterPolicy kinds, autogen's controllers).
        // A policy that may judge any kind has paved asked about every
        // object, as Gatekeeper's webhook is.
        let native = JUDGED.iter().map(|(group, version, resources)| {
            json!({"apiGroups": [group], "apiVersions": [version], "resources": resources,
                   "operations": ["CREATE", "UPDATE"], "scope": "*"})
        });
        let judged = rules_with(native, self.policy_rules.as_deref(), &["*", "pods/ephemeralcontainers"]);
        // Defaults are a convenience: while paved is down objects go on as
        // written, and the policies webhook judges them so. IfNeeded: a
        // webhook after paved that adds a container has paved called again,
        // and the new container gets the defaults too.
        // Beside the pods and workloads, the kinds the mutating policies
        // (MutatingAdmissionPolicy, Kyverno MutatingPolicy) may change.
        let defaulted = defaulted().as_array().cloned().unwrap_or_default();
        let mutated = json!(rules_with(defaulted, self.mutating_rules.as_deref(), &["*"]));
        let mut defaults =
            webhook("defaults.paved.dev", "/mutate", mutated, Some(("uncontrolled", UNCONTROLLED.into())), "Ignore");
        defaults["reinvocationPolicy"] = json!("IfNeeded");
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
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(TLS_SECRET), "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": self.certs.cert_pem, "tls.key": self.certs.key_pem, "ca.crt": self.certs.ca_pem}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(NAME), "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
            self.deployment(meta(NAME)),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(NAME), "spec": {
                "minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}}}}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "paved-locks", "labels": labels},
            "webhooks": [
                webhook("locks.paved.dev", "/validate/locks", every_resource(&["CREATE", "UPDATE", "DELETE"]),
                    Some(("gesture", lock_condition(&self.config))), "Fail"),
                // An eviction names the pod but does not carry it: no condition can
                // tell a locked pod's eviction from any other, and failing closed would
                // stop every node drain while paved is down. Evictions fail open.
                webhook("evictions.paved.dev", "/validate/locks",
                    json!([{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/eviction"],
                            "operations": ["CREATE"], "scope": "Namespaced"}]),
                    None, "Ignore"),
                webhook("grants.paved.dev", "/validate/grants", every_resource(&["CREATE", "UPDATE"]),
                    Some(("gesture", grant_condition(&self.config))), "Fail"),
            ]}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "paved-policies", "labels": labels},
            "webhooks": [webhook("policies.paved.dev", "/validate/policies", json!(judged), None, self.failure_policy)]}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "paved-defaults", "labels": labels},
            "webhooks": [defaults]}),
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
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
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

/// A webhook's rules: paved's own (`own`), then those the policy files
/// name, each once, in a stable order (the configuration is applied again
/// and again); a policy file that may touch any kind (`None`) has the
/// webhook asked about every resource `all` names.
fn rules_with(own: impl IntoIterator<Item = Value>, from_policies: Option<&[Value]>, all: &[&str]) -> Vec<Value> {
    let Some(from_policies) = from_policies else {
        return vec![json!({"apiGroups": ["*"], "apiVersions": ["*"], "resources": all,
                           "operations": ["CREATE", "UPDATE"], "scope": "*"})];
    };
    let mut rules: Vec<Value> = own
        .into_iter()
        .chain(from_policies.iter().map(|r| {
            let mut r = r.clone();
            r["scope"] = json!("*");
            r
        }))
        .collect();
    let mut seen = std::collections::HashSet::new();
    rules.retain(|r| seen.insert(r.to_string()));
    rules
}

/// What the paved road's defaults are set on: Pods as they are made (a
/// running Pod's spec cannot change), and the workloads that carry a pod
/// template, as they are made and changed. No subresource: a scale or a
/// status write changes no template.
fn defaulted() -> Value {
    let rule = |group: &str, resources: &[&str], operations: &[&str]| {
        json!({"apiGroups": [group], "apiVersions": ["v1"], "resources": resources, "operations": operations,
               "scope": "Namespaced"})
    };
    json!([
        rule("", &["pods"], &["CREATE"]),
        rule("", &["replicationcontrollers", "podtemplates"], &["CREATE", "UPDATE"]),
        rule("apps", &["deployments", "statefulsets", "daemonsets", "replicasets"], &["CREATE", "UPDATE"]),
        // A Job's template is immutable (but for what a queue changes in a
        // suspended one, which /mutate leaves alone): asked on create only.
        rule("batch", &["jobs"], &["CREATE"]),
        rule("batch", &["cronjobs"], &["CREATE", "UPDATE"]),
    ])
}

/// The defaults webhook is not called for what a controller makes but a
/// Pod (a ReplicaSet or Job carries its owner's template, which got the
/// defaults at its own admission; `/mutate` leaves it alone anyway): the
/// deployment controller's ReplicaSets cost no call.
pub const UNCONTROLLED: &str = "request.kind.kind == 'Pod' || !has(object.metadata.ownerReferences) || \
!object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller == true)";

/// Rules for every resource and every subresource (`*/*`: `status`,
/// `finalize`, `binding`, …), through which metadata changes too.
fn every_resource(operations: &[&str]) -> Value {
    json!([{"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*", "*/*"], "operations": operations, "scope": "*"}])
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

/// CEL: whether `var` (`object` or `oldObject`) has `key` (a CEL
/// expression for a string) in the map at `path`, e.g.
/// `spec.template.metadata.annotations`; false, never an error, where the
/// object or a step is missing (an error in a match condition would make the
/// API server apply the failure policy).
fn has_key(var: &str, path: &str, key: &str) -> String {
    let mut at = var.to_owned();
    let mut terms = vec![format!("{var} != null")];
    for step in path.split('.') {
        at = format!("{at}.{step}");
        terms.push(format!("has({at})"));
    }
    terms.push(format!("{key} in {at}"));
    terms.join(" && ")
}

/// CEL: whether the value of `key` in the map at `path` differs between
/// `oldObject` and `object` (added, removed or changed).
fn key_changed(path: &str, key: &str) -> String {
    let (old, new) = (has_key("oldObject", path, key), has_key("object", path, key));
    format!("({old}) != ({new}) || ({old} && {new} && oldObject.{path}[{key}] != object.{path}[{key}])")
}

/// CEL: whether any of `keys` changed in the map at `path`.
fn any_key_changed(path: &str, keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    format!("[{}].exists(k, {})", keys.join(", "), key_changed(path, "k"))
}

/// The locks webhook's CEL match condition: only requests that are lock
/// gestures reach paved (failing closed), so that an outage refuses nothing
/// else. A lock gesture is: creating an object with a lock value other than
/// `delete` (`off` on a protected object, a misspelling), changing or
/// removing `paved.dev/lock` by any route (the object, a subresource such as
/// `/status`, a Binding), deleting a locked object, deleting a Namespace
/// (paved knows which hold locks), and deleting or relabelling an object
/// that a `locks.protect` rule covers, narrowed by the rule's kinds,
/// namespaces and labels. A ReplicaSet's copy of its Deployment's lock,
/// kept and deleted by the deployment controller and the garbage
/// collector, is not a gesture. The Helm chart's `paved.lockCondition`
/// builds the same text.
pub fn lock_condition(config: &Config) -> String {
    let keepers: Vec<String> = MIRROR_KEEPERS.iter().map(|k| format!("'{k}'")).collect();
    // The first owner reference, not a comprehension over them: a
    // ReplicaSet's controller is its only owner, and a match condition
    // without comprehensions has a small, fixed cost for the API server.
    let mirror = format!(
        "request.kind.kind == 'ReplicaSet' && request.userInfo.username in [{}] && oldObject != null \
         && has(oldObject.metadata.ownerReferences) && size(oldObject.metadata.ownerReferences) > 0 \
         && oldObject.metadata.ownerReferences[0].kind == 'Deployment' \
         && oldObject.metadata.ownerReferences[0].apiVersion.startsWith('apps/') \
         && has(oldObject.metadata.ownerReferences[0].controller) && oldObject.metadata.ownerReferences[0].controller == true",
        keepers.join(", ")
    );
    let lock = format!("'{LOCK}'");
    let indexed: Vec<String> = LOCKABLE.iter().map(|r| format!("'{}/{}'", r.group, r.kind)).collect();
    let mut terms = vec![
        // Created locked: a gesture when the value is not `delete`, or when the
        // kind is namespaced and not in the lock index (paved refuses it).
        format!(
            "(request.operation == 'CREATE' && {} && (object.metadata.annotations[{lock}] != '{LOCKED}' \
             || (has(request.namespace) && request.namespace != '' && request.kind.kind != 'Namespace' \
             && !((request.kind.group + '/' + request.kind.kind) in [{}]))))",
            has_key("object", "metadata.annotations", &lock),
            indexed.join(", ")
        ),
        format!("(request.operation != 'CREATE' && ({}))", key_changed("metadata.annotations", &lock)),
        // A Namespace's delete: only of one paved has marked as holding locks
        // (or one locked itself, which the terms above and below cover).
        format!(
            "(request.operation == 'DELETE' && request.kind.kind == 'Namespace' && {})",
            has_key("oldObject", "metadata.annotations", &format!("'{HOLDS_LOCKS}'"))
        ),
        // The marker itself, which only paved and the lock authority may change.
        format!(
            "(request.kind.kind == 'Namespace' && request.operation != 'DELETE' && ({}))",
            key_changed("metadata.annotations", &format!("'{HOLDS_LOCKS}'"))
        ),
    ];
    terms.extend(config.locks.protect.iter().map(protect_term));
    format!("!({mirror}) && ({})", terms.join(" || "))
}

/// CEL: a DELETE, or a change of labels, of an object a `locks.protect`
/// rule covers (judged on the object as it was).
fn protect_term(rule: &paved_core::config::Protect) -> String {
    let mut terms = vec![
        "oldObject != null".to_owned(),
        "(request.operation == 'DELETE' || (has(object.metadata.labels) ? object.metadata.labels : {}) != \
         (has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}))"
            .to_owned(),
    ];
    if !rule.kinds.is_empty() {
        let kinds: Vec<String> = rule.kinds.iter().map(|k| format!("'{}'", cel_escape(k))).collect();
        terms.push(format!("request.kind.kind in [{}]", kinds.join(", ")));
    }
    if !rule.namespaces.is_empty() {
        let globs: Vec<String> = rule.namespaces.iter().map(|g| namespace_regex(g)).collect();
        terms.push(format!("request.namespace.matches('^(?:{})$')", globs.join("|")));
    }
    for (k, v) in &rule.label_selector {
        terms.push(format!(
            "{} && oldObject.metadata.labels['{k}'] == '{v}'",
            has_key("oldObject", "metadata.labels", &format!("'{}'", cel_escape(k))),
            k = cel_escape(k),
            v = cel_escape(v)
        ));
    }
    format!("({})", terms.join(" && "))
}

/// A namespace pattern (only `*` and `?` are wildcards: `Protection`
/// refuses the rest) as a regular expression without backslashes, so that
/// it needs no escaping in CEL or in the chart's template.
fn namespace_regex(glob: &str) -> String {
    glob.replace('.', "[.]").replace('*', ".*").replace('?', ".")
}

/// The grants webhook's CEL match condition: requests that add, change or
/// remove an exemption (`paved.dev/exempt*` on the object or its pod
/// template, by any route), unless a trusted controller copies its
/// template's, and requests that set, change or remove a Namespace's
/// profile or mode labels. These fail closed: a grant paved cannot judge
/// is not made. The Helm chart's `paved.grantCondition` builds the same text.
pub fn grant_condition(config: &Config) -> String {
    let labels = any_key_changed("metadata.labels", &[PROFILE_LABEL, VERSION_LABEL, MODE_LABEL]);
    let places = ["metadata", "spec.template.metadata", "spec.jobTemplate.spec.template.metadata", "template.metadata"];
    let annotations: Vec<String> = places
        .iter()
        .map(|place| any_key_changed(&format!("{place}.annotations"), &[EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL]))
        .collect();
    let trusted: Vec<String> =
        config.exceptions.trusted_controllers.iter().map(|u| format!("'{}'", cel_escape(u))).collect();
    // A Kyverno PolicyException is a grant of every policy it names.
    let kyverno_exception = "(request.kind.kind == 'PolicyException' \
         && request.kind.group in ['kyverno.io', 'policies.kyverno.io'] && request.operation != 'DELETE')";
    format!(
        "(request.kind.kind == 'Namespace' && {labels}) || (!(request.userInfo.username in [{}]) && ({})) \
         || {kyverno_exception}",
        trusted.join(", "),
        annotations.join(" || ")
    )
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
