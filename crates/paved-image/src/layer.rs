//! One layer blob in, the changes it makes to the filesystem out.
//!
//! The blob is streamed once: its digest is computed over the compressed
//! bytes as they pass, the compression is recognised by its magic number
//! (gzip, zstd, or none), and the tar inside is walked header by header.
//! Nothing is unpacked to disk and no file's contents are kept, except the
//! package databases the inventory needs (each capped).

use std::io::{self, BufRead, BufReader, Read};

use sha2::Digest as _;

use crate::tar::{Kind, TarError, TarReader};

/// Bounds on what one layer may cost, whatever its headers claim.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Uncompressed bytes of one layer (a gzip bomb stops here).
    pub max_layer_bytes: u64,
    /// Entries in one image, summed over its layers.
    pub max_entries: usize,
    /// Bytes of one path.
    pub max_path: usize,
    /// Bytes of one package database kept for the inventory.
    pub max_database: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_layer_bytes: 8 << 30, max_entries: 1_000_000, max_path: 4096, max_database: 32 << 20 }
    }
}

/// A content digest, `algorithm:hex`, checked for shape so it can name a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, String> {
        let (algorithm, hex) =
            text.split_once(':').ok_or_else(|| format!("{text:?} is not a digest (algorithm:hex)"))?;
        let len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(format!("{text:?}: digest algorithm {algorithm:?} is not sha256 or sha512")),
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("{text:?}: a {algorithm} digest is {len} lowercase hex digits"));
        }
        Ok(Digest(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256-<hex>`: usable as a file name.
    pub fn file_stem(&self) -> String {
        self.0.replacen(':', "-", 1)
    }

    pub fn of_bytes(bytes: &[u8]) -> Digest {
        let mut h = Hasher::Sha256(sha2::Sha256::new());
        h.update(bytes);
        h.finish()
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn for_digest(d: &Digest) -> Hasher {
        if d.0.starts_with("sha512:") {
            Hasher::Sha512(sha2::Sha512::new())
        } else {
            Hasher::Sha256(sha2::Sha256::new())
        }
    }
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }
    fn finish(self) -> Digest {
        let (algorithm, bytes) = match self {
            Hasher::Sha256(h) => ("sha256", h.finalize().to_vec()),
            Hasher::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        let mut text = String::with_capacity(algorithm.len() + 1 + bytes.len() * 2);
        text.push_str(algorithm);
        text.push(':');
        for b in bytes {
            text.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            text.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Digest(text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading the blob: {0}")]
    Read(#[source] io::Error),
    #[error("decompressing: {0}")]
    Decompress(#[source] io::Error),
    #[error("{0}")]
    Tar(#[from] TarError),
    #[error("the layer expands past {limit} bytes (a compression bomb, or raise the limit)")]
    TooLarge { limit: u64 },
    #[error("the image has more than {limit} filesystem entries")]
    TooManyEntries { limit: usize },
    #[error("entry {entry}: path of {len} bytes is longer than {limit}")]
    PathTooLong { entry: u64, len: usize, limit: usize },
    #[error("entry {entry}: {path:?} leaves the image's root filesystem")]
    Escapes { entry: u64, path: String },
    #[error("digest mismatch: the registry said {expected}, the bytes are {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
}

/// One file, directory or link as the final filesystem sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub size: u64,
    /// Contents, kept only for package databases.
    pub data: Option<std::sync::Arc<[u8]>>,
    /// What was read from inside the file: a Go binary's build information,
    /// a Java archive's Maven coordinates.
    pub embedded: Option<std::sync::Arc<Embedded>>,
}

/// What a file carries inside it, read while the layer streams past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Embedded {
    /// A Go binary (Go 1.18 or later): its Go version and module information.
    Go { go_version: String, modinfo: String },
    /// A Go binary built before Go 1.18, whose build information is not inline.
    OldGo,
    /// A Java archive: the text of each `META-INF/maven/**/pom.properties`.
    Jar { poms: Vec<String> },
}

/// Executables larger than this are not scanned for Go build information.
const MAX_SCANNED: u64 = 1 << 30;
/// `pom.properties` files kept per archive, and bytes each.
const MAX_POMS: usize = 256;
const MAX_POM_BYTES: u64 = 16 << 10;

/// A Java archive's Maven coordinates, read entry by entry from the stream.
fn jar_poms(reader: impl Read) -> Option<Embedded> {
    let mut reader = reader;
    let mut poms = Vec::new();
    loop {
        let Ok(Some(mut file)) = zip::read::read_zipfile_from_stream(&mut reader) else { break };
        let name = file.name().map(|n| n.into_owned()).unwrap_or_default();
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") && poms.len() < MAX_POMS {
            let mut text = String::new();
            if (&mut file).take(MAX_POM_BYTES).read_to_string(&mut text).is_ok() {
                poms.push(text);
            }
        }
    }
    (!poms.is_empty()).then_some(Embedded::Jar { poms })
}

/// Whether a path is a Java archive.
fn is_archive(path: &str) -> bool {
    [".jar", ".war", ".ear"].iter().any(|e| path.ends_with(e))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink(Box<str>),
    /// A hard link: the same file as the (normalised) path it names.
    Hardlink(Box<str>),
    Other,
}

/// What a layer does to the filesystem below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `.wh.<name>`: the path and everything under it, gone.
    Whiteout(String),
    /// `.wh..wh..opq`: the directory's lower contents, gone.
    Opaque(String),
    Put(String, Node),
}

#[derive(Debug, Default)]
pub struct Layer {
    pub changes: Vec<Change>,
    /// Uncompressed tar bytes.
    pub size: u64,
    /// Bytes of the blob as stored.
    pub blob_size: u64,
    pub digest: Option<Digest>,
}

/// Paths whose contents the inventory reads: package databases (the
/// distribution's, Python's metadata, npm's `package.json` of each installed
/// package) and the distribution's release (`os-release`), which advisories
/// are matched by.
pub fn is_database(path: &str) -> bool {
    path == "var/lib/dpkg/status"
        || path == "lib/apk/db/installed"
        || path == "var/lib/rpm/rpmdb.sqlite"
        || path == "usr/lib/sysimage/rpm/rpmdb.sqlite"
        || path == "etc/os-release"
        || path == "usr/lib/os-release"
        || path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || path.ends_with(".egg-info")
        || is_npm_manifest(path)
        || path.strip_prefix("var/lib/dpkg/status.d/").is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// `node_modules/<name>/package.json` or `node_modules/@scope/<name>/package.json`.
pub fn is_npm_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else { return false };
    let Some((parent, name)) = dir.rsplit_once('/') else { return false };
    if name.is_empty() {
        return false;
    }
    let parent = match parent.rsplit_once('/') {
        Some((up, scope)) if scope.starts_with('@') => up,
        _ if parent.starts_with('@') => "",
        _ => parent,
    };
    parent == "node_modules" || parent.ends_with("/node_modules")
}

/// Reads one layer blob. When `expected` is given, the blob's digest must
/// match it; the whole blob is read either way, so a digest covers it all.
/// `entries_before` counts entries of the image's earlier layers against
/// [`Limits::max_entries`].
pub fn read_layer(
    blob: impl Read,
    expected: Option<&Digest>,
    limits: &Limits,
    entries_before: usize,
) -> Result<Layer, LayerError> {
    let hasher = expected.map_or_else(|| Hasher::Sha256(sha2::Sha256::new()), Hasher::for_digest);
    let mut raw = BufReader::with_capacity(128 * 1024, Hashing { inner: blob, hasher, bytes: 0 });
    let magic = raw.fill_buf().map_err(LayerError::Read)?;
    // By magic number: the reader needs no media type and trusts none.
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let mut layer = Layer::default();
    {
        let decoder: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(&mut raw).map_err(LayerError::Decompress)?)
            }
            Compression::None => Box::new(&mut raw),
        };
        let mut tar = TarReader::new(Bounded {
            inner: decoder,
            left: limits.max_layer_bytes,
            read: 0,
            compressed: compression != Compression::None,
        });
        let walked = walk(&mut tar, &mut layer, limits, entries_before).map_err(|e| classify(e, limits));
        // What follows the archive's end still counts: read it all so that a
        // truncated stream fails and the digest covers every byte.
        let mut rest = tar.into_inner();
        let drained = walked.and_then(|()| {
            io::copy(&mut rest, &mut io::sink()).map_err(|e| classify(LayerError::Tar(TarError::Io(e)), limits))
        });
        layer.size = rest.read;
        drop(rest);
        if let Err(e) = drained {
            // Blob bytes altered in transit or at rest usually show first as
            // garbage in the archive; the digest says what really happened.
            return Err(match expected {
                Some(expected) => match finish_digest(&mut raw, limits.max_layer_bytes) {
                    Some(actual) if actual != *expected => {
                        LayerError::DigestMismatch { expected: expected.clone(), actual }
                    }
                    _ => e,
                },
                None => e,
            });
        }
    }
    io::copy(&mut raw, &mut io::sink()).map_err(LayerError::Read)?;
    let hashing = raw.into_inner();
    layer.blob_size = hashing.bytes;
    let actual = hashing.hasher.finish();
    if let Some(expected) = expected
        && *expected != actual
    {
        return Err(LayerError::DigestMismatch { expected: expected.clone(), actual });
    }
    layer.digest = Some(actual);
    Ok(layer)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Reads what is left of the blob (up to `limit` bytes) for its digest.
fn finish_digest<R: Read>(raw: &mut BufReader<Hashing<R>>, limit: u64) -> Option<Digest> {
    io::copy(&mut raw.by_ref().take(limit), &mut io::sink()).ok()?;
    let hasher = std::mem::replace(&mut raw.get_mut().hasher, Hasher::Sha256(sha2::Sha256::new()));
    Some(hasher.finish())
}

fn walk<R: Read>(
    tar: &mut TarReader<R>,
    layer: &mut Layer,
    limits: &Limits,
    entries_before: usize,
) -> Result<(), LayerError> {
    while let Some(h) = tar.next_header()? {
        let entry = tar.entry_number();
        if entries_before + layer.changes.len() >= limits.max_entries {
            return Err(LayerError::TooManyEntries { limit: limits.max_entries });
        }
        if h.path.len() > limits.max_path || h.link.len() > limits.max_path {
            return Err(LayerError::PathTooLong { entry, len: h.path.len().max(h.link.len()), limit: limits.max_path });
        }
        let path = normalise(&h.path).ok_or_else(|| LayerError::Escapes { entry, path: h.path.clone() })?;
        if path.is_empty() {
            continue; // the root directory itself
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                layer.changes.push(Change::Opaque(dir.to_owned()));
            } else if !hidden.starts_with(".wh.") && !hidden.is_empty() {
                let gone = if dir.is_empty() { hidden.to_owned() } else { format!("{dir}/{hidden}") };
                layer.changes.push(Change::Whiteout(gone));
            }
            continue;
        }
        let kind = match h.kind {
            Kind::File => NodeKind::File,
            Kind::Dir => NodeKind::Dir,
            Kind::Symlink => NodeKind::Symlink(h.link.clone().into()),
            Kind::Hardlink => {
                let target = normalise(&h.link).ok_or_else(|| LayerError::Escapes { entry, path: h.link.clone() })?;
                NodeKind::Hardlink(target.into())
            }
            Kind::Other => NodeKind::Other,
        };
        let is_file = kind == NodeKind::File;
        let data = if is_file && is_database(&path) {
            tar.read_contents(limits.max_database)?.map(std::sync::Arc::from)
        } else {
            None
        };
        let embedded = if data.is_some() || !is_file {
            None
        } else if is_archive(&path) {
            jar_poms(tar.contents())
        } else if h.mode & 0o111 != 0 && h.size >= 64 && h.size <= MAX_SCANNED {
            match crate::gobuild::scan(tar.contents(), h.size) {
                Ok(Some(crate::gobuild::Found::Inline { go_version, modinfo })) => {
                    Some(Embedded::Go { go_version, modinfo })
                }
                Ok(Some(crate::gobuild::Found::Old)) => Some(Embedded::OldGo),
                Ok(None) => None,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(TarError::Truncated { entry }.into());
                }
                Err(e) => return Err(TarError::from(e).into()),
            }
        } else {
            None
        };
        let embedded = embedded.map(std::sync::Arc::new);
        layer.changes.push(Change::Put(path, Node { kind, mode: h.mode, size: h.size, data, embedded }));
    }
    Ok(())
}

/// A tar path made relative to the root, `.` and `..` resolved; `None` when
/// `..` would climb above the root (a path traversal entry).
pub fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Over-the-limit and decompression failures, told apart from tar errors
/// (both arrive as I/O errors from inside the tar reader).
fn classify(e: LayerError, limits: &Limits) -> LayerError {
    match e {
        LayerError::Tar(TarError::Io(io)) => {
            if io.get_ref().is_some_and(|inner| inner.is::<OverLimit>()) {
                LayerError::TooLarge { limit: limits.max_layer_bytes }
            } else {
                LayerError::Decompress(io)
            }
        }
        other => other,
    }
}

#[derive(Debug)]
struct OverLimit;
impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("over the layer size limit")
    }
}
impl std::error::Error for OverLimit {}

/// Counts the uncompressed bytes and stops at the limit.
struct Bounded<R> {
    inner: R,
    left: u64,
    read: u64,
    compressed: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the limit" from "past it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(OverLimit)),
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want]).map_err(|e| {
            if self.compressed {
                io::Error::new(e.kind(), format!("the compressed stream is corrupt or truncated: {e}"))
            } else {
                e
            }
        })?;
        self.left -= n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

/// Hashes and counts the blob's bytes as they are read.
struct Hashing<R> {
    inner: R,
    hasher: Hasher,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
