//! A client for the cluster kubectl would talk to: the merged kubeconfig
//! (see [`crate::kubeconfig`]), or the pod's service account when there is no
//! kubeconfig and paved runs in a pod, with `--context` and `--namespace` on top.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::KubeConfigOptions;

use crate::kubeconfig::{self, KubeconfigError, Sources};

/// What the user chose on the command line.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("no cluster to talk to: no kubeconfig ({0}) and not running in a pod")]
    NoConfiguration(String),
    #[error("context {0:?} is not in the kubeconfig")]
    NoContext(String),
    #[error("kubeconfig: {0}")]
    Invalid(String),
    #[error("in-cluster configuration: {0}")]
    InCluster(String),
    #[error("cannot build a client: {0}")]
    Client(String),
}

/// The client configuration, and where it came from (for messages).
#[derive(Debug)]
pub struct Resolved {
    pub config: kube::Config,
    /// `context NAME` or `in-cluster service account`.
    pub source: String,
}

/// What a pod knows about its cluster: the service's address from the
/// environment and the service account's mounted files.
#[derive(Clone, Debug)]
pub struct InCluster {
    pub host: String,
    pub port: String,
    /// Holds `token`, `ca.crt` and `namespace`.
    pub account_dir: PathBuf,
    /// `POD_NAMESPACE`, which client-go prefers to the account's namespace.
    pub pod_namespace: Option<String>,
}

pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

impl InCluster {
    /// From `KUBERNETES_SERVICE_HOST`/`_PORT`; `None` outside a pod.
    pub fn from_env() -> Option<InCluster> {
        let var = |k| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(InCluster {
            host: var("KUBERNETES_SERVICE_HOST")?,
            port: var("KUBERNETES_SERVICE_PORT")?,
            account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
            pod_namespace: var("POD_NAMESPACE"),
        })
    }

    fn config(&self) -> Result<kube::Config, ConnectError> {
        let err = |m: String| ConnectError::InCluster(m);
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let url = format!("https://{host}:{}", self.port).parse().map_err(|e| err(format!("{host}: {e}")))?;
        let mut config = kube::Config::new(url);
        let (ca, token) = (self.account_dir.join("ca.crt"), self.account_dir.join("token"));
        for file in [&ca, &token] {
            if !file.is_file() {
                return Err(err(format!("{} is missing: is a service account token mounted?", file.display())));
            }
        }
        config.root_cert_file = Some(ca);
        config.auth_info.token_file = Some(token.to_string_lossy().into_owned());
        let account_namespace = std::fs::read_to_string(self.account_dir.join("namespace"))
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        config.default_namespace =
            self.pod_namespace.clone().or(account_namespace).unwrap_or_else(|| "default".to_owned());
        Ok(config)
    }
}

/// Builds the client configuration kubectl would use for `target`.
pub async fn resolve(target: &Target) -> Result<Resolved, ConnectError> {
    resolve_from(target, &Sources::from_env(target.kubeconfig.clone()), InCluster::from_env()).await
}

/// A read that takes longer than this has stalled: an audit reports it rather than hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// [`resolve`] with the sources and the in-cluster test given, for tests.
pub async fn resolve_from(
    target: &Target,
    sources: &Sources,
    in_cluster: Option<InCluster>,
) -> Result<Resolved, ConnectError> {
    let mut resolved = resolve_config(target, sources, in_cluster).await?;
    // kube-rs retries 429/503 up to 15 times with backoff up to 1000 s, which
    // would stall an audit on one unavailable aggregated API for minutes;
    // paved's lists retry twice themselves (see `list`).
    resolved.config.default_retry = false;
    resolved.config.read_timeout = Some(READ_TIMEOUT);
    Ok(resolved)
}

async fn resolve_config(
    target: &Target,
    sources: &Sources,
    in_cluster: Option<InCluster>,
) -> Result<Resolved, ConnectError> {
    let (merged, files) = kubeconfig::load(sources)?;
    // client-go falls back to the service account only when the kubeconfig
    // says nothing (no clusters, no context) and no context was asked for.
    let says_nothing = merged.clusters.is_none() && merged.current_context.is_empty() && target.context.is_none();
    if says_nothing {
        let Some(in_cluster) = in_cluster else {
            let looked = match sources.files().0.as_slice() {
                [] => "no KUBECONFIG and no home directory".to_owned(),
                list => {
                    format!("looked in {}", list.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
                }
            };
            return Err(ConnectError::NoConfiguration(looked));
        };
        let mut config = in_cluster.config()?;
        if let Some(ns) = &target.namespace {
            config.default_namespace = ns.clone();
        }
        return Ok(Resolved { config, source: "in-cluster service account".to_owned() });
    }
    let context = target.context.clone().unwrap_or_else(|| merged.current_context.clone());
    if context.is_empty() {
        return Err(ConnectError::Invalid(format!(
            "no current-context in {} and no --context",
            files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    if merged.context(&context).is_none() {
        return Err(ConnectError::NoContext(context));
    }
    // kube-rs builds the client (TLS, exec plugins, token files) from the
    // merged, path-resolved configuration: its types share kubectl's field names.
    let mut resolved = merged.resolved();
    read_token_file(&mut resolved, &context)?;
    let value = serde_json::to_value(resolved).map_err(|e| ConnectError::Invalid(e.to_string()))?;
    let kube_config: kube::config::Kubeconfig =
        serde_json::from_value(value).map_err(|e| ConnectError::Invalid(e.to_string()))?;
    let options = KubeConfigOptions { context: Some(context.clone()), cluster: None, user: None };
    let mut config = kube::Config::from_custom_kubeconfig(kube_config, &options)
        .await
        .map_err(|e| ConnectError::Invalid(format!("context {context:?}: {e}")))?;
    if let Some(ns) = &target.namespace {
        config.default_namespace = ns.clone();
    }
    Ok(Resolved { config, source: format!("context {context}") })
}

/// client-go reads a `tokenFile` and trims surrounding whitespace (files
/// written with `echo` end in a newline); kube-rs sends the bytes as they are,
/// which no HTTP header accepts. So the token is read here, as client-go does,
/// and a `token` written beside it wins, as in client-go.
fn read_token_file(config: &mut kubeconfig::Kubeconfig, context: &str) -> Result<(), ConnectError> {
    let Some(user_name) = config.context(context).map(|c| c.user.clone()) else { return Ok(()) };
    for user in config.users.iter_mut().flatten().filter(|u| u.name == user_name) {
        let user = &mut user.item;
        if user.token.is_empty() && !user.token_file.is_empty() {
            let text = std::fs::read_to_string(&user.token_file).map_err(|e| {
                ConnectError::Invalid(format!("user {user_name:?}: tokenFile {}: {e}", user.token_file))
            })?;
            user.token = text.trim().to_owned();
        }
        user.token_file.clear();
    }
    Ok(())
}

pub async fn client(target: &Target) -> Result<(kube::Client, String), ConnectError> {
    let resolved = resolve(target).await?;
    let client = kube::Client::try_from(resolved.config).map_err(|e| ConnectError::Client(e.to_string()))?;
    Ok((client, resolved.source))
}

/// A watch waits up to five minutes (kube-rs asks the server for 290 s)
/// between events: reads may idle that long before they count as stalled.
pub const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(295);

/// [`client`] for a long-running watcher (`paved serve`): the same
/// configuration, with reads allowed to idle as long as a watch does.
pub async fn watching_client(target: &Target) -> Result<(kube::Client, String), ConnectError> {
    let mut resolved = resolve(target).await?;
    resolved.config.read_timeout = Some(WATCH_READ_TIMEOUT);
    let client = kube::Client::try_from(resolved.config).map_err(|e| ConnectError::Client(e.to_string()))?;
    Ok((client, resolved.source))
}
