//! JSON as CEL values that cost nothing to copy.
//!
//! The interpreter copies a value whenever it owns one it only borrowed: each
//! element a comprehension binds (`object.spec.containers.all(c, …)`), each
//! element `filter` keeps, each operand of a list `+`. The cel crate's lists
//! and maps copy deeply, so a policy whose variables filter the containers
//! copied every container, with all its maps, several times per evaluation.
//! Here an object's lists and maps are shared (`Arc`) built-in lists and maps:
//! a copy is a reference count. They present themselves to the interpreter
//! and to every library function as the built-in list or map they hold, so
//! they compare, index, iterate and convert exactly as those do.
//!
//! A variable's value, kept for the expressions that read it, is made of
//! such shared values too ([`detach`]), rather than going through
//! [`cel::Value`] and back, which copied it twice more.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use cel::ExecutionError;
use cel::common::traits::{Adder, Comparer, Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt, Type};
use cel::common::value::{Builtin, BuiltinRef, CowVal, StaticVal, Val};
use serde_json::Value as Json;

/// A list shared between every value that holds it.
#[derive(Debug, Clone)]
pub struct SharedList(Arc<CelList<'static>>);

/// A map shared between every value that holds it.
#[derive(Debug, Clone)]
pub struct SharedMap(Arc<CelMap<'static>>);

/// Converts JSON to a CEL value: integers stay integers, as the API server's
/// schema-typed conversion keeps them; lists and maps are shared.
pub fn from_json(json: &Json) -> Box<dyn Val> {
    match json {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => Box::new(CelString::from(s.clone())),
        Json::Array(items) => list(items.iter().map(from_json).collect()),
        Json::Object(fields) => from_fields(fields.iter()),
    }
}

/// A map of JSON fields, e.g. some of an object's.
pub fn from_fields<'j>(fields: impl Iterator<Item = (&'j String, &'j Json)>) -> Box<dyn Val> {
    map(fields.map(|(k, v)| (CelMapKey::String(CelString::from(k.clone())), from_json(v))))
}

fn list(items: Vec<Box<dyn Val>>) -> Box<dyn Val> {
    Box::new(SharedList(Arc::new(CelList::from(items))))
}

fn map(entries: impl Iterator<Item = (CelMapKey<'static>, Box<dyn Val>)>) -> Box<dyn Val> {
    Box::new(SharedMap(Arc::new(CelMap::from(entries.collect::<HashMap<_, _>>()))))
}

/// A value the interpreter produced, as one that no longer borrows from the
/// evaluation: shared values and numbers are copied as they are, built-in
/// strings, lists and maps are rebuilt around copies of their elements, and
/// anything else (optionals, the Kubernetes libraries' types) goes through
/// [`cel::Value`].
pub fn detach(value: &dyn Val) -> Result<Box<dyn Val>, ExecutionError> {
    if let Some(copied) = value.as_any().and_then(copy_static) {
        return Ok(copied);
    }
    match value.as_builtin() {
        BuiltinRef::String(s) => Ok(Box::new(CelString::from(s.inner().to_owned()))),
        BuiltinRef::List(items) => {
            Ok(list(items.inner().iter().map(|v| detach(v.as_ref())).collect::<Result<_, _>>()?))
        }
        BuiltinRef::Map(entries) => {
            let entries = entries
                .inner()
                .iter()
                .map(|(k, v)| Ok((detach_key(k), detach(v.as_ref())?)))
                .collect::<Result<Vec<_>, ExecutionError>>()?;
            Ok(map(entries.into_iter()))
        }
        _ => cel::Value::try_from(value)?.try_into(),
    }
}

fn copy_static(any: &dyn Any) -> Option<Box<dyn Val>> {
    macro_rules! copy {
        ($($t:ty),*) => {
            $(if let Some(v) = any.downcast_ref::<$t>() {
                return Some(Box::new(v.clone()));
            })*
        };
    }
    copy!(SharedList, SharedMap, CelBool, CelInt, CelUInt, CelDouble, CelNull);
    None
}

fn detach_key(key: &CelMapKey<'_>) -> CelMapKey<'static> {
    match key {
        CelMapKey::Bool(b) => CelMapKey::Bool(*b),
        CelMapKey::Int(i) => CelMapKey::Int(*i),
        CelMapKey::UInt(u) => CelMapKey::UInt(*u),
        CelMapKey::String(s) => CelMapKey::String(CelString::from(s.inner().to_owned())),
    }
}

/// The `Val` methods of a shared container: everything the built-in one
/// does, except copying.
macro_rules! shared_val {
    ($shared:ty, $inner:ty, $variant:ident) => {
        impl Val for $shared {
            fn get_type(&self) -> &Type {
                self.0.get_type()
            }

            fn cel_type() -> &'static Type {
                <$inner as Val>::cel_type()
            }

            fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
            where
                Self: 'v,
            {
                self.0.as_adder()
            }

            fn as_comparer(&self) -> Option<&dyn Comparer> {
                self.0.as_comparer()
            }

            fn as_container(&self) -> Option<&dyn Container> {
                self.0.as_container()
            }

            fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
            where
                Self: 'v,
            {
                self.0.as_indexer()
            }

            fn into_indexer<'v>(self: Box<Self>) -> Option<Box<dyn Indexer + 'v>>
            where
                Self: 'v,
            {
                Some(self)
            }

            fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
            where
                Self: 'v,
            {
                self.0.as_iterable()
            }

            fn as_sizer(&self) -> Option<&dyn Sizer> {
                self.0.as_sizer()
            }

            fn as_zeroer(&self) -> Option<&dyn Zeroer> {
                self.0.as_zeroer()
            }

            fn equals(&self, other: &dyn Val) -> bool {
                self.0.equals(other)
            }

            fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
            where
                Self: 'v,
            {
                Box::new(self.clone())
            }

            fn as_any(&self) -> Option<&dyn Any> {
                Some(self)
            }

            // Library functions and the interpreter recognize built-in
            // lists and maps through these two; a shared one answers with
            // the one it holds.
            fn as_builtin<'b, 'v>(&'b self) -> BuiltinRef<'b, 'v>
            where
                Self: 'v,
            {
                BuiltinRef::$variant(&self.0)
            }

            fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
            where
                Self: 'v,
            {
                Some(Builtin::$variant(Arc::unwrap_or_clone(self.0)))
            }
        }

        impl StaticVal for $shared {}

        impl Indexer for $shared {
            fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
            where
                Self: 'v,
            {
                self.0.get(idx)
            }

            fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
            where
                Self: 'v,
            {
                self.0.get(idx).map(CowVal::into_owned)
            }
        }
    };
}

shared_val!(SharedList, CelList<'static>, List);
shared_val!(SharedMap, CelMap<'static>, Map);
