//! paved's cluster adapter: kubeconfig loaded as kubectl loads it
//! ([`kubeconfig`]), a client built from it ([`connect`]), and discovery with
//! paginated, bounded lists ([`list`]), and server-side apply of what paved
//! installs ([`apply`]). Evaluation stays in paved-core: this
//! crate only fetches.

pub mod apply;
pub mod connect;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod kubeconfig;
pub mod list;
