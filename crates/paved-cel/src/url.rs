//! The API server's `url` CEL library: `url('https://example.com:80/a')`,
//! `isURL`, and the `getScheme`, `getHost`, `getHostname`, `getPort`,
//! `getEscapedPath` and `getQuery` accessors.
//!
//! Upstream parses with Go's `url.ParseRequestURI`, which differs from the
//! WHATWG rules the `url` crate follows (it keeps an explicit default port,
//! does not lowercase the host, accepts spaces in paths and never resolves
//! `..`). A policy must get the answer the API server gives, so this module
//! follows Go's grammar: an absolute URI or an absolute path, no fragment
//! handling, percent-escapes checked.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map, Opaque};
use cel::{ExecutionError, Value};

pub const TYPE_NAME: &str = "kubernetes.URL";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    /// Host and port as written, percent-escapes decoded (`[::1]:80`).
    host: String,
    /// The path as given (still escaped) or empty for an opaque URI.
    raw_path: String,
    raw_query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        TYPE_NAME
    }
}

/// Parses like Go's `url.ParseRequestURI`.
pub fn parse(text: &str) -> Result<Url, String> {
    let fail = |why: &str| format!("URL parse error during conversion from string: parse {text:?}: {why}");
    if text.is_empty() {
        return Err(fail("empty url"));
    }
    if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail("net/url: invalid control character in URL"));
    }
    let mut url = Url { scheme: String::new(), host: String::new(), raw_path: String::new(), raw_query: String::new() };
    if text == "*" {
        url.raw_path = "*".to_owned();
        return Ok(url);
    }
    let (scheme, rest) = split_scheme(text).map_err(fail)?;
    url.scheme = scheme.to_ascii_lowercase();
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    url.raw_query = query.to_owned();
    if !rest.starts_with('/') {
        if url.scheme.is_empty() {
            return Err(fail("invalid URI for request"));
        }
        // An opaque URI such as `mailto:x`: valid, with no host or path.
        return Ok(url);
    }
    let mut path = rest;
    if !url.scheme.is_empty()
        && let Some(after) = rest.strip_prefix("//")
    {
        let end = after.find('/').unwrap_or(after.len());
        url.host = parse_authority(&after[..end]).map_err(|why| fail(&why))?;
        path = &after[end..];
    }
    unescape(path, false).map_err(|why| fail(&why))?;
    url.raw_path = path.to_owned();
    Ok(url)
}

/// `scheme:` when the text starts with one (a letter, then letters, digits,
/// `+`, `-` or `.`); otherwise no scheme.
fn split_scheme(text: &str) -> Result<(&str, &str), &'static str> {
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme"),
            b':' => return Ok((&text[..i], &text[i + 1..])),
            _ => return Ok(("", text)),
        }
    }
    Ok(("", text))
}

fn parse_authority(authority: &str) -> Result<String, String> {
    let host = match authority.rfind('@') {
        Some(at) => {
            let user = &authority[..at];
            if !user.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b)) {
                return Err("net/url: invalid userinfo".to_owned());
            }
            &authority[at + 1..]
        }
        None => authority,
    };
    parse_host(host)
}

fn parse_host(host: &str) -> Result<String, String> {
    if let Some(inner) = host.strip_prefix('[') {
        let close = inner.find(']').ok_or("missing ']' in host")?;
        let port = &inner[close + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    } else if let Some(colon) = host.rfind(':') {
        let port = &host[colon..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, true)
}

/// Empty, or a colon followed by digits only.
fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

/// Decodes `%XX` escapes; in a host, characters Go would have to escape
/// are refused. Query decoding (`+` as space) is [`unescape_query`].
fn unescape(text: &str, host: bool) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let decoded = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            match decoded {
                Some(d) => out.push(d),
                None => {
                    let escape: String = text[i..].chars().take(3).collect();
                    return Err(format!("invalid URL escape {escape:?}"));
                }
            }
            i += 3;
            continue;
        }
        if host && b < 0x80 && !allowed_in_host(b) {
            return Err(format!("invalid character {:?} in host name", char::from(b)));
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after unescaping".to_owned())
}

fn allowed_in_host(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&b)
}

/// Go's path escaping: unreserved characters and `$&+,/:;=@` stay.
fn keep_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b)
}

impl Url {
    fn hostname_and_port(&self) -> (&str, &str) {
        let (host, port) = match self.host.rfind(':') {
            Some(colon) if valid_optional_port(&self.host[colon..]) => (&self.host[..colon], &self.host[colon + 1..]),
            _ => (self.host.as_str(), ""),
        };
        match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(inner) => (inner, port),
            None => (host, port),
        }
    }

    /// The path as Go's `EscapedPath` gives it: as written when that is a
    /// valid encoding, otherwise re-escaped.
    fn escaped_path(&self) -> String {
        let raw = &self.raw_path;
        let valid = raw.bytes().all(|b| b == b'%' || keep_in_path(b) || b"!'()*[]".contains(&b));
        if valid {
            return raw.clone();
        }
        let decoded = unescape(raw, false).unwrap_or_else(|_| raw.clone());
        let mut out = String::with_capacity(decoded.len() + 8);
        for b in decoded.bytes() {
            if keep_in_path(b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// Go's `Query()`: pairs split on `&`, a pair with `;` or a bad escape
    /// dropped, values kept in order.
    fn query(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for pair in self.raw_query.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Ok(key), Ok(value)) = (unescape_query(key), unescape_query(value)) else { continue };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => out.push((key, vec![value])),
            }
        }
        out
    }
}

fn unescape_query(text: &str) -> Result<String, String> {
    unescape(&text.replace('+', " "), false)
}

fn url_arg<'a>(function: &str, args: &'a [Value]) -> Result<&'a Url, ExecutionError> {
    crate::libs::opaque(function, args, 0, "a URL")
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_owned()))
}

pub fn url(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let parsed = parse(crate::libs::string(f, args, 0)?).map_err(|why| crate::libs::error(f, why))?;
    Ok(Value::Opaque(Arc::new(parsed)))
}

pub fn is_url(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse(crate::libs::string(f, args, 0)?).is_ok()))
}

pub fn scheme(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(&url_arg(f, args)?.scheme))
}

pub fn host(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(&url_arg(f, args)?.host))
}

pub fn hostname(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(url_arg(f, args)?.hostname_and_port().0))
}

pub fn port(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(url_arg(f, args)?.hostname_and_port().1))
}

pub fn escaped_path(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(&url_arg(f, args)?.escaped_path()))
}

pub fn query(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let map: HashMap<Key, Value> = url_arg(f, args)?
        .query()
        .into_iter()
        .map(|(k, vs)| (Key::String(Arc::new(k)), Value::List(Arc::new(vs.iter().map(|v| string(v)).collect()))))
        .collect();
    Ok(Value::Map(Map { map: Arc::new(map) }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn go_request_uri_grammar() {
        let u = parse("HTTPS://user:pw@Example.com:443/a%20b/c?x=1").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "Example.com:443", "host case and the default port are kept");
        assert_eq!(u.hostname_and_port(), ("Example.com", "443"));
        assert_eq!(u.escaped_path(), "/a%20b/c");
        assert_eq!(parse("/just/a/path").unwrap().raw_path, "/just/a/path");
        assert_eq!(parse("mailto:someone").unwrap().host, "");
        for bad in ["", "../relative", "example.com", ":x", "https://host:8o/", "/a%zz", "https://a b/", "a\tb"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn ipv6_host_and_port() {
        let u = parse("https://[::1]:80/").unwrap();
        assert_eq!(u.host, "[::1]:80");
        assert_eq!(u.hostname_and_port(), ("::1", "80"));
        assert_eq!(parse("https://[::1]/").unwrap().hostname_and_port(), ("::1", ""));
    }

    #[test]
    fn query_values_keep_order_and_decode() {
        let u = parse("https://e.com/p?k2=b&k1=a+c&k2=%41&bad=%zz&semi=1;2").unwrap();
        assert_eq!(
            u.query(),
            vec![("k2".to_owned(), vec!["b".to_owned(), "A".to_owned()]), ("k1".to_owned(), vec!["a c".to_owned()])]
        );
    }
}
