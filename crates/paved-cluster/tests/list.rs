//! Discovery and paginated lists over HTTP against the fixture API server,
//! reached through a kubeconfig exactly as `paved audit` reaches a cluster.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use paved_cluster::connect::{InCluster, Target, resolve_from};
use paved_cluster::fixture::FixtureCluster;
use paved_cluster::kubeconfig::Sources;
use paved_cluster::list::{Resource, discover, list_all};
use paved_core::node::Node;
use serde_json::json;

/// Serves `fixture` on a loopback port.
async fn serve(fixture: FixtureCluster) -> (Arc<FixtureCluster>, std::net::SocketAddr) {
    let fixture = Arc::new(fixture);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Arc::clone(&fixture).serve(listener));
    (fixture, addr)
}

async fn start(fixture: FixtureCluster, dir: &Path) -> (Arc<FixtureCluster>, kube::Client) {
    let (fixture, addr) = serve(fixture).await;
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "current-context: other\nclusters:\n- name: fx\n  cluster: {{server: \"http://{addr}\"}}\n- name: nowhere\n  cluster: {{server: \"http://127.0.0.1:1\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: fx\n  context: {{cluster: fx, user: u, namespace: team-a}}\n- name: other\n  context: {{cluster: nowhere, user: u}}\n"
        ),
    )
    .unwrap();
    let target = Target { kubeconfig: None, context: Some("fx".into()), namespace: None };
    let sources = Sources { explicit: Some(path), env: None, home: None };
    let resolved = resolve_from(&target, &sources, None).await.unwrap();
    assert_eq!(resolved.source, "context fx");
    assert_eq!(resolved.config.default_namespace, "team-a", "the context's namespace");
    (fixture, kube::Client::try_from(resolved.config).unwrap())
}

fn pods(n: usize) -> FixtureCluster {
    let mut f = FixtureCluster::default();
    for i in 0..n {
        f.add(
            "/api/v1/pods",
            json!({"metadata": {"name": format!("p{i}"), "namespace": "a"}, "spec": {"containers": []}}),
        );
    }
    f
}

fn resource(plural: &str, kind: &str) -> Resource {
    Resource {
        group: String::new(),
        version: "v1".into(),
        plural: plural.into(),
        kind: kind.into(),
        namespaced: true,
        namespace: None,
    }
}

#[tokio::test]
async fn discovery_lists_kinds_in_preferred_versions_and_reports_failed_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (_, client) = start(FixtureCluster::default(), dir.path()).await;
    let found = discover(&client).await.unwrap();
    let names: Vec<String> = found.resources.iter().map(Resource::display).collect();
    for expected in
        ["pods", "namespaces", "configmaps", "deployments.apps", "cronjobs.batch", "ingresses.networking.k8s.io"]
    {
        assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
    }
    for never in ["pods/log", "bindings", "events", "secrets", "endpoints", "leases.coordination.k8s.io"] {
        assert!(!names.contains(&never.to_owned()), "{never} should not be listed: {names:?}");
    }
    let deployments = found.resources.iter().find(|r| r.plural == "deployments").unwrap();
    assert_eq!(deployments.list_path(), "/apis/apps/v1/deployments");
    assert_eq!(deployments.kind, "Deployment");
    assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
    assert!(found.problems[0].contains("metrics.k8s.io/v1beta1"), "{:?}", found.problems);
}

#[tokio::test]
async fn lists_page_by_page_and_fills_in_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (fixture, client) = start(pods(23), dir.path()).await;
    let mut names = Vec::new();
    let listed = list_all(&client, &resource("pods", "Pod"), 5, |obj: &Node| {
        assert_eq!(obj.get("kind").and_then(Node::as_str), Some("Pod"));
        assert_eq!(obj.get("apiVersion").and_then(Node::as_str), Some("v1"));
        names.push(obj.at(&["metadata", "name"]).and_then(Node::as_str).unwrap().to_owned());
    })
    .await
    .unwrap();
    assert_eq!(listed.objects, 23);
    assert_eq!(listed.pages, 5);
    assert!(!listed.inconsistent);
    assert_eq!(names, (0..23).map(|i| format!("p{i}")).collect::<Vec<_>>(), "every object once, in order");
    let queries: Vec<String> = fixture.requests().iter().map(|s| s.path_and_query.clone()).collect();
    let params = |q: &str| -> Vec<String> {
        let (path, query) = q.split_once('?').unwrap();
        assert_eq!(path, "/api/v1/pods");
        let mut ps: Vec<String> = query.split('&').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        ps.sort();
        ps
    };
    assert_eq!(params(&queries[0]), ["limit=5"]);
    assert_eq!(params(&queries[1]), ["continue=p5", "limit=5"]);
    assert_eq!(queries.len(), 5);
}

#[tokio::test]
async fn an_expired_continue_token_continues_with_the_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = pods(12);
    fixture.expire_from_page.insert("/api/v1/pods".into(), 1);
    let (fixture, client) = start(fixture, dir.path()).await;
    let mut count = 0;
    let listed = list_all(&client, &resource("pods", "Pod"), 4, |_| count += 1).await.unwrap();
    assert_eq!((listed.objects, count), (12, 12), "no object lost or counted twice");
    assert!(listed.inconsistent, "the result is marked as not one snapshot");
    let gone = fixture.requests().iter().filter(|s| s.path_and_query.contains("continue=e")).count();
    assert_eq!(gone, 1, "one request met 410 Gone");
}

#[tokio::test]
async fn forbidden_kinds_are_errors_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = pods(3);
    fixture.forbidden.insert("/api/v1/pods".into());
    let (_, client) = start(fixture, dir.path()).await;
    let err = list_all(&client, &resource("pods", "Pod"), 10, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), Some(403));
    assert!(err.to_string().contains("forbidden"), "{err}");
}

#[tokio::test]
async fn namespace_flag_overrides_and_unknown_context_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u, namespace: x}\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:6443\"}\nusers:\n- name: u\n  user: {}\n").unwrap();
    let sources = Sources { explicit: Some(path), env: None, home: None };
    let target = Target { namespace: Some("y".into()), ..Target::default() };
    let resolved = resolve_from(&target, &sources, None).await.unwrap();
    assert_eq!(resolved.config.default_namespace, "y");
    assert_eq!(resolved.config.cluster_url.to_string(), "https://127.0.0.1:6443/");

    let target = Target { context: Some("nope".into()), ..Target::default() };
    let err = resolve_from(&target, &sources, None).await.unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");

    // Nothing configured and not in a pod: a clear error, not a guess.
    let empty = Sources { explicit: None, env: None, home: Some(dir.path().join("no-home")) };
    let err = resolve_from(&Target::default(), &empty, None).await.unwrap_err();
    assert!(err.to_string().contains("no cluster to talk to"), "{err}");
}

/// Lists pods through a kubeconfig whose user is `user_yaml`; returns the Authorization header the server saw.
async fn authorization_with(user_yaml: &str, dir: &Path) -> Option<String> {
    let (fixture, addr) = serve(pods(1)).await;
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!("current-context: c\nclusters:\n- name: c\n  cluster: {{server: \"http://{addr}\"}}\nusers:\n- name: u\n  user:\n{user_yaml}contexts:\n- name: c\n  context: {{cluster: c, user: u}}\n"),
    )
    .unwrap();
    let sources = Sources { explicit: Some(path), env: None, home: None };
    let resolved = resolve_from(&Target::default(), &sources, None).await.unwrap();
    let client = kube::Client::try_from(resolved.config).unwrap();
    list_all(&client, &resource("pods", "Pod"), 10, |_| {}).await.unwrap();
    fixture.requests().last().and_then(|s| s.authorization.clone())
}

#[tokio::test]
async fn token_files_resolve_against_the_kubeconfig_and_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/token"), "from-the-file\n").unwrap();
    let auth = authorization_with("    tokenFile: secrets/token\n", dir.path()).await;
    assert_eq!(auth.as_deref(), Some("Bearer from-the-file"));
}

#[cfg(unix)]
#[tokio::test]
async fn exec_plugins_run_relative_to_the_kubeconfig() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    let plugin = dir.path().join("bin/auth");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"from-exec-'$1'\"}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/auth\n      args: [plugin]\n      interactiveMode: Never\n";
    let auth = authorization_with(user, dir.path()).await;
    assert_eq!(auth.as_deref(), Some("Bearer from-exec-plugin"));
}

#[tokio::test]
async fn in_a_pod_without_kubeconfig_the_service_account_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let account = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    std::fs::write(account.join("ca.crt"), "unused by this test").unwrap();
    std::fs::write(account.join("token"), "sa-token").unwrap();
    std::fs::write(account.join("namespace"), "paved-system\n").unwrap();
    let no_files = Sources { explicit: None, env: None, home: Some(dir.path().join("no-home")) };
    let pod = |pod_namespace: Option<&str>| InCluster {
        host: "10.96.0.1".into(),
        port: "443".into(),
        account_dir: account.clone(),
        pod_namespace: pod_namespace.map(str::to_owned),
    };
    let resolved = resolve_from(&Target::default(), &no_files, Some(pod(None))).await.unwrap();
    assert_eq!(resolved.source, "in-cluster service account");
    assert_eq!(resolved.config.cluster_url.to_string(), "https://10.96.0.1:443/");
    assert_eq!(resolved.config.default_namespace, "paved-system", "the account's namespace");
    assert_eq!(resolved.config.root_cert_file.as_deref(), Some(account.join("ca.crt").as_path()));
    assert_eq!(resolved.config.auth_info.token_file, Some(account.join("token").to_string_lossy().into_owned()));
    // POD_NAMESPACE wins over the account's file, and --namespace over both.
    let resolved = resolve_from(&Target::default(), &no_files, Some(pod(Some("from-env")))).await.unwrap();
    assert_eq!(resolved.config.default_namespace, "from-env");
    let flag = Target { namespace: Some("flag".into()), ..Target::default() };
    assert_eq!(
        resolve_from(&flag, &no_files, Some(pod(Some("from-env")))).await.unwrap().config.default_namespace,
        "flag"
    );
    // A kubeconfig that names a cluster wins over the pod, as in client-go.
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:6443\"}\nusers:\n- name: u\n  user: {}\n").unwrap();
    let with_file = Sources { explicit: Some(kubeconfig), env: None, home: None };
    assert_eq!(resolve_from(&Target::default(), &with_file, Some(pod(None))).await.unwrap().source, "context a");
    // No token mounted: a clear error.
    std::fs::remove_file(account.join("token")).unwrap();
    let err = resolve_from(&Target::default(), &no_files, Some(pod(None))).await.unwrap_err();
    assert!(err.to_string().contains("token is missing"), "{err}");
}
