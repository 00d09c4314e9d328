//! What the final filesystem carries: shells, package managers,
//! interpreters, setuid and setgid files, and the installed packages.

use serde::{Deserialize, Serialize};

use crate::layer::{Embedded, Node, NodeKind};
use crate::view::{Resolved, View};

/// Directories on a container's default `PATH`.
pub const PATH_DIRS: [&str; 6] = ["usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin"];

/// Packages kept per image; more are counted, not listed.
const MAX_PACKAGES: usize = 20_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contents {
    pub shells: Vec<Tool>,
    pub package_managers: Vec<Tool>,
    pub interpreters: Vec<Tool>,
    /// Regular files with the setuid or setgid bit.
    pub setuid: Vec<SpecialFile>,
    pub packages: Vec<Package>,
    /// The package databases read, and those found but not readable here.
    pub databases: Vec<String>,
    /// Entries in the final filesystem, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// What the analysis could not settle (symlink loops, a database too
    /// large or malformed), in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The distribution, from `/etc/os-release`, when the image has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
}

/// What `/etc/os-release` says: `ID` (`debian`, `alpine`, `ubuntu`) and
/// `VERSION_ID` (`12`, `3.20.3`, `24.04`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsRelease {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version_id: String,
}

impl OsRelease {
    /// Reads `KEY=value` lines, quoted or not, as os-release(5) writes them.
    pub fn parse(data: &[u8]) -> Option<OsRelease> {
        let text = String::from_utf8_lossy(data);
        let mut release = OsRelease::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
            match key.trim() {
                "ID" => release.id = value,
                "VERSION_ID" => release.version_id = value,
                _ => {}
            }
        }
        (!release.id.is_empty()).then_some(release)
    }
}

/// An executable found on the `PATH`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// What it is: `bash`, `busybox`, `apt`, `python`, …
    pub kind: String,
    /// Where, absolute (`/usr/bin/python3.11`).
    pub path: String,
    /// The file it resolves to, when a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecialFile {
    pub path: String,
    /// The permission bits, in octal as `ls` would show them (`4755`).
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Where it was found: `dpkg` or `apk` (the distribution's database),
    /// `go` (a Go binary's module, `stdlib` its Go version), `python`, `npm`
    /// or `maven` (a Java archive's `groupId:artifactId`).
    pub source: String,
    /// The source package it was built from, when it differs from `name`
    /// (dpkg's `Source`, apk's origin): distributions publish advisories
    /// against source packages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
    /// The source package's version, when it differs from `version`
    /// (dpkg's `Source: glibc (2.36-9)`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin_version: String,
    /// The file it was read from, for packages outside the distribution's
    /// database (`/usr/bin/kubectl`, `/app/lib/x.jar`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl Package {
    fn found(source: &str, name: &str, version: &str, path: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            arch: String::new(),
            source: source.into(),
            origin: String::new(),
            origin_version: String::new(),
            path: format!("/{path}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Shell,
    PackageManager,
    Interpreter,
}

/// What a `PATH` executable's name says it is, if anything of interest.
fn classify(name: &str) -> Option<(Family, &'static str)> {
    use Family::*;
    const EXACT: &[(&str, Family, &str)] = &[
        ("sh", Shell, "sh"),
        ("bash", Shell, "bash"),
        ("rbash", Shell, "bash"),
        ("ash", Shell, "ash"),
        ("dash", Shell, "dash"),
        ("zsh", Shell, "zsh"),
        ("ksh", Shell, "ksh"),
        ("mksh", Shell, "ksh"),
        ("csh", Shell, "csh"),
        ("tcsh", Shell, "csh"),
        ("fish", Shell, "fish"),
        ("busybox", Shell, "busybox"),
        ("apt", PackageManager, "apt"),
        ("apt-get", PackageManager, "apt"),
        ("dpkg", PackageManager, "dpkg"),
        ("apk", PackageManager, "apk"),
        ("dnf", PackageManager, "dnf"),
        ("dnf5", PackageManager, "dnf"),
        ("microdnf", PackageManager, "dnf"),
        ("tdnf", PackageManager, "dnf"),
        ("yum", PackageManager, "yum"),
        ("rpm", PackageManager, "rpm"),
        ("zypper", PackageManager, "zypper"),
        ("npm", PackageManager, "npm"),
        ("gem", PackageManager, "gem"),
        ("node", Interpreter, "node"),
        ("nodejs", Interpreter, "node"),
        ("ruby", Interpreter, "ruby"),
        ("php", Interpreter, "php"),
    ];
    if let Some(&(_, family, kind)) = EXACT.iter().find(|(n, ..)| *n == name) {
        return Some((family, kind));
    }
    // Versioned names: python3.12, pip3, perl5.36.0.
    const VERSIONED: &[(&str, Family, &str)] =
        &[("python", Interpreter, "python"), ("pip", PackageManager, "pip"), ("perl", Interpreter, "perl")];
    VERSIONED.iter().find_map(|&(prefix, family, kind)| {
        let rest = name.strip_prefix(prefix)?;
        rest.bytes().all(|b| b.is_ascii_digit() || b == b'.').then_some((family, kind))
    })
}

impl Contents {
    pub fn of(view: &View) -> Contents {
        let mut c = Contents::default();
        for (_, node) in view.iter() {
            c.files += 1;
            if node.kind == NodeKind::File {
                c.bytes += node.size;
            }
        }
        for dir in PATH_DIRS {
            // A merged-/usr image makes /bin a link to usr/bin: its files are
            // listed once, under usr/bin.
            if view.get(dir).is_some_and(|n| n.kind != NodeKind::Dir) {
                continue;
            }
            for (name, _) in view.children(dir) {
                let Some((family, kind)) = classify(name) else { continue };
                let path = format!("{dir}/{name}");
                let target = match view.resolve(&path) {
                    Resolved::Found(target, node) if matches!(node.kind, NodeKind::File | NodeKind::Hardlink(_)) => {
                        target
                    }
                    Resolved::Found(..) | Resolved::Missing => continue,
                    Resolved::Loop => {
                        c.notes.push(format!("/{path}: symlink loop, not followed"));
                        continue;
                    }
                };
                let node = view.get(&path);
                let linked = match node.map(|n| &n.kind) {
                    Some(NodeKind::Hardlink(t)) => Some(format!("/{t}")),
                    _ if target != path => Some(format!("/{target}")),
                    _ => None,
                };
                // A busybox applet is busybox, whatever its name.
                let kind = match &linked {
                    Some(t) if t.ends_with("/busybox") && family == Family::Shell => "busybox",
                    _ => kind,
                };
                let tool = Tool { kind: kind.to_owned(), path: format!("/{path}"), target: linked };
                match family {
                    Family::Shell => c.shells.push(tool),
                    Family::PackageManager => c.package_managers.push(tool),
                    Family::Interpreter => c.interpreters.push(tool),
                }
            }
        }
        for (path, node) in view.iter() {
            let is_file = matches!(node.kind, NodeKind::File | NodeKind::Hardlink(_));
            if is_file && node.mode & 0o6000 != 0 {
                c.setuid.push(SpecialFile { path: format!("/{path}"), mode: format!("{:o}", node.mode) });
            }
        }
        c.read_inventory(view);
        c.os = ["etc/os-release", "usr/lib/os-release"].iter().find_map(|path| match view.resolve(path) {
            Resolved::Found(_, node) => node.data.as_deref().and_then(OsRelease::parse),
            _ => None,
        });
        c.shells.sort();
        c.package_managers.sort();
        c.interpreters.sort();
        c.packages.sort();
        c
    }

    fn read_inventory(&mut self, view: &View) {
        let mut packages = Vec::new();
        let mut dpkg_paths: Vec<&str> = Vec::new();
        if view.get("var/lib/dpkg/status").is_some() {
            dpkg_paths.push("var/lib/dpkg/status");
        }
        // Distroless images list their packages one file each.
        let status_d: Vec<(String, &Node)> = view
            .children("var/lib/dpkg/status.d")
            .map(|(n, node)| (format!("var/lib/dpkg/status.d/{n}"), node))
            .collect();
        for (path, node) in dpkg_paths
            .iter()
            .map(|p| (p.to_string(), view.get(p)))
            .chain(status_d.into_iter().map(|(p, n)| (p, Some(n))))
        {
            let Some(node) = node else { continue };
            match &node.data {
                Some(data) => {
                    parse_dpkg(data, &mut packages);
                    if !self.databases.iter().any(|d| d == "dpkg") {
                        self.databases.push("dpkg".into());
                    }
                }
                None if node.kind == NodeKind::File && node.size > 0 => {
                    self.notes.push(format!("/{path}: {} bytes, too large to read for the inventory", node.size));
                }
                None => {}
            }
        }
        if let Some(node) = view.get("lib/apk/db/installed") {
            match &node.data {
                Some(data) => {
                    parse_apk(data, &mut packages);
                    self.databases.push("apk".into());
                }
                None if node.size > 0 => {
                    self.notes.push(format!(
                        "/lib/apk/db/installed: {} bytes, too large to read for the inventory",
                        node.size
                    ));
                }
                None => {}
            }
        }
        self.read_language_packages(view, &mut packages);
        for rpmdb in ["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"] {
            let Some(node) = view.get(rpmdb) else { continue };
            match &node.data {
                Some(data) => match crate::rpm::read_sqlite(data) {
                    Ok(found) => {
                        packages.extend(found);
                        add_database(&mut self.databases, "rpm");
                    }
                    Err(e) => self.notes.push(format!("/{rpmdb}: not read: {e}")),
                },
                None if node.size > 0 => {
                    self.notes.push(format!("/{rpmdb}: {} bytes, too large to read for the inventory", node.size));
                }
                None => {}
            }
            if view.get(&format!("{rpmdb}-wal")).is_some_and(|wal| wal.size > 0) {
                self.notes
                    .push(format!("/{rpmdb}-wal is not empty: packages written since the last checkpoint are missing"));
            }
        }
        // Older formats: named, not read.
        for (rpmdb, format) in [("var/lib/rpm/Packages", "Berkeley DB"), ("usr/lib/sysimage/rpm/Packages.db", "ndb")] {
            if view.get(rpmdb).is_some() {
                self.databases.push(format!("rpm (/{rpmdb}, {format}, not read)"));
            }
        }
        packages.sort();
        packages.dedup();
        if packages.len() > MAX_PACKAGES {
            self.notes.push(format!("{} packages; the first {MAX_PACKAGES} are listed", packages.len()));
            packages.truncate(MAX_PACKAGES);
        }
        self.packages = packages;
    }
}

impl Contents {
    /// Packages outside the distribution's database: Go binaries' modules,
    /// Python's installed distributions, npm's installed packages, Java
    /// archives' Maven coordinates.
    fn read_language_packages(&mut self, view: &View, packages: &mut Vec<Package>) {
        let mut old_go = 0;
        for (path, node) in view.iter() {
            if let Some(embedded) = &node.embedded {
                match &**embedded {
                    Embedded::Go { go_version, modinfo } => {
                        packages.push(Package::found("go", "stdlib", go_version, path));
                        for m in crate::gobuild::modules(modinfo) {
                            packages.push(Package::found("go", &m.path, &m.version, path));
                        }
                        add_database(&mut self.databases, "go");
                    }
                    Embedded::OldGo => old_go += 1,
                    Embedded::Jar { poms } => {
                        for pom in poms {
                            let field = |key: &str| {
                                pom.lines()
                                    .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
                                    .map(str::trim)
                            };
                            if let (Some(g), Some(a), Some(v)) =
                                (field("groupId"), field("artifactId"), field("version"))
                            {
                                packages.push(Package::found("maven", &format!("{g}:{a}"), v, path));
                            }
                        }
                        add_database(&mut self.databases, "maven");
                    }
                }
            }
            let Some(data) = &node.data else { continue };
            if path.ends_with(".dist-info/METADATA")
                || path.ends_with(".egg-info/PKG-INFO")
                || path.ends_with(".egg-info")
            {
                if let Some((name, version)) = python_metadata(data) {
                    packages.push(Package::found("python", &name, &version, path));
                    add_database(&mut self.databases, "python");
                }
            } else if crate::layer::is_npm_manifest(path)
                && let Some((name, version)) = npm_manifest(data)
            {
                packages.push(Package::found("npm", &name, &version, path));
                add_database(&mut self.databases, "npm");
            }
        }
        if old_go > 0 {
            self.notes.push(format!("{old_go} Go binaries built before Go 1.18: their modules are not read"));
        }
    }
}

fn add_database(databases: &mut Vec<String>, name: &str) {
    if !databases.iter().any(|d| d == name) {
        databases.push(name.to_owned());
    }
}

/// `Name:` and `Version:` of a Python core metadata file (an email header).
fn python_metadata(data: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(&data[..data.len().min(64 << 10)]);
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.is_empty() {
            break; // the headers end; the description follows
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_owned());
        }
    }
    Some((name.filter(|n| !n.is_empty())?, version.filter(|v| !v.is_empty())?))
}

/// `name` and `version` of an installed npm package's `package.json`.
fn npm_manifest(data: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Manifest {
        name: Option<String>,
        version: Option<String>,
    }
    let m: Manifest = serde_json::from_slice(data).ok()?;
    Some((m.name.filter(|n| !n.is_empty())?, m.version.filter(|v| !v.is_empty())?))
}

/// dpkg's status file: paragraphs of `Field: value`; only packages whose
/// status ends in `installed` count.
fn parse_dpkg(data: &[u8], out: &mut Vec<Package>) {
    let text = String::from_utf8_lossy(data);
    for paragraph in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut status, mut source) = ("", "", "", None, "");
        for line in paragraph.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key {
                "Package" => name = value,
                "Version" => version = value,
                "Architecture" => arch = value,
                "Status" => status = Some(value),
                "Source" => source = value,
                _ => {}
            }
        }
        // `Source: glibc` or `Source: glibc (2.36-9)` (a binNMU's source version).
        let (origin, origin_version) = match source.split_once(' ') {
            Some((n, v)) => (n, v.trim().trim_start_matches('(').trim_end_matches(')')),
            None => (source, ""),
        };
        let origin = if origin == name { "" } else { origin };
        let origin_version = if origin_version == version { "" } else { origin_version };
        // status.d files (distroless) have no Status field: all installed.
        if !name.is_empty() && status.is_none_or(|s| s.ends_with(" installed")) {
            out.push(Package {
                name: name.into(),
                version: version.into(),
                arch: arch.into(),
                source: "dpkg".into(),
                origin: origin.into(),
                origin_version: origin_version.into(),
                path: String::new(),
            });
        }
    }
}

/// apk's installed database: blocks of `X:value` lines.
fn parse_apk(data: &[u8], out: &mut Vec<Package>) {
    let text = String::from_utf8_lossy(data);
    for block in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut origin) = ("", "", "", "");
        for line in block.lines() {
            match line.split_at_checked(2) {
                Some(("P:", v)) => name = v,
                Some(("V:", v)) => version = v,
                Some(("A:", v)) => arch = v,
                Some(("o:", v)) => origin = v,
                _ => {}
            }
        }
        if !name.is_empty() {
            let origin = if origin == name { "" } else { origin };
            out.push(Package {
                name: name.into(),
                version: version.into(),
                arch: arch.into(),
                source: "apk".into(),
                origin: origin.into(),
                origin_version: String::new(),
                path: String::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn names_are_classified_with_their_versions() {
        assert!(matches!(classify("python3.12"), Some((Family::Interpreter, "python"))));
        assert!(matches!(classify("pip3"), Some((Family::PackageManager, "pip"))));
        assert!(matches!(classify("perl5.36.0"), Some((Family::Interpreter, "perl"))));
        assert!(classify("python3-config").is_none());
        assert!(classify("shasum").is_none());
    }

    #[test]
    fn source_packages_and_the_release_are_read_for_advisories() {
        let mut out = Vec::new();
        parse_dpkg(
            b"Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.36-9+deb12u4\n\n\
              Package: bash\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b2\n\n\
              Package: zlib1g\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n",
            &mut out,
        );
        parse_apk(b"P:libcrypto3\nV:3.3.2-r0\no:openssl\n\nP:musl\nV:1.2.5-r0\no:musl\n", &mut out);
        let origins: Vec<(&str, &str, &str)> =
            out.iter().map(|p| (p.name.as_str(), p.origin.as_str(), p.origin_version.as_str())).collect();
        assert_eq!(
            origins,
            [
                ("libc6", "glibc", ""),
                ("bash", "", "5.2.15-2"),
                ("zlib1g", "zlib", ""),
                ("libcrypto3", "openssl", ""),
                ("musl", "", "")
            ]
        );
        let debian =
            OsRelease::parse(b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(debian, Some(OsRelease { id: "debian".into(), version_id: "12".into() }));
        let alpine = OsRelease::parse(b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n");
        assert_eq!(alpine, Some(OsRelease { id: "alpine".into(), version_id: "3.20.3".into() }));
        assert_eq!(OsRelease::parse(b"garbage"), None);
    }

    #[test]
    fn dpkg_counts_installed_packages_only_and_apk_reads_its_blocks() {
        let mut out = Vec::new();
        parse_dpkg(
            b"Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nArchitecture: amd64\n\n\
              Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n",
            &mut out,
        );
        parse_apk(b"C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\n\nP:busybox\nV:1.36.1-r29\n", &mut out);
        let names: Vec<(&str, &str, &str)> =
            out.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.source.as_str())).collect();
        assert_eq!(
            names,
            [("bash", "5.2.15-2+b2", "dpkg"), ("musl", "1.2.5-r0", "apk"), ("busybox", "1.36.1-r29", "apk")]
        );
    }
}
