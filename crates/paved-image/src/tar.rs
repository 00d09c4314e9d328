//! A streaming tar reader that keeps every allocation bounded.
//!
//! Written by hand because layer analysis needs what general tar crates do
//! not give: the `tar` crate reads GNU long names and PAX records whole into
//! memory however large their header says they are, and a layer is hostile
//! input. Here a long name is capped at [`MAX_NAME`], a PAX record at
//! [`MAX_PAX`], and file contents are skipped unless the caller asks for them
//! (with its own cap). The format follows what containerd's Go reader accepts:
//! ustar with its prefix field, GNU long names and links, PAX `path`,
//! `linkpath` and `size`, base-256 sizes, old GNU sparse headers.

use std::io::{self, Read};

/// Longest GNU long name or link accepted (Linux's PATH_MAX is 4 KiB).
pub const MAX_NAME: u64 = 64 * 1024;
/// Largest PAX extended header accepted.
pub const MAX_PAX: u64 = 1024 * 1024;

const BLOCK: usize = 512;

/// What a tar header says, once long names and PAX records are folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The entry's path as written (not yet normalised).
    pub path: String,
    /// A symlink's or hardlink's target.
    pub link: String,
    pub kind: Kind,
    /// Permission and setuid/setgid/sticky bits.
    pub mode: u32,
    /// Bytes of content that follow the header.
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Hardlink,
    Symlink,
    Dir,
    /// Character and block devices, FIFOs, and anything else.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("entry {entry}: the archive ends inside a header or a file's contents (truncated)")]
    Truncated { entry: u64 },
    #[error("entry {entry}: header checksum does not match; not a tar archive, or corrupt")]
    Checksum { entry: u64 },
    #[error("entry {entry}: {what} is {size} bytes, over the limit of {limit}")]
    Oversized { entry: u64, what: &'static str, size: u64, limit: u64 },
    #[error("entry {entry}: malformed {what}")]
    Malformed { entry: u64, what: &'static str },
}

/// Reads headers one after another, skipping contents nobody asked for.
/// One entry's contents, read through the archive (see [`TarReader::contents`]).
pub struct Contents<'t, R> {
    tar: &'t mut TarReader<R>,
}

impl<R: Read> Read for Contents<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.tar.unread.min(buf.len() as u64)).unwrap_or(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends inside an entry"));
        }
        self.tar.unread -= n as u64;
        Ok(n)
    }
}

pub struct TarReader<R> {
    inner: R,
    /// Content (and padding) of the current entry not yet consumed.
    unread: u64,
    /// Padding after the current entry's content.
    padding: u64,
    entry: u64,
    done: bool,
    scratch: Box<[u8]>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader { inner, unread: 0, padding: 0, entry: 0, done: false, scratch: vec![0; 64 * 1024].into() }
    }

    /// The 1-based number of the entry last returned (for messages).
    pub fn entry_number(&self) -> u64 {
        self.entry
    }

    /// The reader underneath, once the archive is finished with.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry's header, or `None` at the end of the archive.
    pub fn next_header(&mut self) -> Result<Option<Header>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax = Pax::default();
        // Extension headers (long names, PAX) count as part of the entry they
        // precede, so numbers match `tar -t`'s lines.
        self.entry += 1;
        let entry = self.entry;
        loop {
            let mut block = [0u8; BLOCK];
            match read_full(&mut self.inner, &mut block)? {
                0 => {
                    // Archives that stop without the two zero blocks: Go's
                    // reader accepts them, so do we (if no header is pending).
                    self.done = true;
                    if long_name.is_some() || long_link.is_some() || pax.any() {
                        return Err(TarError::Truncated { entry });
                    }
                    return Ok(None);
                }
                BLOCK => {}
                _ => return Err(TarError::Truncated { entry }),
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            if !checksum_ok(&block) {
                return Err(TarError::Checksum { entry });
            }
            let size = parse_number(&block[124..136]).ok_or(TarError::Malformed { entry, what: "size field" })?;
            let flag = block[156];
            match flag {
                b'L' => long_name = Some(self.read_string(size, MAX_NAME, "GNU long name")?),
                b'K' => long_link = Some(self.read_string(size, MAX_NAME, "GNU long link name")?),
                b'x' | b'X' => {
                    let data = self.read_data(size, MAX_PAX, "PAX header")?;
                    pax.merge(&data).ok_or(TarError::Malformed { entry, what: "PAX record" })?;
                }
                b'g' => {
                    // Global PAX headers set defaults nobody relies on in layers.
                    self.read_data(size, MAX_PAX, "global PAX header")?;
                }
                _ => {
                    let kind = match flag {
                        b'0' | 0 | b'7' | b'S' => Kind::File,
                        b'1' => Kind::Hardlink,
                        b'2' => Kind::Symlink,
                        b'5' => Kind::Dir,
                        _ => Kind::Other,
                    };
                    let path = match (pax.path.take(), long_name.take()) {
                        (Some(p), _) | (None, Some(p)) => p,
                        (None, None) => ustar_name(&block),
                    };
                    let link = match (pax.linkpath.take(), long_link.take()) {
                        (Some(l), _) | (None, Some(l)) => l,
                        (None, None) => cstr(&block[157..257]),
                    };
                    let mode =
                        parse_number(&block[100..108]).ok_or(TarError::Malformed { entry, what: "mode field" })?;
                    let mut size = pax.size.take().unwrap_or(size);
                    if flag == b'S' && block[482] != 0 {
                        self.skip_sparse_extensions()?;
                    }
                    // As Go's archive/tar: these types carry no data whatever
                    // their size field says.
                    if matches!(kind, Kind::Hardlink | Kind::Symlink | Kind::Dir) || matches!(flag, b'3' | b'4' | b'6')
                    {
                        size = 0;
                    }
                    self.unread = size;
                    self.padding = pad(size);
                    let mode = u32::try_from(mode & 0o7777).unwrap_or(0);
                    return Ok(Some(Header { path, link, kind, mode, size }));
                }
            }
        }
    }

    /// The current entry's contents when at most `limit` bytes; `None`
    /// (and the contents skipped) when larger.
    pub fn read_contents(&mut self, limit: u64) -> Result<Option<Vec<u8>>, TarError> {
        if self.unread > limit {
            self.skip_rest()?;
            return Ok(None);
        }
        let size = self.unread;
        let mut data = vec![0; usize::try_from(size).unwrap_or(0)];
        let got = read_full(&mut self.inner, &mut data)?;
        if got < data.len() {
            return Err(TarError::Truncated { entry: self.entry });
        }
        self.unread = 0;
        self.skip_rest()?;
        Ok(Some(data))
    }

    /// The current entry's contents as a stream; what is not read of them
    /// is skipped at the next header.
    pub fn contents(&mut self) -> Contents<'_, R> {
        Contents { tar: self }
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let mut left = self.unread + self.padding;
        while left > 0 {
            let want = usize::try_from(left.min(self.scratch.len() as u64)).unwrap_or(BLOCK);
            let got = self.inner.read(&mut self.scratch[..want]);
            match got {
                Ok(0) => return Err(TarError::Truncated { entry: self.entry }),
                Ok(n) => left -= n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.unread = 0;
        self.padding = 0;
        Ok(())
    }

    fn read_data(&mut self, size: u64, limit: u64, what: &'static str) -> Result<Vec<u8>, TarError> {
        if size > limit {
            return Err(TarError::Oversized { entry: self.entry, what, size, limit });
        }
        self.unread = size;
        self.padding = pad(size);
        match self.read_contents(limit)? {
            Some(data) => Ok(data),
            None => Err(TarError::Oversized { entry: self.entry, what, size, limit }),
        }
    }

    fn read_string(&mut self, size: u64, limit: u64, what: &'static str) -> Result<String, TarError> {
        let data = self.read_data(size, limit, what)?;
        Ok(cstr(&data))
    }

    fn skip_sparse_extensions(&mut self) -> Result<(), TarError> {
        // Each extension block ends with an "is extended" flag at byte 504.
        for _ in 0..4096 {
            let mut block = [0u8; BLOCK];
            if read_full(&mut self.inner, &mut block)? < BLOCK {
                return Err(TarError::Truncated { entry: self.entry });
            }
            if block[504] == 0 {
                return Ok(());
            }
        }
        Err(TarError::Malformed { entry: self.entry, what: "sparse header chain" })
    }
}

/// Fields a PAX extended header can override.
#[derive(Default)]
struct Pax {
    path: Option<String>,
    linkpath: Option<String>,
    size: Option<u64>,
}

impl Pax {
    fn any(&self) -> bool {
        self.path.is_some() || self.linkpath.is_some() || self.size.is_some()
    }

    /// Reads records `"<len> <key>=<value>\n"`; `None` when malformed.
    fn merge(&mut self, mut data: &[u8]) -> Option<()> {
        while !data.is_empty() {
            let space = data.iter().position(|&b| b == b' ')?;
            let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
            if len <= space + 1 || len > data.len() {
                return None;
            }
            let record = &data[space + 1..len];
            let record = record.strip_suffix(b"\n")?;
            let eq = record.iter().position(|&b| b == b'=')?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => self.path = Some(String::from_utf8_lossy(value).into_owned()),
                b"linkpath" => self.linkpath = Some(String::from_utf8_lossy(value).into_owned()),
                b"size" => self.size = Some(std::str::from_utf8(value).ok()?.parse().ok()?),
                _ => {}
            }
            data = &data[len..];
        }
        Some(())
    }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Some(recorded) = parse_number(&block[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    // Some old tars summed signed bytes; Go accepts either.
    recorded == unsigned || i64::try_from(recorded).is_ok_and(|r| r == signed)
}

/// An octal field (NUL- or space-terminated), or GNU base-256.
fn parse_number(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            return None; // negative
        }
        let mut n = u64::from(first & 0x3f);
        for &b in rest {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let text = field.iter().copied().skip_while(|&b| b == b' ' || b == 0).take_while(|&b| b != 0 && b != b' ');
    // An all-blank field reads as zero, as Go's reader does.
    let mut n: u64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        n = n.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn ustar_name(block: &[u8; BLOCK]) -> String {
    let name = cstr(&block[0..100]);
    // The prefix field exists in ustar ("ustar\0") and POSIX-ish archives, not
    // in old GNU ones ("ustar  \0"), where those bytes hold times.
    if &block[257..263] == b"ustar\0" {
        let prefix = cstr(&block[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn header(name: &str, flag: u8, size: u64, link: &str) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000755");
        b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        b[156] = flag;
        b[157..157 + link.len()].copy_from_slice(link.as_bytes());
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b
    }

    #[test]
    fn a_long_name_header_larger_than_the_cap_is_refused_before_it_is_read() {
        let mut tar = header("././@LongLink", b'L', 1024 * 1024 * 1024, "").to_vec();
        tar.extend_from_slice(&[b'a'; 4096]);
        let mut r = TarReader::new(&tar[..]);
        let err = r.next_header().unwrap_err();
        assert!(matches!(err, TarError::Oversized { what: "GNU long name", .. }), "{err}");
    }

    #[test]
    fn pax_records_override_the_header_and_symlinks_carry_no_data() {
        let record = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while len != body.len() + len.to_string().len() {
                len = body.len() + len.to_string().len();
            }
            format!("{len}{body}")
        };
        let pax = format!("{}{}", record("path", "usr/bin/a-very-long-name"), record("linkpath", "busybox"));
        let mut tar = header("PaxHeaders/x", b'x', pax.len() as u64, "").to_vec();
        tar.extend_from_slice(pax.as_bytes());
        tar.resize(tar.len() + pad(pax.len() as u64) as usize, 0);
        // A symlink whose size field claims data: there is none.
        tar.extend_from_slice(&header("short", b'2', 700, "ignored"));
        tar.extend_from_slice(&header("next", b'0', 3, ""));
        tar.extend_from_slice(b"abc");
        tar.resize(tar.len() + 509, 0);
        tar.extend_from_slice(&[0; 1024]);
        let mut r = TarReader::new(&tar[..]);
        let h = r.next_header().unwrap().unwrap();
        assert_eq!((h.path.as_str(), h.link.as_str(), h.kind), ("usr/bin/a-very-long-name", "busybox", Kind::Symlink));
        let h = r.next_header().unwrap().unwrap();
        assert_eq!((h.path.as_str(), h.size), ("next", 3));
        assert_eq!(r.read_contents(10).unwrap().as_deref(), Some(&b"abc"[..]));
        assert!(r.next_header().unwrap().is_none());
    }

    #[test]
    fn truncated_contents_and_bad_checksums_are_errors() {
        let mut tar = header("f", b'0', 1000, "").to_vec();
        tar.extend_from_slice(&[1; 100]);
        let mut r = TarReader::new(&tar[..]);
        r.next_header().unwrap();
        assert!(matches!(r.next_header(), Err(TarError::Truncated { entry: 1 })));

        let mut bad = header("f", b'0', 0, "");
        bad[0] = b'g';
        assert!(matches!(TarReader::new(&bad[..]).next_header(), Err(TarError::Checksum { entry: 1 })));
    }

    #[test]
    fn base_256_sizes_are_read() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 0x02;
        field[10] = 0x01;
        assert_eq!(parse_number(&field), Some(0x0102));
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"12x\0"), None);
    }
}
