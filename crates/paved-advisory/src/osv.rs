//! OSV records (ossf.github.io/osv-schema) and the question they answer: is
//! this version of this package affected? Pure: no I/O.
//!
//! Own types rather than a crate's: paved reads only the fields below, and
//! must take every record a publisher writes, including ecosystems and
//! fields it does not know (those are kept, reported, and not matched).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::version::Scheme;

/// One advisory, as published.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub modified: String,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub severity: Vec<Severity>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Publishers put a severity word here (GitHub, Debian, Alpine).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector (`CVSS:3.1/AV:N/...`) or a word.
    pub score: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<Package>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
    #[serde(default)]
    pub purl: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range; exactly one field is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// An ecosystem as OSV names it, split from its release: `Debian:12` is
/// Debian release 12, `Alpine:v3.20` Alpine 3.20.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ecosystem<'a> {
    pub name: &'a str,
    pub release: Option<&'a str>,
}

impl<'a> Ecosystem<'a> {
    pub fn parse(text: &'a str) -> Ecosystem<'a> {
        match text.split_once(':') {
            Some((name, release)) if !release.is_empty() => Ecosystem { name, release: Some(release) },
            _ => Ecosystem { name: text.trim_end_matches(':'), release: None },
        }
    }

    /// How the ecosystem orders versions; `None` for one paved does not know.
    pub fn scheme(&self) -> Option<Scheme> {
        Some(match self.name {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
            "Go" => Scheme::Go,
            "PyPI" => Scheme::Pep440,
            "Maven" => Scheme::Maven,
            "AlmaLinux" | "Rocky Linux" | "openSUSE" | "SUSE" | "Mageia" => Scheme::Rpm,
            "npm" | "crates.io" => Scheme::Semver,
            _ => return None,
        })
    }
}

/// A package name as the ecosystem compares names: PyPI's are normalized
/// (PEP 503: case and runs of `-_.` do not matter), others compared as written.
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" {
        let mut out = String::with_capacity(name.len());
        let mut dash = false;
        for c in name.trim().chars() {
            if matches!(c, '-' | '_' | '.') {
                dash = true;
                continue;
            }
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
        out
    } else {
        name.trim().to_owned()
    }
}

/// Why a range could not settle a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsettled {
    /// The ecosystem's version rules are not known to paved.
    UnknownEcosystem,
    /// The installed version, or a version in the range, does not read.
    BadVersion(String),
}

/// Whether `version` is affected: listed in `versions`, or inside one of the
/// `ECOSYSTEM`/`SEMVER` ranges, by `scheme`'s ordering. `GIT` ranges name
/// commits, which an installed package does not carry: they are skipped.
pub fn is_affected(scheme: Scheme, ranges: &[Range], versions: &[String], version: &str) -> Result<bool, Unsettled> {
    let equal = |v: &String| scheme.compare(v, version) == Some(Ordering::Equal) || v == version;
    if versions.iter().any(equal) {
        return Ok(true);
    }
    for range in ranges.iter().filter(|r| r.kind != "GIT") {
        if in_range(scheme, &range.events, version)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// OSV's evaluation of one range: events in version order, `introduced`
/// opening it, `fixed` (exclusive) and `last_affected` (inclusive) closing
/// it, and `limit` capping it (exclusive).
fn in_range(scheme: Scheme, events: &[Event], version: &str) -> Result<bool, Unsettled> {
    let cmp = |a: &str, b: &str| scheme.compare(a, b).ok_or_else(|| Unsettled::BadVersion(format!("{a} or {b}")));
    // `0` opens a range at the very start, whatever the scheme.
    let at_or_after = |bound: &str| -> Result<bool, Unsettled> {
        if bound == "0" {
            return Ok(true);
        }
        Ok(cmp(version, bound)? != Ordering::Less)
    };
    for e in events {
        if let Some(limit) = &e.limit
            && limit != "*"
            && at_or_after(limit)?
        {
            return Ok(false);
        }
    }
    // Sort the bounds; at one version, a closing event after an opening one.
    let mut bounds: Vec<(&str, u8)> = events
        .iter()
        .filter_map(|e| match (&e.introduced, &e.fixed, &e.last_affected) {
            (Some(v), _, _) => Some((v.as_str(), 0)),
            (_, Some(v), _) => Some((v.as_str(), 1)),
            (_, _, Some(v)) => Some((v.as_str(), 2)),
            _ => None,
        })
        .collect();
    let mut bad = None;
    bounds.sort_by(|a, b| {
        let by_version = match (a.0, b.0) {
            ("0", "0") => Ordering::Equal,
            ("0", _) => Ordering::Less,
            (_, "0") => Ordering::Greater,
            (x, y) => scheme.compare(x, y).unwrap_or_else(|| {
                bad = Some(format!("{x} or {y}"));
                Ordering::Equal
            }),
        };
        by_version.then(a.1.cmp(&b.1))
    });
    if let Some(bad) = bad {
        return Err(Unsettled::BadVersion(bad));
    }
    let mut affected = false;
    for (bound, kind) in bounds {
        match kind {
            0 if at_or_after(bound)? => affected = true,
            1 if at_or_after(bound)? => affected = false,
            2 if cmp(version, bound)? == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    Ok(affected)
}

/// The first version that fixes `version`, when a range says (the `fixed`
/// event of the range that holds it).
pub fn fixed_in(scheme: Scheme, ranges: &[Range], version: &str) -> Option<String> {
    ranges
        .iter()
        .filter(|r| r.kind != "GIT")
        .flat_map(|r| r.events.iter().filter_map(|e| e.fixed.as_deref()))
        .filter(|fixed| scheme.compare(version, fixed) == Some(Ordering::Less))
        .min_by(|a, b| scheme.compare(a, b).unwrap_or(Ordering::Equal))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn range(events: &[(&str, &str)]) -> Range {
        let events = events
            .iter()
            .map(|(k, v)| {
                let v = Some((*v).to_owned());
                match *k {
                    "introduced" => Event { introduced: v, ..Default::default() },
                    "fixed" => Event { fixed: v, ..Default::default() },
                    "last_affected" => Event { last_affected: v, ..Default::default() },
                    _ => Event { limit: v, ..Default::default() },
                }
            })
            .collect();
        Range { kind: "ECOSYSTEM".into(), events }
    }

    #[test]
    fn ranges_open_close_and_cap_as_osv_says() {
        let two = [range(&[("introduced", "4.0"), ("fixed", "4.3"), ("introduced", "5.0"), ("fixed", "5.2")])];
        let at = |v: &str| is_affected(Scheme::Pep440, &two, &[], v).unwrap();
        assert!(!at("3.9") && at("4.0") && at("4.2.1") && !at("4.3") && !at("4.9") && at("5.1") && !at("5.2"));
        let last = [range(&[("introduced", "0"), ("last_affected", "1.2.3")])];
        assert!(is_affected(Scheme::Semver, &last, &[], "1.2.3").unwrap());
        assert!(!is_affected(Scheme::Semver, &last, &[], "1.2.4").unwrap());
        let capped = [range(&[("introduced", "0"), ("limit", "2.0.0")])];
        assert!(is_affected(Scheme::Semver, &capped, &[], "1.9.9").unwrap());
        assert!(!is_affected(Scheme::Semver, &capped, &[], "2.0.0").unwrap());
        // Events out of order are put in order first.
        let shuffled = [range(&[("fixed", "1.5"), ("introduced", "1.0")])];
        assert!(is_affected(Scheme::Pep440, &shuffled, &[], "1.2").unwrap());
        // Listed versions count whatever the ranges say; GIT ranges are skipped.
        let git = Range { kind: "GIT".into(), events: range(&[("introduced", "0")]).events };
        assert!(!is_affected(Scheme::Pep440, std::slice::from_ref(&git), &[], "1.0").unwrap());
        assert!(is_affected(Scheme::Pep440, &[git], &["1.0.0".into()], "1.0").unwrap());
        assert_eq!(fixed_in(Scheme::Pep440, &two, "4.1"), Some("4.3".into()));
        assert_eq!(fixed_in(Scheme::Pep440, &two, "5.0"), Some("5.2".into()));
        assert!(matches!(is_affected(Scheme::Semver, &capped, &[], "banana"), Err(Unsettled::BadVersion(_))));
    }

    #[test]
    fn a_debian_fix_in_a_later_revision_and_an_epoch() {
        // DSA-5712-1 style: fixed in a revision, below upstream's own fix.
        let r = [range(&[("introduced", "0"), ("fixed", "2.36-9+deb12u7")])];
        let at = |v: &str| is_affected(Scheme::Dpkg, &r, &[], v).unwrap();
        assert!(at("2.36-9+deb12u4") && !at("2.36-9+deb12u7") && !at("2.36-9+deb12u10") && !at("1:2.0-1"));
    }

    #[test]
    fn ecosystems_split_their_release_and_names_normalize() {
        assert_eq!(Ecosystem::parse("Debian:12"), Ecosystem { name: "Debian", release: Some("12") });
        assert_eq!(Ecosystem::parse("Alpine:v3.20"), Ecosystem { name: "Alpine", release: Some("v3.20") });
        assert_eq!(Ecosystem::parse("PyPI"), Ecosystem { name: "PyPI", release: None });
        assert_eq!(Ecosystem::parse("RubyGems").scheme(), None);
        assert_eq!(normalize_name("PyPI", "Zope.Interface__x"), "zope-interface-x");
        assert_eq!(normalize_name("Go", "github.com/Foo/bar"), "github.com/Foo/bar");
    }
}
