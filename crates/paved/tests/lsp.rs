//! `paved lsp` driven over stdio by a small JSON-RPC client, as an editor does.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Notifications that arrived while waiting for something else.
    pending: Vec<Value>,
    /// Every message received, in order.
    log: Vec<Value>,
    /// The last diagnostics the test looked at, by document.
    latest: std::collections::HashMap<String, Vec<Value>>,
    next_id: i64,
}

impl Client {
    fn start(dir: &Path) -> Client {
        Client::start_with(dir, json!({}))
    }

    fn start_with(dir: &Path, capabilities: Value) -> Client {
        Client::start_args(dir, capabilities, &[])
    }

    fn start_args(dir: &Path, capabilities: Value, args: &[&str]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_paved"))
            .arg("lsp")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            loop {
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                stdout.read_exact(&mut body).unwrap();
                if tx.send(serde_json::from_slice::<Value>(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages,
            pending: Vec::new(),
            log: Vec::new(),
            latest: Default::default(),
            next_id: 1,
        };
        let init =
            client.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": capabilities}));
        assert_eq!(init["capabilities"]["textDocumentSync"], 2, "incremental sync: {init}");
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
        self.stdin.write_all(&body).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.messages.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a response");
            self.log.push(m.clone());
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{m}");
                return m["result"].clone();
            }
            self.pending.push(m);
        }
    }

    /// The next diagnostics published for `uri` (at `version`, when given).
    fn diagnostics(&mut self, uri: &str, version: Option<i64>) -> Vec<Value> {
        let matches = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && version.is_none_or(|v| m["params"]["version"] == v)
        };
        if let Some(i) = self.pending.iter().position(matches) {
            return self.pending.remove(i)["params"]["diagnostics"].as_array().unwrap().clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m =
                self.messages.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("diagnostics");
            self.log.push(m.clone());
            if matches(&m) {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn diagnostics_now(&self, uri: &str) -> Vec<Value> {
        self.latest.get(uri).cloned().unwrap_or_default()
    }

    fn stop(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            assert!(Instant::now() < deadline, "paved lsp did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx:1.27
    securityContext:
      privileged: true
";

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Applies an LSP text edit (ASCII text: UTF-16 columns are byte columns).
fn apply(text: &str, edit: &Value) -> String {
    let offset = |p: &Value| {
        let (line, col) = (p["line"].as_u64().unwrap() as usize, p["character"].as_u64().unwrap() as usize);
        text.split_inclusive('\n').take(line).map(str::len).sum::<usize>() + col
    };
    let (start, end) = (offset(&edit["range"]["start"]), offset(&edit["range"]["end"]));
    format!("{}{}{}", &text[..start], edit["newText"].as_str().unwrap(), &text[end..])
}

fn with_code<'a>(diagnostics: &'a [Value], code: &str) -> Option<&'a Value> {
    diagnostics.iter().find(|d| d["code"] == code)
}

#[test]
fn diagnostics_match_paved_check_and_follow_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, POD).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["check", "--format", "json"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let check: Value = serde_json::from_slice(&check.stdout).unwrap();
    let findings = check["findings"].as_array().unwrap_or_else(|| panic!("{check}"));

    let mut client = Client::start(dir.path());
    let uri = uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": POD}}),
    );
    let diagnostics = client.diagnostics(&uri, Some(1));
    let counted: Vec<&Value> = findings.iter().filter(|f| f.get("exempted").is_none()).collect();
    assert_eq!(diagnostics.len(), counted.len(), "{diagnostics:?}\nvs {findings:?}");
    for f in counted {
        let d =
            with_code(&diagnostics, f["policy"].as_str().unwrap()).unwrap_or_else(|| panic!("no diagnostic for {f}"));
        // ASCII text: LSP positions are check's, 0-based.
        let start = &d["range"]["start"];
        assert_eq!(
            (start["line"].as_u64(), start["character"].as_u64()),
            (f["line"].as_u64().map(|l| l - 1), f["column"].as_u64().map(|c| c - 1)),
            "{d}"
        );
        let end = &d["range"]["end"];
        assert_eq!(
            (end["line"].as_u64(), end["character"].as_u64()),
            (f["endLine"].as_u64().map(|l| l - 1), f["endColumn"].as_u64().map(|c| c - 1)),
            "{d}"
        );
        let severity = match f["action"].as_str().unwrap() {
            "deny" => 1,
            "warn" => 2,
            _ => 3,
        };
        assert_eq!(d["severity"], severity, "{d}");
    }
    let privileged = with_code(&diagnostics, "pss-baseline/privileged").unwrap();
    assert_eq!(privileged["range"]["start"], json!({"line": 9, "character": 6}));
    let href = privileged["codeDescription"]["href"].as_str().unwrap();
    assert!(href.starts_with("https://") && href.ends_with("/docs/policies.md#pss-baseline/privileged"), "{href}");

    // Hover on it explains the policy.
    let hover = client
        .request("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": {"line": 9, "character": 8}}));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.starts_with("**pss-baseline/privileged**") && text.contains("- **How to fix.**"), "{text}");

    // Typing `false` over `true`: an incremental change.
    let edit =
        json!({"range": {"start": {"line": 9, "character": 18}, "end": {"line": 9, "character": 22}}, "text": "false"});
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [edit]}),
    );
    let diagnostics = client.diagnostics(&uri, Some(2));
    assert!(with_code(&diagnostics, "pss-baseline/privileged").is_none(), "{diagnostics:?}");
    assert!(with_code(&diagnostics, "pss-restricted/run-as-non-root").is_some());
    client.latest.insert(uri.clone(), diagnostics);

    // Quick fixes: each one applied makes its finding disappear.
    let mut text = POD.replace("privileged: true", "privileged: false");
    for (version, policy, title) in [
        (4, "pss-restricted/run-as-non-root", "Set runAsNonRoot: true"),
        (5, "pss-restricted/capabilities", "Drop ALL capabilities"),
        (6, "best-practices/require-resources", "Add a resources block (placeholder values)"),
    ] {
        let current = client.diagnostics_now(&uri);
        let d = with_code(&current, policy).unwrap_or_else(|| panic!("no {policy} in {current:?}")).clone();
        let actions = client.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}}),
        );
        let action = actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["title"] == title)
            .unwrap_or_else(|| panic!("no {title:?} in {actions}"));
        assert_eq!(action["kind"], "quickfix");
        for edit in action["edit"]["changes"][&uri].as_array().unwrap() {
            text = apply(&text, edit);
        }
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
        let after = client.diagnostics(&uri, Some(version));
        assert!(with_code(&after, policy).is_none(), "{title} left {policy}:\n{text}\n{after:?}");
        client.latest.insert(uri.clone(), after);
    }
    let exempt = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 40, "character": 0}}, "context": {"diagnostics": []}}),
    );
    assert!(
        exempt.as_array().unwrap().iter().any(|a| a["title"].as_str().unwrap().starts_with("Add an exemption from ")),
        "{exempt}"
    );

    // Half-typed YAML: an error where it breaks, and the server stays up.
    let broken = json!({"text": "apiVersion: v1\nkind: Pod\nspec:\n  containers: [\n    {name: a\n"});
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [broken]}),
    );
    let diagnostics = client.diagnostics(&uri, Some(3));
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0]["severity"], 1);
    client.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}));
    assert!(client.diagnostics(&uri, None).is_empty(), "closing clears the document's diagnostics");
    client.stop();
}

#[test]
fn the_configuration_is_found_from_the_documents_folder() {
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team");
    std::fs::create_dir(&team).unwrap();
    std::fs::write(team.join(".paved.yaml"), "policies:\n  pss-baseline/privileged: warn\n").unwrap();
    let mut client = Client::start(dir.path());
    let inside = uri(&team.join("pod.yaml"));
    let outside = uri(&dir.path().join("pod.yaml"));
    for u in [&inside, &outside] {
        client.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": u, "languageId": "yaml", "version": 1, "text": POD}}),
        );
    }
    let severity = |ds: &[Value]| with_code(ds, "pss-baseline/privileged").map(|d| d["severity"].clone());
    assert_eq!(severity(&client.diagnostics(&inside, Some(1))), Some(json!(2)), "team/.paved.yaml makes it a warning");
    assert_eq!(severity(&client.diagnostics(&outside, Some(1))), Some(json!(1)));
    // The configuration changes: every open document is checked again.
    std::fs::write(team.join(".paved.yaml"), "policies:\n  pss-baseline/privileged: audit\n").unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&team.join(".paved.yaml")), "type": 2}]}),
    );
    assert_eq!(severity(&client.diagnostics(&inside, Some(1))), Some(json!(3)));
    std::fs::write(team.join(".paved.yaml"), "policies:\n  no-such/policy: warn\n").unwrap();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&team.join(".paved.yaml")), "type": 2}]}),
    );
    let broken = client.diagnostics(&inside, Some(1));
    assert!(broken[0]["message"].as_str().unwrap().starts_with("configuration: "), "{broken:?}");
    client.stop();
}

#[test]
fn a_burst_of_changes_is_analysed_a_few_times_and_the_last_state_always() {
    let dir = tempfile::tempdir().unwrap();
    let capabilities = json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}});
    let mut client = Client::start_with(dir.path(), capabilities);
    let uri = uri(&dir.path().join("pod.yaml"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": POD}}),
    );
    client.diagnostics(&uri, Some(1));
    let before = client.log.len();
    // Typing fast: 40 versions in a few milliseconds, the last one fixed.
    for version in 2..=41 {
        let text = if version == 41 {
            POD.replace("privileged: true", "privileged: false")
        } else {
            format!("{POD}# {version}\n")
        };
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }
    let last = client.diagnostics(&uri, Some(41));
    assert!(with_code(&last, "pss-baseline/privileged").is_none());
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(m) = client.messages.try_recv() {
        client.log.push(m);
    }
    let published: Vec<&Value> =
        client.log[before..].iter().filter(|m| m["method"] == "textDocument/publishDiagnostics").collect();
    assert!(published.len() <= 4, "{} publications for one burst: {published:?}", published.len());
    // The server asked to be told of .paved.yaml changes.
    let register = client
        .log
        .iter()
        .find(|m| m["method"] == "client/registerCapability")
        .unwrap_or_else(|| panic!("{:?}", client.log));
    assert_eq!(
        register["params"]["registrations"][0]["registerOptions"]["watchers"][0]["globPattern"],
        "**/.paved.yaml"
    );
    client.stop();
}

#[test]
fn a_document_over_the_size_limit_gets_one_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start(dir.path());
    let uri = uri(&dir.path().join("huge.yaml"));
    let huge = POD.repeat((5 << 20) / POD.len());
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": huge}}),
    );
    let diagnostics = client.diagnostics(&uri, Some(1));
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(
        diagnostics[0]["message"].as_str().unwrap().contains("larger than the 4194304-byte limit"),
        "{diagnostics:?}"
    );
    client.stop();
}

#[test]
fn every_prefix_of_a_manifest_as_it_is_typed_gets_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start(dir.path());
    let uri = uri(&dir.path().join("typing.yaml"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": ""}}),
    );
    client.diagnostics(&uri, Some(1));
    // Each keystroke of the manifest, with the odd stray character typed on the way.
    let mut version = 1;
    for end in 1..=POD.len() {
        version += 1;
        let mut text = POD[..end].to_owned();
        if end % 7 == 0 && end < POD.len() {
            text.push_str(["{", "[", "\"", "'", "&a", "*a", "!!", "|", ": :"][end % 9]);
        }
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }
    let last = client.diagnostics(&uri, Some(version));
    assert!(with_code(&last, "pss-baseline/privileged").is_some(), "the whole manifest is checked: {last:?}");
    // Still answering requests.
    let hover = client
        .request("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": {"line": 9, "character": 8}}));
    assert!(hover["contents"]["value"].as_str().is_some_and(|t| t.contains("pss-baseline/privileged")), "{hover}");
    client.stop();
}

/// Gatekeeper constraints and VAPs the folder's configuration names give
/// squiggles like the native rules; hover explains them; a policy file that
/// does not load is said on the document, and saving a policy file reloads.
/// `dir/policies`: the library's required-labels template and a constraint
/// that ConfigMaps need an owner.
fn owner_policies(dir: &Path) -> std::path::PathBuf {
    let library = paved_corpus::path("gatekeeper-library/general/requiredlabels");
    let policies = dir.join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::copy(library.join("template.yaml"), policies.join("template.yaml")).unwrap();
    std::fs::write(
        policies.join("constraint.yaml"),
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata:\n  name: need-owner\nspec:\n  match:\n    kinds: [{apiGroups: [\"\"], kinds: [ConfigMap]}]\n  parameters:\n    labels: [{key: owner}]\n",
    )
    .unwrap();
    policies
}

const BROKEN_TEMPLATE: &str = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8sbroken}\nspec:\n  crd: {spec: {names: {kind: K8sBroken}}}\n  targets:\n  - target: admission.k8s.gatekeeper.sh\n    rego: |\n      package k8sbroken\n      violation[{\"msg\": msg}] {\n        msg := \n      }\n";

#[test]
fn foreign_policies_of_the_configuration_are_diagnostics_with_hover() {
    let dir = tempfile::tempdir().unwrap();
    let policies = owner_policies(dir.path());
    std::fs::write(dir.path().join(".paved.yaml"), "policy-paths: [policies]\n").unwrap();
    let mut client = Client::start(dir.path());
    let doc = uri(&dir.path().join("cm.yaml"));
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {a: b}\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = client.diagnostics(&doc, Some(1));
    let d = with_code(&found, "gatekeeper/k8srequiredlabels/need-owner").unwrap_or_else(|| panic!("{found:?}")).clone();
    assert_eq!(d["severity"], 1, "the constraint denies");
    assert!(d["message"].as_str().unwrap().contains("owner"), "{d}");
    assert!(d.get("codeDescription").is_none(), "no page in docs/policies.md for a foreign policy: {d}");

    let hover =
        client.request("textDocument/hover", json!({"textDocument": {"uri": doc}, "position": d["range"]["start"]}));
    let shown = hover["contents"]["value"].as_str().unwrap_or_else(|| panic!("{hover}"));
    assert!(shown.contains("Required Labels") && shown.contains("Gatekeeper constraint"), "{shown}");
    assert!(shown.contains("\"owner\""), "the constraint's parameters: {shown}");

    // A broken template is named on the document once saved; the constraint that still loads still runs.
    let broken = policies.join("broken.yaml");
    std::fs::write(&broken, BROKEN_TEMPLATE).unwrap();
    client.notify("textDocument/didSave", json!({"textDocument": {"uri": uri(&broken)}}));
    let found = client.diagnostics(&doc, Some(1));
    assert!(
        found.iter().any(|d| d["message"].as_str().unwrap().starts_with("policy ")
            && d["message"].as_str().unwrap().contains("broken.yaml")),
        "{found:?}"
    );
    assert!(with_code(&found, "gatekeeper/k8srequiredlabels/need-owner").is_some(), "{found:?}");
    client.stop();
}

/// `paved lsp --policy DIR` reads DIR from where the server runs, for a
/// document in any folder, and saving a file there reloads.
#[test]
fn policies_given_to_the_server_apply_in_every_folder_and_reload_on_save() {
    let dir = tempfile::tempdir().unwrap();
    let policies = owner_policies(dir.path());
    let team = dir.path().join("team");
    std::fs::create_dir(&team).unwrap();
    let mut client = Client::start_args(dir.path(), json!({}), &["--policy", "policies"]);
    let doc = uri(&team.join("cm.yaml"));
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = client.diagnostics(&doc, Some(1));
    assert!(with_code(&found, "gatekeeper/k8srequiredlabels/need-owner").is_some(), "{found:?}");
    let broken = policies.join("broken.yaml");
    std::fs::write(&broken, BROKEN_TEMPLATE).unwrap();
    client.notify("textDocument/didSave", json!({"textDocument": {"uri": uri(&broken)}}));
    let found = client.diagnostics(&doc, Some(1));
    assert!(found.iter().any(|d| d["message"].as_str().unwrap().contains("broken.yaml")), "{found:?}");
    client.stop();
}

/// A Kyverno policy file open in the editor: a CEL error is a squiggle at
/// its own line and column in that file (elsewhere, a note that the policy
/// did not load), and hover on a policy that loads explains it as
/// `paved explain` does.
#[test]
fn kyverno_policy_files_get_cel_errors_in_place_and_hover() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let text = "apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: no-latest
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: |
      object.spec.containers.all(c,
        !c.image.endsWith(':latest') &&)
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: team-label}
spec:
  rules:
  - name: has-team
    match: {any: [{resources: {kinds: [ConfigMap]}}]}
    validate:
      failureAction: Enforce
      cel: {expressions: [{expression: \"has(object.metadata.labels) && 'team' in object.metadata.labels\"}]}
";
    let file = policies.join("policies.yaml");
    std::fs::write(&file, text).unwrap();
    std::fs::write(dir.path().join(".paved.yaml"), "policy-paths: [policies]\n").unwrap();
    let mut client = Client::start(dir.path());
    let doc = uri(&file);
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = client.diagnostics(&doc, Some(1));
    let error = found
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("no-latest"))
        .unwrap_or_else(|| panic!("the broken policy is named: {found:?}"));
    // Line 13 of the file (0-based 12): the second line of the expression, where `)` follows `&&`.
    assert_eq!(error["range"]["start"]["line"], 12, "{error}");
    assert_eq!(error["range"]["start"]["character"], 39, "at the `)`, inside the expression: {error}");

    // Elsewhere in the folder, the same problem is a note at the start of the document.
    let other = uri(&dir.path().join("cm.yaml"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": other, "languageId": "yaml", "version": 1,
               "text": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}}),
    );
    let found = client.diagnostics(&other, Some(1));
    assert!(
        found.iter().any(|d| d["message"].as_str().unwrap().starts_with("policy ") && d["range"]["start"]["line"] == 0)
    );
    assert!(with_code(&found, "kyverno/team-label/has-team").is_some(), "the policy that loads runs: {found:?}");

    // Hover on the ClusterPolicy's rule.
    let hover = client
        .request("textDocument/hover", json!({"textDocument": {"uri": doc}, "position": {"line": 20, "character": 6}}));
    let shown = hover["contents"]["value"].as_str().unwrap_or_else(|| panic!("{hover}"));
    assert!(shown.contains("kyverno/team-label/has-team"), "{shown}");
    assert!(shown.contains("'team' in object.metadata.labels"), "the rule's expression: {shown}");
    client.stop();
}

/// Code actions as Neovim asks for them (the cursor's line, anywhere on it),
/// each offered once; the one fix that clears a finding is preferred; an
/// exemption stub is not honoured until a person writes its reason, and an
/// existing exemption can be widened to another policy from the editor.
#[test]
fn code_actions_cover_the_line_once_each_and_exemptions_need_a_written_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".paved.yaml"), "profile: pss-restricted\n").unwrap();
    let mut client = Client::start(dir.path());
    let doc = uri(&dir.path().join("pod.yaml"));
    let mut text = POD
        .replace("privileged: true", "privileged: false")
        .replace("  name: web\n", "  name: web\n  labels: {app: web}\n");
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = client.diagnostics(&doc, Some(1));
    let d = with_code(&found, "pss-restricted/run-as-non-root").unwrap_or_else(|| panic!("{found:?}")).clone();
    let line = d["range"]["start"]["line"].clone();
    let ask = |client: &mut Client, range: Value, diagnostics: Value| {
        client.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": doc}, "range": range, "context": {"diagnostics": diagnostics}}),
        )
    };
    // The cursor at the end of the finding's line, outside its range.
    let cursor = json!({"start": {"line": line, "character": 200}, "end": {"line": line, "character": 200}});
    let actions = ask(&mut client, cursor, json!([d]));
    let set = actions.as_array().unwrap().iter().find(|a| a["title"] == "Set runAsNonRoot: true");
    let set = set.unwrap_or_else(|| panic!("the line's finding gets its fixes: {actions}"));
    assert_eq!(set["isPreferred"], true, "{set}");
    assert_eq!(set["diagnostics"][0]["code"], "pss-restricted/run-as-non-root", "{set}");

    // The whole document: each action once, although several findings share a policy.
    let everything = json!({"start": {"line": 0, "character": 0}, "end": {"line": 40, "character": 0}});
    let actions = ask(&mut client, everything.clone(), json!([]));
    let titles: Vec<&str> = actions.as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    let mut unique = titles.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(titles.len(), unique.len(), "{titles:#?}");
    let exemptions: Vec<&&str> = titles.iter().filter(|t| t.starts_with("Add an exemption from ")).collect();
    assert!(!exemptions.is_empty());
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["title"].as_str().unwrap().starts_with("Add an exemption"))
            .all(|a| a.get("isPreferred").is_none()),
        "an exemption is never the preferred fix"
    );

    // Apply the exemption stub from run-as-non-root: a placeholder reason exempts nothing.
    let stub = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == "Add an exemption from pss-restricted/run-as-non-root (write its reason)")
        .unwrap_or_else(|| panic!("{titles:#?}"));
    for edit in stub["edit"]["changes"][&doc].as_array().unwrap() {
        text = apply(&text, edit);
    }
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    let found = client.diagnostics(&doc, Some(2));
    let invalid = with_code(&found, "paved/exemption-invalid").unwrap_or_else(|| panic!("{found:?}"));
    assert!(invalid["message"].as_str().unwrap().contains("is a placeholder"), "{invalid}");
    let still = with_code(&found, "pss-restricted/run-as-non-root").unwrap_or_else(|| panic!("{found:?}"));
    assert!(!still["message"].as_str().unwrap().starts_with("exempted"), "{still}");

    // A person writes the reason: exempted. Another policy's finding can join the exemption.
    text = text.replace(paved_core::exempt::REASON_STUB, "The vendor image runs as root; VEND-12");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 3}, "contentChanges": [{"text": text}]}),
    );
    let found = client.diagnostics(&doc, Some(3));
    assert!(with_code(&found, "paved/exemption-invalid").is_none(), "{found:?}");
    let seccomp = with_code(&found, "pss-restricted/seccomp-profile").unwrap_or_else(|| panic!("{found:?}")).clone();
    let actions = ask(&mut client, seccomp["range"].clone(), json!([seccomp]));
    let widen = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == "Add pss-restricted/seccomp-profile to the object's exemption")
        .unwrap_or_else(|| panic!("{actions}"));
    for edit in widen["edit"]["changes"][&doc].as_array().unwrap() {
        text = apply(&text, edit);
    }
    assert!(text.contains("\"pss-restricted/run-as-non-root, pss-restricted/seccomp-profile\""), "{text}");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 4}, "contentChanges": [{"text": text}]}),
    );
    let found = client.diagnostics(&doc, Some(4));
    let seccomp = with_code(&found, "pss-restricted/seccomp-profile").unwrap_or_else(|| panic!("{found:?}"));
    assert!(seccomp["message"].as_str().unwrap().starts_with("exempted"), "{seccomp}");
    client.stop();
}

/// An expired exemption on a Deployment's pod template is extended where it
/// is, on the template, and the finding goes away.
#[test]
fn an_expired_exemption_is_extended_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start(dir.path());
    let doc = uri(&dir.path().join("deploy.yaml"));
    let mut text = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        paved.dev/exempt: best-practices/require-probes
        paved.dev/exempt-reason: Probes come with v2; OPS-9
        paved.dev/exempt-until: \"2020-01-01\"
    spec:
      containers:
      - {name: app, image: nginx:1.27}
"
    .to_owned();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = client.diagnostics(&doc, Some(1));
    let expired = with_code(&found, "paved/exemption-expired").unwrap_or_else(|| panic!("{found:?}")).clone();
    assert_eq!(expired["range"]["start"]["line"], 12, "{expired}");
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": doc}, "range": expired["range"], "context": {"diagnostics": [expired]}}),
    );
    let extend = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Extend the exemption to "))
        .unwrap_or_else(|| panic!("{actions}"));
    for edit in extend["edit"]["changes"][&doc].as_array().unwrap() {
        text = apply(&text, edit);
    }
    assert!(!text.contains("2020-01-01") && text.matches("paved.dev/exempt-until").count() == 1, "{text}");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    let found = client.diagnostics(&doc, Some(2));
    assert!(with_code(&found, "paved/exemption-expired").is_none(), "{found:?}");
    client.stop();
}

/// The editor's quick fix for what the paved road sets is `paved fix`'s
/// edit: applied, the document is what `paved fix -` prints, and the
/// findings the defaults clear are gone.
#[test]
fn the_paved_roads_defaults_are_a_quick_fix_equal_to_paved_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".paved.yaml"), "policies:\n  pss-restricted/*: warn\n").unwrap();
    let mut client = Client::start(dir.path());
    let doc = uri(&dir.path().join("web.yaml"));
    let text = "# web\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app   # the app\n    image: nginx:1.27\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = client.diagnostics(&doc, Some(1));
    let escalation =
        with_code(&found, "pss-restricted/privilege-escalation").unwrap_or_else(|| panic!("{found:?}")).clone();
    let line = escalation["range"]["start"]["line"].clone();
    let range = json!({"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}});
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": doc}, "range": range, "context": {"diagnostics": [escalation]}}),
    );
    let action = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Set the paved road's defaults in this file"))
        .unwrap_or_else(|| panic!("{actions}"));
    assert_eq!(action["kind"], "quickfix", "{action}");
    assert_eq!(action["diagnostics"][0]["code"], "pss-restricted/privilege-escalation", "{action}");
    let edits = action["edit"]["changes"][&doc].as_array().unwrap();
    let fixed = edits.iter().fold(text.to_owned(), |t, e| apply(&t, e));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["fix", "-"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(fixed, String::from_utf8(out.stdout).unwrap(), "the editor's fix is paved fix's");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    let after = client.diagnostics(&doc, Some(2));
    for cleared in
        ["pss-restricted/privilege-escalation", "pss-restricted/capabilities", "pss-restricted/seccomp-profile"]
    {
        assert!(with_code(&after, cleared).is_none(), "{cleared} still there: {after:?}");
    }
}
