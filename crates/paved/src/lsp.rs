//! `paved lsp`: the findings of `paved check` as diagnostics while you type.
//!
//! A synchronous server on rust-analyzer's `lsp-server` over stdio. Each
//! document is checked by the same code as `paved check` (`check::check_bytes`),
//! so the positions are the same; a change is analysed at once, and while
//! typing goes on at most once per `DEBOUNCE`. The configuration is found from the document's folder
//! upwards, as `paved check` finds it, and forgotten when a `.paved.yaml` changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidChangeWatchedFiles, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{CodeActionRequest, HoverRequest, Request as _};
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CodeActionProviderCapability, Diagnostic,
    DiagnosticSeverity, DiagnosticTag, Hover, HoverContents, HoverParams, InitializeParams, MarkupContent, MarkupKind,
    NumberOrString, Position, PublishDiagnosticsParams, Range, ServerCapabilities, TextDocumentContentChangeEvent,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use paved_core::eval::Engine;
use paved_core::node::Pos;
use paved_core::policy::Action;
use paved_core::profile::Mode;

use crate::check::{self, FileReport};
use crate::cli::Global;

/// A document is analysed at most once per this interval while it changes:
/// the first change is analysed at once, the ones that follow when the
/// interval since the last analysis has passed (the last change always is).
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Diagnostics sent for one document, at most: half-typed YAML must not flood the client.
const MAX_DIAGNOSTICS: usize = 200;

struct Document {
    text: String,
    version: i32,
    /// When to analyse it next (after a change), if it changed.
    due: Option<Instant>,
    /// When it was last analysed.
    analysed: Option<Instant>,
    /// The last analysis, for hover.
    report: Option<FileReport>,
}

struct Server {
    connection: Connection,
    docs: HashMap<Uri, Document>,
    /// Compiled configurations by the folder they were found from.
    engines: HashMap<PathBuf, Rc<Result<Compiled, String>>>,
    /// The policy files and directories those configurations load; saving
    /// a file under one recompiles.
    policy_paths: Vec<PathBuf>,
    global: Global,
    limits: paved_yaml::Limits,
}

/// A folder's configuration compiled with its policies (native and
/// foreign), and what of the foreign ones could not load.
struct Compiled {
    engine: Engine,
    problems: Vec<paved_gatekeeper::policies::LoadProblem>,
    /// Where native policies are documented (`docs-url`).
    docs: String,
    /// The configuration's values for the paved road's defaults.
    resources: paved_core::mutate::ResourceDefaults,
}

pub fn run(global: &Global) -> miette::Result<u8> {
    let (connection, io_threads) = Connection::stdio();
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::INCREMENTAL)),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        ..ServerCapabilities::default()
    };
    let capabilities = serde_json::to_value(capabilities).map_err(|e| miette::miette!("{e}"))?;
    let params = connection.initialize(capabilities).map_err(|e| miette::miette!("LSP initialize: {e}"))?;
    let params: InitializeParams =
        serde_json::from_value(params).map_err(|e| miette::miette!("LSP initialize: {e}"))?;
    // Ask to hear of .paved.yaml changes, where the client can be asked.
    let can_watch = params
        .capabilities
        .workspace
        .and_then(|w| w.did_change_watched_files)
        .and_then(|d| d.dynamic_registration)
        .unwrap_or(false);
    if can_watch {
        let options = lsp_types::DidChangeWatchedFilesRegistrationOptions {
            watchers: vec![lsp_types::FileSystemWatcher {
                glob_pattern: lsp_types::GlobPattern::String("**/.paved.yaml".into()),
                kind: None,
            }],
        };
        let registration = lsp_types::Registration {
            id: "paved-config".into(),
            method: DidChangeWatchedFiles::METHOD.into(),
            register_options: serde_json::to_value(options).ok(),
        };
        let request = Request::new(
            "paved-register-watch".to_owned().into(),
            lsp_types::request::RegisterCapability::METHOD.into(),
            lsp_types::RegistrationParams { registrations: vec![registration] },
        );
        connection.sender.send(Message::Request(request)).map_err(|e| miette::miette!("LSP: {e}"))?;
    }
    let mut server = Server {
        connection,
        docs: HashMap::new(),
        engines: HashMap::new(),
        policy_paths: Vec::new(),
        global: global.clone(),
        // Bounds each analysis: a document over 4 MiB gets one diagnostic saying
        // so; depth, nodes and aliases are bounded as in `paved check`.
        limits: paved_yaml::Limits { max_file_bytes: 4 << 20, ..paved_yaml::Limits::default() },
    };
    server.main_loop().map_err(|e| miette::miette!("LSP: {e}"))?;
    drop(server);
    io_threads.join().map_err(|e| miette::miette!("LSP I/O: {e}"))?;
    Ok(0)
}

impl Server {
    fn main_loop(&mut self) -> Result<(), String> {
        loop {
            let next_due = self.docs.values().filter_map(|d| d.due).min();
            let message = match next_due {
                Some(due) => match self.connection.receiver.recv_timeout(due.saturating_duration_since(Instant::now()))
                {
                    Ok(m) => Some(m),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
                },
                None => match self.connection.receiver.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return Ok(()),
                },
            };
            match message {
                Some(Message::Request(req)) => {
                    if self.connection.handle_shutdown(&req).map_err(|e| e.to_string())? {
                        return Ok(());
                    }
                    self.request(req)?;
                }
                Some(Message::Notification(n)) => self.notification(n)?,
                Some(Message::Response(_)) => {}
                None => {}
            }
            self.analyse_due()?;
        }
    }

    fn send(&self, message: Message) -> Result<(), String> {
        self.connection.sender.send(message).map_err(|e| e.to_string())
    }

    fn request(&mut self, req: Request) -> Result<(), String> {
        let response = match req.method.as_str() {
            HoverRequest::METHOD => match serde_json::from_value::<HoverParams>(req.params) {
                Ok(params) => {
                    let hover = self.hover(&params);
                    Response::new_ok(req.id, hover)
                }
                Err(e) => Response::new_err(req.id, lsp_server::ErrorCode::InvalidParams as i32, e.to_string()),
            },
            CodeActionRequest::METHOD => match serde_json::from_value::<CodeActionParams>(req.params) {
                Ok(params) => Response::new_ok(req.id, self.code_actions(&params)),
                Err(e) => Response::new_err(req.id, lsp_server::ErrorCode::InvalidParams as i32, e.to_string()),
            },
            _ => Response::new_err(
                req.id,
                lsp_server::ErrorCode::MethodNotFound as i32,
                format!("no method {}", req.method),
            ),
        };
        self.send(Message::Response(response))
    }

    fn notification(&mut self, n: Notification) -> Result<(), String> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params) {
                    let doc = Document {
                        text: p.text_document.text,
                        version: p.text_document.version,
                        due: Some(Instant::now()),
                        analysed: None,
                        report: None,
                    };
                    self.docs.insert(p.text_document.uri, doc);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                    && let Some(doc) = self.docs.get_mut(&p.text_document.uri)
                {
                    for change in p.content_changes {
                        apply_change(&mut doc.text, change);
                    }
                    doc.version = p.text_document.version;
                    let now = Instant::now();
                    doc.due = Some(doc.analysed.map_or(now, |last| (last + DEBOUNCE).max(now)));
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params) {
                    self.docs.remove(&p.text_document.uri);
                    self.publish(p.text_document.uri, Vec::new(), None)?;
                }
            }
            DidSaveTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<lsp_types::DidSaveTextDocumentParams>(n.params) {
                    let path = p.text_document.uri.path().as_str().to_owned();
                    let is_policy = self.policy_paths.iter().any(|root| Path::new(&path).starts_with(root));
                    if path.ends_with(".paved.yaml") || is_policy {
                        self.config_changed();
                    }
                }
            }
            DidChangeWatchedFiles::METHOD => self.config_changed(),
            _ => {}
        }
        Ok(())
    }

    /// A configuration changed: recompile on next use and recheck every document.
    fn config_changed(&mut self) {
        self.engines.clear();
        self.policy_paths.clear();
        for doc in self.docs.values_mut() {
            doc.due = Some(Instant::now());
        }
    }

    fn analyse_due(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let due: Vec<Uri> =
            self.docs.iter().filter(|(_, d)| d.due.is_some_and(|t| t <= now)).map(|(u, _)| u.clone()).collect();
        for uri in due {
            let folder = folder_of(&uri);
            let engine = self.engine_for(folder.as_deref());
            let Some(doc) = self.docs.get_mut(&uri) else { continue };
            doc.due = None;
            doc.analysed = Some(Instant::now());
            let (diagnostics, report) = match &*engine {
                Ok(compiled) => {
                    let report = check::check_bytes(
                        uri.as_str().to_owned(),
                        doc.text.as_bytes(),
                        &compiled.engine,
                        &self.limits,
                        paved_core::Timestamp::now(),
                    );
                    let mut found = diagnostics(&report, &doc.text, &compiled.docs);
                    let here = document_path(&uri);
                    found.extend(compiled.problems.iter().map(|p| policy_diagnostic(p, here.as_deref(), &doc.text)));
                    (found, Some(report))
                }
                Err(message) => (vec![config_diagnostic(message)], None),
            };
            let version = Some(doc.version);
            doc.report = report;
            self.publish(uri, diagnostics, version)?;
        }
        Ok(())
    }

    /// The folder's configuration, compiled once, with the policies it names
    /// (`policy-paths`, and `--policy` given to `paved lsp`).
    fn engine_for(&mut self, folder: Option<&Path>) -> Rc<Result<Compiled, String>> {
        let key = folder.map(Path::to_path_buf).unwrap_or_default();
        if let Some(compiled) = self.engines.get(&key) {
            return Rc::clone(compiled);
        }
        let cwd = if key.as_os_str().is_empty() { std::env::current_dir().unwrap_or_default() } else { key.clone() };
        let global = &self.global;
        let compiled = crate::config_file::load(global.config.as_deref(), &cwd).map_err(|e| e.to_string()).and_then(
            |(config, config_path)| {
                let engine =
                    Engine::new(&config, global.profile.as_deref(), Mode::Enforce).map_err(|e| e.to_string())?;
                let base = config_path.as_deref().and_then(Path::parent).unwrap_or(&cwd).to_path_buf();
                self.policy_paths.extend(config.policy_paths.iter().map(|p| absolute(&base.join(p))));
                // `--policy` paths are the server's own, relative to where it runs, as they load.
                self.policy_paths.extend(global.policies.iter().map(|p| absolute(p)));
                let (policies, problems) = crate::load_foreign_policies(&config, config_path.as_deref(), global);
                let inventory = crate::read_inventory(&global.inventory).map_err(|e| e.to_string())?;
                let engine = crate::with_foreign_policies(engine, policies, &inventory, &[]);
                let docs = crate::explain::docs_base(&config);
                Ok(Compiled { engine, problems, docs, resources: config.defaults.resources })
            },
        );
        let compiled = Rc::new(compiled);
        self.engines.insert(key, Rc::clone(&compiled));
        compiled
    }

    fn publish(&self, uri: Uri, mut diagnostics: Vec<Diagnostic>, version: Option<i32>) -> Result<(), String> {
        diagnostics.truncate(MAX_DIAGNOSTICS);
        let params = PublishDiagnosticsParams { uri, diagnostics, version };
        self.send(Message::Notification(Notification::new(PublishDiagnostics::METHOD.to_owned(), params)))
    }

    /// Quick fixes for the findings in the requested range.
    // lsp-types keys `WorkspaceEdit::changes` by `Uri`, whose only interior
    // mutability is a cache that does not take part in hashing or equality.
    #[allow(clippy::mutable_key_type)]
    fn code_actions(&self, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
        let uri = &params.text_document.uri;
        let Some((doc, report)) = self.docs.get(uri).and_then(|d| Some((d, d.report.as_ref()?))) else {
            return Vec::new();
        };
        // The objects again, with their spans: report.objects follows the loader's order.
        let Ok(items) = paved_yaml::load(&doc.text, &self.limits) else { return Vec::new() };
        let objects = items.iter().filter_map(|i| match i {
            paved_yaml::Item::Object(node) => Some(node),
            _ => None,
        });
        let until = paved_core::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(30 * 24))
            .map(|t| t.to_string()[..10].to_owned())
            .unwrap_or_default();
        let lines = LineIndex::new(&doc.text);
        let mut actions = Vec::new();
        // Every finding on the requested lines (an editor asks with the
        // cursor's position, wherever on the line it is), each action once.
        let mut titles = std::collections::HashSet::new();
        for (object, object_report) in objects.zip(&report.objects) {
            for finding in object_report.findings.iter().filter(|f| f.counts() && !f.span.is_none()) {
                let range = lines.range(finding.span.start, finding.span.end);
                if !on_lines(range, params.range) {
                    continue;
                }
                let diagnostic = diagnostics_of(finding, range, &params.context.diagnostics);
                for fix in crate::lsp_fix::fixes_for(finding, object, &doc.text, &until) {
                    let key = (fix.title.clone(), fix.edit.start, fix.edit.end);
                    if !titles.insert(key) {
                        continue;
                    }
                    let edit = &fix.edit;
                    let text_edit = TextEdit { range: lines.range(edit.start, edit.end), new_text: edit.text.clone() };
                    let changes = HashMap::from([(uri.clone(), vec![text_edit])]);
                    actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                        title: fix.title,
                        kind: Some(CodeActionKind::QUICKFIX),
                        diagnostics: (!diagnostic.is_empty()).then(|| diagnostic.clone()),
                        edit: Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }),
                        is_preferred: fix.preferred.then_some(true),
                        ..CodeAction::default()
                    }));
                }
            }
        }
        if let Some(action) = self.defaults_action(uri, &doc.text, report, params) {
            actions.push(action);
        }
        actions
    }

    /// "Set the paved road's defaults": the edit `paved fix` would make to
    /// the file, the same mutations `/mutate` makes at admission. Offered
    /// wherever the file would change; a quick fix for the findings on the
    /// requested lines that the defaults clear.
    #[allow(clippy::mutable_key_type)]
    fn defaults_action(
        &self,
        uri: &Uri,
        text: &str,
        report: &check::FileReport,
        params: &CodeActionParams,
    ) -> Option<CodeActionOrCommand> {
        let key = folder_of(uri).unwrap_or_default();
        let compiled = self.engines.get(&key)?.as_ref().as_ref().ok()?;
        let defaults = crate::fix::Defaults::of(&compiled.engine, &compiled.resources);
        let (fixed, said) = crate::fix::fix_text(text, &defaults, &self.limits).ok()?;
        if said.is_empty() {
            return None;
        }
        let edit = paved_yaml::edit::minimal_edit(text, &fixed, 1);
        let lines = LineIndex::new(text);
        let cleared = |policy: &str| {
            matches!(
                policy,
                "pss-restricted/privilege-escalation"
                    | "pss-restricted/capabilities"
                    | "pss-restricted/seccomp-profile"
            ) || (policy == "best-practices/require-resources" && !compiled.resources.requests.is_empty())
        };
        let diagnostics: Vec<Diagnostic> = report
            .objects
            .iter()
            .flat_map(|o| &o.findings)
            .filter(|f| f.counts() && !f.span.is_none() && cleared(&f.policy))
            .map(|f| lines.range(f.span.start, f.span.end))
            .filter(|range| on_lines(*range, params.range))
            .flat_map(|range| params.context.diagnostics.iter().filter(move |d| d.range == range).cloned())
            .collect();
        let text_edit = TextEdit { range: lines.range(edit.start, edit.end), new_text: edit.text };
        let n = said.len();
        Some(CodeActionOrCommand::CodeAction(CodeAction {
            title: format!("Set the paved road's defaults in this file ({n} as paved fix would)"),
            kind: Some(if diagnostics.is_empty() { CodeActionKind::SOURCE_FIX_ALL } else { CodeActionKind::QUICKFIX }),
            diagnostics: (!diagnostics.is_empty()).then_some(diagnostics),
            edit: Some(WorkspaceEdit {
                changes: Some(HashMap::from([(uri.clone(), vec![text_edit])])),
                ..WorkspaceEdit::default()
            }),
            ..CodeAction::default()
        }))
    }

    fn hover(&self, params: &HoverParams) -> Option<Hover> {
        let position = params.text_document_position_params.position;
        let doc = self.docs.get(&params.text_document_position_params.text_document.uri)?;
        let report = doc.report.as_ref()?;
        let lines = LineIndex::new(&doc.text);
        let folder = folder_of(&params.text_document_position_params.text_document.uri);
        let key = folder.unwrap_or_default();
        let compiled = self.engines.get(&key)?.as_ref().as_ref().ok()?;
        let finding = report.objects.iter().flat_map(|o| &o.findings).find(|f| {
            let range = lines.range(f.span.start, f.span.end);
            !f.span.is_none() && contains(range, position)
        });
        let Some(finding) = finding else {
            // In a policy file: what the policy under the cursor is, as `paved explain` says it.
            let loaded: Vec<String> = compiled.engine.foreign_policies().into_iter().map(|p| p.id).collect();
            let id = policy_under(&doc.text, position, &loaded)?;
            let (title, body) = crate::explain::hover_markdown(&compiled.engine, &id)?;
            return Some(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: format!("{title}\n\n{body}"),
                }),
                range: None,
            });
        };
        let (title, body) = crate::explain::hover_markdown(&compiled.engine, &finding.policy)?;
        let text = format!("{title}\n\n{}\n\n{body}", finding.message);
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
            range: Some(lines.range(finding.span.start, finding.span.end)),
        })
    }
}

/// Whether two ranges share a line.
fn on_lines(a: Range, b: Range) -> bool {
    a.start.line <= b.end.line && b.start.line <= a.end.line
}

/// The editor's diagnostics (sent with the request) that are this finding's.
fn diagnostics_of(finding: &paved_core::policy::Finding, at: Range, sent: &[Diagnostic]) -> Vec<Diagnostic> {
    sent.iter()
        .filter(|d| on_lines(d.range, at))
        .filter(|d| matches!(&d.code, Some(NumberOrString::String(code)) if *code == *finding.policy))
        .cloned()
        .collect()
}

fn contains(range: Range, p: Position) -> bool {
    (range.start.line, range.start.character) <= (p.line, p.character)
        && (p.line, p.character) <= (range.end.line, range.end.character)
}

/// The folder of a `file://` document, where its configuration search starts.
fn folder_of(uri: &Uri) -> Option<PathBuf> {
    document_path(uri)?.parent().map(Path::to_path_buf)
}

/// The file a `file://` document is.
fn document_path(uri: &Uri) -> Option<PathBuf> {
    let is_file = uri.scheme().is_some_and(|s| s.as_str().eq_ignore_ascii_case("file"));
    if !is_file {
        return None;
    }
    Some(PathBuf::from(&*uri.path().as_estr().decode().into_string().ok()?))
}

/// A policy file that could not load: shown on every document of the
/// folder, since its findings are missing from all of them; in the policy
/// file itself, at the line and column of the fault (a CEL or Rego error
/// inside an expression included), to the end of that line.
fn policy_diagnostic(
    problem: &paved_gatekeeper::policies::LoadProblem,
    document: Option<&Path>,
    text: &str,
) -> Diagnostic {
    let in_this_file = document.is_some_and(|d| absolute(d) == absolute(&problem.file));
    match problem.pos.filter(|_| in_this_file) {
        Some(pos) => {
            let lines = LineIndex::new(text);
            let start = lines.position(pos);
            let end_col = text.lines().nth(start.line as usize).map_or(0, |l| l.encode_utf16().count() as u32);
            Diagnostic {
                range: Range { start, end: Position { line: start.line, character: end_col.max(start.character) } },
                severity: Some(DiagnosticSeverity::ERROR),
                source: Some("paved".into()),
                message: problem.message.clone(),
                ..Diagnostic::default()
            }
        }
        None => folder_error(format!("policy {problem}")),
    }
}

/// The policy a policy file's document under `p` defines, as findings name
/// it: a Kyverno ValidatingPolicy `kyverno/<name>`, a ClusterPolicy's rule
/// under the cursor `kyverno/<name>/<rule>` (its first rule elsewhere), a
/// VAP its first binding, a Gatekeeper constraint its own id.
fn policy_under(text: &str, p: Position, loaded: &[String]) -> Option<String> {
    let limits = paved_yaml::Limits::default();
    let items = paved_yaml::load(text, &limits).ok()?;
    let line = p.line + 1;
    let within = |span: paved_core::node::Span| span.start.line <= line && line <= span.end.line;
    let doc = items.iter().find_map(|item| match item {
        paved_yaml::Item::Object(node) if within(node.span) => Some(node),
        _ => None,
    })?;
    let text_at = |keys: &[&str]| doc.at(keys).and_then(paved_core::node::Node::as_str);
    let (kind, name) = (text_at(&["kind"])?, text_at(&["metadata", "name"])?);
    let api_version = text_at(&["apiVersion"]).unwrap_or("");
    let prefix = if api_version.starts_with("constraints.gatekeeper.sh/") {
        format!("gatekeeper/{}/{name}", kind.to_ascii_lowercase())
    } else if api_version.starts_with("admissionregistration.k8s.io/") {
        format!("vap/{name}")
    } else if kind == "ClusterPolicy" || kind == "Policy" {
        let rules = doc.at(&["spec", "rules"]).map(paved_core::node::Node::as_seq).unwrap_or_default();
        let rule = rules.iter().find(|r| within(r.span)).or(rules.first());
        match rule.and_then(|r| r.get("name")).and_then(paved_core::node::Node::as_str) {
            Some(rule) => format!("kyverno/{name}/{rule}"),
            None => format!("kyverno/{name}"),
        }
    } else {
        format!("kyverno/{name}")
    };
    loaded.iter().find(|id| **id == prefix || id.starts_with(&format!("{prefix}/"))).cloned()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn config_diagnostic(message: &str) -> Diagnostic {
    folder_error(format!("configuration: {message}"))
}

/// An error of the folder's setup rather than of the document, at its start.
fn folder_error(message: String) -> Diagnostic {
    Diagnostic {
        range: Range::default(),
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some("paved".into()),
        message,
        ..Diagnostic::default()
    }
}

/// The same findings `paved check` reports, at the same positions.
fn diagnostics(report: &FileReport, text: &str, docs: &str) -> Vec<Diagnostic> {
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    for p in &report.problems {
        let pos = p.pos.unwrap_or(Pos { line: 1, col: 1 });
        out.push(Diagnostic {
            range: lines.range(pos, pos),
            severity: Some(DiagnosticSeverity::ERROR),
            source: Some("paved".into()),
            message: p.message.clone(),
            ..Diagnostic::default()
        });
    }
    for f in report.objects.iter().flat_map(|o| &o.findings) {
        let (severity, tags, message) = match (&f.exempted, f.action) {
            (Some(e), _) => (
                DiagnosticSeverity::HINT,
                Some(vec![DiagnosticTag::UNNECESSARY]),
                format!("exempted ({}): {}", e.reason, f.message),
            ),
            (None, Action::Deny) => (DiagnosticSeverity::ERROR, None, f.message.clone()),
            (None, Action::Warn) => (DiagnosticSeverity::WARNING, None, f.message.clone()),
            (None, Action::Audit) => (DiagnosticSeverity::INFORMATION, None, f.message.clone()),
        };
        let range = if f.span.is_none() { Range::default() } else { lines.range(f.span.start, f.span.end) };
        // Only native rules have a page; foreign ones are explained by hover.
        let href = crate::explain::doc_url(docs, &f.policy).and_then(|u| u.parse::<Uri>().ok());
        out.push(Diagnostic {
            range,
            severity: Some(severity),
            code: Some(NumberOrString::String(f.policy.to_string())),
            code_description: href.map(|href| lsp_types::CodeDescription { href }),
            source: Some("paved".into()),
            message,
            tags,
            ..Diagnostic::default()
        });
    }
    out
}

/// Line starts of a text, to turn spans (1-based lines, 1-based columns in
/// characters) into LSP ranges (0-based lines, columns in UTF-16 code units)
/// without rescanning the text for each one.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    fn range(&self, start: Pos, end: Pos) -> Range {
        Range { start: self.position(start), end: self.position(end) }
    }

    fn position(&self, pos: Pos) -> Position {
        let line = pos.line.saturating_sub(1);
        let from = self.starts.get(line as usize).copied().unwrap_or(self.text.len());
        let to = self.starts.get(line as usize + 1).copied().unwrap_or(self.text.len());
        let line_text = &self.text[from..to];
        let character: usize = line_text.chars().take(pos.col.saturating_sub(1) as usize).map(char::len_utf16).sum();
        Position { line, character: u32::try_from(character).unwrap_or(u32::MAX) }
    }
}

/// Byte offset of an LSP position (UTF-16 columns), clamped to the text.
fn offset_of(text: &str, p: Position) -> usize {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i == p.line as usize {
            let mut units = 0;
            for (at, c) in line.char_indices() {
                if units >= p.character as usize || c == '\n' {
                    return offset + at;
                }
                units += c.len_utf16();
            }
            return offset + line.trim_end_matches('\n').len();
        }
        offset += line.len();
    }
    text.len()
}

fn apply_change(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        None => *text = change.text,
        Some(range) => {
            let start = offset_of(text, range.start);
            let end = offset_of(text, range.end).max(start);
            text.replace_range(start..end, &change.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_search_starts_in_the_documents_decoded_folder() {
        let uri: Uri = "file:///tmp/my%20team/pod.yaml".parse().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(folder_of(&uri), Some(PathBuf::from("/tmp/my team")));
        let untitled: Uri = "untitled:Untitled-1".parse().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(folder_of(&untitled), None);
    }

    #[test]
    fn positions_count_utf16_units() {
        let text = "a: é\nb: 😀x\n";
        assert_eq!(LineIndex::new(text).position(Pos { line: 2, col: 5 }), Position { line: 1, character: 5 });
        assert_eq!(offset_of(text, Position { line: 1, character: 5 }), "a: é\nb: 😀".len());
        assert_eq!(offset_of(text, Position { line: 9, character: 0 }), text.len());
    }

    #[test]
    fn incremental_changes_apply_at_utf16_positions() {
        let mut text = "a: é\nb: 😀x\n".to_owned();
        let range = Range { start: Position { line: 1, character: 3 }, end: Position { line: 1, character: 5 } };
        apply_change(
            &mut text,
            TextDocumentContentChangeEvent { range: Some(range), range_length: None, text: "y".into() },
        );
        assert_eq!(text, "a: é\nb: yx\n");
    }
}
