//! Container image references, normalised the way container runtimes do.

/// `registry/repository[:tag][@digest]`, with Docker Hub defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

const DOCKER_HUB: &str = "docker.io";

/// The tag and digest of an image reference, without normalising it.
pub fn tag_and_digest(image: &str) -> (Option<&str>, Option<&str>) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let tag = name[slash..].rfind(':').map(|i| &name[slash + i + 1..]);
    (tag, digest)
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (image, None),
        };
        // A tag is the part after the last ':' that comes after the last '/'
        // (a ':' before it belongs to a registry port).
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(name[slash + i + 1..].to_string())),
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                let registry =
                    if first == "index.docker.io" || first == "registry-1.docker.io" { DOCKER_HUB } else { first };
                (registry.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        ImageRef { registry, repository, tag, digest }
    }

    /// Whether the image comes from `allowed`: a registry host (`ghcr.io`) or
    /// a registry and path prefix (`ghcr.io/acme`), matched on path boundaries.
    pub fn is_from(&self, allowed: &str) -> bool {
        let allowed = allowed.trim().trim_end_matches('/');
        let (host, path) = allowed.split_once('/').unwrap_or((allowed, ""));
        let host = if host == "index.docker.io" || host == "registry-1.docker.io" { DOCKER_HUB } else { host };
        self.registry == host
            && (path.is_empty()
                || self.repository == path
                || self.repository.strip_prefix(path).is_some_and(|rest| rest.starts_with('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_shorthands() {
        let r = ImageRef::parse("nginx");
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag), ("docker.io", "library/nginx", None));
        let r = ImageRef::parse("bitnami/redis:7.2");
        assert_eq!((r.repository.as_str(), r.tag.as_deref()), ("bitnami/redis", Some("7.2")));
    }

    #[test]
    fn registry_ports_are_not_tags() {
        let r = ImageRef::parse("localhost:5000/app");
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag), ("localhost:5000", "app", None));
        let r = ImageRef::parse("registry.example.com:443/team/app:1.0@sha256:abcd");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abcd"));
    }

    #[test]
    fn tag_and_digest_agree_with_parse() {
        for image in ["nginx", "nginx:1.27", "localhost:5000/app", "r.io:443/a/b:1.0@sha256:ab", "a@sha256:cd"] {
            let full = ImageRef::parse(image);
            assert_eq!(tag_and_digest(image), (full.tag.as_deref(), full.digest.as_deref()), "{image}");
        }
    }

    #[test]
    fn allowed_prefixes_match_on_path_boundaries() {
        let r = ImageRef::parse("ghcr.io/acme/app:1");
        assert!(r.is_from("ghcr.io"));
        assert!(r.is_from("ghcr.io/acme"));
        assert!(!r.is_from("ghcr.io/acm"));
        assert!(!r.is_from("registry.example.com"));
        assert!(ImageRef::parse("nginx:1").is_from("docker.io"));
        assert!(!ImageRef::parse("evil.io/docker.io/x").is_from("docker.io"));
    }
}

/// How bad, as NVD, Trivy and Grype name the bands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn of_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Unknown,
        }
    }

    /// A publisher's word (`HIGH`, `moderate`, `important`, `negligible`).
    pub fn of_word(word: &str) -> Severity {
        match word.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" => Severity::Low,
            _ => Severity::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        match Severity::of_word(s) {
            Severity::Unknown if s != "unknown" => Err(format!("{s:?}: expected low, medium, high or critical")),
            level => Ok(level),
        }
    }
}

/// A published advisory that applies to a package the image carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownVulnerability {
    /// The advisory's id (`DSA-5611-1`, `GHSA-…`, `GO-…`).
    pub id: String,
    /// Its CVE, when it has one.
    pub cve: Option<String>,
    pub severity: Severity,
    pub package: String,
    pub installed: String,
    pub fixed: Option<String>,
}

/// What an image carries, as far as policies care. An adapter (the image
/// analysis) fills it in; each entry is a path as users should read it
/// (`/bin/sh -> /bin/dash`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageContents {
    /// The manifest digest the contents were read from.
    pub digest: String,
    pub shells: Vec<String>,
    pub package_managers: Vec<String>,
    /// Files with the setuid or setgid bit.
    pub setuid: Vec<String>,
    /// Known vulnerabilities of what it carries, worst first; `None` when no
    /// advisories were at hand to match against.
    pub vulnerabilities: Option<Vec<KnownVulnerability>>,
}

/// What is known of an image when a policy asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageLookup {
    Known(std::sync::Arc<ImageContents>),
    /// Being analysed: no verdict yet.
    Pending,
    /// Not analysed, and not going to be now (offline).
    Unknown,
    /// The analysis failed, for this reason (the registry refused, a layer
    /// is corrupt): the surface may say so.
    Failed(std::sync::Arc<str>),
}

/// Looks up image contents by the reference a pod spec names. Surfaces
/// supply it: `check` from the on-disk cache, `serve` from memory.
pub trait ImageFacts: Send + Sync + std::fmt::Debug {
    fn lookup(&self, image: &str) -> ImageLookup;
}
