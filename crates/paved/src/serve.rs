//! `paved serve`: options from flags, logs, a runtime, then paved-server.

use std::path::PathBuf;

use paved_server::{Options, Server};

use crate::cli::{Global, LogFormat, ServeArgs};

pub fn run(args: &ServeArgs, global: &Global, config: Option<PathBuf>) -> miette::Result<u8> {
    // Flushes the log writer's buffer on the way out.
    let _logs = init_logs(args.log_format, global.verbose);
    let mut options = Options::new(args.tls_cert.clone(), args.tls_key.clone());
    options.listen = args.listen;
    options.config = config;
    options.profile = global.profile.clone();
    options.namespace = args.own_namespace.clone();
    options.max_in_flight = args.max_in_flight.max(1);
    options.floor_endpoint = args.floor_endpoint;
    // Policies and inventory as `check` takes them. A path that is not there
    // stops the start: a webhook silently without its policies would admit
    // what they were meant to refuse.
    if let Some(missing) = global.policies.iter().find(|p| !p.exists()) {
        return Err(miette::miette!(code = "paved::serve", "{}: no such file or directory", missing.display()));
    }
    options.policies = global.policies.clone();
    options.engine = global.engine.map(Into::into);
    options.inventory = std::sync::Arc::new(crate::read_inventory(&global.inventory)?);
    // Images are analysed in the background unless --offline; then only
    // what other replicas share through the cluster is known.
    let registry = if global.offline {
        None
    } else {
        let platform = crate::image_store::platform(global)?;
        // Unreadable logins must not keep the webhook from starting: images
        // are then pulled anonymously, and private ones fail with a warning.
        let credentials = crate::image_store::credentials(global).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "registry logins not read; images are pulled anonymously");
            paved_image::auth::Credentials::default()
        });
        let options = crate::image_store::registry_options(global, platform, credentials)?;
        Some(paved_image::registry::Registry::new(options))
    };
    let image_options = paved_server::images::ImageOptions {
        workers: args.image_workers.max(1),
        queue: args.image_queue.max(1),
        ..paved_server::images::ImageOptions::default()
    };
    let mut analyses = paved_server::images::Analyses::new(image_options, registry.is_some());
    // Images this replica analyses are matched against the advisories, when
    // an index is there (`--advisories`, or beside the image cache).
    if let Some(index) = crate::image_store::advisories(global)? {
        tracing::info!(records = index.header().records, newest = %index.header().newest, "advisories read");
        let index = std::sync::Arc::new(index);
        analyses = analyses.with_matcher(std::sync::Arc::new(move |report| crate::vulns::known(&index, report)));
    }
    let analyses = std::sync::Arc::new(analyses);
    options.images = Some(std::sync::Arc::clone(&analyses));
    let no_cluster = args.no_cluster;
    let target = args.connect.target(None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let server = Server::bind(options).await.map_err(|e| miette::miette!(code = "paved::serve", "{e}"))?;
        if no_cluster {
            // Without a cluster there are no caches to wait for.
            server.shared.synced.store(true, std::sync::atomic::Ordering::Release);
            analyses.spawn(registry, None);
        } else {
            // The client kubectl would use (in a pod, the service account),
            // with reads that may idle as long as a watch does.
            let (client, source) = paved_cluster::connect::watching_client(&target).await.map_err(|e| {
                miette::miette!(
                    code = "paved::serve",
                    help = "in a pod, paved uses its service account; elsewhere, a kubeconfig. --no-cluster runs without one",
                    "cannot reach the Kubernetes API: {e}"
                )
            })?;
            tracing::info!(%source, "watching the cluster");
            let _ = server.shared.client.set(client.clone());
            paved_server::watch::spawn(client.clone(), &server.shared);
            analyses.spawn(registry, Some(client));
        }
        if let Some(addr) = server.local_addr() {
            tracing::info!(%addr, "serving admission reviews");
        }
        server.run(paved_server::termination()).await;
        tracing::info!("stopped");
        Ok(0)
    })
}

/// Logs go through a background writer that drops lines rather than block
/// when stderr cannot keep up: a burst of denials must not slow admission.
fn init_logs(format: LogFormat, verbose: u8) -> tracing_appender::non_blocking::WorkerGuard {
    let level = match verbose {
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(16 * 1024)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_max_level(level).with_writer(writer).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}
