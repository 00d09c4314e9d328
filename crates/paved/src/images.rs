//! `paved images PATH...` and `paved images --cluster`: which images run,
//! where, whether each is pinned and from an allowed registry, and (from a
//! cluster) the digest that actually runs, from the pods' container statuses.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use paved_core::image::ImageRef;
use paved_core::node::Node;
use paved_core::object::{ObjectRef, PodView};

use crate::check::{FileReport, Input, load_each, read_input};
use crate::image_store::{ImageStore, Outcome};

/// Where an image runs: namespace, workload (`Kind/name`) and container.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Use {
    pub namespace: String,
    pub workload: String,
    pub container: String,
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub images: BTreeMap<String, BTreeSet<Use>>,
    /// Image → the digests its containers run (`status.containerStatuses[].imageID`):
    /// a tag that resolves to several digests has moved under running pods.
    pub running: BTreeMap<String, BTreeSet<String>>,
    /// Inputs that could not be read or parsed, as `file: message`.
    pub problems: Vec<String>,
}

impl Inventory {
    /// Adds the images of one object's pod spec (a Pod, or any controller's template).
    pub fn add_object(&mut self, obj: &Node) {
        let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
        let Some(pod) = PodView::of(obj, kind) else { return };
        let object = ObjectRef::of(obj);
        for c in pod.containers() {
            let Some(image) = c.node.get("image").and_then(Node::as_str) else { continue };
            let used = Use {
                namespace: object.namespace.clone().unwrap_or_default(),
                workload: format!("{}/{}", object.kind, object.name.as_deref().unwrap_or("")),
                container: c.name().to_owned(),
            };
            self.images.entry(image.to_owned()).or_default().insert(used);
        }
    }

    /// Adds a Pod listed from a cluster: its workload is its controller (a
    /// ReplicaSet's Deployment by the pod-template-hash), and its container
    /// statuses say which digest runs.
    pub fn add_cluster_pod(&mut self, pod: &Node) {
        let Some(view) = PodView::of(pod, "Pod") else { return };
        let namespace = pod.at(&["metadata", "namespace"]).and_then(Node::as_str).unwrap_or("").to_owned();
        let workload = workload_of(pod);
        let status = |list: &str| pod.at(&["status", list]).map(Node::as_seq).unwrap_or(&[]);
        let statuses = ["containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"];
        for c in view.containers() {
            let Some(image) = c.node.get("image").and_then(Node::as_str) else { continue };
            let name = c.name();
            self.images.entry(image.to_owned()).or_default().insert(Use {
                namespace: namespace.clone(),
                workload: workload.clone(),
                container: name.to_owned(),
            });
            let image_id = statuses
                .iter()
                .flat_map(|list| status(list))
                .find(|s| s.get("name").and_then(Node::as_str) == Some(name))
                .and_then(|s| s.get("imageID").and_then(Node::as_str));
            if let Some(digest) = image_id.and_then(|id| id.rsplit_once('@')).map(|(_, d)| d)
                && digest.starts_with("sha256:")
            {
                self.running.entry(image.to_owned()).or_default().insert(digest.to_owned());
            }
        }
    }

    /// Adds every object of one input; what cannot be read is a problem, named with its place.
    /// An image named on the command line (`--image`), used by nothing.
    pub fn add_reference(&mut self, image: &str) {
        let named = Use { namespace: String::new(), workload: "(command line)".into(), container: String::new() };
        self.images.entry(image.trim().to_owned()).or_default().insert(named);
    }

    pub fn add_input(&mut self, input: &Input, limits: &paved_yaml::Limits) {
        let report = match read_input(input, limits) {
            Ok((path, bytes)) => {
                let mut report = FileReport::empty(path);
                load_each(&mut report, &bytes, limits, |node| self.add_object(node));
                report
            }
            Err(report) => report,
        };
        self.add_problems(&report);
    }

    pub fn add_problems(&mut self, report: &FileReport) {
        for p in &report.problems {
            self.problems.push(match p.pos {
                Some(pos) => format!("{}:{}:{}: {}", report.path, pos.line, pos.col, p.message),
                None => format!("{}: {}", report.path, p.message),
            });
        }
    }
}

/// `Kind/name` of the workload that runs a pod: its controller, and for a
/// ReplicaSet named `<deployment>-<pod-template-hash>`, the Deployment.
fn workload_of(pod: &Node) -> String {
    let name = pod.at(&["metadata", "name"]).and_then(Node::as_str).unwrap_or("");
    let owner = pod
        .at(&["metadata", "ownerReferences"])
        .and_then(|refs| refs.as_seq().iter().find(|r| r.get("controller").is_some_and(Node::is_true)));
    let Some(owner) = owner else { return format!("Pod/{name}") };
    let kind = owner.get("kind").and_then(Node::as_str).unwrap_or("");
    let owner_name = owner.get("name").and_then(Node::as_str).unwrap_or("");
    let hash = pod.at(&["metadata", "labels", "pod-template-hash"]).and_then(Node::as_str);
    if kind == "ReplicaSet"
        && let Some(deployment) = hash.and_then(|h| owner_name.strip_suffix(h)?.strip_suffix('-'))
    {
        return format!("Deployment/{deployment}");
    }
    format!("{kind}/{owner_name}")
}

/// One row of the inventory.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    image: &'a str,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
    /// Pinned means by digest: a tag can be moved, a digest cannot.
    pinned: bool,
    /// `None` when no allowed registries are configured.
    allowed: Option<bool>,
    /// Digests running (from a cluster; empty for manifests).
    running: Vec<&'a str>,
    used_by: &'a BTreeSet<Use>,
    /// What the image carries (`--contents`).
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<&'a paved_image::ImageReport>,
    /// Why the image could not be analysed (`--contents`).
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis_error: Option<&'a str>,
    /// Known vulnerabilities of what it carries (`--vulns`).
    #[serde(skip_serializing_if = "Option::is_none")]
    vulnerabilities: Option<&'a paved_advisory::matching::Matched>,
}

/// What `--vulns` adds to the output: each image's matches, and the index's header.
pub struct Vulns<'a> {
    pub by_image: &'a crate::vulns::ImageVulns,
    pub advisories: &'a paved_advisory::index::Header,
}

/// What `paved images` reads beyond the manifests: images' contents (a
/// store), and advisories (the index's directory) for `--vulns`.
#[derive(Clone, Copy)]
pub struct Wanted<'a> {
    pub store: Option<&'a ImageStore>,
    pub advisories: Option<&'a std::path::Path>,
}

/// The analysed images matched against the advisories, when `--vulns` asked.
pub fn match_vulns(
    contents: Option<&Contents>,
    advisories: Option<&std::path::Path>,
) -> miette::Result<Option<(crate::vulns::ImageVulns, paved_advisory::index::Header)>> {
    match (contents, advisories) {
        (Some(contents), Some(dir)) => crate::vulns::match_images(contents, dir).map(Some),
        _ => Ok(None),
    }
}

/// What each image of the inventory carries; images analysed two at a time.
pub fn analyse(inv: &Inventory, store: &ImageStore) -> Contents {
    use rayon::prelude::*;
    let images: Vec<&String> = inv.images.keys().collect();
    images.into_par_iter().map(|image| (image.clone(), store.report(image))).collect::<Vec<_>>().into_iter().collect()
}

/// Image → its analysis, or why there is none.
pub type Contents = BTreeMap<String, Outcome>;

fn rows<'a>(
    inv: &'a Inventory,
    allowed: Option<&[String]>,
    contents: Option<&'a Contents>,
    vulns: Option<&Vulns<'a>>,
) -> Vec<Row<'a>> {
    inv.images
        .iter()
        .map(|(image, used_by)| {
            let r = ImageRef::parse(image);
            Row {
                image,
                allowed: allowed.map(|list| list.iter().any(|a| r.is_from(a))),
                pinned: r.digest.is_some(),
                registry: r.registry,
                repository: r.repository,
                tag: r.tag,
                digest: r.digest,
                running: inv.running.get(image).map(|d| d.iter().map(String::as_str).collect()).unwrap_or_default(),
                used_by,
                contents: contents.and_then(|c| c.get(image)).and_then(|o| o.as_ref().ok()).map(|r| &**r),
                analysis_error: contents.and_then(|c| c.get(image)).and_then(|o| o.as_ref().err()).map(String::as_str),
                vulnerabilities: vulns.and_then(|v| v.by_image.get(image)).and_then(|m| m.as_ref().ok()),
            }
        })
        .collect()
}

pub enum Output {
    Table,
    Json,
    Csv,
    Sarif,
}

impl From<crate::cli::ImagesFormat> for Output {
    fn from(format: crate::cli::ImagesFormat) -> Output {
        match format {
            crate::cli::ImagesFormat::Text => Output::Table,
            crate::cli::ImagesFormat::Json => Output::Json,
            crate::cli::ImagesFormat::Csv => Output::Csv,
            crate::cli::ImagesFormat::Sarif => Output::Sarif,
        }
    }
}

pub fn write(
    out: &mut dyn Write,
    inv: &Inventory,
    allowed: Option<&[String]>,
    contents: Option<&Contents>,
    vulns: Option<&Vulns<'_>>,
    format: Output,
) -> std::io::Result<()> {
    let rows = rows(inv, allowed, contents, vulns);
    let analysed = contents.is_some();
    let yes_no = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    match format {
        Output::Json => {
            let mut doc = serde_json::json!({"schemaVersion": crate::report::JSON_SCHEMA_VERSION, "images": rows});
            if let Some(v) = vulns {
                doc["advisories"] = serde_json::json!({"records": v.advisories.records, "newest": v.advisories.newest});
            }
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)
        }
        Output::Csv if vulns.is_some() => vulns_csv(out, &rows),
        Output::Sarif => vulns_sarif(out, &rows),
        Output::Csv => {
            write!(out, "image,registry,repository,tag,digest,pinned,allowed,running,namespace,workload,container")?;
            if analysed {
                write!(out, ",manifest_digest,shells,package_managers,interpreters,setuid,packages,analysis_error")?;
            }
            writeln!(out)?;
            for r in &rows {
                let running = r.running.join(" ");
                let carried = carried_columns(r);
                for u in r.used_by {
                    let mut fields = vec![
                        r.image,
                        &r.registry,
                        &r.repository,
                        r.tag.as_deref().unwrap_or(""),
                        r.digest.as_deref().unwrap_or(""),
                        yes_no(Some(r.pinned)),
                        yes_no(r.allowed),
                        &running,
                        &u.namespace,
                        &u.workload,
                        &u.container,
                    ];
                    if analysed {
                        fields.extend(carried.iter().map(String::as_str));
                    }
                    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                    writeln!(out, "{}", line.join(","))?;
                }
            }
            Ok(())
        }
        Output::Table => {
            let width = rows.iter().map(|r| r.image.chars().count()).max().unwrap_or(5).clamp(5, 80);
            let cluster = rows.iter().any(|r| !r.running.is_empty());
            if cluster {
                writeln!(out, "{:<width$}  {:<6}  {:<7}  {:<14}  USED BY", "IMAGE", "PINNED", "ALLOWED", "RUNNING")?;
            } else {
                writeln!(out, "{:<width$}  {:<6}  {:<7}  USED BY", "IMAGE", "PINNED", "ALLOWED")?;
            }
            for r in &rows {
                let users: Vec<String> = r
                    .used_by
                    .iter()
                    .map(|u| {
                        let ns = if u.namespace.is_empty() { String::new() } else { format!("{}/", u.namespace) };
                        format!("{ns}{} ({})", u.workload, u.container)
                    })
                    .collect();
                let pinned = yes_no(Some(r.pinned));
                let allowed = yes_no(r.allowed);
                if cluster {
                    // Short digests, as `docker images` shows them; several mean the tag moved.
                    let running: Vec<&str> = r
                        .running
                        .iter()
                        .map(|d| d.strip_prefix("sha256:").unwrap_or(d).get(..12).unwrap_or(d))
                        .collect();
                    let running = if running.is_empty() { "-".to_owned() } else { running.join(",") };
                    writeln!(
                        out,
                        "{:<width$}  {pinned:<6}  {allowed:<7}  {running:<14}  {}",
                        r.image,
                        users.join(", ")
                    )?;
                } else {
                    writeln!(out, "{:<width$}  {pinned:<6}  {allowed:<7}  {}", r.image, users.join(", "))?;
                }
                if analysed {
                    write_carried(out, r)?;
                }
                if let Some(matched) = r.vulnerabilities {
                    write_vulns(out, matched)?;
                }
            }
            writeln!(out, "\n{} images in {} uses", rows.len(), rows.iter().map(|r| r.used_by.len()).sum::<usize>())?;
            if let Some(v) = vulns {
                let found: usize = rows.iter().filter_map(|r| r.vulnerabilities).map(|m| m.vulnerabilities.len()).sum();
                let newest = if v.advisories.newest.is_empty() { "-" } else { &v.advisories.newest };
                writeln!(
                    out,
                    "{found} known vulnerabilities, from {} advisories (newest {newest})",
                    v.advisories.records
                )?;
            }
            Ok(())
        }
    }
}

/// `paved images --cluster`: every pod of the cluster (or of `--namespace`).
pub fn from_cluster(
    target: &crate::cli::ClusterArgs,
    format: Output,
    config: &paved_core::config::Config,
    what: Wanted<'_>,
) -> miette::Result<u8> {
    let mut inventory = Inventory::default();
    let rt = crate::audit::runtime()?;
    let outcome = rt.block_on(async {
        let (client, _) = crate::audit::connect(target).await?;
        let pods = paved_cluster::list::Resource {
            group: String::new(),
            version: "v1".into(),
            plural: "pods".into(),
            kind: "Pod".into(),
            namespaced: true,
            namespace: None,
        };
        let outcome = crate::audit::list_kind(&client, &pods, target.namespace.as_deref(), 500, |pod| {
            inventory.add_cluster_pod(pod);
        })
        .await;
        Ok::<_, miette::Report>(outcome)
    })?;
    if !outcome.outcome.listed() {
        return Err(miette::miette!(code = "paved::cluster", "{}", outcome.message.unwrap_or_default()));
    }
    let contents = what.store.map(|s| analyse(&inventory, s));
    let matched = match_vulns(contents.as_ref(), what.advisories)?;
    let vulns = matched.as_ref().map(|(by_image, advisories)| Vulns { by_image, advisories });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let allowed = config.params.allowed_registries.as_deref();
    match write(&mut out, &inventory, allowed, contents.as_ref(), vulns.as_ref(), format).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(crate::io_error(e)),
        _ => Ok(0),
    }
}

/// The `--contents` columns of a CSV row: manifest digest, shells, package
/// managers, interpreters, setuid files, packages, error.
fn carried_columns(r: &Row<'_>) -> Vec<String> {
    let tools = |list: &[paved_image::Tool]| list.iter().map(|t| t.path.as_str()).collect::<Vec<_>>().join(" ");
    match (r.contents, r.analysis_error) {
        (Some(report), _) => {
            let c = &report.contents;
            vec![
                report.digest.to_string(),
                tools(&c.shells),
                tools(&c.package_managers),
                tools(&c.interpreters),
                c.setuid.iter().map(|s| s.path.as_str()).collect::<Vec<_>>().join(" "),
                c.packages.len().to_string(),
                String::new(),
            ]
        }
        (None, error) => {
            let mut row = vec![String::new(); 6];
            row.push(error.unwrap_or("").to_owned());
            row
        }
    }
}

/// The indented lines under an image in the table: what it carries.
fn write_carried(out: &mut dyn Write, r: &Row<'_>) -> std::io::Result<()> {
    let Some(report) = r.contents else {
        return writeln!(out, "    not analysed: {}", r.analysis_error.unwrap_or("unknown"));
    };
    let c = &report.contents;
    let tools = |list: &[paved_image::Tool]| {
        if list.is_empty() {
            return "none".to_owned();
        }
        list.iter()
            .map(|t| match &t.target {
                Some(target) => format!("{} -> {target}", t.path),
                None => t.path.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let short = report.digest.as_str().split_once(':').map_or("", |(_, h)| h.get(..12).unwrap_or(h));
    let platform = if report.platform.is_empty() { String::new() } else { format!(", {}", report.platform) };
    writeln!(out, "    manifest {short}{platform}, {} layers, {} files", report.layers.len(), c.files)?;
    writeln!(out, "    shells: {}", tools(&c.shells))?;
    writeln!(out, "    package managers: {}", tools(&c.package_managers))?;
    writeln!(out, "    interpreters: {}", tools(&c.interpreters))?;
    let setuid: Vec<String> = c.setuid.iter().map(|s| format!("{} ({})", s.path, s.mode)).collect();
    writeln!(out, "    setuid/setgid: {}", if setuid.is_empty() { "none".to_owned() } else { setuid.join(", ") })?;
    let sources: BTreeSet<&str> = c.packages.iter().map(|p| p.source.as_str()).collect();
    let sources = if sources.is_empty() {
        String::new()
    } else {
        format!(" ({})", sources.into_iter().collect::<Vec<_>>().join(", "))
    };
    writeln!(out, "    packages: {}{sources}", c.packages.len())?;
    for note in &c.notes {
        writeln!(out, "    note: {note}")?;
    }
    Ok(())
}

/// The indented lines under an image in the table: its vulnerabilities,
/// worst first.
fn write_vulns(out: &mut dyn Write, matched: &paved_advisory::matching::Matched) -> std::io::Result<()> {
    if matched.vulnerabilities.is_empty() {
        writeln!(out, "    vulnerabilities: none known")?;
    }
    for v in &matched.vulnerabilities {
        let score = v.score.map(|s| format!(" {s:.1}")).unwrap_or_default();
        let cve = v.aliases.iter().find(|a| a.starts_with("CVE-")).map(|c| format!(" ({c})")).unwrap_or_default();
        let fixed = v.fixed.as_deref().map_or_else(|| "no fix yet".to_owned(), |f| format!("fixed in {f}"));
        let as_ = v.installed_as.as_deref().map(|b| format!(" as {b}")).unwrap_or_default();
        let severity = format!("{}{score}", v.severity.as_str());
        writeln!(out, "    {severity:<13} {}{cve}: {} {}{as_}, {fixed}", v.id, v.package, v.installed)?;
    }
    for (ecosystem, n) in &matched.unmatched_ecosystems {
        writeln!(out, "    note: {n} packages of {ecosystem} not matched (no advisories paved can order)")?;
    }
    for u in &matched.unsettled {
        writeln!(out, "    note: not settled: {u}")?;
    }
    Ok(())
}

/// One line per vulnerability and use: what a spreadsheet or a ticket filer wants.
fn vulns_csv(out: &mut dyn Write, rows: &[Row<'_>]) -> std::io::Result<()> {
    writeln!(
        out,
        "image,manifest_digest,package,installed_as,installed,fixed,id,aliases,severity,score,cvss,namespace,workload,container"
    )?;
    for r in rows {
        let Some(matched) = r.vulnerabilities else { continue };
        let digest = r.contents.map(|c| c.digest.to_string()).unwrap_or_default();
        for v in &matched.vulnerabilities {
            let score = v.score.map(|s| format!("{s:.1}")).unwrap_or_default();
            let aliases = v.aliases.join(" ");
            for u in r.used_by {
                let fields = [
                    r.image,
                    &digest,
                    &v.package,
                    v.installed_as.as_deref().unwrap_or(""),
                    &v.installed,
                    v.fixed.as_deref().unwrap_or(""),
                    &v.id,
                    &aliases,
                    v.severity.as_str(),
                    &score,
                    v.cvss.as_deref().unwrap_or(""),
                    &u.namespace,
                    &u.workload,
                    &u.container,
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
    }
    Ok(())
}

/// SARIF 2.1.0: a rule per advisory, a result per image and vulnerable
/// package, located by the image (a logical location: an image is no file).
fn vulns_sarif(out: &mut dyn Write, rows: &[Row<'_>]) -> std::io::Result<()> {
    use paved_core::image::Severity;
    let mut rules: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    let mut results = Vec::new();
    for r in rows {
        let Some(matched) = r.vulnerabilities else { continue };
        for v in &matched.vulnerabilities {
            rules.entry(v.id.as_str()).or_insert_with(|| {
                let text = v.summary.clone().unwrap_or_else(|| v.id.clone());
                let mut rule = serde_json::json!({
                    "id": v.id,
                    "shortDescription": {"text": text},
                    "helpUri": format!("https://osv.dev/vulnerability/{}", v.id),
                    "properties": {"tags": ["security", "vulnerability"]}
                });
                if let Some(score) = v.score {
                    rule["properties"]["security-severity"] = serde_json::json!(format!("{score:.1}"));
                }
                rule
            });
            let level = match v.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Unknown => "note",
            };
            let fixed =
                v.fixed.as_deref().map_or_else(|| "no fixed version yet".to_owned(), |f| format!("fixed in {f}"));
            let message = format!("{} {} in {} ({}): {fixed}", v.package, v.installed, r.image, v.severity.as_str());
            results.push(serde_json::json!({
                "ruleId": v.id,
                "level": level,
                "message": {"text": message},
                "locations": [{"logicalLocations": [{"name": r.image, "kind": "module"}]}],
                "properties": {
                    "image": r.image,
                    "package": v.package,
                    "installed": v.installed,
                    "fixed": v.fixed,
                    "aliases": v.aliases,
                    "usedBy": r.used_by,
                }
            }));
        }
    }
    let log = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "paved",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/paved-dev/paved",
                "rules": rules.into_values().collect::<Vec<_>>()
            }},
            "results": results
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

/// RFC 4180: quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(yaml: &str) -> Inventory {
        let mut inv = Inventory::default();
        let limits = paved_yaml::Limits::default();
        for item in paved_yaml::load(yaml, &limits).unwrap_or_default() {
            if let paved_yaml::Item::Object(n) = item {
                inv.add_object(&n);
            }
        }
        inv
    }

    const MANIFESTS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      initContainers: [{name: init, image: busybox}]
      containers:
      - {name: app, image: \"registry.example.com/shop/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}
      - {name: sidecar, image: \"nginx:1.27\"}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: ops}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: \"nginx:1.27\"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
";

    #[test]
    fn lists_every_container_of_every_workload() {
        let inv = inventory(MANIFESTS);
        assert_eq!(inv.images.len(), 3);
        let nginx: Vec<&str> = inv.images["nginx:1.27"].iter().map(|u| u.workload.as_str()).collect();
        assert_eq!(nginx, ["CronJob/report", "Deployment/web"]);
        assert_eq!(inv.images["busybox"].iter().next().map(|u| u.container.as_str()), Some("init"));
    }

    #[test]
    fn rows_say_pinned_and_allowed() {
        let inv = inventory(MANIFESTS);
        let allowed = vec!["registry.example.com".to_owned()];
        let rows = rows(&inv, Some(&allowed), None, None);
        let by_image = |i: &str| rows.iter().find(|r| r.image == i).unwrap_or_else(|| panic!("no {i}"));
        let web = by_image(
            "registry.example.com/shop/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        );
        assert!(web.pinned && web.allowed == Some(true) && web.repository == "shop/web");
        let nginx = by_image("nginx:1.27");
        assert!(!nginx.pinned && nginx.allowed == Some(false) && nginx.tag.as_deref() == Some("1.27"));
        assert_eq!(nginx.registry, "docker.io");
        assert_eq!(super::rows(&inv, None, None, None)[0].allowed, None);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
