//! Kyverno's CEL libraries as Kyverno's policies call them, and only them.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use paved_cel::vap::{Vaps, Verdict};
use serde_json::{Value, json};

/// A ValidatingPolicy on Pods with one validation and some variables.
fn validating_policy(name: &str, variables: Value, expression: &str) -> Value {
    json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": name},
           "spec": {"validationActions": ["Deny"],
                    "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}]},
                    "variables": variables,
                    "validations": [{"expression": expression}]}})
}

fn pod(name: &str, namespace: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn verdict(vaps: &Vaps, object: &Value, policy: &str) -> Verdict {
    let id = format!("kyverno/{policy}");
    vaps.verdicts(object).into_iter().find(|(p, _)| *p == id).map(|(_, v)| v).expect("the policy judged the object")
}

fn load(docs: &[Value], objects: &[Value]) -> Vaps {
    let (vaps, errors) = Vaps::from_docs(docs, objects);
    assert!(errors.is_empty(), "{errors:?}");
    vaps
}

fn allowed_registries() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "registries", "namespace": "platform"},
           "data": {"allowed": "ghcr.io,registry.example.com"}})
}

#[test]
fn resource_get_reads_the_objects_paved_was_given() {
    let policy = validating_policy(
        "allowed-registries",
        json!([{"name": "allowed", "expression":
            "resource.Get('v1', 'configmaps', 'platform', 'registries').data.allowed.split(',')"}]),
        "object.spec.containers.all(c, image(c.image).registry() in variables.allowed)",
    );
    let vaps = load(&[policy], &[allowed_registries()]);
    assert!(matches!(verdict(&vaps, &pod("a", "team", "ghcr.io/acme/app:1"), "allowed-registries"), Verdict::Pass));
    assert!(matches!(verdict(&vaps, &pod("b", "team", "nginx:1.27"), "allowed-registries"), Verdict::Fail(_)));

    // The objects a server syncs replace those it was given, and the kind is one it is told to watch.
    assert!(vaps.objects().kinds().contains(&("v1".to_owned(), "ConfigMap".to_owned())));
    let widened = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "registries", "namespace": "platform"}, "data": {"allowed": "docker.io"}});
    vaps.objects().set(&[widened]);
    assert!(matches!(verdict(&vaps, &pod("b", "team", "nginx:1.27"), "allowed-registries"), Verdict::Pass));
}

#[test]
fn a_missing_object_is_an_error_as_the_api_server_says_it() {
    let policy = validating_policy(
        "needs-config",
        json!([]),
        "resource.Get('v1', 'configmaps', 'platform', 'absent').data.size() > 0",
    );
    let vaps = load(&[policy], &[]);
    match verdict(&vaps, &pod("a", "team", "nginx"), "needs-config") {
        Verdict::Error(why) => assert!(why.join(" ").contains("configmaps \"absent\" not found"), "{why:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn resource_list_lists_one_namespace_or_all() {
    let quota = |ns: &str| json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": ns}, "spec": {}});
    let policy = validating_policy(
        "needs-quota",
        json!([]),
        "resource.List('v1', 'resourcequotas', object.metadata.namespace).items.size() > 0 \
         && resource.List('v1', 'resourcequotas', '').items.size() == 2",
    );
    let vaps = load(&[policy], &[quota("team"), quota("other")]);
    assert!(matches!(verdict(&vaps, &pod("a", "team", "nginx"), "needs-quota"), Verdict::Pass));
    assert!(matches!(verdict(&vaps, &pod("a", "elsewhere", "nginx"), "needs-quota"), Verdict::Fail(_)));
}

#[test]
fn image_metadata_comes_from_a_test_context_and_nowhere_else() {
    let policy = validating_policy(
        "base-images",
        json!([]),
        "object.spec.containers.all(c, image.GetMetadata(c.image).manifest.annotations['base'] == 'distroless')",
    );
    let vaps = load(&[policy], &[]);
    let good = pod("a", "team", "ghcr.io/acme/app:1");
    match verdict(&vaps, &good, "base-images") {
        Verdict::Error(why) => assert!(why.join(" ").contains("does not fetch from registries"), "{why:?}"),
        other => panic!("without metadata the policy cannot be judged: {other:?}"),
    }
    vaps.objects().set_images(&[
        json!({"image": "ghcr.io/acme/app:1", "manifest": {"annotations": {"base": "distroless"}}}),
        json!({"image": "nginx", "manifest": {"annotations": {"base": "debian"}}}),
    ]);
    assert!(matches!(verdict(&vaps, &good, "base-images"), Verdict::Pass));
    assert!(matches!(verdict(&vaps, &pod("b", "team", "nginx"), "base-images"), Verdict::Fail(_)));
}

#[test]
fn image_references_parse_as_a_container_runtime_reads_them() {
    let cases = [
        ("image('nginx').registry()", json!("docker.io")),
        ("image('nginx').repository()", json!("library/nginx")),
        ("image('nginx').tag()", json!("latest")),
        ("image('nginx').identifier()", json!("latest")),
        ("image('nginx').containsDigest()", json!(false)),
        ("image('localhost:5000/team/app:1.0').registry()", json!("localhost:5000")),
        ("image('localhost:5000/team/app:1.0').tag()", json!("1.0")),
        (
            "image('ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef').identifier()",
            json!("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ),
        ("isImage('ghcr.io/a/b:1')", json!(true)),
        ("isImage('Not An Image')", json!(false)),
        ("parseServiceAccount('system:serviceaccount:team:deployer').Namespace", json!("team")),
        ("parseServiceAccount('system:serviceaccount:team:deployer').Name", json!("deployer")),
        ("parseServiceAccount('alice').Name", json!("")),
        ("time.now() > timestamp('2024-01-01T00:00:00Z')", json!(true)),
    ];
    for (expression, expected) in cases {
        let policy = validating_policy("p", json!([]), &format!("({expression}) == {expected}"));
        let vaps = load(&[policy], &[]);
        assert!(matches!(verdict(&vaps, &pod("a", "team", "nginx"), "p"), Verdict::Pass), "{expression}");
    }
    let policy = validating_policy("bad", json!([]), "image('Not An Image').registry() == ''");
    match verdict(&load(&[policy], &[]), &pod("a", "team", "nginx"), "bad") {
        Verdict::Error(why) => assert!(why.join(" ").contains("is not an image reference"), "{why:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn library_functions_paved_does_not_run_are_load_errors_naming_them() {
    for (expression, named) in [
        ("http.Get('https://example.com').ok == true", "http.Get"),
        ("resource.Post('v1', 'configmaps', {}).x == 1", "resource.Post"),
        ("globalContext.Get('entry', '') != null", "globalContext.Get"),
        ("resource.Get(object.apiVersion, 'configmaps', 'a', 'b') != null", "literal strings"),
    ] {
        let (_, errors) = Vaps::from_docs(&[validating_policy("p", json!([]), expression)], &[]);
        let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        assert!(text.contains(named), "{expression}: {text}");
        assert!(text.contains("spec.validations[0].expression"), "the error names the field: {text}");
    }
    // CEL's own member functions on a variable that happens to be called `image`.
    let own =
        validating_policy("p", json!([]), "object.spec.containers.map(c, c.image).all(image, image.startsWith('n'))");
    assert!(Vaps::from_docs(&[own], &[]).1.is_empty());
}

#[test]
fn a_validating_admission_policy_has_no_kyverno_functions() {
    let vap = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "plain"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["pods"]}]},
                 "validations": [{"expression": "parseServiceAccount(request.userInfo.username).Name == ''"}]}});
    let binding = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "plain"}, "spec": {"policyName": "plain", "validationActions": ["Deny"]}});
    let vaps = load(&[vap, binding], &[]);
    let verdicts = vaps.verdicts(&pod("a", "team", "nginx"));
    let (_, verdict) = verdicts.iter().find(|(p, _)| p == "vap/plain/plain").expect("judged");
    assert!(matches!(verdict, Verdict::Error(_)), "the API server has no parseServiceAccount: {verdict:?}");
}

/// Kyverno PolicyExceptions that live in the cluster (a server's synced
/// objects, or `--inventory`) lift failures as those of the policy files do;
/// the grants webhook is what keeps anybody outside the exception authority
/// from creating one.
#[test]
fn policy_exceptions_from_the_cluster_lift_failures() {
    let policy =
        validating_policy("no-latest", json!([]), "object.spec.containers.all(c, !c.image.endsWith(':latest'))");
    let vaps = load(&[policy], &[]);
    assert!(vaps.objects().kinds().contains(&("kyverno.io/v2".to_owned(), "PolicyException".to_owned())));
    let latest = pod("a", "team", "nginx:latest");
    assert!(matches!(verdict(&vaps, &latest, "no-latest"), Verdict::Fail(_)));
    let exception = json!({"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
        "metadata": {"name": "team-latest", "namespace": "team"},
        "spec": {"policyRefs": [{"name": "no-latest", "kind": "ValidatingPolicy"}],
                 "matchConditions": [{"name": "team", "expression": "object.metadata.namespace == 'team'"}]}});
    vaps.objects().set(&[exception]);
    match verdict(&vaps, &latest, "no-latest") {
        Verdict::Excepted(name, _) => assert_eq!(name, "team/team-latest"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(verdict(&vaps, &pod("b", "other", "nginx:latest"), "no-latest"), Verdict::Fail(_)));
    // Deleted from the cluster: the failure is back.
    vaps.objects().set(&[]);
    assert!(matches!(verdict(&vaps, &latest, "no-latest"), Verdict::Fail(_)));
}
