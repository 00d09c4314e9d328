//! Admission for `paved serve`: an AdmissionReview in, a verdict out.
//!
//! Pure like paved-core: the caller passes the cluster's state (namespace
//! labels, locked objects) and the clock. The HTTP server, the watches that
//! feed [`cluster::ClusterState`] and the metrics live in `paved-server`.

pub mod audit;
pub mod cluster;
pub mod decide;
pub mod locks;
pub mod review;
pub mod trust;
pub mod warning;

pub use decide::{Admission, Event, Scope, SetupError, Verdict};
