//! `cargo run --release -p paved-cluster --features fixture --example fixture-apiserver -- OBJECTS KUBECONFIG_OUT`
//!
//! Serves a generated cluster of OBJECTS objects on 127.0.0.1 (plain HTTP)
//! and writes a kubeconfig for it, for bench/audit.sh.

use std::sync::Arc;

use paved_cluster::fixture::FixtureCluster;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let objects: usize = args.next().ok_or("usage: fixture-apiserver OBJECTS KUBECONFIG_OUT")?.parse()?;
    let kubeconfig = args.next().ok_or("usage: fixture-apiserver OBJECTS KUBECONFIG_OUT")?;
    let fixture = Arc::new(FixtureCluster::generated(objects));
    let served: usize = fixture.objects.values().map(Vec::len).sum();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fixture\nclusters:\n- name: fixture\n  cluster: {{server: \"http://{addr}\"}}\nusers:\n- name: fixture\n  user: {{token: fixture}}\ncontexts:\n- name: fixture\n  context: {{cluster: fixture, user: fixture}}\n"
        ),
    )?;
    eprintln!("fixture API server on http://{addr} with {served} objects; kubeconfig {kubeconfig}");
    fixture.serve(listener).await;
    Ok(())
}
