//! Version ordering for each ecosystem, as that ecosystem's own tools order
//! versions. A version a scheme cannot read is not ordered (`None`): the
//! caller says so rather than guessing.

pub mod apk;
pub mod dpkg;
pub mod maven;
pub mod rpm;

use std::cmp::Ordering;
use std::str::FromStr;

/// How an ecosystem orders its versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// dpkg: Debian, Ubuntu.
    Dpkg,
    /// apk-tools: Alpine, Wolfi, Chainguard.
    Apk,
    /// Semantic Versioning 2.0 (npm, crates.io, OSV `SEMVER` ranges).
    Semver,
    /// Go modules and the Go toolchain (`v1.2.3`, `go1.21rc2`), semver underneath.
    Go,
    /// PEP 440: PyPI.
    Pep440,
    /// Maven's ComparableVersion.
    Maven,
    /// rpm's `rpmvercmp`: AlmaLinux, Rocky Linux, openSUSE, SUSE.
    Rpm,
}

impl Scheme {
    /// Orders two versions; `None` when either is not a version of this scheme.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Scheme::Dpkg => Some(dpkg::DpkgVersion::parse(a)?.cmp(&dpkg::DpkgVersion::parse(b)?)),
            Scheme::Apk => (apk::is_valid(a) && apk::is_valid(b)).then(|| apk::compare(a, b)),
            Scheme::Semver => Some(cmp_semver(&semver_of(a)?, &semver_of(b)?)),
            Scheme::Go => Some(cmp_semver(&go_semver(a)?, &go_semver(b)?)),
            Scheme::Pep440 => {
                let (a, b) =
                    (pep440_rs::Version::from_str(a.trim()).ok()?, pep440_rs::Version::from_str(b.trim()).ok()?);
                Some(a.cmp(&b))
            }
            Scheme::Maven => (!a.trim().is_empty() && !b.trim().is_empty()).then(|| maven::compare(a, b)),
            Scheme::Rpm => (!a.trim().is_empty() && !b.trim().is_empty()).then(|| rpm::compare(a, b)),
        }
    }
}

/// Build metadata does not order versions (semver 2.0 §10); the crate's
/// `Ord` uses it as a tie-break, so it is left out here.
fn cmp_semver(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch).cmp(&(b.major, b.minor, b.patch)).then_with(|| a.pre.cmp(&b.pre))
}

/// A semantic version, read as OSV's `SEMVER` ranges are: a leading `v` and
/// missing minor or patch numbers are allowed (`v1.2` is `1.2.0`).
fn semver_of(text: &str) -> Option<semver::Version> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    if let Ok(v) = semver::Version::parse(text) {
        return Some(v);
    }
    // Pad `1` and `1.2` to three numbers, keeping any `-pre` or `+build`.
    let split = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(split);
    let dots = core.matches('.').count();
    if dots >= 2 || core.is_empty() || !core.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(2 - dots));
    semver::Version::parse(&padded).ok()
}

/// A Go version: a module version (`v1.2.3`, pseudo-versions included) or
/// a toolchain version (`go1.21`, `go1.21.3`, `go1.21rc2`, `1.21.3`).
fn go_semver(text: &str) -> Option<semver::Version> {
    let text = text.trim();
    let Some(toolchain) = text.strip_prefix("go") else { return semver_of(text) };
    // `1.21rc2` → `1.21.0-rc.2`; `1.21beta1` → `1.21.0-beta.1`.
    let at = toolchain.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(toolchain.len());
    let (numbers, pre) = toolchain.split_at(at);
    let core = semver_of(numbers)?;
    if pre.is_empty() {
        return Some(core);
    }
    let digits = pre.find(|c: char| c.is_ascii_digit()).unwrap_or(pre.len());
    let (word, n) = pre.split_at(digits);
    let pre = if n.is_empty() { word.to_owned() } else { format!("{word}.{n}") };
    semver::Version::parse(&format!("{}.{}.{}-{pre}", core.major, core.minor, core.patch)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_orders_its_own_versions() {
        let less = |s: Scheme, a: &str, b: &str| assert_eq!(s.compare(a, b), Some(Ordering::Less), "{s:?}: {a} < {b}");
        less(Scheme::Semver, "1.2.3-rc.1", "1.2.3");
        less(Scheme::Semver, "v1.2", "1.2.1");
        less(Scheme::Semver, "1.9.0", "1.10.0");
        less(Scheme::Go, "v0.0.0-20200101000000-abcdefabcdef", "v0.1.0");
        less(Scheme::Go, "go1.21rc2", "go1.21");
        less(Scheme::Go, "go1.21", "1.21.3");
        less(Scheme::Go, "go1.20.14", "go1.21.0");
        less(Scheme::Pep440, "1.0rc1", "1.0");
        less(Scheme::Pep440, "1.0", "1.0.post1");
        less(Scheme::Pep440, "1.0.dev1", "1.0a1");
        less(Scheme::Pep440, "1!0.1", "1!1.0");
        assert_eq!(
            Scheme::Semver.compare("1.2.3+a", "1.2.3+b"),
            Some(Ordering::Equal),
            "build metadata does not order"
        );
        assert_eq!(Scheme::Go.compare("v2.0.0+incompatible", "2.0.0"), Some(Ordering::Equal));
        assert_eq!(Scheme::Semver.compare("not-a-version", "1.0.0"), None);
        assert_eq!(Scheme::Pep440.compare("1.0", "what?"), None);
        assert_eq!(Scheme::Dpkg.compare("1:2", "x:1"), None);
    }
}
