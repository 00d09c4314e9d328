//! Go binaries' embedded build information: the Go version and the module
//! list (`go version -m` prints the same), found by streaming the file for
//! the `\xff Go buildinf:` header, without loading it or parsing ELF.
//!
//! Since Go 1.18 the header is followed by the two strings inline (flag bit
//! 2): a varint length and the bytes of the version, then of the module
//! information. Older binaries point at the strings instead; those are
//! reported as such, not read.

use std::io::{self, Read};

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Header: magic, pointer size, flags, then padding to 32 bytes.
const HEADER: usize = 32;
/// Bytes kept after the magic: the header and both strings (real module
/// lists are a few KiB; the biggest seen are under 100 KiB).
const KEEP: usize = 512 << 10;
/// The sentinels Go wraps the module information in (16 bytes each).
const SENTINEL: usize = 16;

/// What a scan found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// `go1.23.8`, then the module information as `go version -m` reads it.
    Inline { go_version: String, modinfo: String },
    /// A binary of Go before 1.18: its strings are pointers into the binary.
    Old,
}

/// Streams `reader` (of `size` bytes, for sizing the window) for Go's
/// build information.
pub fn scan(mut reader: impl Read, size: u64) -> io::Result<Option<Found>> {
    let finder = memchr::memmem::Finder::new(MAGIC);
    // A small file needs no 256 KiB window (a layer scans every executable).
    let window = usize::try_from(size.saturating_add(1)).unwrap_or(usize::MAX).clamp(2 * MAGIC.len(), 256 << 10);
    let mut buf = vec![0u8; window];
    let mut filled = 0;
    loop {
        let n = read_some(&mut reader, &mut buf[filled..])?;
        if n == 0 {
            return Ok(None);
        }
        filled += n;
        if let Some(at) = finder.find(&buf[..filled]) {
            // Keep the header and what follows: move it to the front, read on.
            buf.copy_within(at..filled, 0);
            filled -= at;
            let mut tail = buf[..filled].to_vec();
            let have = tail.len();
            tail.resize(KEEP, 0);
            let more = read_up_to(&mut reader, &mut tail[have..])?;
            tail.truncate(have + more);
            return Ok(parse(&tail));
        }
        // Not here: keep the last bytes, which may hold the magic's start.
        let keep = MAGIC.len() - 1;
        if filled > keep {
            buf.copy_within(filled - keep..filled, 0);
            filled = keep;
        }
    }
}

fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = read_some(reader, &mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// The header at the start of `bytes`.
fn parse(bytes: &[u8]) -> Option<Found> {
    let flags = *bytes.get(MAGIC.len() + 1)?;
    if flags & 2 == 0 {
        return Some(Found::Old);
    }
    let mut rest = bytes.get(HEADER..)?;
    let go_version = String::from_utf8_lossy(read_bytes(&mut rest)?).into_owned();
    let mut modinfo = read_bytes(&mut rest)?;
    // Go wraps the module information in 16-byte sentinels (binary bytes):
    // debug/buildinfo's own test for them.
    if modinfo.len() > 2 * SENTINEL && modinfo[modinfo.len() - SENTINEL - 1] == b'\n' {
        modinfo = &modinfo[SENTINEL..modinfo.len() - SENTINEL];
    }
    let modinfo = String::from_utf8_lossy(modinfo).into_owned();
    go_version.starts_with("go").then_some(Found::Inline { go_version, modinfo })
}

/// A uvarint-length-prefixed string's bytes.
fn read_bytes<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (mut len, mut shift) = (0u64, 0);
    loop {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let (s, rest) = (bytes.get(..len)?, bytes.get(len..)?);
    *bytes = rest;
    Some(s)
}

/// One module of a binary: the main module or a dependency, as built (a
/// replacement's path and version when the dependency was replaced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
}

/// The modules of `go version -m`'s listing: the main module (unless built
/// from a work tree, `(devel)`) and every dependency, replacements applied.
pub fn modules(modinfo: &str) -> Vec<Module> {
    let mut out: Vec<Module> = Vec::new();
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] if *version != "(devel)" => {
                out.push(Module { path: (*path).to_owned(), version: (*version).to_owned() });
            }
            // `=> replacement version sum`: the dependency above was replaced.
            ["=>", path, version, ..] => {
                if let Some(last) = out.last_mut() {
                    last.path = (*path).to_owned();
                    last.version = (*version).to_owned();
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn binary(go: &str, modinfo: &str, at: usize) -> Vec<u8> {
        let mut b = vec![0x7f, b'E', b'L', b'F'];
        b.resize(at, 0xaa);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&[8, 2]);
        b.resize(at + HEADER, 0);
        // Go's sentinels, as its linker writes them.
        let start = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
        let end = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
        let wrapped = [&start[..], modinfo.as_bytes(), &end[..]].concat();
        for s in [go.as_bytes(), &wrapped[..]] {
            let mut n = s.len();
            while n >= 0x80 {
                b.push((n as u8) | 0x80);
                n >>= 7;
            }
            b.push(n as u8);
            b.extend_from_slice(s);
        }
        b.resize(b.len() + 1000, 0);
        b
    }

    #[test]
    fn finds_the_build_information_wherever_it_lies() {
        let modinfo = "path\tk8s.io/kubectl\nmod\tk8s.io/kubectl\t(devel)\t\ndep\tgolang.org/x/net\tv0.33.0\th1:x\n\
                       dep\tgithub.com/old/thing\tv1.0.0\n=>\tgithub.com/new/thing\tv1.2.0\th1:y\nbuild\t-compiler=gc\n";
        // Across the scanner's chunk boundary, and at an odd offset.
        for at in [64, (256 << 10) - 5, 1_000_003] {
            let bytes = binary("go1.23.8", modinfo, at);
            let found = scan(&bytes[..], bytes.len() as u64).unwrap().unwrap();
            let Found::Inline { go_version, modinfo: got } = found else { panic!("inline") };
            assert_eq!(go_version, "go1.23.8");
            assert!(got.starts_with("path\tk8s.io/kubectl") && got.ends_with("-compiler=gc\n"), "{got:?}");
            let mods = modules(&got);
            let listed: Vec<(&str, &str)> = mods.iter().map(|m| (m.path.as_str(), m.version.as_str())).collect();
            assert_eq!(listed, [("golang.org/x/net", "v0.33.0"), ("github.com/new/thing", "v1.2.0")]);
        }
        assert_eq!(scan(&b"\x7fELF no go here"[..], 15).unwrap(), None);
        let mut old = binary("go1.17", "", 64);
        old[64 + MAGIC.len() + 1] = 0;
        assert_eq!(scan(&old[..], old.len() as u64).unwrap(), Some(Found::Old));
    }
}
