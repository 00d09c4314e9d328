//! `paved fix`: the paved road's defaults written into manifest files, as
//! `/mutate` sets them at admission (the same mutations, from
//! `paved_core::mutate`), made as text edits by `paved_yaml::edit` so that
//! everything else stays as written.
//!
//! A file is written whole or not at all: a document that does not parse,
//! or that an edit cannot change safely (anchors, flow collections over
//! several lines), leaves its file untouched and is reported.

use std::io::{Read, Write};
use std::path::Path;

use paved_core::Timestamp;
use paved_core::eval::Engine;
use paved_core::mutate::{Mutation, PatchOp, ResourceDefaults};
use paved_core::node::{FieldPath, Node, Pos};
use paved_yaml::Limits;
use rayon::prelude::*;

use crate::check::Input;
use crate::cli::FixArgs;

/// A default set, where and by which policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub pos: Pos,
    /// The default's id, or the MutatingAdmissionPolicy binding's (`map/<policy>/<binding>`).
    pub policy: String,
    pub message: String,
}

/// Why a text was left as it was, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfixable {
    pub pos: Pos,
    pub message: String,
}

/// What the paved road sets, from the configuration: the engine (which
/// defaults are on, in its compiled policy set, and the mutating policies
/// loaded) and the resource values.
pub struct Defaults<'a> {
    pub engine: &'a Engine,
    pub resources: &'a ResourceDefaults,
    pub now: Timestamp,
}

impl<'a> Defaults<'a> {
    pub fn of(engine: &'a Engine, resources: &'a ResourceDefaults) -> Defaults<'a> {
        Defaults { engine, resources, now: Timestamp::now() }
    }
}

/// The text with the defaults set in every object of every document, and
/// what was set; or, if any document cannot be fixed safely, why (and the
/// text is not to be written).
pub fn fix_text(text: &str, defaults: &Defaults, limits: &Limits) -> Result<(String, Vec<Said>), Vec<Unfixable>> {
    if let Err(e) = paved_yaml::load(text, limits) {
        // File-level refusals (a Helm template, too many documents) first.
        return Err(vec![Unfixable { pos: Pos { line: 1, col: 1 }, message: e.to_string() }]);
    }
    let mut out = String::with_capacity(text.len() + 256);
    let mut said = Vec::new();
    let mut problems = Vec::new();
    for doc in paved_yaml::documents(text) {
        let shift = |p: Pos| Pos { line: p.line + doc.first_line - 1, col: p.col };
        let root = match paved_yaml::parse_one(doc.text, 1, limits) {
            Ok(Some(root)) => root,
            Ok(None) => {
                out.push_str(doc.text);
                continue;
            }
            Err(e) => {
                problems.push(Unfixable { pos: shift(e.pos), message: e.message });
                continue;
            }
        };
        let mut ops = Vec::new();
        for (prefix, object) in objects(&root) {
            match object_ops(object, &prefix, defaults, &mut ops) {
                Ok(set) => said.extend(set.into_iter().map(|s| Said { pos: shift(s.pos), ..s })),
                Err(why) => problems.push(Unfixable { pos: shift(object.span.start), message: why }),
            }
        }
        match paved_yaml::edit::patch_document(doc.text, &ops, limits) {
            Ok(fixed) => out.push_str(&fixed),
            Err(e) => {
                let pos = match &e {
                    paved_yaml::edit::CannotEdit::Shape { at, .. } => shift(*at),
                    _ => shift(root.span.start),
                };
                let message = match e {
                    paved_yaml::edit::CannotEdit::Shape { why, .. } => format!("cannot set the defaults here: {why}"),
                    other => format!("cannot set the defaults in this document: {other}"),
                };
                problems.push(Unfixable { pos, message });
            }
        }
    }
    if problems.is_empty() { Ok((out, said)) } else { Err(problems) }
}

/// The objects of a document: itself, or the items of a `List`, each with
/// the JSON Pointer it is at.
fn objects<'n, 'a>(root: &'n Node<'a>) -> Vec<(String, &'n Node<'a>)> {
    let kind = root.get("kind").and_then(Node::as_str);
    match (kind, root.get("items")) {
        (Some(k), Some(items)) if k.ends_with("List") => {
            items.as_seq().iter().enumerate().map(|(i, item)| (format!("/items/{i}"), item)).collect()
        }
        _ if root.get("apiVersion").is_some() && kind.is_some() => vec![(String::new(), root)],
        _ => Vec::new(),
    }
}

/// The patch one object needs (appended to `ops`, under `prefix`): the
/// paved road's defaults, then the MutatingAdmissionPolicies on the object
/// they made; and what each did, where. A policy that fails on the object
/// (failurePolicy Fail or not: a file is not half-mutated) is the error.
fn object_ops(object: &Node, prefix: &str, defaults: &Defaults, ops: &mut Vec<PatchOp>) -> Result<Vec<Said>, String> {
    let Some(kind) = object.get("kind").and_then(Node::as_str) else { return Ok(Vec::new()) };
    let mutations =
        defaults.engine.mutate(object, kind, Some(defaults.resources), &serde_json::Value::Null, None, defaults.now);
    if let Some((id, why, _)) = mutations.errors.first() {
        return Err(format!("[{id}] {why}"));
    }
    ops.extend(prefixed(mutations.patch, prefix));
    // Each default where it is set; what came after the policies, and the
    // policies themselves, at the object.
    let said_at = |pos: Pos, policy: String, message: String| Said { pos, policy, message };
    let mut said: Vec<Said> = mutations
        .defaults
        .into_iter()
        .map(|m| said_at(object.locate(path_of(&m)).0.start, m.policy.to_owned(), m.announce))
        .collect();
    said.extend(
        mutations
            .defaults_after_policies
            .into_iter()
            .map(|m| said_at(object.span.start, m.policy.to_owned(), m.announce)),
    );
    let name = object.at(&["metadata", "name"]).and_then(Node::as_str).unwrap_or("");
    said.extend(mutations.by.into_iter().map(|id| said_at(object.span.start, id, format!("changed {kind} {name:?}"))));
    Ok(said)
}

fn prefixed(patch: Vec<PatchOp>, prefix: &str) -> impl Iterator<Item = PatchOp> + '_ {
    patch.into_iter().map(move |mut op| {
        op.path = format!("{prefix}{}", op.path);
        op
    })
}

fn path_of(m: &Mutation) -> &FieldPath {
    match &m.change {
        paved_core::mutate::Change::SetIfAbsent { path, .. }
        | paved_core::mutate::Change::AddToList { path, .. }
        | paved_core::mutate::Change::Remove { path } => path,
    }
}

/// What one input came to.
enum Outcome {
    Unchanged,
    Changed { text: String, said: Vec<Said> },
    Failed(Vec<Unfixable>),
}

/// `paved fix`: exit 0 when done, 1 with `--diff` when something would
/// change, 2 when a file could not be read or fixed (the others still were).
pub fn run(args: &FixArgs, defaults: &Defaults) -> miette::Result<u8> {
    let limits = Limits::default();
    let (inputs, missing) = crate::check::inputs(&args.paths);
    let mut failed = false;
    let stderr = std::io::stderr();
    for report in &missing {
        for p in &report.problems {
            let _ = writeln!(stderr.lock(), "{}: {}", report.path, p.message);
        }
        failed = true;
    }
    let mut changed_files = 0usize;
    let mut set = 0usize;
    for batch in inputs.chunks(256) {
        let outcomes: Vec<(String, Option<String>, Outcome)> = batch
            .par_iter()
            .map(|input| {
                let (name, text) = match read(input, &limits) {
                    Ok(read) => read,
                    Err((name, message)) => {
                        return (name, None, Outcome::Failed(vec![Unfixable { pos: Pos::default(), message }]));
                    }
                };
                let outcome = match fix_text(&text, defaults, &limits) {
                    Ok((fixed, _)) if fixed == text => Outcome::Unchanged,
                    Ok((fixed, said)) => Outcome::Changed { text: fixed, said },
                    Err(problems) => Outcome::Failed(problems),
                };
                (name, Some(text), outcome)
            })
            .collect();
        for ((name, original, outcome), input) in outcomes.into_iter().zip(batch) {
            match outcome {
                Outcome::Unchanged => {
                    if matches!(input, Input::Stdin) && !args.diff {
                        write_stdout(original.as_deref().unwrap_or(""))?;
                    }
                }
                Outcome::Failed(problems) => {
                    failed = true;
                    let mut err = stderr.lock();
                    for p in problems {
                        let at = if p.pos.line == 0 { String::new() } else { format!(":{}:{}", p.pos.line, p.pos.col) };
                        let _ = writeln!(err, "{name}{at}: {}; left as it was", p.message);
                    }
                    if matches!(input, Input::Stdin) && !args.diff {
                        write_stdout(original.as_deref().unwrap_or(""))?;
                    }
                }
                Outcome::Changed { text, said } => {
                    changed_files += 1;
                    set += said.len();
                    let to_stdout = !args.diff && !matches!(input, Input::Stdin);
                    let lines: String = said
                        .iter()
                        .map(|s| format!("{name}:{}:{}: [{}] {}\n", s.pos.line, s.pos.col, s.policy, s.message))
                        .collect();
                    if to_stdout {
                        write_stdout(&lines)?;
                    } else {
                        let _ = stderr.lock().write_all(lines.as_bytes());
                    }
                    let original = original.unwrap_or_default();
                    match input {
                        _ if args.diff => write_stdout(&unified_diff(&name, &original, &text))?,
                        Input::Stdin => write_stdout(&text)?,
                        Input::File(path) => {
                            if let Err(e) = write_in_place(path, &text) {
                                failed = true;
                                let _ = writeln!(stderr.lock(), "{name}: cannot write: {e}");
                            }
                        }
                    }
                }
            }
        }
    }
    let verb = if args.diff { "would set" } else { "set" };
    let _ = writeln!(
        stderr.lock(),
        "paved fix: {verb} {set} default{} in {changed_files} file{}",
        if set == 1 { "" } else { "s" },
        if changed_files == 1 { "" } else { "s" }
    );
    Ok(if failed {
        crate::EXIT_BAD_INPUT
    } else if args.diff && changed_files > 0 {
        1
    } else {
        0
    })
}

fn read(input: &Input, limits: &Limits) -> Result<(String, String), (String, String)> {
    let name = match input {
        Input::File(p) => p.display().to_string(),
        Input::Stdin => "<stdin>".into(),
    };
    let mut bytes = Vec::new();
    let cap = u64::try_from(limits.max_file_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let read = match input {
        Input::File(p) => std::fs::File::open(p).and_then(|f| f.take(cap).read_to_end(&mut bytes)),
        Input::Stdin => std::io::stdin().lock().take(cap).read_to_end(&mut bytes),
    };
    if let Err(e) = read {
        return Err((name, format!("cannot read: {e}")));
    }
    match paved_yaml::decode(&bytes, limits) {
        // A byte order mark is dropped by decode, and so from what is written.
        Ok(text) => Ok((name, text.to_owned())),
        Err(e) => Err((name, e.to_string())),
    }
}

fn write_stdout(text: &str) -> miette::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| miette::miette!("cannot write: {e}"))
}

/// The new text beside the old one, then renamed over it: an interrupted
/// run leaves the old file or the new one, never half of each, and a reader
/// never sees a partial file. The file keeps its permissions. No fsync, as
/// editors and formatters: it cost 1.3 ms a file (bench/fix.sh).
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let permissions = std::fs::metadata(path)?.permissions();
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().set_permissions(permissions)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn unified_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The engine of the default profile, the paved road: every default on.
    pub(super) fn paved_road() -> Engine {
        Engine::new(&paved_core::config::Config::default(), None, paved_core::profile::Mode::Enforce).unwrap()
    }

    #[test]
    fn sets_the_defaults_in_each_object_and_says_where() {
        let text = "# team web\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app   # the app\n        image: nginx\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let engine = paved_road();
        let resources = ResourceDefaults::default();
        let defaults = Defaults::of(&engine, &resources);
        let (fixed, said) = fix_text(text, &defaults, &Limits::default()).unwrap();
        assert_eq!(
            fixed,
            "# team web\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app   # the app\n        image: nginx\n        securityContext:\n          allowPrivilegeEscalation: false\n          capabilities:\n            drop: [ALL]\n      securityContext:\n        seccompProfile:\n          type: RuntimeDefault\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
        );
        let at: Vec<(u32, &str)> = said.iter().map(|s| (s.pos.line, s.policy.as_str())).collect();
        assert_eq!(
            at,
            [
                (8, "paved-road/default-seccomp"),
                (10, "paved-road/default-no-privilege-escalation"),
                (10, "paved-road/default-drop-capabilities")
            ]
        );
        // Fixed once, fixed for good.
        let (again, said) = fix_text(&fixed, &defaults, &Limits::default()).unwrap();
        assert_eq!((again.as_str(), said.len()), (fixed.as_str(), 0));
    }

    #[test]
    fn a_document_that_cannot_be_edited_safely_leaves_the_file_as_it_was() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - &app {name: a, image: b}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers: [{name: b, image: b}]\n";
        let engine = paved_road();
        let resources = ResourceDefaults::default();
        let defaults = Defaults::of(&engine, &resources);
        let problems = fix_text(text, &defaults, &Limits::default()).unwrap_err();
        assert_eq!(problems.len(), 1, "the second document could be fixed, but the file is not written: {problems:?}");
        assert_eq!(problems[0].pos.line, 1, "{problems:?}");
        assert!(problems[0].message.contains("anchors"), "{problems:?}");
    }
}

/// `paved fix` over every file of the shared corpora: each text it fixes
/// reads back as exactly the objects the mutations make, and differs from
/// the input only on the lines it changed (each old line still there, in
/// a new line, character for character); the counts are printed.
#[cfg(test)]
mod corpus {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_corpus_file_fixed_reads_back_as_the_mutated_objects() {
        let engine = super::tests::paved_road();
        let resources: ResourceDefaults =
            serde_json::from_value(serde_json::json!({"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}))
                .unwrap();
        let defaults = Defaults::of(&engine, &resources);
        let limits = Limits::default();
        let (mut files, mut fixed_files, mut set, mut refused) = (0usize, 0usize, 0usize, Vec::new());
        for corpus in ["pod-security", "gatekeeper-library", "kyverno-policies", "k8s-api", "osv"] {
            let root = paved_corpus::path(corpus);
            for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
                let entry = entry.unwrap();
                let path = entry.path();
                if !entry.file_type().is_file()
                    || !matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
                {
                    continue;
                }
                let bytes = std::fs::read(path).unwrap();
                let Ok(text) = paved_yaml::decode(&bytes, &limits) else { continue };
                files += 1;
                match fix_text(text, &defaults, &limits) {
                    Ok((fixed, said)) if fixed != text => {
                        fixed_files += 1;
                        set += said.len();
                        same_objects_as_mutated(path, text, &fixed, &defaults, &limits);
                        only_changed_lines_differ(path, text, &fixed);
                    }
                    Ok(_) => {}
                    Err(problems) => refused.push(format!("{}: {}", path.display(), problems[0].message)),
                }
            }
        }
        eprintln!(
            "paved fix over the corpora: {files} files, {fixed_files} fixed, {set} defaults set, {} left as they were",
            refused.len()
        );
        for r in &refused {
            eprintln!("  {r}");
        }
        assert!(fixed_files > 100, "the corpora hold hundreds of pods and workloads without the defaults");
    }

    /// Document by document: the fixed text parsed equals the original
    /// object with the mutations' own patch applied (paved_core::mutate,
    /// not the text edits).
    fn same_objects_as_mutated(path: &Path, text: &str, fixed: &str, defaults: &Defaults, limits: &Limits) {
        let before: Vec<_> = paved_yaml::documents(text).collect();
        let after: Vec<_> = paved_yaml::documents(fixed).collect();
        assert_eq!(before.len(), after.len(), "{}", path.display());
        for (b, a) in before.iter().zip(&after) {
            let Ok(Some(root)) = paved_yaml::parse_one(b.text, 1, limits) else { continue };
            let mut expected = serde_json::to_value(&root).unwrap();
            for (prefix, object) in objects(&root) {
                let kind = object.get("kind").and_then(Node::as_str).unwrap_or("");
                let mutations = paved_core::mutate::paved_road_defaults(
                    object,
                    kind,
                    &defaults.engine.policies().defaults,
                    defaults.resources,
                    defaults.now,
                );
                let json = serde_json::to_value(object).unwrap();
                let (_, mutated, _) = paved_core::mutate::patch(&json, &mutations);
                if prefix.is_empty() {
                    expected = mutated;
                } else {
                    *expected.pointer_mut(&prefix).unwrap() = mutated;
                }
            }
            let read_back = serde_json::to_value(paved_yaml::parse_one(a.text, 1, limits).unwrap().unwrap()).unwrap();
            assert_eq!(read_back, expected, "{}:{}", path.display(), b.first_line);
        }
    }

    fn only_changed_lines_differ(path: &Path, text: &str, fixed: &str) {
        use similar::DiffOp;
        let diff = similar::TextDiff::from_lines(text, fixed);
        let old: Vec<&str> = text.split_inclusive('\n').collect();
        let new: Vec<&str> = fixed.split_inclusive('\n').collect();
        for op in diff.ops() {
            match *op {
                DiffOp::Equal { .. } | DiffOp::Insert { .. } => {}
                DiffOp::Delete { old_index, .. } => {
                    panic!("{}:{}: a line was removed: {:?}", path.display(), old_index + 1, old[old_index])
                }
                DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    for line in &old[old_index..old_index + old_len] {
                        let kept =
                            new[new_index..new_index + new_len].iter().any(|n| is_subsequence(line.trim_end(), n));
                        let null = line.trim_end().ends_with(": null") || line.trim_end().ends_with(": ~");
                        assert!(kept || null, "{}: {line:?} changed beyond an insertion", path.display());
                    }
                }
            }
        }
    }

    fn is_subsequence(needle: &str, haystack: &str) -> bool {
        let mut rest = haystack.chars();
        needle.chars().all(|c| rest.any(|h| h == c))
    }
}
