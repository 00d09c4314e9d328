//! Kubernetes resource quantities in CEL (the API server's `quantity`
//! library): `quantity("1.5Gi")`, `isQuantity`, comparisons, arithmetic and
//! conversions. A quantity is held exactly, in nano-units, as the API server
//! rounds anything finer up to the nano.

use std::sync::Arc;

use cel::objects::Opaque;
use cel::{ExecutionError, Value};

use crate::libs::error;

/// The CEL type name of a quantity.
pub const TYPE_NAME: &str = "kubernetes.Quantity";

const NANO: i128 = paved_core::quantity::NANO;

/// A quantity in nano-units (`1` is `1n`, `1_000_000_000` is `1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    pub nanos: i128,
}

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        TYPE_NAME
    }
}

pub use paved_core::quantity::NotAQuantity;

impl std::str::FromStr for Quantity {
    type Err = NotAQuantity;

    /// Kubernetes' grammar, parsed by paved-core (one parser for CEL and
    /// the paved road's defaults).
    fn from_str(text: &str) -> Result<Quantity, NotAQuantity> {
        text.parse::<paved_core::quantity::Quantity>().map(|q| Quantity { nanos: q.nanos })
    }
}

fn quantity_arg(function: &str, args: &[Value], i: usize) -> Result<Quantity, ExecutionError> {
    match args.get(i) {
        Some(Value::Opaque(o)) => {
            o.downcast_ref::<Quantity>().copied().ok_or_else(|| error(function, "not a quantity"))
        }
        Some(Value::Int(n)) => Ok(Quantity { nanos: i128::from(*n) * NANO }),
        other => Err(error(function, format!("expected a quantity, got {other:?}"))),
    }
}

fn opaque(q: Quantity) -> Value {
    Value::Opaque(Arc::new(q))
}

pub(crate) fn parse(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    match args.first() {
        Some(Value::String(s)) => s.parse::<Quantity>().map(opaque).map_err(|e| error(f, e)),
        other => Err(error(f, format!("expected a string, got {other:?}"))),
    }
}

pub(crate) fn is_quantity(_: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(matches!(args.first(), Some(Value::String(s)) if s.parse::<Quantity>().is_ok())))
}

pub(crate) fn sign(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(quantity_arg(f, args, 0)?.nanos.signum() as i64))
}

pub(crate) fn is_integer(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let q = quantity_arg(f, args, 0)?;
    Ok(Value::Bool(q.nanos % NANO == 0 && i64::try_from(q.nanos / NANO).is_ok()))
}

pub(crate) fn as_integer(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let q = quantity_arg(f, args, 0)?;
    if q.nanos % NANO != 0 {
        return Err(error(f, "cannot convert value to integer: it has a fractional part"));
    }
    i64::try_from(q.nanos / NANO).map(Value::Int).map_err(|_| error(f, "cannot convert value to integer: out of range"))
}

pub(crate) fn as_approximate_float(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Float(quantity_arg(f, args, 0)?.nanos as f64 / NANO as f64))
}

pub(crate) fn add(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (quantity_arg(f, args, 0)?, quantity_arg(f, args, 1)?);
    a.nanos.checked_add(b.nanos).map(|nanos| opaque(Quantity { nanos })).ok_or_else(|| error(f, "overflow"))
}

pub(crate) fn sub(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (quantity_arg(f, args, 0)?, quantity_arg(f, args, 1)?);
    a.nanos.checked_sub(b.nanos).map(|nanos| opaque(Quantity { nanos })).ok_or_else(|| error(f, "overflow"))
}

pub(crate) fn is_less_than(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(quantity_arg(f, args, 0)? < quantity_arg(f, args, 1)?))
}

pub(crate) fn is_greater_than(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(quantity_arg(f, args, 0)? > quantity_arg(f, args, 1)?))
}

pub(crate) fn compare_to(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(quantity_arg(f, args, 0)?.cmp(&quantity_arg(f, args, 1)?) as i64))
}

#[cfg(test)]
mod tests {
    use super::{NANO, Quantity};

    fn q(s: &str) -> i128 {
        s.parse::<Quantity>().map(|q| q.nanos).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn suffixes_fractions_exponents_and_rounding() {
        assert_eq!(q("1"), NANO);
        assert_eq!(q("1Ki"), 1024 * NANO);
        assert_eq!(q("1.5Gi"), 1_610_612_736 * NANO);
        assert_eq!(q("500m"), NANO / 2);
        assert_eq!(q("100n"), 100);
        assert_eq!(q("2k"), 2_000 * NANO);
        assert_eq!(q("1e3"), 1_000 * NANO);
        assert_eq!(q("1E-3"), NANO / 1_000);
        assert_eq!(q("-0.5"), -NANO / 2);
        assert_eq!(q("+.5"), NANO / 2);
        assert_eq!(q("1."), NANO);
        // Finer than a nano rounds up.
        assert_eq!(q("0.1n"), 1);
        assert_eq!(q("1Ei"), (1i128 << 60) * NANO);
        for bad in ["", "Gi", "1.2.3", "1Zi", "1 Gi", "1e99", "--1", ".", "1ee3", "99999999999999999999999999999999999"]
        {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} must not parse");
        }
    }
}
