//! Which advisories an image's packages fall under: the packages the layer
//! analysis found, named in OSV's terms, matched against the index.

use std::collections::BTreeMap;

use serde::Serialize;

use paved_core::image::Severity;

use crate::cvss::base_score;
use crate::index::{Entry, Index, IndexError};
use crate::osv::{self, Ecosystem, Unsettled, fixed_in, is_affected};

/// A package as advisories name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// OSV's ecosystem name, without release: `Debian`, `Alpine`, `Go`, `PyPI`.
    pub ecosystem: String,
    /// The distribution release advisories are written per (`12`, `v3.20`);
    /// `None` outside distributions.
    pub release: Option<String>,
    /// The name advisories use: Debian's and Alpine's are source packages.
    pub name: String,
    pub version: String,
    /// The package as installed, when it differs (`libc6` from `glibc`).
    pub installed_as: Option<String>,
}

/// The ecosystem and release of a distribution's packages, from
/// `/etc/os-release`'s `ID` and `VERSION_ID`, as OSV names them.
pub fn distribution(id: &str, version_id: &str) -> Option<(&'static str, Option<String>)> {
    let mut numbers = version_id.split('.');
    let major = numbers.next().filter(|m| !m.is_empty());
    Some(match id {
        "debian" => ("Debian", major.map(str::to_owned)),
        "ubuntu" => ("Ubuntu", (!version_id.is_empty()).then(|| version_id.to_owned())),
        "alpine" => ("Alpine", major.zip(numbers.next()).map(|(a, b)| format!("v{a}.{b}"))),
        "wolfi" => ("Wolfi", None),
        "almalinux" => ("AlmaLinux", major.map(str::to_owned)),
        "rocky" => ("Rocky Linux", major.map(str::to_owned)),
        "chainguard" => ("Chainguard", None),
        _ => return None,
    })
}

/// One advisory that applies to one installed package.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vulnerability {
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The ecosystem as the advisory names it (`Debian:12`).
    pub ecosystem: String,
    /// The package as the advisory names it.
    pub package: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_as: Option<String>,
    pub installed: String,
    /// The first version that fixes it, when the advisory says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    pub severity: Severity,
    /// The CVSS vector, when the record has one, and its base score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// What matching an image gave: the advisories, and what it could not settle.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matched {
    pub vulnerabilities: Vec<Vulnerability>,
    /// Packages of ecosystems paved cannot order, by ecosystem: reported,
    /// never matched.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unmatched_ecosystems: BTreeMap<String, u64>,
    /// Versions that do not read under their ecosystem's rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsettled: Vec<String>,
}

/// Matches packages against the index in one walk of its directory.
pub fn match_packages(index: &Index, packages: &[Installed]) -> Result<Matched, IndexError> {
    let mut matched = Matched::default();
    let known: Vec<&Installed> = packages
        .iter()
        .filter(|p| {
            let known = Ecosystem::parse(&p.ecosystem).scheme().is_some();
            if !known {
                *matched.unmatched_ecosystems.entry(p.ecosystem.clone()).or_default() += 1;
            }
            known
        })
        .collect();
    // Several installed packages can share a name (binaries of one source).
    let mut by_name: BTreeMap<(&str, &str), Vec<&Installed>> = BTreeMap::new();
    for p in &known {
        by_name.entry((p.ecosystem.as_str(), p.name.as_str())).or_default().push(p);
    }
    let keys: Vec<(&str, &str)> = by_name.keys().copied().collect();
    index.lookup_each(keys, |key, entries| {
        for package in by_name.get(&key).into_iter().flatten() {
            for entry in &entries {
                match applies(entry, package) {
                    Ok(Some(v)) => matched.vulnerabilities.push(v),
                    Ok(None) | Err(Unsettled::UnknownEcosystem) => {}
                    Err(Unsettled::BadVersion(what)) => {
                        matched.unsettled.push(format!("{} {}: {}: {what}", package.name, package.version, entry.id));
                    }
                }
            }
        }
    })?;
    matched.vulnerabilities.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| a.package.cmp(&b.package)).then_with(|| a.id.cmp(&b.id))
    });
    matched.vulnerabilities.dedup_by(|a, b| a.id == b.id && a.package == b.package && a.installed == b.installed);
    Ok(matched)
}

/// Whether one index entry applies to one package, and how.
pub fn applies(entry: &Entry, package: &Installed) -> Result<Option<Vulnerability>, Unsettled> {
    if entry.withdrawn {
        return Ok(None);
    }
    let ecosystem = Ecosystem::parse(&entry.ecosystem);
    // Distribution advisories are per release; one for another release says nothing.
    if let (Some(theirs), Some(ours)) = (ecosystem.release, package.release.as_deref())
        && theirs != ours
    {
        return Ok(None);
    }
    let scheme = ecosystem.scheme().ok_or(Unsettled::UnknownEcosystem)?;
    if !is_affected(scheme, &entry.ranges, &entry.versions, &package.version)? {
        return Ok(None);
    }
    let cvss = best_vector(&entry.severity);
    let score = cvss.and_then(base_score);
    let severity = match score {
        Some(s) => Severity::of_score(s),
        None => entry.severity_word.as_deref().map_or(Severity::Unknown, Severity::of_word),
    };
    Ok(Some(Vulnerability {
        id: entry.id.clone(),
        aliases: entry.aliases.clone(),
        summary: entry.summary.clone(),
        ecosystem: entry.ecosystem.clone(),
        package: entry.name.clone(),
        installed_as: package.installed_as.clone(),
        installed: package.version.clone(),
        fixed: fixed_in(scheme, &entry.ranges, &package.version),
        severity,
        cvss: cvss.map(str::to_owned),
        score,
    }))
}

/// The newest CVSS v3 vector of a record (v4 and v2 vectors are kept only
/// when there is no v3 one).
fn best_vector(severity: &[osv::Severity]) -> Option<&str> {
    let of = |kind: &str| severity.iter().find(|s| s.kind == kind).map(|s| s.score.as_str());
    of("CVSS_V3").or_else(|| of("CVSS_V4")).or_else(|| of("CVSS_V2"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::osv::{Event, Range};

    fn entry(id: &str, ecosystem: &str, events: Vec<Event>) -> Entry {
        Entry {
            id: id.into(),
            modified: String::new(),
            ecosystem: ecosystem.into(),
            name: "glibc".into(),
            aliases: vec![],
            summary: None,
            severity: vec![osv::Severity {
                kind: "CVSS_V3".into(),
                score: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H".into(),
            }],
            severity_word: None,
            ranges: vec![Range { kind: "ECOSYSTEM".into(), events }],
            versions: vec![],
            withdrawn: false,
        }
    }

    fn event(introduced: Option<&str>, fixed: Option<&str>) -> Event {
        Event { introduced: introduced.map(Into::into), fixed: fixed.map(Into::into), ..Default::default() }
    }

    #[test]
    fn releases_withdrawals_and_fixes_decide() {
        let glibc = Installed {
            ecosystem: "Debian".into(),
            release: Some("12".into()),
            name: "glibc".into(),
            version: "2.36-9+deb12u4".into(),
            installed_as: Some("libc6".into()),
        };
        let bookworm =
            entry("DSA-5611-1", "Debian:12", vec![event(Some("0"), None), event(None, Some("2.36-9+deb12u7"))]);
        let v = applies(&bookworm, &glibc).unwrap().unwrap();
        assert_eq!((v.fixed.as_deref(), v.score, v.severity), (Some("2.36-9+deb12u7"), Some(7.8), Severity::High));
        assert_eq!(v.installed_as.as_deref(), Some("libc6"));
        // Another release's advisory, a withdrawn one, and a fixed version: nothing.
        let bullseye = entry("DSA-1", "Debian:11", vec![event(Some("0"), None)]);
        assert_eq!(applies(&bullseye, &glibc).unwrap(), None);
        let mut withdrawn = bookworm.clone();
        withdrawn.withdrawn = true;
        assert_eq!(applies(&withdrawn, &glibc).unwrap(), None);
        let patched = Installed { version: "2.36-9+deb12u7".into(), ..glibc };
        assert_eq!(applies(&bookworm, &patched).unwrap(), None);
    }

    #[test]
    fn rpm_distributions_match_by_release_with_rpms_ordering() {
        let mut alsa =
            entry("ALSA-2024:0310", "AlmaLinux:9", vec![event(Some("0"), None), event(None, Some("1:3.0.7-25.el9_3"))]);
        alsa.name = "openssl-libs".into();
        let installed = |version: &str| Installed {
            ecosystem: "AlmaLinux".into(),
            release: Some("9".into()),
            name: "openssl-libs".into(),
            version: version.into(),
            installed_as: None,
        };
        assert!(applies(&alsa, &installed("1:3.0.7-24.el9")).unwrap().is_some());
        // el9_3 comes after el9: rpm's ordering, not a string's.
        assert!(applies(&alsa, &installed("1:3.0.7-25.el9_3")).unwrap().is_none());
        assert!(applies(&alsa, &installed("1:3.0.7-27.el9")).unwrap().is_none());
        assert_eq!(distribution("almalinux", "9.4"), Some(("AlmaLinux", Some("9".into()))));
        assert_eq!(distribution("rocky", "9.3"), Some(("Rocky Linux", Some("9".into()))));
    }

    #[test]
    fn packages_of_an_ecosystem_paved_cannot_order_are_reported_not_matched() {
        let dir = tempfile::tempdir().unwrap();
        let mut import = crate::index::Importer::new(dir.path()).unwrap();
        let record = serde_json::json!({"id": "DSA-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "Debian:12", "name": "bash"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]});
        import.add_text("r", record.to_string().as_bytes(), false).unwrap();
        import.finish().unwrap();
        let index = Index::open(dir.path()).unwrap().unwrap();
        let package = |ecosystem: &str| Installed {
            ecosystem: ecosystem.into(),
            release: Some("12".into()),
            name: "bash".into(),
            version: "5.2.15-2".into(),
            installed_as: None,
        };
        let matched = match_packages(&index, &[package("Debian"), package("pureos"), package("pureos")]).unwrap();
        assert_eq!(matched.vulnerabilities.len(), 1);
        assert_eq!(matched.unmatched_ecosystems.get("pureos"), Some(&2));
    }

    #[test]
    fn distributions_are_named_as_osv_names_them() {
        assert_eq!(distribution("debian", "12"), Some(("Debian", Some("12".into()))));
        assert_eq!(distribution("alpine", "3.20.3"), Some(("Alpine", Some("v3.20".into()))));
        assert_eq!(distribution("ubuntu", "24.04"), Some(("Ubuntu", Some("24.04".into()))));
        assert_eq!(distribution("debian", ""), Some(("Debian", None)), "testing has no VERSION_ID");
        assert_eq!(distribution("fedora", "40"), None);
    }
}
