//! Reloading mounted files. The configuration (a ConfigMap) and the
//! certificate (a Secret that cert-manager rotates) are polled by content:
//! Kubernetes updates such volumes by swapping a `..data` symlink, which
//! file-change notifications report unreliably, and reading a few KiB every
//! couple of seconds costs nothing.

use std::path::Path;
use std::sync::Arc;

use paved_core::config::Config;
use rustls::sign::CertifiedKey;

use crate::metrics::ResultLabels;
use crate::tls::{TlsError, certified_key};
use crate::{Shared, compile_with_inventory};

/// Configuration files are small; anything bigger is a mistake, not a config.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!("{} bytes; the limit is {MAX_CONFIG_BYTES}", meta.len()));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

pub fn parse_config(bytes: &[u8]) -> Result<Config, String> {
    let limits = paved_yaml::Limits::default();
    let text = paved_yaml::decode(bytes, &limits).map_err(|e| e.to_string())?;
    paved_yaml::from_str(text, &limits, paved_yaml::Schema::Core).map_err(|e| e.to_string())
}

pub fn read_config(path: &Path) -> Result<Config, String> {
    parse_config(&read_capped(path)?)
}

pub fn read_cert(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| read_capped(p).map_err(|message| TlsError::File { path: p.to_owned(), message });
    certified_key(&read(cert)?, &read(key)?, cert, key)
}

/// Polls the configuration and certificate files for as long as the server runs.
pub async fn watch_files(shared: Arc<Shared>) {
    let options = shared.options.clone();
    let mut last_config = options.config.as_deref().and_then(|p| read_capped(p).ok());
    // The policy files the configuration names are watched too.
    let base = options.config.as_deref().and_then(Path::parent).unwrap_or(Path::new(".")).to_owned();
    let policy_paths_of = |config: &[u8]| parse_config(config).map(|c| c.policy_paths).unwrap_or_default();
    let mut policy_paths = last_config.as_deref().map(policy_paths_of).unwrap_or_default();
    let mut last_policies = paved_gatekeeper::policies::fingerprint(&policy_paths, &base);
    let mut last_cert = (read_capped(&options.tls_cert).ok(), read_capped(&options.tls_key).ok());
    let mut tick = tokio::time::interval(options.reload_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let policies = paved_gatekeeper::policies::fingerprint(&policy_paths, &base);
        if let Some(path) = &options.config
            && let Ok(bytes) = read_capped(path)
            && (last_config.as_ref() != Some(&bytes) || policies != last_policies)
        {
            if last_config.as_ref() != Some(&bytes) {
                policy_paths = policy_paths_of(&bytes);
                last_policies = paved_gatekeeper::policies::fingerprint(&policy_paths, &base);
            } else {
                last_policies = policies;
            }
            last_config = Some(bytes.clone());
            let previous = shared.inventory.read().map(|p| p.clone()).ok();
            let reloaded =
                parse_config(&bytes).and_then(|config| compile_with_inventory(config, &options, previous.as_ref()));
            match reloaded {
                Ok((admission, plan)) => {
                    if let Ok(mut current) = shared.inventory.write() {
                        *current = plan;
                    }
                    shared.admission.store(Arc::new(admission));
                    shared.reloads.send_modify(|generation| *generation += 1);
                    shared.metrics.config_reloads.get_or_create(&ResultLabels { result: "ok" }).inc();
                    tracing::info!(path = %path.display(), "configuration reloaded");
                }
                Err(message) => {
                    shared.metrics.config_reloads.get_or_create(&ResultLabels { result: "error" }).inc();
                    tracing::error!(path = %path.display(), error = %message, "new configuration rejected; keeping the old one");
                }
            }
        }
        let cert = (read_capped(&options.tls_cert).ok(), read_capped(&options.tls_key).ok());
        if let (Some(c), Some(k)) = &cert
            && cert != last_cert
        {
            // A pair caught half-written (the certificate new, the key old) fails
            // here, and is tried again when the other file changes.
            let loaded = certified_key(c, k, &options.tls_cert, &options.tls_key);
            last_cert = cert;
            match loaded {
                Ok(key) => {
                    shared.certs.set(key);
                    shared.metrics.cert_reloads.get_or_create(&ResultLabels { result: "ok" }).inc();
                    tracing::info!("TLS certificate reloaded");
                }
                Err(e) => {
                    shared.metrics.cert_reloads.get_or_create(&ResultLabels { result: "error" }).inc();
                    tracing::warn!(error = %e, "new TLS certificate not usable yet; keeping the old one");
                }
            }
        }
    }
}
