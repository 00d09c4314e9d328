//! Every admission path, with AdmissionReview requests shaped as the API
//! server sends them (kubernetes/api's testdata gives the shape).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use paved_admission::cluster::{ClusterState, NamespaceLabels};
use paved_admission::review::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use paved_admission::{Admission, Event, Verdict};
use paved_core::Timestamp;
use paved_core::config::Config;
use serde_json::{Value, json};

fn corpus() -> PathBuf {
    paved_corpus::path("k8s-api/HEAD")
}

#[test]
fn api_server_reviews_decode_without_loss() {
    for version in ["v1", "v1beta1"] {
        let path = corpus().join(format!("admission.k8s.io.{version}.AdmissionReview.json"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let (api_version, request) = AdmissionReview::decode(&bytes).unwrap();
        assert_eq!(api_version, format!("admission.k8s.io/{version}"));
        let again = serde_json::to_value(&request).unwrap();
        assert_eq!(again, original["request"], "{version}: a request field was lost or changed");
        assert_eq!(request.user_info.extra["extraKey"], ["extraValue"]);
        assert_eq!(request.dry_run, Some(true));
        // What we send back has every field the API server reads, under its name.
        let response: AdmissionResponse = serde_json::from_value(original["response"].clone()).unwrap();
        assert_eq!(serde_json::to_value(&response).unwrap(), original["response"], "{version}: response shape");
        assert_eq!(response.patch.as_deref(), Some("BA=="));
    }
}

#[test]
fn decode_refuses_what_is_not_a_review() {
    let err = |body: &str| AdmissionReview::decode(body.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        err("{"),
        "not JSON an AdmissionReview can be read from: EOF while parsing an object at line 1, column 2"
    );
    assert_eq!(
        err("{\n \"kind\": tru}"),
        "not JSON an AdmissionReview can be read from: expected a value at line 2, column 10"
    );
    assert!(
        err(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#)
            .contains("request.uid: expected a string")
    );
    assert!(err(r#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview"}"#).contains("admission.k8s.io/v2"));
    assert!(err(r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#).contains("expected AdmissionReview"));
    assert!(err(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#).contains("no request"));
}

const NOW: &str = "2026-11-24T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn config(yaml: &str) -> Config {
    serde_saphyr::from_str(yaml).unwrap()
}

const CONFIG: &str = r#"
exceptions:
  authority: {groups: [platform-admins]}
  policies:
    best-practices/*: {users: [alice]}
locks:
  authority: {groups: [sre]}
  protect:
  - {kinds: [PersistentVolumeClaim, Namespace], namespaces: ["prod-*"]}
  - {labelSelector: {paved.dev/tier: data}}
"#;

fn admission() -> Admission {
    Admission::new(config(CONFIG), None, vec!["paved-system".into(), "kube-system".into()]).unwrap()
}

/// Who makes a request.
struct Who(&'static str, &'static [&'static str]);
const DEV: Who = Who("dev@example.com", &["developers", "system:authenticated"]);
const ADMIN: Who = Who("root@example.com", &["platform-admins", "system:authenticated"]);
const SRE: Who = Who("oncall@example.com", &["sre", "system:authenticated"]);
const RS_CONTROLLER: Who = Who("system:serviceaccount:kube-system:replicaset-controller", &["system:serviceaccounts"]);

fn resource_of(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "Pod" => ("", "v1", "pods"),
        "Deployment" => ("apps", "v1", "deployments"),
        "PersistentVolumeClaim" => ("", "v1", "persistentvolumeclaims"),
        "ConfigMap" => ("", "v1", "configmaps"),
        "Namespace" => ("", "v1", "namespaces"),
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        "PolicyException" => ("kyverno.io", "v2", "policyexceptions"),
        other => panic!("no resource for {other}"),
    }
}

/// An AdmissionReview as the API server builds it.
fn review(op: &str, who: &Who, object: Option<&Value>, old: Option<&Value>) -> Value {
    let obj = object.or(old).unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let (group, version, resource) = resource_of(kind);
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let namespace = if kind == "Namespace" { name } else { obj["metadata"]["namespace"].as_str().unwrap_or("") };
    let options = match op {
        "CREATE" => {
            json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"})
        }
        "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-edit"}),
        _ => {
            json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "gracePeriodSeconds": 0, "propagationPolicy": "Background"})
        }
    };
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name,
        "operation": op,
        "userInfo": {"username": who.0, "uid": "014fbff9a07c", "groups": who.1},
        "object": object,
        "oldObject": old,
        "dryRun": false,
        "options": options,
    });
    if !namespace.is_empty() {
        request["namespace"] = json!(namespace);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

fn judge_in(adm: &Admission, cluster: &ClusterState, review: &Value) -> (Verdict, AdmissionResponse) {
    let body = serde_json::to_vec(review).unwrap();
    let (_, request): (String, AdmissionRequest) = AdmissionReview::decode(&body).unwrap();
    let verdict = adm.review(&request, cluster, now());
    let response = adm.review(&request, cluster, now()).into_response(request.uid.clone());
    assert_eq!(response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002", "uid must be echoed");
    (verdict, response)
}

fn judge(review: &Value) -> (Verdict, AdmissionResponse) {
    judge_in(&admission(), &ClusterState::default(), review)
}

fn message(r: &AdmissionResponse) -> &str {
    r.status.as_ref().map(|s| s.message.as_str()).unwrap_or("")
}

fn pod_spec(security: Value) -> Value {
    json!({"containers": [{"name": "app", "image": "registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "securityContext": security,
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}],
        "automountServiceAccountToken": false})
}

fn restricted_ok() -> Value {
    json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
}

fn deployment(ns: &str, annotations: Value, template_annotations: Value, security: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "annotations": annotations},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}, "annotations": template_annotations}, "spec": pod_spec(security)}}})
}

fn pod(ns: &str, annotations: Value, security: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7d4b9-x2x9q", "namespace": ns, "annotations": annotations}, "spec": pod_spec(security)})
}

#[test]
fn a_clean_deployment_is_allowed_without_warnings() {
    let d = deployment("shop", json!({}), json!({}), restricted_ok());
    let (v, r) = judge(&review("CREATE", &DEV, Some(&d), None));
    assert!(r.allowed, "{:?}", r.status);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(v.outcome(), "allowed");
}

#[test]
fn a_privileged_deployment_is_refused_at_the_deployment() {
    let d = deployment("shop", json!({}), json!({}), json!({"privileged": true}));
    let (v, r) = judge(&review("CREATE", &DEV, Some(&d), None));
    assert!(!r.allowed);
    let status = r.status.as_ref().unwrap();
    assert_eq!(status.code, Some(403));
    assert_eq!(status.reason, "Forbidden");
    assert!(
        status.message.starts_with("paved denied Deployment shop/web: [pss-baseline/privileged]"),
        "{}",
        status.message
    );
    assert!(v.findings.iter().any(|(p, _)| p == "pss-baseline/privileged"));
    // Restricted findings still come back as warnings beside the refusal.
    assert!(r.warnings.iter().any(|w| w.starts_with("[pss-restricted/")), "{:?}", r.warnings);
}

#[test]
fn dry_run_is_judged_the_same() {
    let d = deployment("shop", json!({}), json!({}), json!({"privileged": true}));
    let mut rv = review("CREATE", &DEV, Some(&d), None);
    rv["request"]["dryRun"] = json!(true);
    let (v, r) = judge(&rv);
    assert!(!r.allowed);
    assert!(v.dry_run);
}

#[test]
fn restricted_findings_are_warnings_each_one_line_within_bounds() {
    let d = deployment("shop", json!({}), json!({}), json!({}));
    let (v, r) = judge(&review("CREATE", &DEV, Some(&d), None));
    assert!(r.allowed);
    assert_eq!(v.outcome(), "warned");
    assert!(r.warnings.iter().any(|w| w.starts_with("[pss-restricted/run-as-non-root]")), "{:?}", r.warnings);
    for w in &r.warnings {
        assert!(w.chars().count() <= 120 && !w.contains('\n'), "{w:?}");
    }
}

/// What kubectl shows of a warning: all of it, when it is one line of at
/// most 120 characters that ends a sentence and was not cut.
fn assert_whole(w: &str) {
    assert!(w.chars().count() <= 120, "longer than 120 characters: {w:?}");
    assert!(!w.contains('…') && !w.chars().any(char::is_control), "cut or not one line: {w:?}");
    assert!(w.ends_with('.'), "not a whole sentence: {w:?}");
}

#[test]
fn every_native_rule_warns_in_a_whole_sentence_that_names_the_fix() {
    use paved_admission::warning::{Note, for_finding};
    use paved_core::node::{FieldPath, Node};
    use paved_core::policy::{Action, Finding};
    // The longest name a container may have, 63 characters: the warning then
    // leaves the container out rather than cutting the fix.
    for name in ["app", &"n".repeat(63)] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": name, "image": "nginx"}]}});
        let object = Node::from_json(&pod);
        let path = FieldPath::root().keys(&["spec", "containers"]).index(0).keys(&["securityContext", "privileged"]);
        for rule in paved_core::rules::all() {
            for note in [Note::None, Note::JudgedAtOwner, Note::Preexisting] {
                let finding = Finding {
                    policy: rule.id.into(),
                    action: Action::Warn,
                    message: rule.doc.fix.into(),
                    short: Some(rule.doc.short.into()),
                    object: std::sync::Arc::new(paved_core::object::ObjectRef::of(&object)),
                    path: path.clone(),
                    span: paved_core::node::Span::NONE,
                    exact: false,
                    exempted: None,
                };
                let w = for_finding(&finding, &object, note);
                assert_whole(&w);
                assert!(w.starts_with(&format!("[{}] ", rule.id)) && w.ends_with(rule.doc.short), "{}: {w}", rule.id);
                if name == "app" && note == Note::None {
                    assert!(w.contains("container \"app\": "), "the container is named when it fits: {w}");
                }
            }
        }
    }
}

#[test]
fn pod_security_fixtures_warn_in_whole_sentences() {
    // Every failing fixture of the Pod Security conformance suite, in a
    // namespace that runs paved-road (both levels and best practices) in
    // warn mode: every finding becomes a warning, none may be cut.
    let root = paved_corpus::path("pod-security");
    let cluster = labelled("fixtures", Some("paved-road"), None, Some("warn"));
    let adm = admission();
    let (mut reviewed, mut warned) = (0, 0);
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !path.to_string_lossy().contains("/fail/") || path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut pod: Value = serde_saphyr::from_str(&text).unwrap();
            pod["metadata"]["namespace"] = json!("fixtures");
            let (_, r) = judge_in(&adm, &cluster, &review("CREATE", &DEV, Some(&pod), None));
            assert!(r.allowed, "{}: warn mode refuses nothing", path.display());
            reviewed += 1;
            warned += usize::from(!r.warnings.is_empty());
            for w in &r.warnings {
                assert_whole(w);
            }
        }
    }
    assert!(reviewed > 500 && warned == reviewed, "{warned} of {reviewed} fixtures warned");
}

#[test]
fn many_warnings_stay_under_4_kib_and_say_how_many_are_hidden() {
    let containers: Vec<Value> = (0..80).map(|i| json!({"name": format!("c{i}"), "image": "nginx"})).collect();
    let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "many", "namespace": "shop"}, "spec": {"containers": containers}});
    let (v, r) = judge(&review("CREATE", &DEV, Some(&p), None));
    assert!(v.warnings.len() > 100);
    let bytes: usize = r.warnings.iter().map(String::len).sum();
    assert!(bytes <= 4096, "{bytes} bytes of warnings");
    let last = r.warnings.last().unwrap();
    assert!(last.starts_with("paved: ") && last.ends_with("more warnings not shown."), "{last}");
}

fn labelled(ns: &str, profile: Option<&str>, version: Option<&str>, mode: Option<&str>) -> ClusterState {
    let mut c = ClusterState::default();
    let labels = NamespaceLabels {
        profile: profile.map(str::to_owned),
        version: version.map(str::to_owned),
        mode: mode.map(str::to_owned),
    };
    c.set_namespace(ns, labels);
    c
}

#[test]
fn a_namespace_profile_label_chooses_the_policies() {
    let d = deployment("secure", json!({}), json!({}), json!({}));
    let rv = review("CREATE", &DEV, Some(&d), None);
    let adm = admission();
    let (_, r) = judge_in(&adm, &labelled("secure", Some("pss-restricted"), None, None), &rv);
    assert!(!r.allowed);
    assert!(message(&r).contains("[pss-restricted/run-as-non-root]"), "{}", message(&r));
    // The same object elsewhere is only warned about.
    let (_, r) = judge_in(&adm, &labelled("secure", None, None, None), &rv);
    assert!(r.allowed);
    // Pinned to v1.21, before dropping capabilities was required: still denied, for less.
    let (_, r) = judge_in(&adm, &labelled("secure", Some("pss-restricted"), Some("v1.21"), None), &rv);
    assert!(message(&r).contains("run-as-non-root") && !message(&r).contains("capabilities"), "{}", message(&r));
}

#[test]
fn mode_warn_turns_denials_into_warnings_and_audit_records_only() {
    let d = deployment("lab", json!({}), json!({}), json!({"privileged": true}));
    let rv = review("CREATE", &DEV, Some(&d), None);
    let adm = admission();
    let (_, r) = judge_in(&adm, &labelled("lab", None, None, Some("warn")), &rv);
    assert!(r.allowed);
    assert!(r.warnings.iter().any(|w| w.starts_with("[pss-baseline/privileged]")), "{:?}", r.warnings);
    let (_, r) = judge_in(&adm, &labelled("lab", None, None, Some("audit")), &rv);
    assert!(r.allowed && r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.audit_annotations["pss-baseline.privileged"].contains("privileged"), "{:?}", r.audit_annotations);
}

#[test]
fn a_bad_namespace_label_falls_back_to_the_default_and_says_so() {
    let d = deployment("lab", json!({}), json!({}), json!({"privileged": true}));
    let rv = review("CREATE", &DEV, Some(&d), None);
    let (_, r) = judge_in(&admission(), &labelled("lab", Some("strictest"), None, Some("loud")), &rv);
    assert!(!r.allowed, "the default profile still denies privileged");
    assert!(r.warnings.iter().any(|w| w.contains("paved.dev/mode=\"loud\"")), "{:?}", r.warnings);
    assert!(r.warnings.iter().any(|w| w.contains("unknown profile \"strictest\"")), "{:?}", r.warnings);
}

#[test]
fn excluded_namespaces_are_never_judged() {
    let d = deployment("kube-system", json!({"paved.dev/lock": "delete"}), json!({}), json!({"privileged": true}));
    for rv in [review("CREATE", &DEV, Some(&d), None), review("DELETE", &DEV, None, Some(&d))] {
        let (v, r) = judge(&rv);
        assert!(r.allowed && r.warnings.is_empty() && v.events.is_empty());
    }
}

#[test]
fn status_updates_are_not_judged_by_policies() {
    let p = pod("shop", json!({}), json!({"privileged": true}));
    let mut rv = review("UPDATE", &DEV, Some(&p), Some(&p));
    rv["request"]["subResource"] = json!("status");
    assert!(judge(&rv).1.allowed);
    rv["request"]["subResource"] = json!("ephemeralcontainers");
    let p2 = pod("shop", json!({"changed": "yes"}), json!({"privileged": true}));
    rv["request"]["oldObject"] = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7d4b9-x2x9q", "namespace": "shop"}, "spec": pod_spec(json!({}))});
    rv["request"]["object"] = p2;
    assert!(!judge(&rv).1.allowed, "ephemeral containers are judged");
}

#[test]
fn an_update_keeps_old_denials_as_warnings_but_refuses_new_ones() {
    let old = deployment("shop", json!({}), json!({}), json!({"privileged": true}));
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    let (_, r) = judge(&review("UPDATE", &DEV, Some(&scaled), Some(&old)));
    assert!(r.allowed, "{}", message(&r));
    assert!(r.warnings.iter().any(|w| w.contains("already so before this update")), "{:?}", r.warnings);
    let mut worse = scaled.clone();
    worse["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    let (_, r) = judge(&review("UPDATE", &DEV, Some(&worse), Some(&old)));
    assert!(!r.allowed);
    assert!(message(&r).contains("pss-baseline/host-namespaces") && !message(&r).contains("[pss-baseline/privileged]"));
}

// --- exceptions with authority ---

fn exempt(policies: &str, reason: &str) -> Value {
    json!({"paved.dev/exempt": policies, "paved.dev/exempt-reason": reason, "paved.dev/exempt-until": "2027-01-31"})
}

#[test]
fn nobody_grants_themselves_an_exemption() {
    let d = deployment("shop", exempt("pss-baseline/privileged", "JIRA-1"), json!({}), json!({"privileged": true}));
    let (v, r) = judge(&review("CREATE", &DEV, Some(&d), None));
    assert!(!r.allowed);
    let m = message(&r);
    assert!(
        m.contains("[paved/exemption-authority] only groups platform-admins may grant an exemption from pss-baseline/privileged"),
        "{m}"
    );
    assert!(v.events.contains(&Event::ExemptionRefused { policy: "pss-baseline/privileged".into(), by: DEV.0.into() }));
}

/// A Kyverno PolicyException is an exemption too: only the authority of
/// every policy it names may create or widen one; anybody may delete one.
#[test]
fn a_kyverno_policy_exception_needs_the_exception_authority() {
    let exception = |rules: Value| {
        json!({"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
               "metadata": {"name": "let-me", "namespace": "shop"},
               "spec": {"exceptions": [{"policyName": "disallow-privileged", "ruleNames": rules}],
                        "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": ["shop"]}}]}}})
    };
    let mine = exception(json!(["autogen-privileged"]));
    let (v, r) = judge(&review("CREATE", &DEV, Some(&mine), None));
    assert!(!r.allowed, "a developer excepted themselves");
    assert!(
        message(&r).contains(
            "only groups platform-admins may grant an exemption from kyverno/disallow-privileged/privileged (a Kyverno PolicyException)"
        ),
        "{}",
        message(&r)
    );
    assert!(v.events.contains(&Event::ExemptionRefused {
        policy: "kyverno/disallow-privileged/privileged".into(),
        by: DEV.0.into()
    }));
    let (_, r) = judge(&review("CREATE", &ADMIN, Some(&mine), None));
    assert!(r.allowed, "{}", message(&r));
    assert_eq!(
        r.audit_annotations["exemption-granted"],
        format!("kyverno/disallow-privileged/privileged by {}", ADMIN.0)
    );
    // Labels and annotations are the developer's to change; the exception's terms are not.
    let mut labelled = mine.clone();
    labelled["metadata"]["labels"] = json!({"team": "shop"});
    assert!(judge(&review("UPDATE", &DEV, Some(&labelled), Some(&mine))).1.allowed);
    let widened = exception(json!([]));
    assert!(!judge(&review("UPDATE", &DEV, Some(&widened), Some(&mine))).1.allowed, "widened to the whole policy");
    assert!(judge(&review("DELETE", &DEV, None, Some(&mine))).1.allowed);
}

#[test]
fn the_exception_authority_grants_and_the_exemption_is_honoured() {
    let d = deployment("shop", exempt("pss-baseline/privileged", "JIRA-1"), json!({}), json!({"privileged": true}));
    let (v, r) = judge(&review("CREATE", &ADMIN, Some(&d), None));
    assert!(r.allowed, "{}", message(&r));
    assert!(
        v.events.contains(&Event::ExemptionGranted { policy: "pss-baseline/privileged".into(), by: ADMIN.0.into() })
    );
    assert_eq!(r.audit_annotations["exemption-granted"], format!("pss-baseline/privileged by {}", ADMIN.0));
    assert!(r.audit_annotations["exempted"].contains("pss-baseline/privileged (JIRA-1)"));
    // Later, a developer changes the image: the grant is untouched, so allowed.
    let mut edited = d.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example.com/app:2@sha256:abc");
    let (v, r) = judge(&review("UPDATE", &DEV, Some(&edited), Some(&d)));
    assert!(r.allowed, "{}", message(&r));
    assert!(!v.events.iter().any(|e| matches!(e, Event::ExemptionGranted { .. })));
    // Extending the expiry is a new grant.
    let mut extended = d.clone();
    extended["metadata"]["annotations"]["paved.dev/exempt-until"] = json!("2030-01-01");
    let (_, r) = judge(&review("UPDATE", &DEV, Some(&extended), Some(&d)));
    assert!(!r.allowed);
    // Adding a policy to the list is a grant of that policy only.
    let mut widened = d.clone();
    widened["metadata"]["annotations"]["paved.dev/exempt"] =
        json!("pss-baseline/privileged, pss-baseline/host-namespaces");
    let (_, r) = judge(&review("UPDATE", &DEV, Some(&widened), Some(&d)));
    assert!(
        message(&r).contains("from pss-baseline/host-namespaces")
            && !message(&r).contains("from pss-baseline/privileged")
    );
    // Removing an exemption needs no authority.
    let mut removed = d.clone();
    removed["metadata"]["annotations"] = json!({});
    removed["spec"]["template"]["spec"] = pod_spec(restricted_ok());
    assert!(judge(&review("UPDATE", &DEV, Some(&removed), Some(&d))).1.allowed);
}

#[test]
fn per_policy_authority_covers_only_its_policies() {
    let alice = Who("alice", &["system:authenticated"]);
    let d = deployment("shop", exempt("best-practices/pin-image", "vendor image"), json!({}), restricted_ok());
    assert!(judge(&review("CREATE", &alice, Some(&d), None)).1.allowed);
    let d = deployment("shop", exempt("best-practices/*", "legacy"), json!({}), restricted_ok());
    assert!(judge(&review("CREATE", &alice, Some(&d), None)).1.allowed);
    let d = deployment("shop", exempt("pss-restricted/*", "legacy"), json!({}), restricted_ok());
    let (_, r) = judge(&review("CREATE", &alice, Some(&d), None));
    assert!(
        message(&r).contains("only groups platform-admins may grant an exemption from pss-restricted/*"),
        "{}",
        message(&r)
    );
    let d = deployment("shop", exempt("best-practices/pin-image", "x"), json!({}), restricted_ok());
    let (_, r) = judge(&review("CREATE", &DEV, Some(&d), None));
    assert!(message(&r).contains("only groups platform-admins or users alice may grant"), "{}", message(&r));
}

#[test]
fn exemptions_in_a_pod_template_are_grants_too() {
    let d = deployment("shop", json!({}), exempt("pss-baseline/privileged", "JIRA-2"), json!({"privileged": true}));
    assert!(!judge(&review("CREATE", &DEV, Some(&d), None)).1.allowed);
    assert!(judge(&review("CREATE", &ADMIN, Some(&d), None)).1.allowed);
}

#[test]
fn pods_of_trusted_controllers_inherit_their_templates_exemptions() {
    let p = pod("shop", exempt("pss-baseline/privileged", "JIRA-2"), json!({"privileged": true}));
    let (_, r) = judge(&review("CREATE", &RS_CONTROLLER, Some(&p), None));
    assert!(r.allowed, "{}", message(&r));
    assert!(r.audit_annotations["exempted"].contains("JIRA-2"));
    // The same pod made by hand is a grant the developer may not make.
    assert!(!judge(&review("CREATE", &DEV, Some(&p), None)).1.allowed);
}

#[test]
fn an_expired_exemption_no_longer_exempts() {
    let mut ann = exempt("pss-baseline/privileged", "JIRA-1");
    ann["paved.dev/exempt-until"] = json!("2026-01-01");
    let d = deployment("shop", ann, json!({}), json!({"privileged": true}));
    let (_, r) = judge(&review("CREATE", &ADMIN, Some(&d), None));
    assert!(!r.allowed);
    assert!(message(&r).contains("[pss-baseline/privileged]"));
}

// --- deletion locks ---

fn pvc(ns: &str, annotations: Value, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": ns, "annotations": annotations, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

#[test]
fn a_locked_object_cannot_be_deleted_whatever_the_flags() {
    let locked = pvc("dev", json!({"paved.dev/lock": "delete"}), json!({}));
    let rv = review("DELETE", &ADMIN, None, Some(&locked));
    assert_eq!(rv["request"]["options"]["gracePeriodSeconds"], 0, "kubectl delete --force --grace-period=0");
    let (v, r) = judge(&rv);
    assert!(!r.allowed);
    assert!(
        message(&r).contains("first run: kubectl annotate persistentvolumeclaims/data -n dev paved.dev/lock-"),
        "{}",
        message(&r)
    );
    assert!(r.audit_annotations.contains_key("lock-denied"));
    assert!(matches!(&v.events[..], [Event::DeleteRefused { object }] if object == "PersistentVolumeClaim dev/data"));
    // Without the lock, the same delete goes through.
    assert!(judge(&review("DELETE", &DEV, None, Some(&pvc("dev", json!({}), json!({}))))).1.allowed);
}

#[test]
fn protected_objects_are_locked_without_an_annotation() {
    let (_, r) = judge(&review("DELETE", &ADMIN, None, Some(&pvc("prod-eu", json!({}), json!({})))));
    assert!(!r.allowed);
    assert!(message(&r).contains("protected by locks.protect[0]; to delete it, groups sre must first run: kubectl annotate persistentvolumeclaims/data -n prod-eu paved.dev/lock=off"), "{}", message(&r));
    let by_label = pvc("dev", json!({}), json!({"paved.dev/tier": "data"}));
    assert!(!judge(&review("DELETE", &DEV, None, Some(&by_label))).1.allowed);
    let off = pvc("prod-eu", json!({"paved.dev/lock": "off"}), json!({}));
    assert!(judge(&review("DELETE", &DEV, None, Some(&off))).1.allowed);
}

#[test]
fn lifting_a_lock_needs_the_lock_authority() {
    let locked = pvc("dev", json!({"paved.dev/lock": "delete"}), json!({}));
    let unlocked = pvc("dev", json!({}), json!({}));
    let (v, r) = judge(&review("UPDATE", &DEV, Some(&unlocked), Some(&locked)));
    assert!(!r.allowed);
    assert!(
        message(&r).contains("only groups sre may lift its deletion lock; dev@example.com may not"),
        "{}",
        message(&r)
    );
    assert!(matches!(&v.events[..], [Event::UnlockRefused { .. }]));
    let (v, r) = judge(&review("UPDATE", &SRE, Some(&unlocked), Some(&locked)));
    assert!(r.allowed);
    assert!(matches!(&v.events[..], [Event::Unlocked { by, .. }] if by == SRE.0));
    assert_eq!(r.audit_annotations["unlock"], format!("lock lifted by {}", SRE.0));
    // Anyone may lock.
    assert!(judge(&review("UPDATE", &DEV, Some(&locked), Some(&unlocked))).1.allowed);
}

#[test]
fn switching_off_a_protection_needs_the_lock_authority() {
    let protected = pvc("prod-eu", json!({}), json!({}));
    let off = pvc("prod-eu", json!({"paved.dev/lock": "off"}), json!({}));
    assert!(!judge(&review("UPDATE", &DEV, Some(&off), Some(&protected))).1.allowed);
    assert!(judge(&review("UPDATE", &SRE, Some(&off), Some(&protected))).1.allowed);
    assert!(!judge(&review("CREATE", &DEV, Some(&off), None)).1.allowed, "creating it unlocked is the same gesture");
    // Dropping the label that a protect rule selects is an unlock too.
    let labelled = pvc("dev", json!({}), json!({"paved.dev/tier": "data"}));
    let plain = pvc("dev", json!({}), json!({}));
    assert!(!judge(&review("UPDATE", &DEV, Some(&plain), Some(&labelled))).1.allowed);
}

#[test]
fn a_misspelt_lock_is_refused_but_still_locks() {
    let typo = pvc("dev", json!({"paved.dev/lock": "Delete"}), json!({}));
    let (_, r) = judge(&review("CREATE", &DEV, Some(&typo), None));
    assert!(message(&r).contains("paved.dev/lock: \"Delete\" is not a lock"), "{}", message(&r));
    assert!(!judge(&review("DELETE", &DEV, None, Some(&typo))).1.allowed);
}

fn namespace(name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": annotations}})
}

#[test]
fn a_namespace_holding_locked_objects_cannot_be_deleted() {
    let mut cluster = ClusterState::default();
    for i in 0..7 {
        cluster.locks.set("shop", &format!("persistentvolumeclaims/data-{i}"), true);
    }
    let (_, r) = judge_in(&admission(), &cluster, &review("DELETE", &ADMIN, None, Some(&namespace("shop", json!({})))));
    assert!(!r.allowed);
    let m = message(&r);
    assert!(m.contains("it holds locked objects: persistentvolumeclaims/data-0, persistentvolumeclaims/data-1, persistentvolumeclaims/data-2, persistentvolumeclaims/data-3, persistentvolumeclaims/data-4 and 2 more"), "{m}");
    assert!(
        judge_in(&admission(), &cluster, &review("DELETE", &ADMIN, None, Some(&namespace("empty", json!({})))))
            .1
            .allowed
    );
    // A namespace protected by configuration, or locked itself.
    assert!(!judge(&review("DELETE", &ADMIN, None, Some(&namespace("prod-eu", json!({}))))).1.allowed);
    let (_, r) = judge(&review("DELETE", &ADMIN, None, Some(&namespace("dev", json!({"paved.dev/lock": "delete"})))));
    assert!(message(&r).contains("kubectl annotate namespaces/dev paved.dev/lock-"), "{}", message(&r));
}

#[test]
fn each_webhook_asks_about_its_own_part() {
    use paved_admission::Scope;
    let adm = admission();
    let cluster = ClusterState::default();
    let create = serde_json::to_vec(&review("CREATE", &DEV, Some(&locked_bad_obj()), None)).unwrap();
    let create = AdmissionReview::decode(&create).unwrap().1;
    assert!(adm.review_scoped(&create, &cluster, now(), Scope::Locks).allowed(), "locks do not judge policies");
    assert!(!adm.review_scoped(&create, &cluster, now(), Scope::Policies).allowed());
    let delete = serde_json::to_vec(&review("DELETE", &DEV, None, Some(&locked_bad_obj()))).unwrap();
    let delete = AdmissionReview::decode(&delete).unwrap().1;
    assert!(!adm.review_scoped(&delete, &cluster, now(), Scope::Locks).allowed());
    assert!(adm.review_scoped(&delete, &cluster, now(), Scope::Policies).allowed(), "policies do not judge deletes");
    let unlocked = deployment("shop", json!({}), json!({}), restricted_ok());
    let locked_ok = deployment("shop", json!({"paved.dev/lock": "delete"}), json!({}), restricted_ok());
    let unlock = serde_json::to_vec(&review("UPDATE", &DEV, Some(&unlocked), Some(&locked_ok))).unwrap();
    let unlock = AdmissionReview::decode(&unlock).unwrap().1;
    assert!(!adm.review_scoped(&unlock, &cluster, now(), Scope::Locks).allowed());
    assert!(adm.review_scoped(&unlock, &cluster, now(), Scope::Policies).allowed());
    assert!(adm.review_scoped(&unlock, &cluster, now(), Scope::Grants).allowed());
    // Grants are their own webhook's, failing closed: not the policies'.
    let granted = deployment("shop", exempt("pss-baseline/privileged", "JIRA-3"), json!({}), restricted_ok());
    let grant = serde_json::to_vec(&review("UPDATE", &DEV, Some(&granted), Some(&unlocked))).unwrap();
    let grant = AdmissionReview::decode(&grant).unwrap().1;
    let granted_by_grants = adm.review_scoped(&grant, &cluster, now(), Scope::Grants);
    assert!(!granted_by_grants.allowed());
    assert!(granted_by_grants.events.iter().any(|e| matches!(e, Event::ExemptionRefused { .. })));
    assert!(adm.review_scoped(&grant, &cluster, now(), Scope::Locks).allowed());
    // The policies webhook refuses it too (an older configuration without a
    // grants webhook must not admit it), but leaves the record to the grants webhook.
    let by_policies = adm.review_scoped(&grant, &cluster, now(), Scope::Policies);
    assert!(!by_policies.allowed() && by_policies.events.is_empty(), "{by_policies:?}");
}

fn locked_bad_obj() -> Value {
    deployment("shop", json!({"paved.dev/lock": "delete"}), json!({}), json!({"privileged": true}))
}

const DEPLOYMENT_CONTROLLER: Who =
    Who("system:serviceaccount:kube-system:deployment-controller", &["system:serviceaccounts"]);
const GC: Who = Who("system:serviceaccount:kube-system:generic-garbage-collector", &["system:serviceaccounts"]);

/// The same review, sent for a subresource (`status`, `binding`, `eviction`, …).
fn via(mut review: Value, subresource: &str) -> Value {
    review["request"]["subResource"] = json!(subresource);
    review["request"]["requestSubResource"] = json!(subresource);
    review
}

fn owned_by(mut obj: Value, kind: &str, name: &str) -> Value {
    obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": name,
        "uid": "6b7c0c2e-1d3b-4a8e-9a8b-2c1f9e0d7a11", "controller": true, "blockOwnerDeletion": true}]);
    obj
}

fn namespace_labelled(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

#[test]
fn namespace_profile_and_mode_labels_are_the_exception_authoritys() {
    let plain = namespace_labelled("shop", json!({"team": "a"}));
    let audit = namespace_labelled("shop", json!({"team": "a", "paved.dev/mode": "audit"}));
    let relaxed = namespace_labelled("shop", json!({"team": "a", "paved.dev/profile": "pss-baseline"}));
    for (new, old) in [(&audit, &plain), (&plain, &relaxed), (&relaxed, &plain)] {
        let update = review("UPDATE", &DEV, Some(new), Some(old));
        for subresource in ["", "status", "finalize"] {
            let r = if subresource.is_empty() { update.clone() } else { via(update.clone(), subresource) };
            let (v, resp) = judge(&r);
            assert!(!resp.allowed, "{subresource}: a developer changed a namespace's paved labels");
            assert!(
                message(&resp).contains("only groups platform-admins may set, change or remove paved.dev/"),
                "{}",
                message(&resp)
            );
            assert!(v.events.iter().any(|e| matches!(e, Event::ExemptionRefused { .. })));
        }
        assert!(judge(&review("UPDATE", &ADMIN, Some(new), Some(old))).1.allowed);
    }
    // Creating a namespace that chooses its own mode is the same gesture.
    assert!(!judge(&review("CREATE", &DEV, Some(&audit), None)).1.allowed);
    // Other labels are anyone's.
    let team_b = namespace_labelled("shop", json!({"team": "b"}));
    assert!(judge(&review("UPDATE", &DEV, Some(&team_b), Some(&plain))).1.allowed);
    assert!(judge(&review("UPDATE", &DEV, Some(&team_b), Some(&team_b))).1.allowed);
}

#[test]
fn a_lock_cannot_be_lifted_through_status_or_a_binding() {
    let locked = pod("shop", json!({"paved.dev/lock": "delete"}), restricted_ok());
    let unlocked = pod("shop", json!({}), restricted_ok());
    let status = via(review("UPDATE", &DEV, Some(&unlocked), Some(&locked)), "status");
    assert!(!judge(&status).1.allowed, "lock removed through /status");
    assert!(judge(&via(review("UPDATE", &SRE, Some(&unlocked), Some(&locked)), "status")).1.allowed);
    // A Binding's annotations are written onto the pod.
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "web-7d4b9-x2x9q", "namespace": "shop", "annotations": {"paved.dev/lock": "off"}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "worker-1"}});
    let mut bind = via(review("CREATE", &DEV, Some(&unlocked), None), "binding");
    bind["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Binding"});
    bind["request"]["object"] = binding.clone();
    let (_, r) = judge(&bind);
    assert!(!r.allowed && message(&r).contains("lift its deletion lock"), "{}", message(&r));
    bind["request"]["userInfo"]["groups"] = json!(["sre"]);
    assert!(judge(&bind).1.allowed);
    // And an exemption is not granted through one either.
    let mut grant = bind.clone();
    grant["request"]["userInfo"]["groups"] = json!(["developers"]);
    grant["request"]["object"]["metadata"]["annotations"] = exempt("pss-baseline/privileged", "JIRA-9");
    assert!(!judge(&grant).1.allowed, "exemption granted through a Binding");
    // The scheduler's own bindings carry no paved annotations.
    let mut plain = bind;
    plain["request"]["object"]["metadata"]["annotations"] = json!({});
    plain["request"]["userInfo"] = json!({"username": "system:kube-scheduler", "groups": ["system:authenticated"]});
    assert!(judge(&plain).1.allowed);
}

#[test]
fn an_eviction_of_a_locked_pod_is_refused() {
    let p = pod("shop", json!({}), restricted_ok());
    let mut evict = via(review("CREATE", &ADMIN, Some(&p), None), "eviction");
    evict["request"]["kind"] = json!({"group": "policy", "version": "v1", "kind": "Eviction"});
    evict["request"]["object"] = json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "web-7d4b9-x2x9q", "namespace": "shop"}});
    assert!(judge(&evict).1.allowed, "an unlocked pod is evicted");
    let mut cluster = ClusterState::default();
    cluster.locks.set("shop", "pods/web-7d4b9-x2x9q", true);
    let (v, r) = judge_in(&admission(), &cluster, &evict);
    assert!(!r.allowed);
    assert!(message(&r).contains("kubectl annotate pods/web-7d4b9-x2x9q -n shop paved.dev/lock-"), "{}", message(&r));
    assert!(v.events.iter().any(|e| matches!(e, Event::DeleteRefused { .. })));
}

#[test]
fn a_replicasets_copy_of_its_deployments_lock_does_not_outlive_it() {
    let mut rs = deployment("shop", json!({"paved.dev/lock": "delete"}), json!({}), restricted_ok());
    rs["kind"] = json!("ReplicaSet");
    rs["metadata"]["name"] = json!("web-7d4b9");
    let rs = owned_by(rs, "Deployment", "web");
    for who in [&GC, &DEPLOYMENT_CONTROLLER] {
        let (_, r) = judge(&review("DELETE", who, None, Some(&rs)));
        assert!(r.allowed, "{}: {}", who.0, message(&r));
        assert!(r.audit_annotations.contains_key("lock-mirrored"));
    }
    // Anyone else, and a ReplicaSet of no Deployment, stay locked.
    assert!(!judge(&review("DELETE", &DEV, None, Some(&rs))).1.allowed);
    let mut orphan = rs.clone();
    orphan["metadata"]["ownerReferences"] = json!([]);
    assert!(!judge(&review("DELETE", &GC, None, Some(&orphan))).1.allowed);
}

#[test]
fn what_trusted_controllers_make_for_existing_workloads_is_judged_at_the_owner() {
    // A privileged Deployment admitted before paved: scaling it makes Pods
    // through the replicaset controller, which must not be refused.
    let child = owned_by(pod("shop", json!({}), json!({"privileged": true})), "ReplicaSet", "web-7d4b9");
    let (v, r) = judge(&review("CREATE", &RS_CONTROLLER, Some(&child), None));
    assert!(r.allowed, "{}", message(&r));
    assert!(r.audit_annotations["judged-at-owner"].contains("pss-baseline/privileged"), "{:?}", r.audit_annotations);
    assert!(r.audit_annotations["judged-at-owner"].contains("ReplicaSet web-7d4b9"));
    assert!(v.warnings.iter().any(|w| w.contains("(judged at its owner)")));
    // The deployment controller's ReplicaSet of a rollout restart, likewise.
    let mut rs = deployment("shop", json!({}), json!({}), json!({"privileged": true}));
    rs["kind"] = json!("ReplicaSet");
    let rs = owned_by(rs, "Deployment", "web");
    assert!(judge(&review("CREATE", &DEPLOYMENT_CONTROLLER, Some(&rs), None)).1.allowed);
    // The same objects from a person are judged as ever, owner or not.
    assert!(!judge(&review("CREATE", &DEV, Some(&child), None)).1.allowed);
    assert!(!judge(&review("CREATE", &DEV, Some(&rs), None)).1.allowed);
    // And a trusted controller's object with no owner is not a copy of anything.
    let lone = pod("shop", json!({}), json!({"privileged": true}));
    assert!(!judge(&review("CREATE", &RS_CONTROLLER, Some(&lone), None)).1.allowed);
}

#[test]
fn a_lock_paved_could_not_see_at_namespace_deletion_is_refused_up_front() {
    let secret = |ns: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns,
            "annotations": {"paved.dev/lock": "delete"}}, "type": "Opaque"})
    };
    let create = |obj: &Value, group: &str, resource: &str| {
        let mut r = review("CREATE", &DEV, Some(&deployment("shop", json!({}), json!({}), restricted_ok())), None);
        let kind = obj["kind"].clone();
        r["request"]["kind"] = json!({"group": group, "version": "v1", "kind": kind});
        r["request"]["resource"] = json!({"group": group, "version": "v1", "resource": resource});
        r["request"]["name"] = obj["metadata"]["name"].clone();
        r["request"]["object"] = obj.clone();
        match obj["metadata"]["namespace"].as_str() {
            Some(ns) => r["request"]["namespace"] = json!(ns),
            None => drop(r["request"].as_object_mut().unwrap().remove("namespace")),
        }
        r
    };
    let mut cluster = ClusterState::default();
    // A Secret: paved never reads them, so its lock needs a locked namespace.
    let (_, r) = judge_in(&admission(), &cluster, &create(&secret("shop"), "", "secrets"));
    assert!(!r.allowed);
    assert!(message(&r).contains("kubectl annotate namespace shop paved.dev/lock=delete"), "{}", message(&r));
    cluster.locked_namespaces.insert("shop".into());
    assert!(judge_in(&admission(), &cluster, &create(&secret("shop"), "", "secrets")).1.allowed);
    // A kind outside the index (a custom resource), whatever the namespace.
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "dev", "annotations": {"paved.dev/lock": "delete"}}});
    let (_, r) = judge_in(&admission(), &cluster, &create(&widget, "example.com", "widgets"));
    assert!(!r.allowed && message(&r).contains("no index of Widget objects"), "{}", message(&r));
    // Indexed kinds and cluster-scoped objects lock as ever.
    let locked = deployment("dev", json!({"paved.dev/lock": "delete"}), json!({}), restricted_ok());
    assert!(judge_in(&admission(), &cluster, &review("CREATE", &DEV, Some(&locked), None)).1.allowed);
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "reader", "annotations": {"paved.dev/lock": "delete"}}});
    assert!(judge_in(&admission(), &cluster, &create(&role, "rbac.authorization.k8s.io", "clusterroles")).1.allowed);
    // An indexed kind paved may not list is outside the index too.
    cluster.unlisted.insert("Deployment");
    assert!(!judge_in(&admission(), &cluster, &review("CREATE", &DEV, Some(&locked), None)).1.allowed);
}

#[test]
fn protect_rules_name_only_kinds_the_index_sees() {
    for (kind, why) in [("Secret", "never reads Secrets"), ("Widget", "no index of Widget")] {
        let config = config(&format!("locks:\n  protect:\n  - {{kinds: [ConfigMap, {kind}]}}\n"));
        let err = Admission::new(config, None, vec![]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with(&format!("locks.protect[0].kinds: \"{kind}\": ")) && err.contains(why), "{err}");
    }
}

#[test]
fn audit_lists_who_is_as_powerful_as_the_authorities() {
    use paved_admission::audit::Audit;
    use paved_core::node::Node;
    let adm = admission();
    let cluster = ClusterState::default();
    let mut audit = Audit::new(&adm, &cluster, now(), 100);
    let role = |kind: &str, ns: Option<&str>, name: &str, rules: Value| {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules})
    };
    let binding = |kind: &str, ns: Option<&str>, name: &str, role_kind: &str, role: &str, subjects: Value| {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects})
    };
    let user = |name: &str| json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}]);
    for obj in [
        role("ClusterRole", None, "cluster-admin", json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])),
        binding(
            "ClusterRoleBinding",
            None,
            "cluster-admin",
            "ClusterRole",
            "cluster-admin",
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"}]),
        ),
        role(
            "ClusterRole",
            None,
            "view",
            json!([{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["get", "list", "watch"]}]),
        ),
        binding("ClusterRoleBinding", None, "everyone-views", "ClusterRole", "view", user("viewer")),
        role(
            "ClusterRole",
            None,
            "token-minter",
            json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]),
        ),
        binding(
            "RoleBinding",
            Some("kube-system"),
            "ci-mints",
            "ClusterRole",
            "token-minter",
            json!([{"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}]),
        ),
        binding("RoleBinding", Some("shop"), "shop-mints", "ClusterRole", "token-minter", user("shop-dev")),
        role(
            "Role",
            Some("kube-system"),
            "deployer",
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "update"]}]),
        ),
        binding("RoleBinding", Some("kube-system"), "ops-deploys", "Role", "deployer", user("ops")),
        role(
            "Role",
            Some("paved-system"),
            "other-config",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"], "resourceNames": ["unrelated"]}]),
        ),
        binding("RoleBinding", Some("paved-system"), "harmless", "Role", "other-config", user("harmless")),
        role(
            "Role",
            Some("paved-system"),
            "config",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"], "resourceNames": ["paved-config"]}]),
        ),
        binding("RoleBinding", Some("paved-system"), "tuner", "Role", "config", user("tuner")),
        role(
            "ClusterRole",
            None,
            "webhooks",
            json!([{"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "verbs": ["delete"]}]),
        ),
        binding(
            "ClusterRoleBinding",
            None,
            "mesh",
            "ClusterRole",
            "webhooks",
            json!([{"kind": "ServiceAccount", "name": "mesh", "namespace": "istio-system"}]),
        ),
        role(
            "ClusterRole",
            None,
            "impersonator",
            json!([{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}]),
        ),
        binding("ClusterRoleBinding", None, "sudo", "ClusterRole", "impersonator", user("sudoer")),
    ] {
        audit.add(&Node::from_json(&obj));
    }
    let report = audit.finish();
    let who = |subject: &str| -> Vec<String> {
        report.powerful.iter().filter(|p| p.subject == subject).map(|p| p.right.clone()).collect()
    };
    assert!(who("Group system:masters").len() >= 5, "{:?}", who("Group system:masters"));
    assert_eq!(
        who("ServiceAccount ci/ci"),
        ["mint tokens for kube-system's service accounts (the trusted controllers)"]
    );
    assert_eq!(who("User ops"), ["create workloads in kube-system, which paved never judges"]);
    assert_eq!(who("User tuner"), ["change paved's configuration (ConfigMap paved-system/paved-config)"]);
    assert_eq!(who("ServiceAccount istio-system/mesh"), ["change or remove paved's webhook configurations"]);
    assert_eq!(who("User sudoer"), ["impersonate groups", "impersonate users"]);
    // Minting tokens in one's own namespace, reading, and other ConfigMaps are ordinary.
    for ordinary in ["User shop-dev", "User viewer", "User harmless"] {
        assert!(who(ordinary).is_empty(), "{ordinary}: {:?}", who(ordinary));
    }
    let row = report.powerful.iter().find(|p| p.subject == "User ops").unwrap();
    assert_eq!(row.via, "RoleBinding kube-system/ops-deploys (Role deployer)");
}

#[test]
fn the_holds_locks_marker_is_paveds_alone() {
    let plain = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    let marked = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "annotations": {"paved.dev/holds-locks": "true"}}});
    let paved = Who("system:serviceaccount:paved-system:paved", &["system:serviceaccounts"]);
    let adm = admission().with_identity(paved.0.to_owned());
    let cluster = ClusterState::default();
    for (new, old) in [(&plain, &marked), (&marked, &plain)] {
        let (_, r) = judge_in(&adm, &cluster, &review("UPDATE", &DEV, Some(new), Some(old)));
        assert!(!r.allowed && message(&r).contains("paved.dev/holds-locks is kept by paved"), "{}", message(&r));
        assert!(judge_in(&adm, &cluster, &review("UPDATE", &paved, Some(new), Some(old))).1.allowed);
        assert!(judge_in(&adm, &cluster, &review("UPDATE", &SRE, Some(new), Some(old))).1.allowed);
    }
    // Other changes to a marked namespace are anyone's.
    let mut labelled = marked.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    assert!(judge_in(&adm, &cluster, &review("UPDATE", &DEV, Some(&labelled), Some(&marked))).1.allowed);
}

/// A placeholder reason (the editor's stub, `TODO`, `<reason>`) exempts
/// nothing at admission either, even when the authority wrote it.
#[test]
fn a_placeholder_reason_exempts_nothing() {
    for reason in [paved_core::exempt::REASON_STUB, "TODO", "<reason>"] {
        let d = deployment("shop", exempt("pss-baseline/privileged", reason), json!({}), json!({"privileged": true}));
        let (_, r) = judge(&review("CREATE", &ADMIN, Some(&d), None));
        assert!(!r.allowed, "{reason}: {}", message(&r));
        assert!(message(&r).contains("[pss-baseline/privileged]"), "{}", message(&r));
        assert!(r.warnings.iter().any(|w| w.contains("exemption-invalid")), "{reason}: {:?}", r.warnings);
    }
}
