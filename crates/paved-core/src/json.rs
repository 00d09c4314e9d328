//! JSON text straight into a [`Node`] tree, borrowing every string that has
//! no escapes: the admission webhook's decoder for objects.
//!
//! Written by hand because the generic serde path (a visitor per value, a
//! `MapAccess` per key) cost more than the rest of admission together; this
//! is one pass over the bytes with a vector per collection. Strict RFC 8259:
//! what serde_json refuses, this refuses (a differential test checks it).

use std::borrow::Cow;

use crate::node::{Entry, Map, Node, Span, Value};

/// Nesting deeper than this is refused (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at byte {offset}")]
pub struct JsonError {
    pub offset: usize,
    pub message: &'static str,
}

/// Parses one JSON value that makes up the whole of `text`.
pub fn parse(text: &str) -> Result<Node<'_>, JsonError> {
    let mut p = Parser { text, bytes: text.as_bytes(), at: 0 };
    let node = p.value(0)?;
    p.skip_ws();
    if p.at < p.bytes.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(node)
}

/// Bytes that end a run of plain string content: quote, backslash, controls.
static STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that is a quote, a backslash or a
/// control character. Only the lowest set bit is exact, which is the one used.
fn stop_mask(word: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\'))) | below_space
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &'static str) -> JsonError {
        JsonError { offset: self.at, message }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        let value = match self.peek() {
            None => return Err(self.error("EOF while parsing a value")),
            Some(b'{') => self.object(depth + 1)?,
            Some(b'[') => self.array(depth + 1)?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.literal(b"true", Value::Bool(true))?,
            Some(b'f') => self.literal(b"false", Value::Bool(false))?,
            Some(b'n') => self.literal(b"null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a value")),
        };
        Ok(Node { span: Span::NONE, value })
    }

    fn literal(&mut self, word: &'static [u8], value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1; // {
        // Most Kubernetes mappings have a handful of keys: one allocation, no regrowth.
        let mut entries = Vec::with_capacity(8);
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Map(Map { entries }));
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("expected a string key")),
            }
            let key = self.string()?;
            match self.peek() {
                Some(b':') => {}
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("expected ':'")),
            }
            self.at += 1;
            let value = self.value(depth)?;
            entries.push(Entry { key, key_span: Span::NONE, value });
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Map(Map { entries }));
                }
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1; // [
        let mut items = Vec::with_capacity(4);
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Seq(items));
        }
        loop {
            items.push(self.value(depth)?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Seq(items));
                }
                None => return Err(self.error("EOF while parsing a list")),
                Some(_) => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// A string at `self.at` (its opening quote). Borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.at += 1; // "
        let start = self.at;
        let end = self.plain_run(start)?;
        if self.bytes.get(end) == Some(&b'"') {
            self.at = end + 1;
            // Quotes are ASCII, so both ends are character boundaries.
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        let mut owned = String::with_capacity(end - start + 16);
        owned.push_str(&self.text[start..end]);
        self.at = end;
        loop {
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.at += 1;
                    self.escape(&mut owned)?;
                }
                _ => return Err(self.error("EOF while parsing a string")),
            }
            let run_start = self.at;
            let run_end = self.plain_run(run_start)?;
            owned.push_str(&self.text[run_start..run_end]);
            self.at = run_end;
        }
    }

    /// The end of the run of ordinary string bytes from `from`: the next quote
    /// or backslash. Control characters are not allowed in JSON strings.
    /// Eight bytes at a time (SWAR), then a table lookup a byte: Kubernetes
    /// strings are short, and a SIMD search costs more to start than it saves.
    fn plain_run(&mut self, from: usize) -> Result<usize, JsonError> {
        let mut i = from;
        let mut end = None;
        while let Some(chunk) = self.bytes.get(i..i + 8) {
            let word =
                u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]);
            let stops = stop_mask(word);
            if stops != 0 {
                end = Some(i + (stops.trailing_zeros() / 8) as usize);
                break;
            }
            i += 8;
        }
        let end = end.unwrap_or_else(|| {
            let rest = &self.bytes[i..];
            i + rest.iter().position(|&b| STOPS[usize::from(b)]).unwrap_or(rest.len())
        });
        if self.bytes.get(end).is_some_and(|&b| b < 0x20) {
            self.at = end;
            return Err(self.error("control character in a string"));
        }
        Ok(end)
    }

    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let c = match self.bytes.get(self.at) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                let first = self.hex4()?;
                let c = match first {
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.at..].starts_with(b"\\u") {
                            return Err(self.error("lone leading surrogate in a \\u escape"));
                        }
                        self.at += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error("invalid surrogate pair in a \\u escape"));
                        }
                        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
                    }
                    0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in a \\u escape")),
                    c => char::from_u32(c),
                };
                out.push(c.ok_or_else(|| self.error("invalid \\u escape"))?);
                return Ok(());
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.at += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or_else(|| self.error("EOF in a \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or_else(|| self.error("invalid \\u escape"))?;
            v = v * 16 + n;
        }
        self.at += 4;
        Ok(v)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; integers that fit i64 stay integers.
    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let start = self.at;
        let digits = |p: &mut Parser<'a>| {
            let from = p.at;
            while let Some(b'0'..=b'9') = p.bytes.get(p.at) {
                p.at += 1;
            }
            p.at - from
        };
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        let n = digits(self);
        if n == 0 || (n > 1 && self.bytes[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        let mut integer = true;
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            integer = false;
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let text = &self.text[start..self.at];
        // "-0" stays a float, as serde_json reads it, so that it writes back as -0.0.
        if integer
            && text != "-0"
            && let Ok(i) = text.parse::<i64>()
        {
            return Ok(Value::Int(i));
        }
        // Valid JSON number text always parses as f64; beyond its range it is
        // infinity, which JSON cannot carry, so it is refused (as serde_json does).
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(JsonError { offset: start, message: "number out of range" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> serde_json::Value {
        match parse(text) {
            Ok(node) => serde_json::to_value(&node).unwrap_or_default(),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a":[1,-2,3.5,1e3,-0,true,false,null,"x\u00e9\n\"\\\/"],"b":{"c":"plain","d":{}},"e":[]}"#,
            " [ 1 , { \"k\" : [ ] } ] ",
            r#""\ud83d\ude00""#,
            "9223372036854775807",
            "-1.5E-3",
        ] {
            let want: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(ok(text), want, "{text}");
        }
    }

    #[test]
    fn integers_beyond_i64_become_floats() {
        // The node model has no u64; Kubernetes integers are int64.
        let node = parse("18446744073709551615").unwrap_or_default();
        assert_eq!(node.value, Value::Float(18446744073709551615.0));
    }

    #[test]
    fn borrows_plain_strings() {
        let node = parse(r#"{"k":"plain","e":"esc\"aped"}"#).unwrap_or_default();
        assert!(matches!(node.get("k").map(|n| &n.value), Some(Value::Str(Cow::Borrowed("plain")))));
        assert!(matches!(node.get("e").map(|n| &n.value), Some(Value::Str(Cow::Owned(s))) if s == "esc\"aped"));
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "tru",
            "nul",
            "\"abc",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "[1] x",
            "'a'",
            "+1",
            "NaN",
            "[\"\\u12\"]",
            "1e400",
            "-8888888888000000e0000011819947422013165113",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_err(), "{text:?}: serde_json disagrees");
        }
    }

    #[test]
    fn strings_end_where_they_should_at_every_alignment() {
        for pad in 0..20 {
            let body = "x".repeat(pad);
            for (tail, want) in [("\"", body.clone()), ("\\n\"", format!("{body}\n"))] {
                let text = format!("\"{body}{tail}");
                let got = parse(&text).map(|n| n.as_str().map(str::to_owned));
                assert_eq!(got, Ok(Some(want)), "{text:?}");
            }
            assert!(parse(&format!("\"{body}\u{1f}\"")).is_err(), "control character after {pad} bytes");
            assert!(parse(&format!("\"{body}é\"")).is_ok());
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep).err().map(|e| e.message), Some("nested too deeply"));
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_ok());
    }
}
