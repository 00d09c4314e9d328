//! Maven versions, ordered as Maven's `ComparableVersion` orders them: items
//! split at `.`, `-` and digit/letter changes; numbers numerically; the
//! qualifiers `alpha` < `beta` < `milestone` < `rc` < `snapshot` < release
//! (``, `ga`, `final`, `release`) < `sp`, then any other word
//! alphabetically; trailing zeros and release words do not count
//! (`1.0` = `1` = `1.0.0-ga`).
//!
//! By hand: no maintained crate implements Maven's ordering.

use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Number(u128),
    Word(String),
}

/// The rank of a qualifier among the well-known ones; others rank after all.
fn qualifier_rank(word: &str) -> (u8, &str) {
    match word {
        "alpha" | "a" => (0, ""),
        "beta" | "b" => (1, ""),
        "milestone" | "m" => (2, ""),
        "rc" | "cr" => (3, ""),
        "snapshot" => (4, ""),
        "" | "ga" | "final" | "release" => (5, ""),
        "sp" => (6, ""),
        other => (7, other),
    }
}

fn items(text: &str) -> Vec<Item> {
    let lower = text.trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<Item>| {
        if current.is_empty() {
            return;
        }
        let item = match current.parse::<u128>() {
            Ok(n) => Item::Number(n),
            Err(_) => Item::Word(std::mem::take(current)),
        };
        current.clear();
        out.push(item);
    };
    let mut last_digit = None;
    for c in lower.chars() {
        if c == '.' || c == '-' || c == '_' {
            flush(&mut current, &mut out);
            last_digit = None;
            continue;
        }
        let digit = c.is_ascii_digit();
        if last_digit.is_some_and(|d| d != digit) {
            flush(&mut current, &mut out);
        }
        last_digit = Some(digit);
        current.push(c);
    }
    flush(&mut current, &mut out);
    // Trailing items that mean nothing: zeros and release words.
    while out.last().is_some_and(|i| match i {
        Item::Number(n) => *n == 0,
        Item::Word(w) => qualifier_rank(w).0 == 5,
    }) {
        out.pop();
    }
    out
}

fn cmp_item(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (Some(Item::Number(x)), Some(Item::Number(y))) => x.cmp(y),
        (Some(Item::Number(x)), None) => x.cmp(&0),
        (None, Some(Item::Number(y))) => 0.cmp(y),
        // A number is newer than any qualifier: 1.0.1 > 1.0-rc1 > 1.0-alpha.
        (Some(Item::Number(_)), Some(Item::Word(_))) => Ordering::Greater,
        (Some(Item::Word(_)), Some(Item::Number(_))) => Ordering::Less,
        (Some(Item::Word(x)), Some(Item::Word(y))) => qualifier_rank(x).cmp(&qualifier_rank(y)),
        (Some(Item::Word(x)), None) => qualifier_rank(x).cmp(&(5, "")),
        (None, Some(Item::Word(y))) => (5, "").cmp(&qualifier_rank(y)),
        (None, None) => Ordering::Equal,
    }
}

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (items(a), items(b));
    (0..a.len().max(b.len())).map(|i| cmp_item(a.get(i), b.get(i))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_maven() {
        for (a, b) in [
            ("1.0-alpha1", "1.0-beta1"),
            ("1.0-beta1", "1.0-rc1"),
            ("1.0-rc1", "1.0-SNAPSHOT"),
            ("1.0-SNAPSHOT", "1.0"),
            ("1.0", "1.0-sp1"),
            ("1.0", "1.0.1"),
            ("1.0.1", "1.1"),
            ("2.9.10", "2.9.10.1"),
            ("2.12.7", "2.12.7.1"),
            ("2.14.0-rc1", "2.14.0"),
            ("1.9", "1.10"),
        ] {
            assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
        }
        for (a, b) in [("1.0", "1"), ("1.0.0", "1-ga"), ("1.0-final", "1.0.0"), ("1.0-RC1", "1.0-cr1")] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} = {b}");
        }
    }
}
