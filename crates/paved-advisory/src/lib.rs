//! Published advisories matched against what images carry, offline.
//!
//! - [`version`]: each ecosystem's own version ordering (dpkg, apk, semver,
//!   Go, PEP 440, Maven), pure.

pub mod version;
