//! `kyverno test` suites, unchanged: a `kyverno-test.yaml`
//! (`cli.kyverno.io/v1alpha1`, kind `Test`) names policy files and
//! resource files, and the result (`pass`, `fail`, `skip`, `warn`,
//! `error`) each policy must give each resource. paved runs the policies it
//! supports through the same engine as `check` and compares, one case per
//! resource; a policy it cannot run is reported as such, never as passed.

use std::path::{Path, PathBuf};

use paved_cel::vap::{Vaps, Verdict};
use serde_json::Value;

use crate::suite::{CaseResult, SuiteError, read_all};

/// The file name `kyverno test DIR` looks for.
pub fn is_kyverno_test(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "kyverno-test.yaml" || n == "kyverno-test.yml")
}

/// What the Kyverno CLI reports for one policy (and `rule`) and one resource.
fn result_of(verdict: &Verdict, scored: bool, rule: Option<&str>) -> &'static str {
    match verdict {
        // A ClusterPolicy's `validate.cel` runs on Kubernetes' own
        // validator, where an expression that cannot be evaluated, under
        // `failurePolicy: Fail`, is a denial: Kyverno reports it as a failure.
        Verdict::Error(_) if rule.is_some() => "fail",
        Verdict::Skip | Verdict::Excepted(..) => "skip",
        Verdict::Pass => "pass",
        // A policy annotated `policies.kyverno.io/scored: "false"` reports
        // its failures as warnings.
        Verdict::Fail(_) | Verdict::NoParams(_) if !scored => "warn",
        Verdict::Fail(_) | Verdict::NoParams(_) => "fail",
        Verdict::Error(_) => "error",
    }
}

/// A policy document of a kind paved does not run yet, by its name.
fn unsupported(doc: &Value) -> Option<(String, String)> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
    let known = paved_cel::vap::is_vap_kind(doc);
    let kyverno = api_version.starts_with("kyverno.io/") || api_version.starts_with("policies.kyverno.io/");
    (kyverno && !known).then(|| (name, format!("{kind} ({api_version}) is not supported yet")))
}

/// Runs one `kyverno-test.yaml`: one case per (result entry, resource).
pub fn run_kyverno_test(path: &Path) -> Result<Vec<CaseResult>, SuiteError> {
    let error = |message: String| SuiteError { path: path.to_owned(), message };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for test in read_all(path).map_err(error)? {
        if test.get("kind").and_then(Value::as_str) != Some("Test") {
            return Err(error("kind must be Test (cli.kyverno.io/v1alpha1)".to_owned()));
        }
        let name = test.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let files = |key: &str| -> Result<Vec<Value>, SuiteError> {
            let mut docs = Vec::new();
            for file in test.get(key).and_then(Value::as_array).into_iter().flatten() {
                let file: PathBuf = dir.join(file.as_str().unwrap_or(""));
                docs.extend(read_all(&file).map_err(|e| error(format!("{key}: {e}")))?);
            }
            Ok(docs)
        };
        let policy_docs = files("policies")?;
        let resources = files("resources")?;
        // `userinfo:` a UserInfo file (the request's user, roles and cluster roles).
        let user = match test.get("userinfo").and_then(Value::as_str) {
            Some(file) => {
                let docs = read_all(&dir.join(file)).map_err(|e| error(format!("userinfo: {e}")))?;
                let info = docs.into_iter().next().unwrap_or(Value::Null);
                let mut user = info.get("userInfo").cloned().unwrap_or_else(|| serde_json::json!({}));
                for key in ["roles", "clusterRoles"] {
                    if let Some(v) = info.get(key) {
                        user[key] = v.clone();
                    }
                }
                Some(user)
            }
            None => None,
        };
        // `variables:` a Values file; of it, each resource's `request.operation`.
        let values = match test.get("variables").and_then(Value::as_str) {
            Some(file) => read_all(&dir.join(file)).map_err(|e| error(format!("variables: {e}")))?,
            None => Vec::new(),
        };
        let operation_of = |policy: &str, resource: &str| -> Option<String> {
            values
                .iter()
                .flat_map(|v| v.get("policies").and_then(Value::as_array).into_iter().flatten())
                .filter(|p| p.get("name").and_then(Value::as_str) == Some(policy))
                .flat_map(|p| p.get("resources").and_then(Value::as_array).into_iter().flatten())
                .find(|r| r.get("name").and_then(Value::as_str) == Some(resource))
                .and_then(|r| r.pointer("/values/request.operation"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        // `context:` a Context file: objects `resource.Get` and `resource.List`
        // read, and what `image.GetMetadata` answers (`spec.images`).
        let context = match test.get("context").and_then(Value::as_str) {
            Some(file) => read_all(&dir.join(file)).map_err(|e| error(format!("context: {e}")))?,
            None => Vec::new(),
        };
        let context_items = |key: &str| -> Vec<Value> {
            context
                .iter()
                .flat_map(|c| c.pointer(&format!("/spec/{key}")).and_then(Value::as_array).into_iter().flatten())
                .cloned()
                .collect()
        };
        // Values' `namespaceSelector`: the labels of the namespaces resources are in.
        let namespaces = values
            .iter()
            .flat_map(|v| v.get("namespaceSelector").and_then(Value::as_array).into_iter().flatten())
            .filter_map(|n| {
                let name = n.get("name").and_then(Value::as_str)?;
                Some(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": n.get("labels").cloned().unwrap_or(Value::Null)}}))
            });
        let objects: Vec<Value> = context_items("resources").into_iter().chain(namespaces).collect();
        let (vaps, errors) = Vaps::from_docs(&policy_docs, &objects);
        vaps.objects().set_images(&context_items("images"));
        // What paved cannot run, by policy and (for a ClusterPolicy) rule:
        // its results are reported as not run, never compared.
        let not_run: Vec<(String, Option<String>, String)> = policy_docs
            .iter()
            .filter_map(unsupported)
            .map(|(p, why)| (p, None, why))
            .chain(errors.into_iter().map(|e| (e.name.clone(), e.rule.as_deref().map(str::to_owned), e.to_string())))
            .collect();
        let scored = |policy: &str| {
            policy_docs.iter().all(|d| {
                d.pointer("/metadata/name").and_then(Value::as_str) != Some(policy)
                    || d.pointer("/metadata/annotations/policies.kyverno.io~1scored").and_then(Value::as_str)
                        != Some("false")
            })
        };
        for expected in test.get("results").and_then(Value::as_array).into_iter().flatten() {
            let text = |k: &str| expected.get(k).and_then(Value::as_str).unwrap_or("");
            let (policy, kind, want) = (text("policy"), text("kind"), text("result"));
            let rule = expected.get("rule").and_then(Value::as_str);
            // A MutatingPolicy's result names the file of the resources as
            // they must come out, read once for all its resources.
            let patched_file = expected.get("patchedResources").and_then(Value::as_str);
            let mutating = patched_file.is_some() || expected.get("isMutatingPolicy") == Some(&Value::Bool(true));
            let patched = match patched_file.map(|file| read_all(&dir.join(file))) {
                Some(Ok(docs)) => Some(docs),
                Some(Err(e)) => return Err(error(format!("patchedResources: {e}"))),
                None => None,
            };
            for resource in expected.get("resources").and_then(Value::as_array).into_iter().flatten() {
                let resource = resource.as_str().unwrap_or("");
                let case = match rule {
                    Some(rule) => format!("{policy}/{rule} {kind}/{resource}: {want}"),
                    None => format!("{policy} {kind}/{resource}: {want}"),
                };
                let blocked = not_run.iter().find(|(p, r, _)| p == policy && (r.is_none() || r.as_deref() == rule));
                let failure = match blocked {
                    Some((_, _, why)) => Some(format!("not run: {why}")),
                    None if mutating => {
                        match mutated(&vaps, &resources, patched.as_deref(), policy, kind, resource, want) {
                            // The Kyverno CLI reports no row for it.
                            Err(Mutation::NotInPatched) => continue,
                            Err(Mutation::Differs(why)) => Some(why),
                            Ok(()) => None,
                        }
                    }
                    None => {
                        let request = Asked { operation: operation_of(policy, resource), user: user.as_ref() };
                        judge(&vaps, &resources, policy, rule, kind, resource, &request)
                            .map(|verdict| {
                                let got = result_of(&verdict, scored(policy), rule);
                                (got != want).then(|| match &verdict {
                                    Verdict::Fail(m) | Verdict::Error(m) => format!("got {got}: {}", m.join("; ")),
                                    Verdict::NoParams(m) => format!("got {got}: {m}"),
                                    _ => format!("got {got}"),
                                })
                            })
                            .unwrap_or_else(Some)
                    }
                };
                out.push(CaseResult { test: name.clone(), case, failure, engine: None });
            }
        }
    }
    Ok(out)
}

/// How a MutatingPolicy's case came out, when not as the suite says.
enum Mutation {
    /// The suite's `patchedResources` has no such resource: the Kyverno CLI
    /// makes no row of the case, and neither does paved.
    NotInPatched,
    Differs(String),
}

/// A MutatingPolicy's case, as the Kyverno CLI decides it: the resource
/// mutated by `policy` alone must be its `patchedResources` entry, and the
/// result (`pass`: changed, `skip`: not applied) the one the suite wants; a
/// case that wants `fail` passes on any difference.
fn mutated(
    vaps: &Vaps,
    resources: &[Value],
    patched: Option<&[Value]>,
    policy: &str,
    kind: &str,
    name: &str,
    want: &str,
) -> Result<(), Mutation> {
    let object = find(resources, kind, name).map_err(Mutation::Differs)?;
    let id = format!("kyverno/{policy}");
    let out = vaps.mutate_with(&object, &Value::Null, None, |b| b == id);
    let wants_failure = want == "fail";
    let differs = |why: String| if wants_failure { Ok(()) } else { Err(Mutation::Differs(why)) };
    if let Some(patched) = patched {
        let Ok(expected) = find(patched, kind, name) else { return Err(Mutation::NotInPatched) };
        if out.object != expected {
            let ops = paved_core::mutate::diff(&expected, &out.object);
            let shown: Vec<String> = ops
                .iter()
                .take(5)
                .map(|op| {
                    format!("{} {} {}", op.op, op.path, op.value.as_ref().map(Value::to_string).unwrap_or_default())
                })
                .collect();
            return differs(format!("the patched resource differs from the suite's: {}", shown.join("; ")));
        }
    }
    let got = match (out.errors.first(), out.by.is_empty()) {
        (Some(_), _) => "error",
        (None, true) => "skip",
        (None, false) => "pass",
    };
    match out.errors.first() {
        Some((_, why, _)) if got != want => differs(format!("got error: {why}")),
        _ if got != want => differs(format!("got {got}")),
        _ => Ok(()),
    }
}

/// The resource of `kind` named `name` (`namespace/name`), in `default`
/// when it names no namespace, as the Kyverno CLI applies it.
fn find(resources: &[Value], kind: &str, name: &str) -> Result<Value, String> {
    let (namespace, name) = match name.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, name),
    };
    let object = resources
        .iter()
        .find(|r| {
            let text = |p: &str| r.pointer(p).and_then(Value::as_str);
            text("/kind") == Some(kind)
                && text("/metadata/name") == Some(name)
                && namespace.is_none_or(|ns| text("/metadata/namespace").unwrap_or("default") == ns)
        })
        .ok_or_else(|| format!("no {kind} {name:?} among the test's resources"))?;
    let mut object = object.clone();
    if object.pointer("/metadata/namespace").is_none() && !CLUSTER_SCOPED.contains(&kind) {
        object["metadata"]["namespace"] = Value::from("default");
    }
    Ok(object)
}

/// What a suite says of the request a resource comes in.
struct Asked<'a> {
    operation: Option<String>,
    user: Option<&'a Value>,
}

/// The verdict of `policy` on the resource of `kind` named `name`
/// (`namespace/name` names one namespace's).
fn judge(
    vaps: &Vaps,
    resources: &[Value],
    policy: &str,
    rule: Option<&str>,
    kind: &str,
    name: &str,
    asked: &Asked,
) -> Result<Verdict, String> {
    let object = find(resources, kind, name)?;
    // Kyverno names the rules autogen makes `autogen-<rule>` and, for
    // CronJobs, `autogen-cronjob-<rule>`; paved judges them as the rule.
    let rule = rule.map(paved_core::kyverno::written_rule);
    let id = match rule {
        Some(rule) => format!("kyverno/{policy}/{rule}"),
        None => format!("kyverno/{policy}"),
    };
    let verdicts = vaps.verdicts_as(&object, asked.operation.as_deref(), asked.user);
    Ok(verdicts.into_iter().find(|(p, _)| *p == id).map_or(Verdict::Skip, |(_, v)| v))
}

/// Built-in kinds that have no namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "APIService",
    "CertificateSigningRequest",
    "ClusterPolicy",
];
