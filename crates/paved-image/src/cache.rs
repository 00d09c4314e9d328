//! Analysed images on disk: one JSON report per manifest digest, and a map
//! from the references people write (`nginx:1.27`, an index digest) to the
//! manifest digest they meant for a platform. Bounded in size: the least
//! recently used reports go first.
//!
//! Files are named only from validated digests, written to a temporary
//! file and renamed, so a crash leaves either the old report or the new one
//! and nothing is ever written outside the cache directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{ANALYSIS_VERSION, Digest, ImageReport};

/// Default bound on the reports' total size.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// References remembered; the oldest are forgotten past this.
const MAX_REFS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
#[error("image cache {path}: {source}")]
pub struct CacheError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct RefMap {
    /// `platform reference` → (digest, when it was resolved).
    refs: BTreeMap<String, (Digest, String)>,
}

impl Cache {
    /// The default directory: `$PAVED_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/paved/images`, else `~/.cache/paved/images`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("PAVED_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
        Some(base.join("paved").join("images"))
    }

    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Cache, CacheError> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("reports")).map_err(|source| CacheError { path: dir.clone(), source })?;
        Ok(Cache { dir, max_bytes })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn report_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("reports").join(format!("{}.json", digest.file_stem()))
    }

    /// The report for a manifest digest, if cached by this analysis version.
    pub fn get(&self, digest: &Digest) -> Option<ImageReport> {
        let path = self.report_path(digest);
        let text = std::fs::read(&path).ok()?;
        let report: ImageReport = serde_json::from_slice(&text).ok()?;
        if report.analysis_version != ANALYSIS_VERSION || report.digest != *digest {
            return None;
        }
        // Recently used: eviction goes by modification time.
        if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        Some(report)
    }

    /// Stores a report, then trims the cache to its bound.
    pub fn put(&self, report: &ImageReport) -> Result<(), CacheError> {
        let path = self.report_path(&report.digest);
        let text = serde_json::to_vec(report).map_err(|e| CacheError { path: path.clone(), source: e.into() })?;
        self.write_atomically(&path, &text)?;
        self.trim(&path)
    }

    /// The manifest digest a reference was last resolved to, for `platform`.
    pub fn resolved(&self, reference: &str, platform: &str) -> Option<Digest> {
        self.refs().refs.get(&format!("{platform} {reference}")).map(|(d, _)| d.clone())
    }

    /// Remembers what a reference resolved to (`now`, RFC 3339, orders them).
    pub fn remember(&self, reference: &str, platform: &str, digest: &Digest, now: &str) -> Result<(), CacheError> {
        let mut map = self.refs();
        map.refs.insert(format!("{platform} {reference}"), (digest.clone(), now.to_owned()));
        if map.refs.len() > MAX_REFS {
            let mut by_age: Vec<(String, String)> = map.refs.iter().map(|(k, (_, t))| (t.clone(), k.clone())).collect();
            by_age.sort();
            for (_, key) in by_age.into_iter().take(map.refs.len() - MAX_REFS) {
                map.refs.remove(&key);
            }
        }
        let path = self.dir.join("refs.json");
        let text = serde_json::to_vec(&map).map_err(|e| CacheError { path: path.clone(), source: e.into() })?;
        self.write_atomically(&path, &text)
    }

    fn refs(&self) -> RefMap {
        std::fs::read(self.dir.join("refs.json")).ok().and_then(|t| serde_json::from_slice(&t).ok()).unwrap_or_default()
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        let err = |source| CacheError { path: path.to_owned(), source };
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// Removes the least recently used reports until the rest fit, keeping
    /// `keep` (the one just written) whatever its size.
    fn trim(&self, keep: &Path) -> Result<(), CacheError> {
        let dir = self.dir.join("reports");
        let entries = std::fs::read_dir(&dir).map_err(|source| CacheError { path: dir.clone(), source })?;
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| (meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return Ok(());
        }
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn report(n: u8, packages: usize) -> ImageReport {
        let digest = Digest::of_bytes(&[n]);
        let packages = (0..packages)
            .map(|i| crate::Package {
                name: format!("p{i}"),
                version: "1".into(),
                arch: String::new(),
                source: "dpkg".into(),
                origin: String::new(),
                origin_version: String::new(),
                path: String::new(),
            })
            .collect();
        let contents = crate::Contents { packages, ..Default::default() };
        ImageReport {
            analysis_version: ANALYSIS_VERSION,
            digest,
            platform: "linux/amd64".into(),
            layers: vec![],
            contents,
            analysed_at: "2026-11-24T00:00:00Z".into(),
        }
    }

    #[test]
    fn reports_round_trip_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (report(1, 300), report(2, 300), report(3, 300));
        let one = serde_json::to_vec(&a).unwrap().len() as u64;
        let cache = Cache::open(dir.path(), one * 2 + one / 2).unwrap();
        cache.put(&a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put(&b).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Reading a makes it recent; b is now the oldest.
        assert_eq!(cache.get(&a.digest).as_ref(), Some(&a));
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put(&c).unwrap();
        assert!(cache.get(&a.digest).is_some());
        assert!(cache.get(&b.digest).is_none());
        assert!(cache.get(&c.digest).is_some());
    }

    #[test]
    fn a_report_from_another_analysis_version_or_under_the_wrong_name_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        let mut old = report(1, 1);
        old.analysis_version = ANALYSIS_VERSION + 1;
        cache.put(&old).unwrap();
        assert!(cache.get(&old.digest).is_none());
        let other = report(2, 1);
        std::fs::copy(cache.report_path(&report(1, 1).digest), cache.report_path(&other.digest)).unwrap();
        assert!(cache.get(&other.digest).is_none());
    }

    #[test]
    fn a_report_an_older_paved_wrote_in_snake_case_is_analysed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        let current = report(1, 1);
        cache.put(&current).unwrap();
        assert!(cache.get(&current.digest).is_some());
        let text = std::fs::read_to_string(cache.report_path(&current.digest)).unwrap();
        let old = text.replace("analysisVersion", "analysis_version").replace("analysedAt", "analysed_at");
        std::fs::write(cache.report_path(&current.digest), old).unwrap();
        assert!(cache.get(&current.digest).is_none());
    }

    #[test]
    fn references_remember_their_digest_per_platform() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        let d = Digest::of_bytes(b"x");
        cache.remember("nginx:1.27", "linux/amd64", &d, "2026-11-24T00:00:00Z").unwrap();
        assert_eq!(cache.resolved("nginx:1.27", "linux/amd64"), Some(d));
        assert_eq!(cache.resolved("nginx:1.27", "linux/arm64"), None);
    }
}
