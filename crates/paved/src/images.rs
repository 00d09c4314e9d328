//! `paved images PATH...`: which images the manifests run, where, and whether
//! each is pinned and from an allowed registry. (From a cluster: issue
//! "paved audit and paved images", next.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use paved_core::image::ImageRef;
use paved_core::node::Node;
use paved_core::object::{ObjectRef, PodView};

use crate::check::{FileReport, Input, load_each, read_input};

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

    /// Adds every object of one input; what cannot be read is a problem, named with its place.
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

/// One row of the inventory.
#[derive(Debug, serde::Serialize)]
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
    used_by: &'a BTreeSet<Use>,
}

fn rows<'a>(inv: &'a Inventory, allowed: Option<&[String]>) -> Vec<Row<'a>> {
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
                used_by,
            }
        })
        .collect()
}

pub enum Output {
    Table,
    Json,
    Csv,
}

pub fn write(out: &mut dyn Write, inv: &Inventory, allowed: Option<&[String]>, format: Output) -> std::io::Result<()> {
    let rows = rows(inv, allowed);
    let yes_no = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    match format {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({"images": rows}))?;
            writeln!(out)
        }
        Output::Csv => {
            writeln!(out, "image,registry,repository,tag,digest,pinned,allowed,namespace,workload,container")?;
            for r in &rows {
                for u in r.used_by {
                    let fields = [
                        r.image,
                        &r.registry,
                        &r.repository,
                        r.tag.as_deref().unwrap_or(""),
                        r.digest.as_deref().unwrap_or(""),
                        yes_no(Some(r.pinned)),
                        yes_no(r.allowed),
                        &u.namespace,
                        &u.workload,
                        &u.container,
                    ];
                    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                    writeln!(out, "{}", line.join(","))?;
                }
            }
            Ok(())
        }
        Output::Table => {
            let width = rows.iter().map(|r| r.image.chars().count()).max().unwrap_or(5).clamp(5, 80);
            writeln!(out, "{:<width$}  {:<6}  {:<7}  USED BY", "IMAGE", "PINNED", "ALLOWED")?;
            for r in &rows {
                let users: Vec<String> = r
                    .used_by
                    .iter()
                    .map(|u| {
                        let ns = if u.namespace.is_empty() { String::new() } else { format!("{}/", u.namespace) };
                        format!("{ns}{} ({})", u.workload, u.container)
                    })
                    .collect();
                writeln!(
                    out,
                    "{:<width$}  {:<6}  {:<7}  {}",
                    r.image,
                    yes_no(Some(r.pinned)),
                    yes_no(r.allowed),
                    users.join(", ")
                )?;
            }
            writeln!(out, "\n{} images in {} uses", rows.len(), rows.iter().map(|r| r.used_by.len()).sum::<usize>())
        }
    }
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
        let rows = rows(&inv, Some(&allowed));
        let by_image = |i: &str| rows.iter().find(|r| r.image == i).unwrap_or_else(|| panic!("no {i}"));
        let web = by_image(
            "registry.example.com/shop/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        );
        assert!(web.pinned && web.allowed == Some(true) && web.repository == "shop/web");
        let nginx = by_image("nginx:1.27");
        assert!(!nginx.pinned && nginx.allowed == Some(false) && nginx.tag.as_deref() == Some("1.27"));
        assert_eq!(nginx.registry, "docker.io");
        assert_eq!(super::rows(&inv, None)[0].allowed, None);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
