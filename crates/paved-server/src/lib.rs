//! `paved serve`: the admission webhook.
//!
//! The HTTP and TLS plumbing, reloads and metrics around
//! [`paved_admission::Admission`], which makes every decision. Built to never
//! lock a cluster out: bounded bodies, a deadline on every request, load shed
//! at once with 503 rather than queued, and a drain on SIGTERM.

pub mod certs;
pub mod http;
pub mod images;
pub mod metrics;
pub mod reload;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use paved_admission::Admission;
use paved_admission::cluster::ClusterState;
use paved_core::config::Config;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use metrics::Metrics;

/// Namespaces the webhook never judges, beside its own.
pub const ALWAYS_EXCLUDED: [&str; 2] = ["kube-system", "kube-node-lease"];

/// How `paved serve` runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The configuration file; `None` runs the embedded defaults.
    pub config: Option<PathBuf>,
    /// `--profile`: the cluster default, over the configuration's.
    pub profile: Option<String>,
    /// paved's own namespace (never judged).
    pub namespace: String,
    /// Largest request body accepted; the API server's objects are at most
    /// about 3 MiB, and a review of an UPDATE carries two of them.
    pub max_body_bytes: usize,
    /// Every request is answered within this, well inside the webhook's timeoutSeconds.
    pub deadline: Duration,
    /// Reviews in progress at once; beyond, 503 at once.
    pub max_in_flight: usize,
    /// How often mounted files (configuration, certificate) are checked for changes.
    pub reload_every: Duration,
    /// How long SIGTERM waits for requests in progress.
    pub drain: Duration,
    /// Serve `/allow`, an always-allow endpoint that is the benchmark's floor.
    pub floor_endpoint: bool,
    /// What images carry, for the supply-chain content rules; `None`:
    /// those rules find nothing.
    pub images: Option<Arc<images::Analyses>>,
}

impl Options {
    pub fn new(tls_cert: PathBuf, tls_key: PathBuf) -> Options {
        Options {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert,
            tls_key,
            config: None,
            profile: None,
            namespace: "paved-system".into(),
            max_body_bytes: 8 << 20,
            deadline: Duration::from_millis(2500),
            max_in_flight: 512,
            reload_every: Duration::from_secs(2),
            drain: Duration::from_secs(20),
            floor_endpoint: false,
            images: None,
        }
    }

    pub fn excluded_namespaces(&self) -> Vec<String> {
        std::iter::once(self.namespace.clone()).chain(ALWAYS_EXCLUDED.map(str::to_owned)).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("configuration {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Everything the request handlers share.
pub struct Shared {
    pub admission: ArcSwap<Admission>,
    pub cluster: RwLock<ClusterState>,
    pub metrics: Metrics,
    pub certs: Arc<tls::CertStore>,
    /// Whether the cluster caches have synced (always, with `--no-cluster`).
    pub synced: AtomicBool,
    pub draining: AtomicBool,
    pub slots: Arc<Semaphore>,
    pub options: Options,
    /// Bumped on every configuration reload; lock watches relist on it.
    pub reloads: tokio::sync::watch::Sender<u64>,
    /// What the inventory watch keeps current for the loaded policies.
    pub inventory: RwLock<InventoryPlan>,
}

/// The kinds the loaded policies read (Gatekeeper's `data.inventory`, VAPs'
/// params and Namespaces), and where the inventory watch puts them.
#[derive(Clone, Debug, Default)]
pub struct InventoryPlan {
    pub kinds: Vec<paved_gatekeeper::template::SyncKind>,
    pub inventory: paved_gatekeeper::policies::InventoryHandle,
}

impl Shared {
    /// State for a server (or a test) with a compiled configuration and no certificate yet.
    pub fn new(options: Options, admission: Admission) -> Shared {
        Shared {
            admission: ArcSwap::from_pointee(admission),
            cluster: RwLock::new(ClusterState::default()),
            metrics: {
                let mut metrics = Metrics::default();
                if let Some(images) = &options.images {
                    metrics.register_images(images.counts.clone());
                }
                metrics
            },
            certs: Arc::new(tls::CertStore::default()),
            synced: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            slots: Arc::new(Semaphore::new(options.max_in_flight)),
            reloads: tokio::sync::watch::Sender::new(0),
            inventory: RwLock::new(InventoryPlan::default()),
            options,
        }
    }

    pub fn ready(&self) -> bool {
        self.synced.load(Ordering::Acquire) && self.certs.is_loaded() && !self.draining.load(Ordering::Acquire)
    }
}

/// Compiles the configuration for admission, with the policies its
/// `policy-paths` name (relative to the configuration file). A policy that
/// does not load is logged and left out; the others still judge.
pub fn compile(config: Config, options: &Options) -> Result<Admission, String> {
    compile_with_inventory(config, options, None).map(|(admission, _)| admission)
}

/// [`compile`], and the inventory plan of the policies. The new policies
/// start from the `previous` inventory, so that a reload does not leave them
/// blind until the watches have listed again.
pub fn compile_with_inventory(
    config: Config,
    options: &Options,
    previous: Option<&InventoryPlan>,
) -> Result<(Admission, InventoryPlan), String> {
    let base = options.config.as_deref().and_then(std::path::Path::parent).unwrap_or(std::path::Path::new("."));
    let (policies, problems) =
        paved_gatekeeper::policies::from_config(&config.policy_paths, base, &[], config.policy_engine.into());
    for p in &problems {
        tracing::warn!(policy = %p.file.display(), error = %p.message, "policy left out");
    }
    let plan = InventoryPlan { kinds: policies.synced_kinds(), inventory: policies.inventory() };
    if let Some(previous) = previous {
        plan.inventory.set(previous.inventory.get());
    }
    let admission = Admission::with_foreign(
        config,
        options.profile.as_deref(),
        options.excluded_namespaces(),
        policies.into_foreign(),
    )
    .map_err(|e| e.to_string())?;
    let admission = match &options.images {
        Some(images) => admission.with_images(Arc::clone(images) as Arc<dyn paved_core::image::ImageFacts>),
        None => admission,
    };
    Ok((admission, plan))
}

/// A server bound to its port, not yet serving.
pub struct Server {
    pub shared: Arc<Shared>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
}

impl Server {
    /// Loads the configuration and certificate and binds the port. A bad
    /// configuration or certificate at start is an error; later, it is logged
    /// and the old one kept.
    pub async fn bind(options: Options) -> Result<Server, ServeError> {
        let config = match &options.config {
            Some(path) => {
                reload::read_config(path).map_err(|message| ServeError::Config { path: path.clone(), message })?
            }
            None => Config::default(),
        };
        let (admission, plan) = compile_with_inventory(config, &options, None).map_err(|message| {
            ServeError::Config { path: options.config.clone().unwrap_or_else(|| "(embedded defaults)".into()), message }
        })?;
        let key = reload::read_cert(&options.tls_cert, &options.tls_key)?;
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Listen { addr: options.listen, source })?;
        let mut shared = Shared::new(options, admission);
        shared.certs.set(key);
        let tls = Arc::new(tls::server_config(Arc::clone(&shared.certs))?);
        if let Ok(inventory) = shared.inventory.get_mut() {
            *inventory = plan;
        }
        Ok(Server { shared: Arc::new(shared), listener, tls })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then stops accepting, drains the
    /// requests in progress (up to `options.drain`) and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Server { shared, listener, tls } = self;
        let reloader = tokio::spawn(reload::watch_files(Arc::clone(&shared)));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let router = http::router(Arc::clone(&shared));
        let graceful = GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors, say: wait rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let handshake_deadline = shared.options.deadline;
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(handshake_deadline, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                };
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        shared.draining.store(true, Ordering::Release);
        tracing::info!("draining requests in progress");
        drop(listener);
        if tokio::time::timeout(shared.options.drain, graceful.shutdown()).await.is_err() {
            tracing::warn!(after = ?shared.options.drain, "drain timed out; closing the remaining connections");
        }
        reloader.abort();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
