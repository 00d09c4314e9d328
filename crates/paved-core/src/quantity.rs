//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`), held exactly in
//! nano-units, as the API server rounds anything finer up to the nano. The
//! paved road compares configured defaults with what a container asks for;
//! paved-cel's `quantity` library is built on the same parser.

pub const NANO: i128 = 1_000_000_000;

/// A quantity in nano-units (`1` is `1n`, `1_000_000_000` is `1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    pub nanos: i128,
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}")]
pub struct NotAQuantity(pub String);

impl std::str::FromStr for Quantity {
    type Err = NotAQuantity;

    /// Parses Kubernetes' grammar: a signed decimal number, then a binary
    /// suffix (Ki…Ei), a decimal one (n, u, m, k, M…E) or an exponent (e3).
    fn from_str(text: &str) -> Result<Quantity, NotAQuantity> {
        let bad = || NotAQuantity(text.to_owned());
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') || whole.len() + fraction.len() > 30 {
            return Err(bad());
        }
        let digits: i128 = format!("{whole}{fraction}").parse().map_err(|_| bad())?;
        // value = digits / 10^fraction × multiplier, the multiplier as a fraction num/den.
        let (num, den): (i128, i128) = match suffix {
            "Ki" => (1 << 10, 1),
            "Mi" => (1 << 20, 1),
            "Gi" => (1 << 30, 1),
            "Ti" => (1 << 40, 1),
            "Pi" => (1 << 50, 1),
            "Ei" => (1 << 60, 1),
            "n" => (1, NANO),
            "u" => (1, 1_000_000),
            "m" => (1, 1_000),
            "" => (1, 1),
            "k" => (1_000, 1),
            "M" => (1_000_000, 1),
            "G" => (1_000_000_000, 1),
            "T" => (1_000_000_000_000, 1),
            "P" => (1_000_000_000_000_000, 1),
            "E" => (1_000_000_000_000_000_000, 1),
            _ => {
                let exponent = suffix.strip_prefix(['e', 'E']).ok_or_else(bad)?;
                let exponent: i32 = exponent.parse().map_err(|_| bad())?;
                if !(-18..=18).contains(&exponent) {
                    return Err(bad());
                }
                let power = 10i128.pow(exponent.unsigned_abs());
                if exponent >= 0 { (power, 1) } else { (1, power) }
            }
        };
        let scale = 10i128.checked_pow(fraction.len() as u32).ok_or_else(bad)?;
        let numerator = digits.checked_mul(num).and_then(|n| n.checked_mul(NANO)).ok_or_else(bad)?;
        let denominator = den.checked_mul(scale).ok_or_else(bad)?;
        // Anything finer than a nano rounds up (away from zero), as in Kubernetes.
        let nanos = numerator / denominator + i128::from(numerator % denominator != 0);
        Ok(Quantity { nanos: if negative { -nanos } else { nanos } })
    }
}

impl Quantity {
    /// Whether `text` is a quantity the API server accepts.
    pub fn is_valid(text: &str) -> bool {
        text.parse::<Quantity>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantities_compare_exactly_across_suffixes() {
        let q = |s: &str| s.parse::<Quantity>().unwrap();
        assert_eq!(q("100m"), q("0.1"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1k"), q("1e3"));
        assert!(q("512Mi") < q("1Gi") && q("1G") < q("1Gi"));
        assert_eq!(q("1.5n").nanos, 2, "finer than a nano rounds up");
        for bad in ["", "1.2.3", "Mi", "1x", "1e99", "1 Gi", "0x10"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?}");
        }
    }
}
