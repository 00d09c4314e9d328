//! What an image's layers carry, as a software bill of materials:
//! CycloneDX 1.5 or SPDX 2.3, JSON. Pure: built from an [`ImageReport`].
//!
//! Written with serde_json rather than the `cyclonedx-bom` crate: the
//! documents are a page of fields, and the crate's model would be one more
//! thing between the report and the format. Tests hold both outputs to the
//! official validators (CycloneDX's JSON schema, the SPDX tools).
//!
//! Both are deterministic: the identifiers and the time come from the
//! analysis (its digest and when it ran), so the same image gives the same
//! document.

use serde_json::{Value, json};

use crate::{ImageReport, Package};

/// The image as an SBOM names it: its reference without tag or digest, and
/// the analysed manifest's digest.
pub struct Subject<'a> {
    /// `registry/repository` (`ghcr.io/acme/web`).
    pub name: &'a str,
    pub report: &'a ImageReport,
}

/// A package URL (purl) for a package the analysis found; `None` for a
/// source paved has no purl type for.
pub fn purl(package: &Package, os: Option<&crate::OsRelease>) -> Option<String> {
    let version = encode(&package.version);
    let arch = if package.arch.is_empty() { String::new() } else { format!("arch={}", encode(&package.arch)) };
    let distro = os.map(|o| format!("distro={}-{}", o.id, o.version_id));
    let qualifiers = |parts: Vec<String>| {
        let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    };
    Some(match package.source.as_str() {
        "dpkg" | "apk" => {
            let kind = if package.source == "dpkg" { "deb" } else { "apk" };
            let namespace = os.map_or(if kind == "deb" { "debian" } else { "alpine" }, |o| o.id.as_str());
            let q = qualifiers(vec![arch, distro.unwrap_or_default()]);
            format!("pkg:{kind}/{}/{}@{version}{q}", encode(namespace), encode(&package.name))
        }
        "go" if package.name == "stdlib" => format!("pkg:golang/stdlib@{version}"),
        "go" => format!("pkg:golang/{}@{version}", encode_path(&package.name)),
        "python" => format!("pkg:pypi/{}@{version}", encode(&pypi_name(&package.name))),
        "npm" => match package.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, name)) => format!("pkg:npm/%40{}/{}@{version}", encode(scope), encode(name)),
            None => format!("pkg:npm/{}@{version}", encode(&package.name)),
        },
        "maven" => {
            let (group, artifact) = package.name.split_once(':')?;
            format!("pkg:maven/{}/{}@{version}", encode_path(group), encode(artifact))
        }
        _ => return None,
    })
}

/// PyPI names in purls: lower case, `_` as `-` (the purl spec's rule).
fn pypi_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Percent-encodes what a purl segment may not hold as it is.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Each `/`-separated segment encoded (Go module paths, Maven groups keep their dots).
fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A UUID (version 4 layout, variant 1) from the digest's bytes: stable
/// for an image, unique across images.
fn uuid_of(digest: &str, salt: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(format!("{salt}:{digest}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn image_purl(subject: &Subject<'_>) -> String {
    let (registry, repository) = subject.name.split_once('/').unwrap_or(("docker.io", subject.name));
    let last = repository.rsplit('/').next().unwrap_or(repository);
    format!(
        "pkg:oci/{}@{}?repository_url={}",
        encode(last),
        encode(subject.report.digest.as_str()),
        encode_path(&format!("{registry}/{repository}"))
    )
}

fn timestamp(report: &ImageReport) -> String {
    // RFC 3339 as the analysis wrote it; SPDX wants whole seconds in UTC.
    let t = report.analysed_at.as_str();
    match t.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => t.to_owned(),
    }
}

fn package_type(p: &Package) -> &'static str {
    match p.source.as_str() {
        "go" if p.name == "stdlib" => "framework",
        _ => "library",
    }
}

/// CycloneDX 1.5: the image as the subject, each package as a component
/// with its purl, all depending on the image.
pub fn cyclonedx(subject: &Subject<'_>) -> Value {
    let report = subject.report;
    let os = report.contents.os.as_ref();
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(os) = os {
        components.push(json!({
            "type": "operating-system", "bom-ref": "os", "name": os.id, "version": os.version_id,
        }));
        refs.push("os".to_owned());
    }
    for (i, p) in report.contents.packages.iter().enumerate() {
        let purl = purl(p, os);
        let bom_ref = format!("package-{i}");
        let mut component = json!({"type": package_type(p), "bom-ref": bom_ref, "name": p.name, "version": p.version});
        if let Some(purl) = purl {
            component["purl"] = json!(purl);
        }
        let mut properties = vec![json!({"name": "paved:source", "value": p.source})];
        if !p.origin.is_empty() {
            properties.push(json!({"name": "paved:source-package", "value": p.origin}));
        }
        if !p.path.is_empty() {
            properties.push(json!({"name": "paved:path", "value": p.path}));
        }
        component["properties"] = Value::Array(properties);
        components.push(component);
        refs.push(bom_ref);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid_of(report.digest.as_str(), "cyclonedx")),
        "version": 1,
        "metadata": {
            "timestamp": timestamp(report),
            "tools": {"components": [{"type": "application", "name": "paved", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject.name,
                "version": report.digest.as_str(),
                "purl": image_purl(subject),
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    })
}

/// SPDX 2.3: a document describing the image, which contains each package.
pub fn spdx(subject: &Subject<'_>) -> Value {
    let report = subject.report;
    let os = report.contents.os.as_ref();
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": subject.name,
        "versionInfo": report.digest.as_str(),
        "downloadLocation": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": image_purl(subject)}],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, p) in report.contents.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        let mut package = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": if package_type(p) == "framework" { "FRAMEWORK" } else { "LIBRARY" },
        });
        if let Some(purl) = purl(p, os) {
            package["externalRefs"] =
                json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]);
        }
        let mut source = vec![format!("found by paved in {}", p.source)];
        if !p.origin.is_empty() {
            source.push(format!("built from the {} source package", p.origin));
        }
        if !p.path.is_empty() {
            source.push(format!("at {}", p.path));
        }
        package["sourceInfo"] = json!(source.join(", "));
        packages.push(package);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", subject.name, report.digest.as_str()),
        "documentNamespace": format!(
            "https://github.com/paved-dev/paved/spdx/{}",
            uuid_of(report.digest.as_str(), "spdx")
        ),
        "creationInfo": {"created": timestamp(report), "creators": [format!("Tool: paved-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(source: &str, name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            arch: if source == "dpkg" { "amd64".into() } else { String::new() },
            source: source.into(),
            origin: String::new(),
            origin_version: String::new(),
            path: String::new(),
        }
    }

    #[test]
    fn package_urls_follow_the_purl_spec() {
        let debian = crate::OsRelease { id: "debian".into(), version_id: "12".into() };
        let cases = [
            (
                package("dpkg", "zlib1g", "1:1.2.13.dfsg-1"),
                "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12",
            ),
            (package("go", "golang.org/x/net", "v0.17.0"), "pkg:golang/golang.org/x/net@v0.17.0"),
            (package("go", "stdlib", "go1.21.3"), "pkg:golang/stdlib@go1.21.3"),
            (package("python", "Jinja_2", "3.1.2"), "pkg:pypi/jinja-2@3.1.2"),
            (package("npm", "@babel/core", "7.22.0"), "pkg:npm/%40babel/core@7.22.0"),
            (
                package("maven", "com.fasterxml.jackson.core:jackson-databind", "2.9.10"),
                "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.10",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(purl(&p, Some(&debian)).as_deref(), Some(want));
        }
        assert_eq!(uuid_of("sha256:ab", "x"), uuid_of("sha256:ab", "x"), "stable");
        assert_ne!(uuid_of("sha256:ab", "x"), uuid_of("sha256:ac", "x"));
    }
}
