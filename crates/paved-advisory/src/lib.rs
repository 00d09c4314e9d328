//! Published advisories matched against what images carry, offline.
//!
//! - [`version`]: each ecosystem's own version ordering (dpkg, apk, semver,
//!   Go, PEP 440, Maven), pure.
//! - [`osv`]: OSV records and whether a version lies in their ranges, pure.
//! - [`cvss`]: CVSS v3 base scores, pure.
//! - [`index`]: the local index `paved advisories import` writes (the I/O).
//! - [`matching`]: an image's packages against the index.

pub mod cvss;
pub mod index;
pub mod matching;
pub mod osv;
pub mod version;
