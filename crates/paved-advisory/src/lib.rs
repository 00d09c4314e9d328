//! Published advisories matched against what images carry, offline.
//!
//! - [`version`]: each ecosystem's own version ordering (dpkg, apk, semver,
//!   Go, PEP 440, Maven), pure.
//! - [`osv`]: OSV records and whether a version lies in their ranges, pure.

pub mod index;
pub mod osv;
pub mod version;
