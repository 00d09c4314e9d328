//! The environment expressions compile and run in: CEL's standard library
//! and its strings, lists and math extensions (from the cel crate), plus the
//! Kubernetes libraries the cel crate does not have, written here: the list
//! functions (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`),
//! `sets`, regex `find`/`findAll`, quantities ([`crate::quantity`]),
//! IP addresses and CIDRs ([`crate::net`]), URLs ([`crate::url`]), named
//! formats ([`crate::format`]) and semantic versions ([`crate::semver`]).
//! (The kube-cel crate has these too, but for the cel crate's older
//! `Context` API; paved is on cel 0.15's `Env`.)

use std::sync::{Arc, OnceLock};

use cel::common::functions::Function;
use cel::common::types::{BOOL_TYPE, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE, Type};
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, Value};

/// Compiled regexes are capped like the API server caps them (RE2 programs).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `jsonpatch.escapeKey(k)`: `~` as `~0` and `/` as `~1`, for a key in a
/// JSON Pointer.
fn escape_key(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    match args.first() {
        Some(Value::String(s)) => Ok(Value::String(Arc::new(s.replace('~', "~0").replace('/', "~1")))),
        other => Err(ExecutionError::function_error(f, format!("expected a string, got {other:?}"))),
    }
}

/// The shared, immutable environment.
pub fn environment() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(build())))
}

fn build() -> Env {
    let mut env = Env::stdlib();
    // A declaration clash here is a programming error caught by every test;
    // the environment still works without the clashing overload.
    let add = |result: Result<(), cel::DeclarationError>| {
        debug_assert!(result.is_ok(), "{result:?}");
    };
    add(env.add_extension(cel::extensions::strings));
    add(env.add_extension(cel::extensions::lists));
    add(env.add_extension(cel::extensions::math));
    add(env.add_overload(
        crate::expr::COST_FUNCTION,
        "paved_cost",
        vec![DYN_TYPE, INT_TYPE],
        crate::expr::cost_function,
    ));
    // cel-go (the API server's, Kyverno's) evaluates `x.orValue(d)` as:
    // `x`'s value when `x` is an optional with one, `d` when it is an empty
    // optional, and `x` itself when it is not an optional at all (Kyverno's
    // library relies on `resources.requests.orValue({}).cpu`). The cel
    // crate's overload refuses a plain `x`, so the call is expanded to
    // paved's function, which does what cel-go does.
    add(env.add_macro(cel::parser::Macro::receiver(OR_VALUE, 1, |helper, target, args| {
        let Some(target) = target.take() else { return Ok(None) };
        let mut call_args = vec![target];
        call_args.append(args);
        Ok(Some(helper.next_expr(cel::common::ast::Expr::Call(cel::common::ast::CallExpr {
            func_name: PAVED_OR_VALUE.to_owned(),
            target: None,
            args: call_args,
        }))))
    })));
    add(env.add_overload(PAVED_OR_VALUE, "paved_or_value", vec![DYN_TYPE, DYN_TYPE], or_value));
    crate::kyverno_libs::declare(&mut env);
    add(env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted));
    add(env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum));
    add(env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min));
    add(env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max));
    add(env.add_member_overload("indexOf", "list_index_of", LIST_TYPE, vec![DYN_TYPE], index_of));
    add(env.add_member_overload("lastIndexOf", "list_last_index_of", LIST_TYPE, vec![DYN_TYPE], last_index_of));
    add(env.add_overload("sets.contains", "sets_contains", vec![LIST_TYPE, LIST_TYPE], sets_contains));
    add(env.add_overload("sets.equivalent", "sets_equivalent", vec![LIST_TYPE, LIST_TYPE], sets_equivalent));
    add(env.add_overload("sets.intersects", "sets_intersects", vec![LIST_TYPE, LIST_TYPE], sets_intersects));
    add(env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find));
    add(env.add_member_overload("findAll", "string_find_all", STRING_TYPE, vec![STRING_TYPE], find_all));
    add(env.add_member_overload("findAll", "string_find_all_n", STRING_TYPE, vec![STRING_TYPE, INT_TYPE], find_all));
    let quantity = || Type::new_opaque_type(crate::quantity::TYPE_NAME);
    add(env.add_overload("quantity", "quantity", vec![STRING_TYPE], quantity_parse));
    add(env.add_overload("isQuantity", "is_quantity", vec![STRING_TYPE], quantity_is));
    members(
        &mut env,
        "quantity",
        quantity,
        Vec::new,
        &[
            ("sign", quantity_sign),
            ("isInteger", quantity_is_integer),
            ("asInteger", quantity_as_integer),
            ("asApproximateFloat", quantity_as_approximate_float),
        ],
    );
    members(
        &mut env,
        "quantity",
        quantity,
        || vec![quantity()],
        &[
            ("add", quantity_add),
            ("sub", quantity_sub),
            ("isLessThan", quantity_is_less_than),
            ("isGreaterThan", quantity_is_greater_than),
            ("compareTo", quantity_compare_to),
        ],
    );
    add(env.add_member_overload("add", "quantity_add_int", quantity(), vec![INT_TYPE], quantity_add));
    add(env.add_member_overload("sub", "quantity_sub_int", quantity(), vec![INT_TYPE], quantity_sub));
    let ip = || Type::new_opaque_type(crate::net::IP_TYPE_NAME);
    let cidr = || Type::new_opaque_type(crate::net::CIDR_TYPE_NAME);
    add(env.add_overload("ip", "ip", vec![STRING_TYPE], net_ip));
    add(env.add_overload("isIP", "is_ip", vec![STRING_TYPE], net_is_ip));
    // MutatingAdmissionPolicy's JSON Patch library.
    add(env.add_overload("jsonpatch.escapeKey", "jsonpatch_escape_key", vec![STRING_TYPE], jsonpatch_escape_key));
    add(env.add_overload("ip.isCanonical", "ip_is_canonical", vec![STRING_TYPE], net_is_canonical));
    add(env.add_overload("cidr", "cidr", vec![STRING_TYPE], net_cidr));
    add(env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], net_is_cidr));
    members(
        &mut env,
        "ip",
        ip,
        Vec::new,
        &[
            ("family", net_family),
            ("isUnspecified", net_is_unspecified),
            ("isLoopback", net_is_loopback),
            ("isLinkLocalMulticast", net_is_link_local_multicast),
            ("isLinkLocalUnicast", net_is_link_local_unicast),
            ("isGlobalUnicast", net_is_global_unicast),
        ],
    );
    add(env.add_member_overload("containsIP", "cidr_contains_ip", cidr(), vec![ip()], net_contains_ip));
    add(env.add_member_overload("containsIP", "cidr_contains_ip_string", cidr(), vec![STRING_TYPE], net_contains_ip));
    add(env.add_member_overload("containsCIDR", "cidr_contains_cidr", cidr(), vec![cidr()], net_contains_cidr));
    add(env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        cidr(),
        vec![STRING_TYPE],
        net_contains_cidr,
    ));
    add(env.add_member_overload("ip", "cidr_ip", cidr(), vec![], net_cidr_ip));
    add(env.add_member_overload("masked", "cidr_masked", cidr(), vec![], net_masked));
    add(env.add_member_overload("prefixLength", "cidr_prefix_length", cidr(), vec![], net_prefix_length));
    let url = || Type::new_opaque_type(crate::url::TYPE_NAME);
    add(env.add_overload("url", "url", vec![STRING_TYPE], url_parse));
    add(env.add_overload("isURL", "is_url", vec![STRING_TYPE], url_is));
    members(
        &mut env,
        "url",
        url,
        Vec::new,
        &[
            ("getScheme", url_scheme),
            ("getHost", url_host),
            ("getHostname", url_hostname),
            ("getPort", url_port),
            ("getEscapedPath", url_escaped_path),
            ("getQuery", url_query),
        ],
    );
    let format = || Type::new_opaque_type(crate::format::TYPE_NAME);
    for (name, op) in crate::format::CONSTRUCTORS {
        add(env.add_overload(&format!("format.{name}"), &format!("format_{name}"), vec![], op));
    }
    add(env.add_overload("format.named", "format_named", vec![STRING_TYPE], format_named));
    add(env.add_member_overload("validate", "format_validate", format(), vec![STRING_TYPE], format_validate));
    let semver = || Type::new_opaque_type(crate::semver::TYPE_NAME);
    add(env.add_overload("semver", "semver", vec![STRING_TYPE], semver_parse));
    add(env.add_overload("semver", "semver_normalize", vec![STRING_TYPE, BOOL_TYPE], semver_parse));
    add(env.add_overload("isSemver", "is_semver", vec![STRING_TYPE], semver_is));
    add(env.add_overload("isSemver", "is_semver_normalize", vec![STRING_TYPE, BOOL_TYPE], semver_is));
    members(
        &mut env,
        "semver",
        semver,
        Vec::new,
        &[("major", semver_major), ("minor", semver_minor), ("patch", semver_patch)],
    );
    members(
        &mut env,
        "semver",
        semver,
        || vec![semver()],
        &[
            ("isGreaterThan", semver_is_greater_than),
            ("isLessThan", semver_is_less_than),
            ("compareTo", semver_compare_to),
        ],
    );
    env
}

/// Member functions of one receiver type taking the same arguments; their
/// overload ids are `<prefix>_<name>`. (`Type` is not `Clone`, hence the
/// functions that make them.)
fn members(
    env: &mut Env,
    prefix: &str,
    receiver: impl Fn() -> Type,
    args: impl Fn() -> Vec<Type>,
    functions: &[(&str, Function)],
) {
    for (name, op) in functions {
        let declared = env.add_member_overload(name, &format!("{prefix}_{name}"), receiver(), args(), *op);
        debug_assert!(declared.is_ok(), "{declared:?}");
    }
}

const OR_VALUE: &str = "orValue";
/// The function `x.orValue(d)` becomes; a name no expression can write.
const PAVED_OR_VALUE: &str = "@paved.orValue";

/// `orValue` as cel-go evaluates it (see where it is declared).
fn or_value<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let default = args.swap_remove(1);
    let target = args.swap_remove(0);
    if target.downcast_ref::<cel::common::types::CelOptional>().is_none() {
        return Ok(target);
    }
    let Value::Opaque(opaque) = Value::try_from(&*target)? else { return Ok(target) };
    match opaque.downcast_ref::<cel::objects::OptionalValue>().and_then(cel::objects::OptionalValue::value) {
        Some(value) => {
            let boxed: Box<dyn Val> = value.clone().try_into()?;
            Ok(CowVal::Owned(boxed))
        }
        None => Ok(default),
    }
}

/// Declares an overload written over [`Value`]s: the arguments are converted,
/// the result boxed. Simpler than the cel crate's borrowed values, and these
/// functions are not on any hot path.
macro_rules! over_values {
    ($($name:ident => $body:path),* $(,)?) => {$(
        fn $name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
            let values = args.iter().map(|a| Value::try_from(&**a)).collect::<Result<Vec<_>, _>>()?;
            let out: Value = $body(stringify!($name), &values)?;
            let boxed: Box<dyn Val> = out.try_into()?;
            Ok(CowVal::Owned(boxed))
        }
    )*};
}

over_values! {
    is_sorted => list_is_sorted,
    sum => list_sum,
    min => list_min,
    max => list_max,
    index_of => list_index_of,
    last_index_of => list_last_index_of,
    sets_contains => set_contains,
    sets_equivalent => set_equivalent,
    sets_intersects => set_intersects,
    find => regex_find,
    find_all => regex_find_all,
    quantity_parse => crate::quantity::parse,
    quantity_is => crate::quantity::is_quantity,
    quantity_sign => crate::quantity::sign,
    quantity_is_integer => crate::quantity::is_integer,
    quantity_as_integer => crate::quantity::as_integer,
    quantity_as_approximate_float => crate::quantity::as_approximate_float,
    quantity_add => crate::quantity::add,
    quantity_sub => crate::quantity::sub,
    quantity_is_less_than => crate::quantity::is_less_than,
    quantity_is_greater_than => crate::quantity::is_greater_than,
    quantity_compare_to => crate::quantity::compare_to,
    net_ip => crate::net::ip,
    net_is_ip => crate::net::is_ip,
    jsonpatch_escape_key => escape_key,
    net_is_canonical => crate::net::is_canonical,
    net_cidr => crate::net::cidr,
    net_is_cidr => crate::net::is_cidr,
    net_family => crate::net::family,
    net_is_unspecified => crate::net::is_unspecified,
    net_is_loopback => crate::net::is_loopback,
    net_is_link_local_multicast => crate::net::is_link_local_multicast,
    net_is_link_local_unicast => crate::net::is_link_local_unicast,
    net_is_global_unicast => crate::net::is_global_unicast,
    net_contains_ip => crate::net::contains_ip,
    net_contains_cidr => crate::net::contains_cidr,
    net_cidr_ip => crate::net::cidr_ip,
    net_masked => crate::net::masked,
    net_prefix_length => crate::net::prefix_length,
    url_parse => crate::url::url,
    url_is => crate::url::is_url,
    url_scheme => crate::url::scheme,
    url_host => crate::url::host,
    url_hostname => crate::url::hostname,
    url_port => crate::url::port,
    url_escaped_path => crate::url::escaped_path,
    url_query => crate::url::query,
    format_named => crate::format::named_function,
    format_validate => crate::format::validate_function,
    semver_parse => crate::semver::semver,
    semver_is => crate::semver::is_semver,
    semver_major => crate::semver::major,
    semver_minor => crate::semver::minor,
    semver_patch => crate::semver::patch,
    semver_is_greater_than => crate::semver::is_greater_than,
    semver_is_less_than => crate::semver::is_less_than,
    semver_compare_to => crate::semver::compare_to,
}

// Argument helpers shared by every library module: the overloads are typed,
// so these errors only show a value of an unexpected shape.

pub(crate) fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn list<'a>(function: &str, args: &'a [Value], i: usize) -> Result<&'a [Value], ExecutionError> {
    match args.get(i) {
        Some(Value::List(items)) => Ok(items.as_slice()),
        other => Err(error(function, format!("expected a list, got {other:?}"))),
    }
}

pub(crate) fn string<'a>(function: &str, args: &'a [Value], i: usize) -> Result<&'a str, ExecutionError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_str()),
        other => Err(error(function, format!("expected a string, got {other:?}"))),
    }
}

/// The `i`th argument as one of paved's opaque values (a quantity, a URL…),
/// `what` naming it in the error.
pub(crate) fn opaque<'a, T: cel::objects::Opaque>(
    function: &str,
    args: &'a [Value],
    i: usize,
    what: &str,
) -> Result<&'a T, ExecutionError> {
    match args.get(i) {
        Some(Value::Opaque(o)) => o.downcast_ref::<T>().ok_or_else(|| error(function, format!("expected {what}"))),
        other => Err(error(function, format!("expected {what}, got {other:?}"))),
    }
}

fn compare(function: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, ExecutionError> {
    a.partial_cmp(b).ok_or_else(|| error(function, format!("{a:?} and {b:?} cannot be compared")))
}

fn list_is_sorted(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let items = list(f, args, 0)?;
    for pair in items.windows(2) {
        if compare(f, &pair[0], &pair[1])? == std::cmp::Ordering::Greater {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

fn list_sum(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let items = list(f, args, 0)?;
    let mut total = match items.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in items {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(*b).ok_or_else(|| error(f, "integer overflow"))?)
            }
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or_else(|| error(f, "integer overflow"))?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (_, other) => return Err(error(f, format!("cannot add {other:?}"))),
        };
    }
    Ok(total)
}

fn extreme(f: &str, args: &[Value], keep: std::cmp::Ordering) -> Result<Value, ExecutionError> {
    let items = list(f, args, 0)?;
    let mut best = items.first().ok_or_else(|| error(f, "the list is empty"))?;
    for item in &items[1..] {
        if compare(f, item, best)? == keep {
            best = item;
        }
    }
    Ok(best.clone())
}

fn list_min(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    extreme(f, args, std::cmp::Ordering::Less)
}

fn list_max(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    extreme(f, args, std::cmp::Ordering::Greater)
}

fn list_index_of(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let items = list(f, args, 0)?;
    let needle = args.get(1).ok_or_else(|| ExecutionError::invalid_argument_count(2, 1))?;
    Ok(Value::Int(items.iter().position(|i| i == needle).map_or(-1, |i| i as i64)))
}

fn list_last_index_of(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let items = list(f, args, 0)?;
    let needle = args.get(1).ok_or_else(|| ExecutionError::invalid_argument_count(2, 1))?;
    Ok(Value::Int(items.iter().rposition(|i| i == needle).map_or(-1, |i| i as i64)))
}

fn set_contains(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (list(f, args, 0)?, list(f, args, 1)?);
    Ok(Value::Bool(b.iter().all(|x| a.contains(x))))
}

fn set_equivalent(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (list(f, args, 0)?, list(f, args, 1)?);
    Ok(Value::Bool(b.iter().all(|x| a.contains(x)) && a.iter().all(|x| b.contains(x))))
}

fn set_intersects(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (list(f, args, 0)?, list(f, args, 1)?);
    Ok(Value::Bool(b.iter().any(|x| a.contains(x))))
}

fn regex(f: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| error(f, e))
}

fn regex_find(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let haystack = string(f, args, 0)?;
    let re = regex(f, string(f, args, 1)?)?;
    Ok(Value::String(Arc::new(re.find(haystack).map_or("", |m| m.as_str()).to_owned())))
}

fn regex_find_all(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let haystack = string(f, args, 0)?;
    let re = regex(f, string(f, args, 1)?)?;
    let limit = match args.get(2) {
        Some(Value::Int(n)) if *n >= 0 => *n as usize,
        _ => usize::MAX,
    };
    let found = re.find_iter(haystack).take(limit).map(|m| Value::String(Arc::new(m.as_str().to_owned())));
    Ok(Value::List(Arc::new(found.collect())))
}
