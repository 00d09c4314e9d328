//! `paved check`: inputs → loader → engine → reporter, file by file.
//!
//! Files are processed on every core in batches and reported in input order,
//! so output is deterministic and memory stays bounded by the batch, not by
//! the number of files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use paved_core::Timestamp;
use paved_core::eval::Engine;
use paved_core::node::{Node, Pos};
use paved_core::object::ObjectRef;
use paved_core::policy::{Action, Finding};
use paved_yaml::{Item, Limits};
use rayon::prelude::*;

/// Files processed together before their reports are written.
const BATCH: usize = 256;

/// Where a manifest comes from.
#[derive(Debug, Clone)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

/// Something that stopped a file or a document from being checked.
#[derive(Debug, Clone)]
pub struct Problem {
    pub pos: Option<Pos>,
    pub message: String,
}

/// One object and what the engine found.
#[derive(Debug)]
pub struct ObjectReport {
    pub object: Arc<ObjectRef>,
    pub pos: Pos,
    pub findings: Vec<Finding>,
}

/// Everything about one input file.
#[derive(Debug)]
pub struct FileReport {
    /// As the user named it; `<stdin>` for standard input.
    pub path: String,
    /// The text, kept only when a reporter needs snippets.
    pub source: Option<Box<Source>>,
    pub objects: Vec<ObjectReport>,
    pub problems: Vec<Problem>,
    pub skipped: Vec<(Pos, &'static str)>,
}

/// A file's bytes, kept as they were read (not copied) for the text
/// reporter's snippets; `start` skips a byte order mark.
#[derive(Debug)]
pub struct Source {
    bytes: Vec<u8>,
    start: usize,
}

impl Source {
    /// The text; `None` if it is not the UTF-8 it was when it was checked.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(self.start..)?).ok()
    }
}

/// Totals over a run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub files: usize,
    pub objects: usize,
    pub deny: usize,
    pub warn: usize,
    pub audit: usize,
    pub exempted: usize,
    pub problems: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn add(&mut self, f: &FileReport) {
        self.files += 1;
        self.objects += f.objects.len();
        self.problems += f.problems.len();
        self.skipped += f.skipped.len();
        for finding in f.objects.iter().flat_map(|o| &o.findings) {
            if !finding.counts() {
                self.exempted += 1;
                continue;
            }
            match finding.action {
                Action::Deny => self.deny += 1,
                Action::Warn => self.warn += 1,
                Action::Audit => self.audit += 1,
            }
        }
    }
}

/// `12 objects in 3 files: 2 denied, …`: the closing line of human formats.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} objects in {} files: {} denied, {} warnings, {} audit, {} exempted, {} input errors",
            self.objects, self.files, self.deny, self.warn, self.audit, self.exempted, self.problems
        )
    }
}

/// Receives reports in input order.
pub trait Reporter {
    fn file(&mut self, report: &FileReport) -> std::io::Result<()>;
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()>;
    /// Whether [`FileReport::source`] is needed.
    fn wants_source(&self) -> bool {
        false
    }
}

/// Expands paths into inputs: files as named, directories recursively
/// (`*.yaml`, `*.yml`, `*.json`, hidden entries skipped), `-` for stdin.
pub fn inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<FileReport>) {
    let mut inputs = Vec::new();
    let mut missing = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else if p.is_dir() {
            // Links are followed (kustomize trees use them); walkdir reports loops as errors.
            let walk = walkdir::WalkDir::new(p)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
            for entry in walk {
                match entry {
                    Ok(e) if e.file_type().is_file() && is_manifest(e.path()) => {
                        inputs.push(Input::File(e.into_path()))
                    }
                    Ok(_) => {}
                    Err(err) => missing.push(failed(err.path().unwrap_or(p), err.to_string())),
                }
            }
        } else if p.exists() {
            inputs.push(Input::File(p.clone()));
        } else {
            missing.push(failed(p, "no such file or directory".into()));
        }
    }
    (inputs, missing)
}

fn is_manifest(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

fn failed(path: &Path, message: String) -> FileReport {
    let mut report = FileReport::empty(path.display().to_string());
    report.problems.push(Problem { pos: None, message });
    report
}

impl FileReport {
    pub fn empty(path: String) -> FileReport {
        FileReport { path, source: None, objects: Vec::new(), problems: Vec::new(), skipped: Vec::new() }
    }
}

/// Reads a file, or stdin, up to the size limit (plus one byte, to detect overflow).
fn read(input: &Input, limits: &Limits) -> std::io::Result<Vec<u8>> {
    let cap = u64::try_from(limits.max_file_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut buf = Vec::new();
    match input {
        Input::File(p) => {
            let file = std::fs::File::open(p)?;
            // One allocation of the right size instead of repeated doubling.
            let len = file.metadata().map_or(0, |m| m.len()).min(cap);
            buf.reserve_exact(usize::try_from(len).unwrap_or(0).saturating_add(1));
            file.take(cap).read_to_end(&mut buf)?
        }
        Input::Stdin => std::io::stdin().lock().take(cap).read_to_end(&mut buf)?,
    };
    Ok(buf)
}

/// Loads and evaluates one input. Never fails: problems are part of the report.
pub fn check_input(input: &Input, engine: &Engine, limits: &Limits, now: Timestamp, keep_source: bool) -> FileReport {
    match read_input(input, limits) {
        Ok((path, bytes)) => {
            let (mut report, text_start) = check(path, &bytes, engine, limits, now);
            if keep_source {
                report.source = text_start.map(|start| Box::new(Source { bytes, start }));
            }
            report
        }
        Err(report) => report,
    }
}

/// An input's name and bytes, or a report saying why it could not be read.
pub fn read_input(input: &Input, limits: &Limits) -> Result<(String, Vec<u8>), FileReport> {
    let path = match input {
        Input::File(p) => p.display().to_string(),
        Input::Stdin => "<stdin>".to_string(),
    };
    match read(input, limits) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) => Err(failed(Path::new(&path), format!("cannot read: {e}"))),
    }
}

/// Loads and evaluates bytes already in memory.
pub fn check_bytes(path: String, bytes: &[u8], engine: &Engine, limits: &Limits, now: Timestamp) -> FileReport {
    check(path, bytes, engine, limits, now).0
}

/// The report, and where the text starts in `bytes` if it decoded.
fn check(path: String, bytes: &[u8], engine: &Engine, limits: &Limits, now: Timestamp) -> (FileReport, Option<usize>) {
    let mut report = FileReport::empty(path);
    let mut objects = Vec::new();
    let text = load_each(&mut report, bytes, limits, |node| objects.push(evaluate(node, engine, now)));
    report.objects = objects;
    (report, text.map(|t| bytes.len() - t.len()))
}

/// Decodes and loads one input, handing each object to `visit`; problems
/// (with their positions) and skipped documents go into `report`. Every
/// command that reads manifests goes through here. Returns the text, if it decoded.
pub fn load_each<'t>(
    report: &mut FileReport,
    bytes: &'t [u8],
    limits: &Limits,
    mut visit: impl FnMut(&Node<'_>),
) -> Option<&'t str> {
    let text = match paved_yaml::decode(bytes, limits) {
        Ok(t) => t,
        Err(e) => {
            let pos = match &e {
                paved_yaml::FileError::NotUtf8 { pos } => Some(*pos),
                _ => None,
            };
            report.problems.push(Problem { pos, message: e.to_string() });
            return None;
        }
    };
    match paved_yaml::load(text, limits) {
        Err(e) => {
            let pos = match &e {
                paved_yaml::FileError::HelmTemplate { line } => Some(Pos { line: *line, col: 1 }),
                _ => None,
            };
            report.problems.push(Problem { pos, message: e.to_string() });
        }
        Ok(items) => {
            for item in items {
                match item {
                    Item::Object(node) => visit(&node),
                    Item::Skipped { pos, reason } => report.skipped.push((pos, reason)),
                    Item::Error(e) => report.problems.push(Problem { pos: Some(e.pos), message: e.message }),
                }
            }
        }
    }
    Some(text)
}

fn evaluate(node: &Node<'_>, engine: &Engine, now: Timestamp) -> ObjectReport {
    let findings = engine.evaluate(node, now);
    // The engine already made the reference when it found something.
    let object = findings.first().map_or_else(|| Arc::new(ObjectRef::of(node)), |f| Arc::clone(&f.object));
    ObjectReport { object, pos: node.span.start, findings }
}

/// Checks every input, reporting in order and adding to the totals.
pub fn run(
    inputs: &[Input],
    engine: &Engine,
    limits: &Limits,
    now: Timestamp,
    reporter: &mut dyn Reporter,
    summary: &mut Summary,
) -> std::io::Result<()> {
    let keep_source = reporter.wants_source();
    for batch in inputs.chunks(BATCH) {
        let reports: Vec<FileReport> =
            batch.par_iter().map(|input| check_input(input, engine, limits, now, keep_source)).collect();
        for r in &reports {
            summary.add(r);
            reporter.file(r)?;
        }
    }
    Ok(())
}
