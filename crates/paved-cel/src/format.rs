//! The API server's `format` CEL library: `format.dns1123Label()` and its
//! siblings name a format, `format.named('uuid')` looks one up, and
//! `<format>.validate(s)` gives `optional.none()` for a valid string or the
//! list of reasons it is not, worded as the API server words them.

use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::objects::{Opaque, OptionalValue};
use cel::{ExecutionError, Value};

pub const TYPE_NAME: &str = "kubernetes.NamedFormat";

/// The formats upstream names, in its spelling, each with the function
/// behind `format.<name>()` (an overload is a plain function pointer, so one
/// function per name).
macro_rules! constructors {
    ($($name:ident),* $(,)?) => {
        pub const CONSTRUCTORS: [(&str, cel::common::functions::Function); 13] = [$((stringify!($name), {
            fn constructor<'b, 'v>(_: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
                let boxed: Box<dyn Val> = Value::Opaque(Arc::new(Format(stringify!($name)))).try_into()?;
                Ok(CowVal::Owned(boxed))
            }
            constructor
        })),*];
    };
}

constructors!(
    dns1123Label,
    dns1123Subdomain,
    dns1035Label,
    qualifiedName,
    dns1123LabelPrefix,
    dns1123SubdomainPrefix,
    dns1035LabelPrefix,
    labelValue,
    uri,
    uuid,
    byte,
    date,
    datetime,
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(&'static str);

impl Opaque for Format {
    fn runtime_type_name(&self) -> &str {
        TYPE_NAME
    }
}

pub fn named(name: &str) -> Option<Format> {
    CONSTRUCTORS.iter().find(|(n, _)| *n == name).map(|(n, _)| Format(n))
}

/// The reasons `text` is not in the format; empty when it is.
pub fn validate(format: &Format, text: &str) -> Vec<String> {
    match format.0 {
        "dns1123Label" => dns1123_label(text),
        "dns1123Subdomain" => dns1123_subdomain(text),
        "dns1035Label" => dns1035_label(text),
        "qualifiedName" => qualified_name(text),
        // A prefix for generated names may end in '-': judged as if that
        // dash were a letter, as upstream does.
        "dns1123LabelPrefix" => dns1123_label(&mask_trailing_dash(text)),
        "dns1123SubdomainPrefix" => dns1123_subdomain(&mask_trailing_dash(text)),
        "dns1035LabelPrefix" => dns1035_label(&mask_trailing_dash(text)),
        "labelValue" => label_value(text),
        "uri" => match crate::url::parse(text) {
            Ok(_) => Vec::new(),
            Err(why) => vec![format!("Invalid URI: {why}")],
        },
        "uuid" => check(is_uuid(text), "does not match the UUID format"),
        "byte" => check(is_base64(text), "invalid base64"),
        "date" => check(chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(), "invalid date"),
        // Go's RFC 3339 layout wants the literal `T`; chrono also takes a space.
        "datetime" => check(
            text.as_bytes().get(10) == Some(&b'T') && chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "invalid datetime",
        ),
        _ => Vec::new(),
    }
}

fn check(ok: bool, why: &str) -> Vec<String> {
    if ok { Vec::new() } else { vec![why.to_owned()] }
}

fn mask_trailing_dash(text: &str) -> String {
    match text.strip_suffix('-') {
        Some(head) if !head.is_empty() => format!("{head}a"),
        _ => text.to_owned(),
    }
}

/// apimachinery's wording for a value that does not match its pattern.
fn regex_error(what: &str, pattern: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{what} (e.g. {}regex used for validation is '{pattern}')", examples.join(" or "))
}

fn max_len(limit: usize) -> String {
    format!("must be no more than {limit} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (with `first` deciding the first byte).
fn is_label(text: &str, first: fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&a), Some(&z)) => first(a) && lower_alnum(z) && bytes.iter().all(|&b| lower_alnum(b) || b == b'-'),
        _ => false,
    }
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";

fn dns1123_label(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if text.len() > 63 {
        out.push(max_len(63));
    }
    if !is_label(text, lower_alnum) {
        out.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            &["my-name", "123-abc"],
        ));
    }
    out
}

fn dns1123_subdomain(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if text.len() > 253 {
        out.push(max_len(253));
    }
    if !text.split('.').all(|part| is_label(part, lower_alnum)) {
        out.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            &format!("{DNS1123_LABEL}(\\.{DNS1123_LABEL})*"),
            &["example.com"],
        ));
    }
    out
}

fn dns1035_label(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if text.len() > 63 {
        out.push(max_len(63));
    }
    if !is_label(text, |b| b.is_ascii_lowercase()) {
        out.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    out
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(a), Some(z)) => {
            a.is_ascii_alphanumeric()
                && z.is_ascii_alphanumeric()
                && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        }
        _ => false,
    }
}

const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_WHAT: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn qualified_name(text: &str) -> Vec<String> {
    let parts: Vec<&str> = text.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec!["prefix part must be non-empty".to_owned()];
            }
            let problems = dns1123_subdomain(prefix);
            if !problems.is_empty() {
                return problems.into_iter().map(|p| format!("prefix part {p}")).collect();
            }
            *name
        }
        _ => {
            return vec![format!(
                "{} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_WHAT, QUALIFIED_NAME, &["MyName", "my.name", "123-abc"])
            )];
        }
    };
    let mut out = Vec::new();
    if name.is_empty() {
        out.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        out.push(format!("name part {}", max_len(63)));
    }
    if !is_qualified_part(name) {
        out.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_WHAT, QUALIFIED_NAME, &["MyName", "my.name", "123-abc"])
        ));
    }
    out
}

fn label_value(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if text.len() > 63 {
        out.push(max_len(63));
    }
    if !text.is_empty() && !is_qualified_part(text) {
        out.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    out
}

fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Standard base64 with padding, as Go's `StdEncoding` reads it.
fn is_base64(text: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).is_ok()
}

/// `format.named(name)`: `optional.of(format)` or `optional.none()`.
pub fn named_function(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let found = named(crate::libs::string(f, args, 0)?);
    Ok(Value::Opaque(Arc::new(match found {
        Some(format) => OptionalValue::of(Value::Opaque(Arc::new(format))),
        None => OptionalValue::none(),
    })))
}

/// `<format>.validate(text)`.
pub fn validate_function(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let format: &Format = crate::libs::opaque(f, args, 0, "a format")?;
    let problems = validate(format, crate::libs::string(f, args, 1)?);
    Ok(Value::Opaque(Arc::new(if problems.is_empty() {
        OptionalValue::none()
    } else {
        OptionalValue::of(Value::List(Arc::new(problems.into_iter().map(|p| Value::String(Arc::new(p))).collect())))
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ok(name: &str, text: &str) -> bool {
        validate(&named(name).unwrap(), text).is_empty()
    }

    #[test]
    fn names_and_labels() {
        assert!(ok("dns1123Label", "my-name") && ok("dns1123Label", "123-abc"));
        assert!(!ok("dns1123Label", "My-name") && !ok("dns1123Label", "-a") && !ok("dns1123Label", ""));
        assert!(!ok("dns1123Label", &"a".repeat(64)));
        assert!(ok("dns1123Subdomain", "example.com") && !ok("dns1123Subdomain", "example..com"));
        assert!(ok("dns1035Label", "abc-123") && !ok("dns1035Label", "1abc"));
        assert!(ok("dns1123LabelPrefix", "my-name-") && !ok("dns1123Label", "my-name-"));
        assert!(ok("qualifiedName", "example.com/MyName") && ok("qualifiedName", "my.name"));
        assert!(!ok("qualifiedName", "/x") && !ok("qualifiedName", "a/b/c") && !ok("qualifiedName", "Ex.com/x"));
        assert!(ok("labelValue", "") && ok("labelValue", "my_value") && !ok("labelValue", "_x"));
    }

    #[test]
    fn api_server_wording() {
        assert_eq!(
            validate(&named("dns1123Label").unwrap(), "A"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start \
                 and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
                 '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn data_formats() {
        assert!(ok("uuid", "123e4567-e89b-12d3-a456-426614174000") && !ok("uuid", "123e4567e89b12d3a456426614174000"));
        assert!(ok("byte", "aGVsbG8=") && !ok("byte", "aGVsbG8"));
        assert!(ok("date", "2024-02-29") && !ok("date", "2023-02-29"));
        assert!(ok("datetime", "2024-02-29T10:00:00Z") && !ok("datetime", "2024-02-29 10:00:00Z"));
        assert!(ok("uri", "https://example.com/") && !ok("uri", "relative"));
        assert!(named("nope").is_none());
    }
}
