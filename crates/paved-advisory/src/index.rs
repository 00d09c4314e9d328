//! The local advisory index: what `paved advisories import` keeps, and what
//! matching reads, offline.
//!
//! One file, `osv-index.bin`:
//!
//! ```text
//! "PAVEDOSV" | u32 format
//! per key, in key order: entries (JSON array)
//! the directory, in key order: u32 key length | key ("Ecosystem\0name") | u64 entries offset | u32 entries length
//! header (JSON)
//! u64 directory offset | u64 key count | u32 header length | "PAVEDOSV"
//! ```
//!
//! The directory and header come last so that the file is written in one
//! pass with only the directory in memory. A lookup of many packages at
//! once (an image's) sorts them and walks the directory once beside them,
//! then reads only the entries of packages that have any: memory stays flat
//! as the database grows, and time is one sequential read of the directory.
//!
//! An import streams its inputs (records, directories, zip dumps read entry
//! by entry), spills each record's compact entries to a scratch file and
//! keeps only keys and offsets in memory, then writes the new index beside
//! the old one and renames it over: an import that fails or stops halfway
//! leaves the previous index as it was. Records already in the index are
//! merged in; a record imported again keeps its newest `modified` version.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
// paved runs on Linux: positional reads keep one open index shareable.
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::osv::{Ecosystem, Range, Record, Severity, normalize_name};

pub const INDEX_FILE: &str = "osv-index.bin";
const MAGIC: &[u8; 8] = b"PAVEDOSV";
const FORMAT: u32 = 1;
/// Directory offset, key count, header length, magic.
const TRAILER: usize = 8 + 8 + 4 + 8;
/// Largest record paved reads (the biggest real ones are a few hundred KB).
const MAX_RECORD_BYTES: u64 = 16 << 20;
/// A lookup reads neighbouring entries together when the bytes between them
/// are at most this many, up to a span of `MAX_SPAN`.
const MAX_GAP: u64 = 16 << 10;
const MAX_SPAN: u64 = 1 << 20;
/// Characters of a summary kept in the index.
const MAX_SUMMARY: usize = 200;

/// What one record says about one package, as the index keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub modified: String,
    /// The ecosystem as the record names it (`Debian:12`).
    pub ecosystem: String,
    /// The package name as the record writes it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// A severity word the publisher gave (`HIGH`, `moderate`), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_word: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Listed versions, kept only where no range can be evaluated (they
    /// repeat what the ranges say otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// What the index holds, written at its head.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub records: u64,
    pub withdrawn: u64,
    /// The newest record's `modified` date: how fresh the index is.
    pub newest: String,
    /// Records per ecosystem (without release).
    pub ecosystems: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a paved advisory index, or a damaged one ({why}); import the advisories again")]
    Corrupt { path: PathBuf, why: &'static str },
    #[error("{count} input(s) could not be imported; the index was left as it was:\n{}", .problems.join("\n"))]
    Invalid { count: usize, problems: Vec<String> },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.to_owned(), source }
}

/// A package asked about: its ecosystem (without release) and name.
pub type PackageKey<'q> = (&'q str, &'q str);

/// An open index.
pub struct Index {
    path: PathBuf,
    file: File,
    header: Header,
    directory: u64,
    directory_len: u64,
    keys: u64,
}

impl Index {
    /// The index in `dir`, or `None` when nothing was imported there yet.
    pub fn open(dir: &Path) -> Result<Option<Index>, IndexError> {
        let path = dir.join(INDEX_FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let corrupt = |why| IndexError::Corrupt { path: path.clone(), why };
        let len = file.metadata().map_err(io(&path))?.len();
        let mut head = [0u8; 12];
        file.read_exact(&mut head).map_err(|_| corrupt("no header"))?;
        if head[..8] != MAGIC[..] {
            return Err(corrupt("no header"));
        }
        if read_u32(&head, 8) != Some(FORMAT) {
            return Err(corrupt("another format"));
        }
        let trailer_at = len.checked_sub(TRAILER as u64).filter(|t| *t >= 12).ok_or_else(|| corrupt("truncated"))?;
        let mut trailer = [0u8; TRAILER];
        file.seek(SeekFrom::Start(trailer_at)).map_err(io(&path))?;
        file.read_exact(&mut trailer).map_err(|_| corrupt("truncated"))?;
        if trailer[20..] != MAGIC[..] {
            return Err(corrupt("truncated"));
        }
        let (directory, keys) = (read_u64(&trailer, 0).unwrap_or(0), read_u64(&trailer, 8).unwrap_or(0));
        let header_len = u64::from(read_u32(&trailer, 16).unwrap_or(0));
        let header_at = trailer_at.checked_sub(header_len).ok_or_else(|| corrupt("bad header"))?;
        if directory < 12 || directory > header_at || header_len > MAX_RECORD_BYTES {
            return Err(corrupt("bad directory"));
        }
        let mut header = vec![0u8; header_len as usize];
        file.seek(SeekFrom::Start(header_at)).map_err(io(&path))?;
        file.read_exact(&mut header).map_err(|_| corrupt("truncated"))?;
        let header: Header = serde_json::from_slice(&header).map_err(|_| corrupt("bad header"))?;
        Ok(Some(Index { path, file, header, directory, directory_len: header_at - directory, keys }))
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, why: &'static str) -> IndexError {
        IndexError::Corrupt { path: self.path.clone(), why }
    }

    /// Walks the directory in key order, calling `each` with every key and
    /// where its entries are; stops when `each` says so.
    fn walk(&self, mut each: impl FnMut(&[u8], u64, u32) -> bool) -> Result<(), IndexError> {
        let at = At { file: &self.file, pos: self.directory, end: self.directory + self.directory_len };
        let mut dir = std::io::BufReader::with_capacity(64 << 10, at);
        let mut key = Vec::new();
        for _ in 0..self.keys {
            let mut n = [0u8; 4];
            dir.read_exact(&mut n).map_err(|_| self.corrupt("truncated directory"))?;
            let key_len = u32::from_le_bytes(n) as usize;
            if key_len > 64 << 10 {
                return Err(self.corrupt("bad directory"));
            }
            key.resize(key_len, 0);
            dir.read_exact(&mut key).map_err(|_| self.corrupt("truncated directory"))?;
            let mut at = [0u8; 12];
            dir.read_exact(&mut at).map_err(|_| self.corrupt("truncated directory"))?;
            let (offset, len) = (read_u64(&at, 0).unwrap_or(0), read_u32(&at, 8).unwrap_or(0));
            if !each(&key, offset, len) {
                break;
            }
        }
        Ok(())
    }

    fn entries_at(&self, offset: u64, len: u32) -> Result<Vec<Entry>, IndexError> {
        let bytes = self.bytes_at(offset, u64::from(len))?;
        serde_json::from_slice(&bytes).map_err(|_| self.corrupt("bad entries"))
    }

    /// Every entry for a package of an ecosystem (named without release).
    pub fn lookup(&self, ecosystem: &str, name: &str) -> Result<Vec<Entry>, IndexError> {
        let mut found = self.lookup_many([(ecosystem, name)])?;
        Ok(found.pop().map(|(_, entries)| entries).unwrap_or_default())
    }

    /// The entries of many packages, in one walk of the directory: the
    /// `(ecosystem, name)` pairs that have any, with them.
    pub fn lookup_many<'q>(
        &self,
        packages: impl IntoIterator<Item = PackageKey<'q>>,
    ) -> Result<Vec<(PackageKey<'q>, Vec<Entry>)>, IndexError> {
        let mut out = Vec::new();
        self.lookup_each(packages, |key, entries| out.push((key, entries)))?;
        Ok(out)
    }

    /// Like [`Index::lookup_many`], handing each package's entries to `each`
    /// as they are read, so that only one package's are held at a time.
    pub fn lookup_each<'q>(
        &self,
        packages: impl IntoIterator<Item = PackageKey<'q>>,
        mut each: impl FnMut(PackageKey<'q>, Vec<Entry>),
    ) -> Result<(), IndexError> {
        let mut wanted: Vec<(String, PackageKey<'q>)> =
            packages.into_iter().map(|(e, n)| (key_of(e, n), (e, n))).collect();
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut hits: Vec<(usize, u64, u32)> = Vec::new();
        let mut next = 0;
        self.walk(|key, offset, len| {
            while next < wanted.len() && wanted[next].0.as_bytes() < key {
                next += 1;
            }
            while next < wanted.len() && wanted[next].0.as_bytes() == key {
                hits.push((next, offset, len));
                next += 1;
            }
            next < wanted.len()
        })?;
        // Entries lie in key order, as the hits do: neighbours are read in
        // one go (a read per package was most of the time of a lookup).
        let mut start = 0;
        while start < hits.len() {
            let first = hits[start].1;
            let mut end = start + 1;
            while end < hits.len()
                && hits[end].1 >= first
                && hits[end].1 + u64::from(hits[end].2) - first <= MAX_SPAN
                && hits[end].1 - (hits[end - 1].1 + u64::from(hits[end - 1].2)) <= MAX_GAP
            {
                end += 1;
            }
            let last = hits[end - 1];
            let span = self.bytes_at(first, last.1 + u64::from(last.2) - first)?;
            for &(i, offset, len) in &hits[start..end] {
                let at = (offset - first) as usize;
                let bytes = span.get(at..at + len as usize).ok_or_else(|| self.corrupt("bad entries"))?;
                let entries = serde_json::from_slice(bytes).map_err(|_| self.corrupt("bad entries"))?;
                each(wanted[i].1, entries);
            }
            start = end;
        }
        Ok(())
    }

    fn bytes_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, IndexError> {
        if offset < 12 || offset.saturating_add(len) > self.directory {
            return Err(self.corrupt("an entry points outside the file"));
        }
        let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| self.corrupt("bad entries"))?];
        self.file.read_exact_at(&mut bytes, offset).map_err(|_| self.corrupt("truncated entries"))?;
        Ok(bytes)
    }

    /// Every (key, entries) in key order; for merging into a new import.
    fn all(&self) -> Result<Vec<(String, u64, u32)>, IndexError> {
        let mut all = Vec::new();
        self.walk(|key, offset, len| {
            all.push((String::from_utf8_lossy(key).into_owned(), offset, len));
            true
        })?;
        Ok(all)
    }
}

/// A stretch of the index file read by position, so that lookups from many
/// threads share one open file without a lock.
struct At<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = usize::try_from((self.end - self.pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `Ecosystem\0normalized name`: releases share a key, a lookup filters them.
fn key_of(ecosystem: &str, name: &str) -> String {
    let base = Ecosystem::parse(ecosystem).name;
    format!("{base}\0{}", normalize_name(base, name))
}

/// The entries a record makes, one per package it names.
pub fn entries_of(record: &Record) -> Vec<(String, Entry)> {
    let word = |v: &Option<serde_json::Value>| {
        v.as_ref().and_then(|d| d.get("severity")).and_then(|s| s.as_str()).map(str::to_owned)
    };
    let summary = record
        .summary
        .clone()
        .or_else(|| record.details.as_ref().and_then(|d| d.lines().next().map(str::to_owned)))
        .map(|s| {
            let s = s.trim().to_owned();
            if s.chars().count() > MAX_SUMMARY { s.chars().take(MAX_SUMMARY - 1).chain(['…']).collect() } else { s }
        });
    record
        .affected
        .iter()
        .filter_map(|a| {
            let package = a.package.as_ref()?;
            let ranges: Vec<Range> = a.ranges.iter().filter(|r| r.kind != "GIT").cloned().collect();
            let versions = if ranges.is_empty() { a.versions.clone() } else { Vec::new() };
            let entry = Entry {
                id: record.id.clone(),
                modified: record.modified.clone(),
                ecosystem: package.ecosystem.clone(),
                name: package.name.clone(),
                aliases: record.aliases.clone(),
                summary: summary.clone(),
                severity: record.severity.clone(),
                severity_word: word(&a.database_specific)
                    .or_else(|| word(&a.ecosystem_specific))
                    .or_else(|| word(&record.database_specific)),
                ranges,
                versions,
                withdrawn: record.withdrawn.is_some(),
            };
            Some((key_of(&package.ecosystem, &package.name), entry))
        })
        .collect()
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Records read from the inputs.
    pub read: u64,
    pub header: Header,
    /// Ecosystems paved cannot order versions of: kept, never matched.
    pub unknown_ecosystems: BTreeMap<String, u64>,
    pub bytes: u64,
}

/// Builds a new index from the current one and the inputs.
pub struct Importer {
    dir: PathBuf,
    spill_path: PathBuf,
    spill: BufWriter<File>,
    spilled: u64,
    /// (key, offset, length) of each spilled entry.
    slots: Vec<(String, u64, u32)>,
    problems: Vec<String>,
    read: u64,
    unknown: BTreeMap<String, u64>,
}

impl Importer {
    pub fn new(dir: &Path) -> Result<Importer, IndexError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let spill_path = dir.join(format!(".osv-import-{}.spill", std::process::id()));
        let spill = File::create(&spill_path).map_err(io(&spill_path))?;
        let mut importer = Importer {
            dir: dir.to_owned(),
            spill_path,
            spill: BufWriter::new(spill),
            spilled: 0,
            slots: Vec::new(),
            problems: Vec::new(),
            read: 0,
            unknown: BTreeMap::new(),
        };
        if let Some(current) = Index::open(dir)? {
            for (key, offset, len) in current.all()? {
                for entry in current.entries_at(offset, len)? {
                    importer.spill_entry(key.clone(), &entry)?;
                }
            }
        }
        Ok(importer)
    }

    fn spill_entry(&mut self, key: String, entry: &Entry) -> Result<(), IndexError> {
        let bytes = serde_json::to_vec(entry).map_err(|e| io(&self.spill_path)(e.into()))?;
        self.spill.write_all(&bytes).map_err(io(&self.spill_path))?;
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.slots.push((key, self.spilled, len));
        self.spilled += bytes.len() as u64;
        Ok(())
    }

    /// Adds one record's text (JSON, or YAML as some publishers write it);
    /// `name` says where it came from in errors.
    pub fn add_text(&mut self, name: &str, text: &[u8], yaml: bool) -> Result<(), IndexError> {
        let record: Result<Record, String> = if yaml {
            let limits = paved_yaml::Limits::default();
            paved_yaml::decode(text, &limits)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    paved_yaml::load_data(t, &limits, paved_yaml::Schema::Kubernetes).map_err(|e| e.to_string())
                })
                .and_then(|docs| match docs.as_slice() {
                    [doc] => paved_yaml::from_node::<Record>(doc)
                        .map_err(|e| format!("line {}, column {}: {}", e.pos.line, e.pos.col, e.message)),
                    _ => Err("expected one record".into()),
                })
        } else {
            serde_json::from_slice(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))
        };
        let record = match record {
            Ok(r) if r.id.trim().is_empty() => Err("a record without an id".to_owned()),
            other => other,
        };
        match record {
            Ok(record) => {
                self.read += 1;
                for (key, entry) in entries_of(&record) {
                    if Ecosystem::parse(&entry.ecosystem).scheme().is_none() {
                        *self.unknown.entry(Ecosystem::parse(&entry.ecosystem).name.to_owned()).or_default() += 1;
                    }
                    self.spill_entry(key, &entry)?;
                }
            }
            Err(message) => self.problems.push(format!("{name}: {message}")),
        }
        Ok(())
    }

    /// Adds a file, a directory (recursively: `*.json`, `*.yaml`, `*.yml`,
    /// `*.zip`) or a zip dump (streamed, entry by entry).
    pub fn add_path(&mut self, path: &Path) -> Result<(), IndexError> {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        if meta.is_dir() {
            let mut children: Vec<PathBuf> =
                std::fs::read_dir(path).map_err(io(path))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            children.sort();
            for child in children {
                let is_dir = child.is_dir();
                if is_dir || kind_of(&child.to_string_lossy()).is_some() {
                    self.add_path(&child)?;
                }
            }
            return Ok(());
        }
        let shown = path.display().to_string();
        match kind_of(&shown) {
            Some(Kind::Zip) => {
                let file = File::open(path).map_err(io(path))?;
                self.add_zip(&shown, std::io::BufReader::new(file))
            }
            kind => {
                if meta.len() > MAX_RECORD_BYTES {
                    self.problems.push(format!("{shown}: larger than {MAX_RECORD_BYTES} bytes"));
                    return Ok(());
                }
                let text = std::fs::read(path).map_err(io(path))?;
                self.add_text(&shown, &text, kind == Some(Kind::Yaml))
            }
        }
    }

    /// A zip dump (osv.dev's `all.zip`), read as a stream: one record in
    /// memory at a time, whatever the size of the dump.
    pub fn add_zip(&mut self, name: &str, mut reader: impl Read) -> Result<(), IndexError> {
        loop {
            let mut file = match zip::read::read_zipfile_from_stream(&mut reader) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.problems.push(format!("{name}: not a readable zip ({e})"));
                    return Ok(());
                }
            };
            let entry_name = file.name().map(|n| n.into_owned()).unwrap_or_default();
            let Some(kind) = kind_of(&entry_name) else { continue };
            if kind == Kind::Zip || file.is_dir() {
                continue;
            }
            let mut text = Vec::new();
            if let Err(e) = (&mut file).take(MAX_RECORD_BYTES + 1).read_to_end(&mut text) {
                self.problems.push(format!("{name}!{entry_name}: {e}"));
                return Ok(());
            }
            if text.len() as u64 > MAX_RECORD_BYTES {
                self.problems.push(format!("{name}!{entry_name}: larger than {MAX_RECORD_BYTES} bytes"));
                continue;
            }
            self.add_text(&format!("{name}!{entry_name}"), &text, kind == Kind::Yaml)?;
        }
    }

    /// Writes the new index and puts it in place; on any problem, removes
    /// the scratch files and leaves the old index.
    pub fn finish(mut self) -> Result<ImportSummary, IndexError> {
        let result = self.write();
        let _ = std::fs::remove_file(&self.spill_path);
        result
    }

    fn write(&mut self) -> Result<ImportSummary, IndexError> {
        if !self.problems.is_empty() {
            let problems = std::mem::take(&mut self.problems);
            return Err(IndexError::Invalid { count: problems.len(), problems });
        }
        self.spill.flush().map_err(io(&self.spill_path))?;
        let mut spill = File::open(&self.spill_path).map_err(io(&self.spill_path))?;
        // Stable: for one key, entries keep the order they came in.
        self.slots.sort_by(|a, b| a.0.cmp(&b.0));
        let path = self.dir.join(INDEX_FILE);
        let tmp = self.dir.join(format!(".{INDEX_FILE}.{}.tmp", std::process::id()));
        let written = self.write_groups(&mut spill, &tmp).and_then(|(header, bytes)| {
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok((header, bytes))
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        let (header, bytes) = written?;
        Ok(ImportSummary { read: self.read, header, unknown_ecosystems: std::mem::take(&mut self.unknown), bytes })
    }

    /// One key at a time: its entries read back from the spill, a record
    /// imported twice kept at its newest, written out, and forgotten.
    fn write_groups(&self, spill: &mut File, tmp: &Path) -> Result<(Header, u64), IndexError> {
        let spill_err = io(&self.spill_path);
        let mut out = BufWriter::new(File::create(tmp).map_err(io(tmp))?);
        let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(io(tmp));
        write(MAGIC)?;
        write(&FORMAT.to_le_bytes())?;
        let mut pos = 12u64;
        let mut directory: Vec<(&str, u64, u32)> = Vec::new();
        let mut header = Header::default();
        let mut counted: std::collections::HashSet<String> = std::collections::HashSet::new();
        let len32 = |n: usize| u32::try_from(n).map_err(|_| io(tmp)(std::io::Error::other("an entry over 4 GiB")));
        let mut i = 0;
        while i < self.slots.len() {
            let key = self.slots[i].0.as_str();
            let mut entries: Vec<Entry> = Vec::new();
            while i < self.slots.len() && self.slots[i].0 == key {
                let (_, at, len) = self.slots[i];
                spill.seek(SeekFrom::Start(at)).map_err(&spill_err)?;
                let mut bytes = vec![0; len as usize];
                spill.read_exact(&mut bytes).map_err(&spill_err)?;
                let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| spill_err(std::io::Error::other(e)))?;
                match entries.iter_mut().find(|e| e.id == entry.id && e.ecosystem == entry.ecosystem) {
                    Some(old) if old.modified <= entry.modified => *old = entry,
                    Some(_) => {}
                    None => entries.push(entry),
                }
                i += 1;
            }
            for e in &entries {
                if header.newest < e.modified {
                    header.newest.clone_from(&e.modified);
                }
                // A record counts once, under the first ecosystem it names.
                if counted.insert(e.id.clone()) {
                    header.records += 1;
                    header.withdrawn += u64::from(e.withdrawn);
                    *header.ecosystems.entry(Ecosystem::parse(&e.ecosystem).name.to_owned()).or_default() += 1;
                }
            }
            let blob = serde_json::to_vec(&entries).map_err(|e| io(tmp)(e.into()))?;
            directory.push((key, pos, len32(blob.len())?));
            write(&blob)?;
            pos += blob.len() as u64;
        }
        let directory_at = pos;
        for (key, offset, len) in &directory {
            write(&len32(key.len())?.to_le_bytes())?;
            write(key.as_bytes())?;
            write(&offset.to_le_bytes())?;
            write(&len.to_le_bytes())?;
            pos += 4 + key.len() as u64 + 12;
        }
        let header_json = serde_json::to_vec(&header).map_err(|e| io(tmp)(e.into()))?;
        write(&header_json)?;
        write(&directory_at.to_le_bytes())?;
        write(&(directory.len() as u64).to_le_bytes())?;
        write(&len32(header_json.len())?.to_le_bytes())?;
        write(MAGIC)?;
        let file = out.into_inner().map_err(|e| io(tmp)(e.into_error()))?;
        file.sync_all().map_err(io(tmp))?;
        let bytes = pos + header_json.len() as u64 + TRAILER as u64;
        Ok((header, bytes))
    }
}

impl Drop for Importer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spill_path);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Yaml,
    Zip,
}

fn kind_of(name: &str) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        Some(Kind::Json)
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Some(Kind::Yaml)
    } else if lower.ends_with(".zip") {
        Some(Kind::Zip)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn record(id: &str, modified: &str, ecosystem: &str, name: &str, fixed: &str) -> String {
        serde_json::json!({
            "id": id, "modified": modified, "aliases": [format!("CVE-{id}")],
            "summary": format!("{name} is broken"),
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
        })
        .to_string()
    }

    #[test]
    fn imports_merge_keep_the_newest_and_look_up_in_one_walk() {
        let dir = tempfile::tempdir().unwrap();
        let mut import = Importer::new(dir.path()).unwrap();
        import
            .add_text(
                "a",
                record("DSA-1", "2024-01-01T00:00:00Z", "Debian:12", "openssl", "3.0.11-1~deb12u1").as_bytes(),
                false,
            )
            .unwrap();
        import
            .add_text("b", record("GHSA-1", "2024-02-01T00:00:00Z", "PyPI", "Zope.Interface", "5.0").as_bytes(), false)
            .unwrap();
        import
            .add_text("c", record("X-1", "2024-03-01T00:00:00Z", "RubyGems", "rails", "7.0").as_bytes(), false)
            .unwrap();
        let summary = import.finish().unwrap();
        assert_eq!(summary.header.records, 3);
        assert_eq!(summary.header.newest, "2024-03-01T00:00:00Z");
        assert_eq!(summary.unknown_ecosystems.get("RubyGems"), Some(&1), "kept, and said to be unmatched");
        // A second import adds to the first; a record imported again keeps its newest version.
        let mut import = Importer::new(dir.path()).unwrap();
        import
            .add_text(
                "d",
                record("DSA-1", "2024-05-01T00:00:00Z", "Debian:12", "openssl", "3.0.13-1~deb12u1").as_bytes(),
                false,
            )
            .unwrap();
        import
            .add_text("e", record("DSA-1", "2023-01-01T00:00:00Z", "Debian:12", "openssl", "0.1").as_bytes(), false)
            .unwrap();
        let summary = import.finish().unwrap();
        assert_eq!(summary.header.records, 3);
        let index = Index::open(dir.path()).unwrap().expect("an index");
        let openssl = index.lookup("Debian", "openssl").unwrap();
        assert_eq!(openssl.len(), 1);
        assert_eq!(openssl[0].ranges[0].events[1].fixed.as_deref(), Some("3.0.13-1~deb12u1"));
        // PyPI names are normalized on both sides.
        assert_eq!(index.lookup("PyPI", "zope-interface").unwrap()[0].id, "GHSA-1");
        let many = index.lookup_many([("PyPI", "zope_interface"), ("Debian", "bash"), ("Debian", "openssl")]).unwrap();
        let found: Vec<&str> = many.iter().map(|((_, n), _)| *n).collect();
        assert_eq!(found, ["openssl", "zope_interface"]);
        assert!(index.lookup("Debian", "bash").unwrap().is_empty());
    }

    #[test]
    fn a_bad_input_leaves_the_index_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut import = Importer::new(dir.path()).unwrap();
        import
            .add_text("a", record("A-1", "2024-01-01T00:00:00Z", "Go", "example.com/m", "1.2.0").as_bytes(), false)
            .unwrap();
        import.finish().unwrap();
        let before = std::fs::read(dir.path().join(INDEX_FILE)).unwrap();
        let mut import = Importer::new(dir.path()).unwrap();
        import
            .add_text(
                "good.json",
                record("B-1", "2024-01-01T00:00:00Z", "Go", "example.com/n", "1.0.0").as_bytes(),
                false,
            )
            .unwrap();
        import.add_text("bad.json", b"{\"id\": \"C-1\",\n \"affected\": 7}", false).unwrap();
        let err = import.finish().unwrap_err().to_string();
        assert!(err.contains("bad.json: line 2, column"), "{err}");
        assert_eq!(std::fs::read(dir.path().join(INDEX_FILE)).unwrap(), before);
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(INDEX_FILE)], "no scratch files left");
        // A damaged index is an error that says what to do, not a panic.
        let cut = &before[..before.len() - 3];
        std::fs::write(dir.path().join(INDEX_FILE), cut).unwrap();
        let err = Index::open(dir.path()).err().expect("refused").to_string();
        assert!(err.contains("import the advisories again"), "{err}");
    }

    #[test]
    fn zip_dumps_are_streamed_entry_by_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut bytes);
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for i in 0..50 {
                zip.start_file(format!("GO-{i}.json"), options).unwrap();
                zip.write_all(
                    record(&format!("GO-{i}"), "2024-01-01T00:00:00Z", "Go", &format!("example.com/m{i}"), "1.0.0")
                        .as_bytes(),
                )
                .unwrap();
            }
            zip.start_file("README.txt", options).unwrap();
            zip.write_all(b"not a record").unwrap();
            zip.finish().unwrap();
        }
        let mut import = Importer::new(dir.path()).unwrap();
        import.add_zip("all.zip", std::io::Cursor::new(bytes.into_inner())).unwrap();
        assert_eq!(import.finish().unwrap().header.records, 50);
        let index = Index::open(dir.path()).unwrap().unwrap();
        assert_eq!(index.lookup("Go", "example.com/m49").unwrap()[0].id, "GO-49");
    }

    /// The two real databases of the shared corpus, whole: Go's 4,291 JSON
    /// records and the PyPA's YAML ones.
    #[test]
    fn the_real_go_and_python_databases_import_whole() {
        let dir = tempfile::tempdir().unwrap();
        let go = paved_corpus::path("osv/golang-vulndb/osv");
        let pypa = paved_corpus::path("osv/pypa-advisory-database/vulns");
        let mut import = Importer::new(dir.path()).unwrap();
        import.add_path(&go).unwrap();
        import.add_path(&pypa).unwrap();
        let summary = import.finish().unwrap();
        // What an independent reading of the files says.
        let (mut newest, mut withdrawn, mut go_records) = (String::new(), 0, 0);
        for entry in std::fs::read_dir(&go).unwrap() {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            go_records += 1;
            withdrawn += u64::from(v.get("withdrawn").is_some());
            newest = newest.max(v["modified"].as_str().unwrap().to_owned());
        }
        assert_eq!(go_records, 4291);
        assert_eq!(summary.header.ecosystems.get("Go"), Some(&go_records));
        assert!(summary.header.ecosystems.get("PyPI").copied().unwrap_or(0) >= 600, "{:?}", summary.header);
        assert!(summary.header.withdrawn >= withdrawn, "{withdrawn}");
        assert!(summary.header.newest >= newest);
        assert_eq!(summary.read, summary.header.records);
        let index = Index::open(dir.path()).unwrap().unwrap();
        let stdlib = index.lookup("Go", "stdlib").unwrap();
        assert!(stdlib.len() > 100, "the standard library has many advisories: {}", stdlib.len());
        assert!(!index.lookup("PyPI", "AccessControl").unwrap().is_empty());
    }
}
