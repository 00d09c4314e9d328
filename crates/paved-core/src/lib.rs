//! paved's pure core: the object model, the policy model, the native rules
//! and the engine that evaluates objects into findings.
//!
//! Nothing here does I/O, reads the clock or panics on input: loaders (YAML,
//! admission JSON, the cluster) build [`node::Node`] trees, and every surface
//! (CLI, webhook, audit, language server) calls [`eval::Engine::evaluate`].
//!
//! ```
//! use paved_core::{config::Config, eval::Engine, node::Node, profile::Mode};
//! let engine = Engine::new(&Config::default(), Some("pss-baseline"), Mode::Enforce).unwrap();
//! let json = serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
//!     "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "nginx:1"}]}
//! });
//! let pod = Node::from_json(&json);
//! let findings = engine.evaluate(&pod, "2026-01-01T00:00:00Z".parse().unwrap());
//! assert_eq!(findings[0].policy, "pss-baseline/host-namespaces");
//! assert_eq!(findings[0].path.to_string(), "spec.hostNetwork");
//! ```

pub mod apply;
pub mod config;
pub mod eval;
pub mod exempt;
pub mod image;
pub mod json;
pub mod kyverno;
pub mod mutate;
pub mod node;
pub mod object;
pub mod policy;
pub mod profile;
pub mod quantity;
pub mod rules;
pub mod selector;
pub mod snapshot;

pub use jiff::Timestamp;
