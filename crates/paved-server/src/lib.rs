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

/// The largest review the API server sends: two objects at its 3 MiB limit,
/// each escaped six-fold in the worst case, and the envelope.
pub const MAX_REVIEW_BYTES: usize = 2 * 3 * 6 * (1 << 20) + (1 << 20);

pub use paved_admission::trust::ALWAYS_EXCLUDED;

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
    /// Largest review judged; a larger one is refused. The API server takes
    /// objects of up to 3 MiB, a review of an UPDATE carries two, and JSON
    /// escapes `<`, `>` and `&` in six bytes each: 2 x 3 MiB x 6, and room
    /// for the envelope.
    pub max_body_bytes: usize,
    /// Bytes of request bodies held at once, over every review in progress;
    /// beyond, a review is refused (a flood of large reviews must not run
    /// paved out of memory).
    pub body_budget_bytes: usize,
    /// Reviews judged at once, each on a blocking thread; others wait for
    /// one until the deadline.
    pub max_evaluations: usize,
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
    /// `--policy`: policy files and directories besides the configuration's
    /// `policy-paths`.
    pub policies: Vec<PathBuf>,
    /// `--engine`: the code a Gatekeeper template with both runs, over the
    /// configuration's `policy-engine`.
    pub engine: Option<paved_gatekeeper::template::Engine>,
    /// `--inventory`: objects the policies read beside the cluster's
    /// (Gatekeeper's `data.inventory`, VAP params and Namespaces).
    pub inventory: Arc<Vec<serde_json::Value>>,
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
            max_body_bytes: MAX_REVIEW_BYTES,
            // Within the installed memory limit (512Mi), with room for the trees
            // the bodies parse into and for the caches.
            body_budget_bytes: 128 << 20,
            max_evaluations: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            deadline: Duration::from_millis(2500),
            max_in_flight: 512,
            reload_every: Duration::from_secs(2),
            drain: Duration::from_secs(20),
            floor_endpoint: false,
            images: None,
            policies: Vec::new(),
            engine: None,
            inventory: Arc::new(Vec::new()),
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
    /// The memory budget for request bodies, in KiB.
    pub body_budget: Arc<Semaphore>,
    /// Evaluations at once.
    pub evaluations: Arc<Semaphore>,
    pub options: Options,
    /// Bumped on every configuration reload; lock watches relist on it.
    pub reloads: tokio::sync::watch::Sender<u64>,
    /// What the inventory watch keeps current for the loaded policies.
    pub inventory: RwLock<InventoryPlan>,
    /// The cluster, when there is one: to list a Namespace's workloads when
    /// its labels choose a stricter profile.
    pub client: std::sync::OnceLock<kube::Client>,
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
            body_budget: Arc::new(Semaphore::new((options.body_budget_bytes / 1024).max(1))),
            evaluations: Arc::new(Semaphore::new(options.max_evaluations.max(1))),
            reloads: tokio::sync::watch::Sender::new(0),
            inventory: RwLock::new(InventoryPlan::default()),
            client: std::sync::OnceLock::new(),
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
    let engine = options.engine.unwrap_or(config.policy_engine.into());
    let (policies, problems) =
        paved_gatekeeper::policies::from_config(&config.policy_paths, base, &options.policies, engine);
    for p in &problems {
        tracing::warn!(policy = %p.file.display(), error = %p.message, "policy left out");
    }
    // Never Secrets: their lists would hold every Secret of the cluster in
    // paved's memory (`paved install` refuses such policies; `--inventory`
    // may still give a few).
    let (secrets, kinds): (Vec<_>, Vec<_>) =
        policies.synced_kinds().into_iter().partition(paved_gatekeeper::template::SyncKind::is_secret);
    if !secrets.is_empty() {
        tracing::warn!("a policy reads Secrets; paved never lists them, so it sees only those of --inventory");
    }
    let plan = InventoryPlan { kinds, inventory: policies.inventory() };
    match previous {
        Some(previous) => plan.inventory.set(previous.inventory.get()),
        // Until the watches have listed, the policies read the `--inventory` objects.
        None if !options.inventory.is_empty() => {
            plan.inventory.set(Arc::new(paved_gatekeeper::suite::Inventory::new(options.inventory.to_vec())));
        }
        None => {}
    }
    let admission = Admission::with_foreign(
        config,
        options.profile.as_deref(),
        options.excluded_namespaces(),
        policies.into_foreign(),
    )
    .map_err(|e| e.to_string())?
    .with_identity(format!(
        "system:serviceaccount:{}:{}",
        options.namespace,
        paved_admission::locks::SERVICE_ACCOUNT
    ));
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
