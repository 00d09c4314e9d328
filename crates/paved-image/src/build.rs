//! Builds layer tars for tests, fuzz seeds and benchmarks (feature `build`):
//! ustar headers, PAX records for long names, and deliberately broken
//! entries that no well-behaved tar writer would produce.

use std::io::Write;

/// A tar archive being written in memory.
#[derive(Default)]
pub struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder::default()
    }

    pub fn dir(mut self, path: &str) -> Self {
        self.entry(path, b'5', 0o755, b"", "");
        self
    }

    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        self.entry(path, b'0', mode, data, "");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entry(path, b'2', 0o777, b"", target);
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.entry(path, b'1', 0o755, b"", target);
        self
    }

    /// A file of `size` zero bytes, written without holding them in memory
    /// twice.
    pub fn zeros(mut self, path: &str, size: u64) -> Self {
        self.header(path, b'0', 0o644, size, "");
        let padded = size.div_ceil(512) * 512;
        self.out.resize(self.out.len() + usize::try_from(padded).unwrap_or(0), 0);
        self
    }

    /// The archive, with its two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0; 1024]);
        self.out
    }

    /// The archive, gzip-compressed.
    pub fn gzip(self) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&self.finish());
        gz.finish().unwrap_or_default()
    }

    /// The archive, zstd-compressed.
    pub fn zstd(self) -> Vec<u8> {
        zstd::stream::encode_all(&self.finish()[..], 3).unwrap_or_default()
    }

    fn entry(&mut self, path: &str, flag: u8, mode: u32, data: &[u8], link: &str) {
        self.header(path, flag, mode, data.len() as u64, link);
        self.out.extend_from_slice(data);
        self.out.resize(self.out.len().div_ceil(512) * 512, 0);
    }

    fn header(&mut self, path: &str, flag: u8, mode: u32, size: u64, link: &str) {
        if path.len() > 99 || link.len() > 99 {
            let mut records = Vec::new();
            if path.len() > 99 {
                records.extend_from_slice(&pax_record("path", path));
            }
            if link.len() > 99 {
                records.extend_from_slice(&pax_record("linkpath", link));
            }
            self.raw_header("././@PaxHeader", b'x', 0o644, records.len() as u64, "");
            self.out.extend_from_slice(&records);
            self.out.resize(self.out.len().div_ceil(512) * 512, 0);
        }
        let short = |s: &str| s.get(..s.len().min(99)).unwrap_or("").to_owned();
        self.raw_header(&short(path), flag, mode, size, &short(link));
    }

    /// One 512-byte header, written as given (no checks on the path).
    pub fn raw_header(&mut self, path: &str, flag: u8, mode: u32, size: u64, link: &str) {
        let mut b = [0u8; 512];
        let put = |b: &mut [u8; 512], at: usize, len: usize, bytes: &[u8]| {
            let n = bytes.len().min(len);
            b[at..at + n].copy_from_slice(&bytes[..n]);
        };
        put(&mut b, 0, 100, path.as_bytes());
        put(&mut b, 100, 8, format!("{mode:07o}\0").as_bytes());
        put(&mut b, 108, 8, b"0000000\0");
        put(&mut b, 116, 8, b"0000000\0");
        if size < 0o77777777777 {
            put(&mut b, 124, 12, format!("{size:011o}\0").as_bytes());
        } else {
            b[124] = 0x80;
            put(&mut b, 128, 8, &size.to_be_bytes());
        }
        put(&mut b, 136, 12, b"00000000000\0");
        b[156] = flag;
        put(&mut b, 157, 100, link.as_bytes());
        put(&mut b, 257, 8, b"ustar\x0000");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        put(&mut b, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&b);
    }

    /// Appends bytes as they are (content for a [`TarBuilder::raw_header`]).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// A header with an arbitrary path, e.g. one that climbs out of the root.
    pub fn raw_entry(mut self, path: &str, flag: u8, link: &str) -> Self {
        self.raw_header(path, flag, 0o644, 0, link);
        self
    }
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len != body.len() + len.to_string().len() {
        len = body.len() + len.to_string().len();
    }
    format!("{len}{body}").into_bytes()
}
