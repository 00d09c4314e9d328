//! rpm's package database as recent distributions keep it: SQLite
//! (`rpmdb.sqlite`, RHEL 9, Fedora 33+, AlmaLinux, Rocky, openSUSE), whose
//! `Packages` table holds each installed package's header. The Berkeley DB
//! (`Packages`) and ndb (`Packages.db`) formats of older releases are found
//! and named, not read.
//!
//! The database is opened from memory, read-only, with SQLite's defensive
//! settings and a step budget, so a hostile file can neither reach the disk
//! nor run long; the headers are parsed by hand (rpm's header format: an
//! index of tagged entries over a data store).

use crate::Package;

/// Virtual-machine steps SQLite may take reading one database.
const MAX_STEPS: u64 = 50_000_000;

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// The packages of an `rpmdb.sqlite`, or why it could not be read.
pub fn read_sqlite(data: &[u8]) -> Result<Vec<Package>, String> {
    // rpm keeps its database in WAL mode (file format 2 at bytes 18 and 19);
    // a database in memory has no WAL, so it is read as a rollback-journal one.
    let mut bytes = data.to_vec();
    if bytes.get(18..20) == Some(&[2, 2]) {
        bytes[18] = 1;
        bytes[19] = 1;
    }
    let mut db = rusqlite::Connection::open_in_memory().map_err(|e| e.to_string())?;
    db.deserialize_read_exact(rusqlite::MAIN_DB, &bytes[..], bytes.len(), true).map_err(|e| e.to_string())?;
    db.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true).map_err(|e| e.to_string())?;
    db.pragma_update(None, "trusted_schema", "OFF").map_err(|e| e.to_string())?;
    db.pragma_update(None, "cell_size_check", "ON").map_err(|e| e.to_string())?;
    let steps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&steps);
    // Called every 1,000 steps; stopping makes the query fail.
    db.progress_handler(1000, Some(move || counted.fetch_add(1000, std::sync::atomic::Ordering::Relaxed) > MAX_STEPS));
    // A `Packages` view (or trigger-laden schema) is no rpm database.
    let kind: String = db
        .query_row("SELECT type FROM sqlite_master WHERE name = 'Packages'", [], |r| r.get(0))
        .map_err(|e| format!("no Packages table: {e}"))?;
    if kind != "table" {
        return Err(format!("Packages is a {kind}, not a table"));
    }
    let mut statement = db.prepare("SELECT blob FROM Packages").map_err(|e| e.to_string())?;
    let rows = statement.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(|e| e.to_string())?;
    let mut packages = Vec::new();
    for blob in rows {
        let blob = blob.map_err(|e| e.to_string())?;
        if let Some(p) = header_package(&blob) {
            packages.push(p);
        }
    }
    Ok(packages)
}

/// One header's package; `None` for what is not one (rpm keeps imported
/// signing keys as `gpg-pubkey` pseudo-packages).
fn header_package(blob: &[u8]) -> Option<Package> {
    let be32 = |at: usize| blob.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    let entries = usize::try_from(be32(0)?).ok()?;
    let store_len = usize::try_from(be32(4)?).ok()?;
    let store_at = 8usize.checked_add(entries.checked_mul(16)?)?;
    let store = blob.get(store_at..store_at.checked_add(store_len)?)?;
    let (mut name, mut version, mut release, mut arch, mut source, mut epoch) = ("", "", "", "", "", None);
    for i in 0..entries {
        let at = 8 + i * 16;
        let tag = be32(at)? as i32;
        let kind = be32(at + 4)?;
        let offset = usize::try_from(be32(at + 8)?).ok()?;
        let text = || -> Option<&str> {
            let rest = store.get(offset..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&rest[..end]).ok()
        };
        let is_text = kind == TYPE_STRING || kind == TYPE_I18NSTRING;
        match tag {
            TAG_NAME if is_text => name = text()?,
            TAG_VERSION if is_text => version = text()?,
            TAG_RELEASE if is_text => release = text()?,
            TAG_ARCH if is_text => arch = text()?,
            TAG_SOURCERPM if is_text => source = text()?,
            TAG_EPOCH if kind == TYPE_INT32 => {
                epoch = store.get(offset..offset + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
            }
            _ => {}
        }
    }
    if name.is_empty() || version.is_empty() || name == "gpg-pubkey" {
        return None;
    }
    let evr = match (epoch, release) {
        (Some(e), "") => format!("{e}:{version}"),
        (Some(e), r) => format!("{e}:{version}-{r}"),
        (None, "") => version.to_owned(),
        (None, r) => format!("{version}-{r}"),
    };
    // `openssl-3.0.7-27.el9.src.rpm`: the source package is what is left
    // after its version and release.
    let origin = source
        .strip_suffix(".src.rpm")
        .or_else(|| source.strip_suffix(".nosrc.rpm"))
        .and_then(|s| s.rsplitn(3, '-').nth(2))
        .filter(|o| *o != name)
        .unwrap_or("");
    Some(Package {
        name: name.to_owned(),
        version: evr,
        arch: arch.to_owned(),
        source: "rpm".into(),
        origin: origin.to_owned(),
        origin_version: String::new(),
        path: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header as rpm writes it: the index, then the data store.
    fn header(entries: &[(i32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        for (tag, kind, data) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(store.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            store.extend_from_slice(data);
        }
        let mut blob = (entries.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(store);
        blob
    }

    #[test]
    fn headers_give_name_epoch_version_release_and_source() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"openssl-libs\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"27.el9\0"),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
            (TAG_SOURCERPM, TYPE_STRING, b"openssl-3.0.7-27.el9.src.rpm\0"),
        ]);
        let p = header_package(&blob).expect("a package");
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.arch.as_str()),
            ("openssl-libs", "1:3.0.7-27.el9", "x86_64")
        );
        assert_eq!(p.origin, "openssl");
        let key = header(&[(TAG_NAME, TYPE_STRING, b"gpg-pubkey\0"), (TAG_VERSION, TYPE_STRING, b"1\0")]);
        assert!(header_package(&key).is_none());
        // Offsets past the store, truncated blobs: nothing, not a panic.
        let mut bad = header(&[(TAG_NAME, TYPE_STRING, b"x\0")]);
        bad[16..20].copy_from_slice(&1000u32.to_be_bytes());
        assert!(header_package(&bad).is_none());
        assert!(header_package(&blob[..20]).is_none());
        assert!(read_sqlite(b"not a database").is_err());
    }
}
