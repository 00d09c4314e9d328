//! `paved audit`: list what a cluster runs, page by page, and judge it with
//! paved-admission's [`Audit`]; print the report (text, json, sarif) and
//! optionally write PolicyReports.

use std::io::{IsTerminal, Write};

use paved_admission::audit::{Audit, CLUSTER_SCOPE, Report};
use paved_admission::cluster::{ClusterState, NamespaceLabels};
use paved_admission::decide::Admission;
use paved_admission::locks::Labels;
use paved_cluster::connect::{self, Target};
use paved_cluster::list::{self, ListError, Listed, Resource};
use paved_core::config::Config;
use paved_core::node::Node;
use paved_core::policy::Action;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::cli::{AuditArgs, AuditFormat, ClusterArgs, FailOn};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// A continue token expired mid-list; listed on from a fresh one.
    Inconsistent,
    /// RBAC does not let us list the kind.
    Forbidden,
    Failed,
}

impl Outcome {
    /// Whether the kind's objects were listed (all of them).
    pub fn listed(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Inconsistent)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Inconsistent => "inconsistent",
            Outcome::Forbidden => "forbidden",
            Outcome::Failed => "failed",
        }
    }
}

/// How listing one kind went.
#[derive(Debug, serde::Serialize)]
pub struct KindOutcome {
    pub resource: String,
    pub objects: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the runtime: {e}"))
}

pub async fn connect(args: &ClusterArgs) -> miette::Result<(kube::Client, String)> {
    connect_to(&args.connect.target(args.namespace.clone())).await
}

/// The client for `target`, or the kubeconfig's error as a diagnostic.
pub async fn connect_to(target: &Target) -> miette::Result<(kube::Client, String)> {
    connect::client(target).await.map_err(|e| miette::miette!(code = "paved::kubeconfig", "{e}"))
}

/// Progress on standard error when it is a terminal: one line, rewritten.
struct Progress {
    on: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress { on: std::io::stderr().is_terminal() }
    }

    fn show(&self, line: &str) {
        if self.on {
            eprint!("\r\x1b[2K{line}");
        }
    }

    fn done(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Lists one resource, in one namespace or all, into `each`; 403 and other
/// errors become outcomes, never failures.
pub async fn list_kind(
    client: &kube::Client,
    resource: &Resource,
    namespace: Option<&str>,
    page: u32,
    each: impl FnMut(&Node<'_>),
) -> KindOutcome {
    let mut resource = resource.clone();
    if let Some(ns) = namespace.filter(|_| resource.namespaced) {
        resource.namespace = Some(ns.to_owned());
    }
    let result: Result<Listed, ListError> = list::list_all(client, &resource, page, each).await;
    let name = resource.display();
    match result {
        Ok(listed) => KindOutcome {
            resource: name,
            objects: listed.objects,
            outcome: if listed.inconsistent { Outcome::Inconsistent } else { Outcome::Ok },
            message: listed.inconsistent.then(|| "a continue token expired; listed on from a fresh one".to_owned()),
        },
        Err(e) => KindOutcome {
            resource: name,
            objects: 0,
            outcome: if e.code() == Some(403) { Outcome::Forbidden } else { Outcome::Failed },
            message: Some(e.to_string()),
        },
    }
}

/// What the loaded policies read besides the object judged (VAP params,
/// Gatekeeper's `data.inventory`, Kyverno's `resource.Get` and
/// PolicyExceptions): listed from the cluster before any object is judged.
pub struct PolicyReads {
    pub handle: paved_gatekeeper::policies::InventoryHandle,
    pub kinds: Vec<paved_gatekeeper::template::SyncKind>,
    /// `--inventory`'s objects, beside the cluster's.
    pub given: Vec<Value>,
}

pub fn run(
    args: &AuditArgs,
    format: AuditFormat,
    config: Config,
    profile: Option<&str>,
    (foreign, reads): (Vec<std::sync::Arc<dyn paved_core::eval::Foreign>>, Option<PolicyReads>),
    global: &crate::cli::Global,
) -> miette::Result<u8> {
    let docs = crate::explain::docs_base(&config);
    let excluded: Vec<String> = args.exclude.iter().filter(|n| !n.is_empty()).cloned().collect();
    let admission = Admission::with_foreign(config, profile, excluded, foreign)
        .map_err(|e| miette::miette!(code = "paved::config", "{e}"))?;
    let rt = runtime()?;
    let (report, kinds, problems, source, vulnerable) = rt.block_on(async {
        let (client, source) = connect(&args.target).await?;
        let discovery = list::discover(&client)
            .await
            .map_err(|e| miette::miette!(code = "paved::cluster", "cannot discover the cluster's kinds: {e}"))?;
        // Reports need their kind: said before the audit, not as a 404 per namespace after it.
        let reportable = discovery.resources.iter().any(|r| r.group == REPORT_GROUP && r.plural == "policyreports");
        if args.write_reports && !reportable {
            return Err(miette::miette!(
                code = "paved::cluster",
                help = "install the wg-policy CRDs (policyreports and clusterpolicyreports, wgpolicyk8s.io/v1alpha2, \
                        from kubernetes-sigs/wg-policy-prototypes), or run without --write-reports",
                "--write-reports: {source} has no PolicyReport kind: the wgpolicyk8s.io/v1alpha2 CRD is not installed"
            ));
        }
        let mut problems = discovery.problems;
        let progress = Progress::new();
        let namespace = args.target.namespace.as_deref();
        // Namespaces first: their labels choose each namespace's profile and mode.
        let mut cluster = ClusterState::default();
        if let Some(ns_resource) = discovery.resources.iter().find(|r| r.group.is_empty() && r.plural == "namespaces") {
            let outcome = list_kind(&client, ns_resource, None, args.page_size, |ns| {
                let name = ns.at(&["metadata", "name"]).and_then(Node::as_str).unwrap_or("");
                let labels = ns.at(&["metadata", "labels"]).and_then(Node::as_map).map_or(Labels::None, Labels::Node);
                cluster.set_namespace(name, NamespaceLabels::of(labels));
            })
            .await;
            if !outcome.outcome.listed() {
                problems.push(format!(
                    "namespaces could not be listed, so every namespace gets the default profile: {}",
                    outcome.message.unwrap_or_default()
                ));
            }
        }
        // Registries are contacted only when some namespace's profile reads
        // image contents; then from the cache first, as in `check`.
        let mut unused = Vec::new();
        let needs_images = args.vulns
            || admission.needs_image_contents()
            || cluster.namespaces.values().any(|l| admission.engine_for(Some(l), &mut unused).needs_image_contents());
        let store = if needs_images {
            Some(std::sync::Arc::new(crate::image_store::ImageStore::from_flags(global)?))
        } else {
            None
        };
        let admission = match &store {
            Some(store) => admission.with_images(store.clone()),
            None => admission,
        };
        if let Some(reads) = reads {
            let mut objects = reads.given;
            for kind in &reads.kinds {
                let Some(resource) = discovery.resources.iter().find(|r| r.group == kind.group && r.kind == kind.kind)
                else {
                    continue;
                };
                let outcome = list_kind(&client, resource, None, args.page_size, |obj| {
                    objects.extend(serde_json::to_value(obj).ok());
                })
                .await;
                if !outcome.outcome.listed() {
                    problems.push(format!(
                        "{}: the policies that read these objects see none: {}",
                        outcome.resource,
                        outcome.message.unwrap_or_default()
                    ));
                }
            }
            reads.handle.set(std::sync::Arc::new(paved_gatekeeper::suite::Inventory::new(objects)));
        }
        let now = paved_core::Timestamp::now();
        let mut audit = Audit::new(&admission, &cluster, now, args.max_listed);
        let mut kinds = Vec::new();
        let wanted: Vec<&Resource> =
            discovery.resources.iter().filter(|r| namespace.is_none() || r.namespaced).collect();
        let total = wanted.len();
        let mut seen = 0u64;
        // The images pods run, for the vulnerable images section.
        let mut running = crate::images::Inventory::default();
        let matches_images = store.as_ref().is_some_and(|s| s.has_advisories());
        for (i, resource) in wanted.into_iter().enumerate() {
            let name = resource.display();
            progress.show(&format!("[{}/{total}] {name}: {seen} objects so far", i + 1));
            // Pods' images are kept only when they will be matched.
            let is_pods = matches_images && resource.group.is_empty() && resource.plural == "pods";
            let outcome = list_kind(&client, resource, namespace, args.page_size, |obj| {
                if is_pods {
                    running.add_cluster_pod(obj);
                }
                audit.add(obj);
            })
            .await;
            seen += outcome.objects;
            kinds.push(outcome);
        }
        progress.done();
        let report = audit.finish();
        let vulnerable = store.as_deref().and_then(|s| vulnerable_images(&running, s, args.max_listed));
        if args.vulns && vulnerable.is_none() {
            problems.push(
                "--vulns: no advisories imported, so no vulnerable images can be listed: run `paved advisories import`"
                    .to_owned(),
            );
        }
        problems.extend(store.map(|s| s.failures()).unwrap_or_default());
        if args.write_reports {
            let written = write_reports(&client, &report, args.max_listed, now).await;
            problems.extend(written);
        }
        Ok::<_, miette::Report>((report, kinds, problems, source, vulnerable))
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match format {
        AuditFormat::Json => {
            let mut doc = json!({"schemaVersion": crate::report::JSON_SCHEMA_VERSION, "source": source, "report": report, "kinds": kinds, "problems": problems});
            if let Some(v) = &vulnerable {
                doc["vulnerableImages"] = json!(v);
            }
            serde_json::to_writer_pretty(&mut out, &doc).map_err(std::io::Error::from).and_then(|()| writeln!(out))
        }
        AuditFormat::Sarif => {
            serde_json::to_writer_pretty(&mut out, &sarif(&report, &docs)).map_err(std::io::Error::from)
        }
        AuditFormat::Text => {
            write_text(&mut out, &report, &kinds, &problems, &source).and_then(|()| match &vulnerable {
                Some(v) => write_vulnerable(&mut out, v),
                None => Ok(()),
            })
        }
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(crate::io_error(e)),
        _ => {}
    }
    if format != AuditFormat::Text {
        for p in &problems {
            eprintln!("paved: {p}");
        }
    }
    let fails = report.findings.deny > 0 || (args.fail_on == FailOn::Warn && report.findings.warn > 0);
    Ok(u8::from(fails))
}

/// The "vulnerable images running" section: images by digest, worst first.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VulnerableImages {
    pub images: Vec<VulnerableImage>,
    /// Vulnerable images beyond `--max-listed`.
    pub more_images: usize,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VulnerableImage {
    pub digest: String,
    /// The references pods name it by.
    pub images: Vec<String>,
    /// Known vulnerabilities by severity.
    pub counts: BTreeMap<&'static str, usize>,
    /// The worst few: `CVE (package installed, fixed in …)`.
    pub worst: Vec<String>,
    /// Containers running it, per namespace.
    pub namespaces: BTreeMap<String, usize>,
}

const WORST_SHOWN: usize = 5;

/// What the running images carry that advisories name, grouped by digest;
/// `None` when no advisories are imported.
fn vulnerable_images(
    running: &crate::images::Inventory,
    store: &crate::image_store::ImageStore,
    max_listed: usize,
) -> Option<VulnerableImages> {
    use paved_core::image::{ImageFacts, ImageLookup};
    if !store.has_advisories() {
        return None;
    }
    let mut by_digest: BTreeMap<String, (std::sync::Arc<paved_core::image::ImageContents>, VulnerableImage)> =
        BTreeMap::new();
    for (image, uses) in &running.images {
        let ImageLookup::Known(contents) = store.lookup(image) else { continue };
        let Some(vulns) = &contents.vulnerabilities else { continue };
        if vulns.is_empty() {
            continue;
        }
        let (_, row) = by_digest.entry(contents.digest.clone()).or_insert_with(|| {
            let mut counts = BTreeMap::new();
            for v in vulns {
                *counts.entry(v.severity.as_str()).or_insert(0) += 1;
            }
            let worst = vulns
                .iter()
                .take(WORST_SHOWN)
                .map(|v| {
                    let id = v.cve.as_deref().unwrap_or(&v.id);
                    let fix = v.fixed.as_deref().map_or_else(|| "no fix yet".to_owned(), |f| format!("fixed in {f}"));
                    format!("{id} {} ({} {}, {fix})", v.severity.as_str(), v.package, v.installed)
                })
                .collect();
            let row = VulnerableImage {
                digest: contents.digest.clone(),
                images: Vec::new(),
                counts,
                worst,
                namespaces: BTreeMap::new(),
            };
            (std::sync::Arc::clone(&contents), row)
        });
        row.images.push(image.clone());
        for u in uses {
            *row.namespaces.entry(u.namespace.clone()).or_insert(0) += 1;
        }
    }
    let mut rows: Vec<(std::sync::Arc<paved_core::image::ImageContents>, VulnerableImage)> =
        by_digest.into_values().collect();
    // Worst first: by the most severe vulnerability, then by how many.
    rows.sort_by(|(a, _), (b, _)| {
        let worst = |c: &paved_core::image::ImageContents| {
            c.vulnerabilities.as_ref().and_then(|v| v.iter().map(|v| v.severity).max())
        };
        let count = |c: &paved_core::image::ImageContents| c.vulnerabilities.as_ref().map_or(0, Vec::len);
        worst(b).cmp(&worst(a)).then(count(b).cmp(&count(a)))
    });
    let more_images = rows.len().saturating_sub(max_listed);
    let images = rows.into_iter().take(max_listed).map(|(_, row)| row).collect();
    Some(VulnerableImages { images, more_images })
}

fn write_vulnerable(out: &mut dyn Write, v: &VulnerableImages) -> std::io::Result<()> {
    writeln!(out, "\nVULNERABLE IMAGES RUNNING")?;
    if v.images.is_empty() {
        writeln!(out, "  none known")?;
    }
    for image in &v.images {
        let counts: Vec<String> = ["critical", "high", "medium", "low", "unknown"]
            .iter()
            .filter_map(|s| image.counts.get(s).map(|n| format!("{n} {s}")))
            .collect();
        let namespaces: Vec<String> = image.namespaces.iter().map(|(ns, n)| format!("{ns} ({n})")).collect();
        writeln!(out, "  {} ({}): {}", image.digest, image.images.join(", "), counts.join(", "))?;
        writeln!(out, "    running in {}", namespaces.join(", "))?;
        for w in &image.worst {
            writeln!(out, "    {w}")?;
        }
    }
    if v.more_images > 0 {
        writeln!(out, "  … and {} more vulnerable images (--max-listed)", v.more_images)?;
    }
    Ok(())
}

fn write_text(
    out: &mut dyn Write,
    report: &Report,
    kinds: &[KindOutcome],
    problems: &[String],
    source: &str,
) -> std::io::Result<()> {
    let f = &report.findings;
    writeln!(
        out,
        "paved audit of {source}: {} objects in {} kinds; {} deny, {} warn, {} audit, {} exempted",
        report.objects,
        kinds.len(),
        f.deny,
        f.warn,
        f.audit,
        f.exempted
    )?;
    if report.skipped.controlled + report.skipped.excluded_namespaces > 0 {
        writeln!(
            out,
            "  not judged: {} made by a controller (judged at the controller), {} in excluded namespaces",
            report.skipped.controlled, report.skipped.excluded_namespaces
        )?;
    }
    writeln!(out, "\nNAMESPACES")?;
    for (name, ns) in &report.namespaces {
        let label = if name.as_str() == CLUSTER_SCOPE { "(cluster-scoped)" } else { name };
        writeln!(
            out,
            "  {label}  profile {} mode {}: {} objects, {} at fault ({} deny, {} warn, {} audit, {} exempted)",
            ns.profile.as_deref().unwrap_or("none"),
            ns.mode,
            ns.objects,
            ns.objects_at_fault,
            ns.findings.deny,
            ns.findings.warn,
            ns.findings.audit,
            ns.findings.exempted
        )?;
        for fault in &ns.faults {
            writeln!(
                out,
                "    {:<5} {} {}: {} ({})",
                fault.action.as_str(),
                fault.policy,
                fault.object,
                fault.message,
                fault.path
            )?;
        }
        if ns.more_faults > 0 {
            writeln!(out, "    … and {} more findings (--max-listed)", ns.more_faults)?;
        }
    }
    writeln!(out, "\nPOLICIES")?;
    for (id, p) in &report.policies {
        let c = &p.findings;
        writeln!(
            out,
            "  {id}: {} objects at fault ({} deny, {} warn, {} audit, {} exempted)",
            p.objects.len() as u64 + p.more_objects,
            c.deny,
            c.warn,
            c.audit,
            c.exempted
        )?;
    }
    writeln!(out, "\nEXEMPTIONS ({})", report.exemptions.len())?;
    for e in &report.exemptions {
        writeln!(
            out,
            "  {:<14} {} {} until {}: {}",
            e.state,
            e.object,
            e.policies.join(","),
            e.until.as_deref().unwrap_or("(no expiry)"),
            e.reason.as_deref().unwrap_or("(no reason)")
        )?;
    }
    writeln!(out, "\nLOCKS ({})", report.locks.len())?;
    for l in &report.locks {
        writeln!(out, "  {} ({})", l.object, l.why)?;
    }
    writeln!(
        out,
        "\nAS POWERFUL AS THE AUTHORITIES ({}): rights that bypass or reconfigure paved",
        report.powerful.len()
    )?;
    for p in &report.powerful {
        writeln!(out, "  {}: {}, through {}", p.subject, p.right, p.via)?;
    }
    let unlisted: Vec<&KindOutcome> = kinds.iter().filter(|k| k.outcome != Outcome::Ok).collect();
    if !unlisted.is_empty() || !problems.is_empty() || !report.warnings.is_empty() {
        writeln!(out, "\nPROBLEMS")?;
        for k in unlisted {
            writeln!(out, "  {} {}: {}", k.outcome.as_str(), k.resource, k.message.as_deref().unwrap_or(""))?;
        }
        for p in problems.iter().chain(&report.warnings) {
            writeln!(out, "  {p}")?;
        }
    }
    Ok(())
}

fn sarif(report: &Report, docs: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for id in report.policies.keys() {
        rules.push(match paved_core::rules::find(id) {
            Some(rule) => crate::report::sarif_rule(docs, rule),
            None => json!({"id": id}),
        });
    }
    for ns in report.namespaces.values() {
        for fault in &ns.faults {
            let level = match fault.action {
                Action::Deny => "error",
                Action::Warn => "warning",
                Action::Audit => "note",
            };
            // Cluster objects have no file: the location is the object, as a logical location.
            results.push(json!({
                "ruleId": fault.policy,
                "level": level,
                "message": {"text": fault.message},
                "locations": [{"logicalLocations": [{
                    "fullyQualifiedName": format!("{}#{}", fault.object, fault.path),
                    "kind": "object"}]}],
                "properties": {"object": fault.object, "path": fault.path}
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "paved", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
                  "results": results}]
    })
}

/// A PolicyReport never holds more than this, whatever `--max-listed` says:
/// etcd refuses objects over about 1.5 MiB, and reports must not fill it.
const MAX_REPORT_BYTES: usize = 512 * 1024;

/// The PolicyReport (or, for cluster-scoped objects, ClusterPolicyReport) of one namespace.
pub fn policy_report(
    namespace: &str,
    ns: &paved_admission::audit::NamespaceReport,
    max: usize,
    now: paved_core::Timestamp,
) -> Value {
    let timestamp = json!({"seconds": now.as_second(), "nanos": 0});
    let mut results: Vec<Value> = ns
        .faults
        .iter()
        .take(max)
        .map(|f| {
            json!({
                "source": "paved",
                "policy": f.policy,
                "result": "fail",
                "severity": match f.action { Action::Deny => "high", Action::Warn => "medium", Action::Audit => "low" },
                "message": f.message,
                "timestamp": timestamp,
                "resources": [{
                    "apiVersion": f.object.api_version, "kind": f.object.kind,
                    "name": f.object.name, "namespace": f.object.namespace
                }],
                "properties": {"action": f.action.as_str(), "path": f.path}
            })
        })
        .collect();
    let summary = json!({
        "pass": ns.objects - ns.objects_at_fault,
        "fail": ns.findings.total(),
        "warn": 0, "error": 0,
        "skip": ns.findings.exempted
    });
    let (kind, metadata) = if namespace == CLUSTER_SCOPE {
        ("ClusterPolicyReport", json!({"name": "paved", "labels": {"app.kubernetes.io/managed-by": "paved"}}))
    } else {
        (
            "PolicyReport",
            json!({"name": "paved", "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "paved"}}),
        )
    };
    let mut doc = json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": kind, "metadata": metadata,
                         "scope": null, "summary": summary, "results": []});
    // Drop results from the end until the whole report fits.
    loop {
        doc["results"] = Value::Array(results.clone());
        if serde_json::to_vec(&doc).map_or(0, |v| v.len()) <= MAX_REPORT_BYTES || results.is_empty() {
            break;
        }
        results.truncate(results.len() / 2);
    }
    if let Some(map) = doc.as_object_mut() {
        map.remove("scope");
    }
    doc
}

/// The API group of PolicyReport and ClusterPolicyReport.
const REPORT_GROUP: &str = "wgpolicyk8s.io";

/// Server-side applies one report per namespace; returns what failed.
async fn write_reports(client: &kube::Client, report: &Report, max: usize, now: paved_core::Timestamp) -> Vec<String> {
    let mut problems = Vec::new();
    for (namespace, ns) in &report.namespaces {
        let doc = policy_report(namespace, ns, max, now);
        let path = if namespace == CLUSTER_SCOPE {
            "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/paved".to_owned()
        } else {
            format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports/paved")
        };
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        let request = http::Request::patch(format!("{path}?fieldManager=paved&force=true"))
            .header("content-type", "application/apply-patch+yaml")
            .body(body);
        let result = match request {
            Ok(request) => client.request_text(request).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            let hint = if e.contains("404") || e.contains("not find") {
                " (is the wgpolicyk8s.io/v1alpha2 PolicyReport CRD installed?)"
            } else {
                ""
            };
            problems.push(format!(
                "cannot write the PolicyReport of {}: {e}{hint}",
                if namespace.is_empty() { "cluster-scoped objects" } else { namespace }
            ));
        }
    }
    problems
}
