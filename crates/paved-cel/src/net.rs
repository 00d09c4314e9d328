//! The API server's `ip` and `cidr` CEL libraries: `ip("10.0.0.1")`,
//! `cidr("10.0.0.0/8").containsIP(…)` and the address tests. As upstream,
//! IPv4-mapped IPv6 addresses and zones are not IPs.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use cel::objects::Opaque;
use cel::{ExecutionError, Value};

use crate::libs::{error, string};

pub const IP_TYPE_NAME: &str = "net.IP";
pub const CIDR_TYPE_NAME: &str = "net.CIDR";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip(pub IpAddr);

/// A prefix as written (`ip()` gives the address, `masked()` the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        IP_TYPE_NAME
    }
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        CIDR_TYPE_NAME
    }
}

fn is_mapped(addr: &Ipv6Addr) -> bool {
    addr.to_ipv4_mapped().is_some()
}

/// An address as the API server accepts it: no zone, no IPv4-mapped IPv6.
pub fn parse_ip(text: &str) -> Result<Ip, String> {
    let addr: IpAddr =
        text.parse().map_err(|_| format!("IP Address {text:?} parse error during conversion from string"))?;
    if let IpAddr::V6(v6) = addr
        && is_mapped(&v6)
    {
        return Err(format!("IPv4-mapped IPv6 address {text:?} is not allowed"));
    }
    Ok(Ip(addr))
}

pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let bad = || format!("network address {text:?} parse error during conversion from string");
    let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
    let Ip(addr) = parse_ip(addr).map_err(|_| bad())?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(Cidr { addr, prefix })
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn from_bits(value: u128, width: u8) -> IpAddr {
    if width == 32 { IpAddr::V4(std::net::Ipv4Addr::from(value as u32)) } else { IpAddr::V6(Ipv6Addr::from(value)) }
}

fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 32 { u128::from(u32::MAX) } else { u128::MAX };
    if prefix == 0 { 0 } else { all & !((1u128 << (width - prefix)) - 1) & all }
}

impl Cidr {
    fn contains(&self, addr: IpAddr) -> bool {
        let (net, width) = bits(self.addr);
        let (ip, ip_width) = bits(addr);
        width == ip_width && (net & mask(self.prefix, width)) == (ip & mask(self.prefix, width))
    }

    fn masked(&self) -> Cidr {
        let (net, width) = bits(self.addr);
        Cidr { addr: from_bits(net & mask(self.prefix, width), width), prefix: self.prefix }
    }
}

fn ip_arg(f: &str, args: &[Value], i: usize) -> Result<Ip, ExecutionError> {
    match args.get(i) {
        Some(Value::Opaque(o)) => o.downcast_ref::<Ip>().copied().ok_or_else(|| error(f, "not an IP")),
        Some(Value::String(s)) => parse_ip(s).map_err(|e| error(f, e)),
        other => Err(error(f, format!("expected an IP, got {other:?}"))),
    }
}

fn cidr_arg(f: &str, args: &[Value], i: usize) -> Result<Cidr, ExecutionError> {
    match args.get(i) {
        Some(Value::Opaque(o)) => o.downcast_ref::<Cidr>().copied().ok_or_else(|| error(f, "not a CIDR")),
        Some(Value::String(s)) => parse_cidr(s).map_err(|e| error(f, e)),
        other => Err(error(f, format!("expected a CIDR, got {other:?}"))),
    }
}

pub(crate) fn ip(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Opaque(Arc::new(parse_ip(string(f, args, 0)?).map_err(|e| error(f, e))?)))
}

pub(crate) fn is_ip(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_ip(string(f, args, 0)?).is_ok()))
}

/// `ip.isCanonical(s)`: whether `s` is written as the address prints.
pub(crate) fn is_canonical(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let text = string(f, args, 0)?;
    let Ip(addr) = parse_ip(text).map_err(|e| error(f, e))?;
    Ok(Value::Bool(addr.to_string() == text))
}

pub(crate) fn cidr(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Opaque(Arc::new(parse_cidr(string(f, args, 0)?).map_err(|e| error(f, e))?)))
}

pub(crate) fn is_cidr(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_cidr(string(f, args, 0)?).is_ok()))
}

pub(crate) fn family(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(if ip_arg(f, args, 0)?.0.is_ipv4() { 4 } else { 6 }))
}

pub(crate) fn is_unspecified(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(ip_arg(f, args, 0)?.0.is_unspecified()))
}

pub(crate) fn is_loopback(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(ip_arg(f, args, 0)?.0.is_loopback()))
}

fn link_local_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn link_local_multicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && v6.octets()[1] & 0x0f == 0x02,
    }
}

pub(crate) fn is_link_local_unicast(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(link_local_unicast(ip_arg(f, args, 0)?.0)))
}

pub(crate) fn is_link_local_multicast(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(link_local_multicast(ip_arg(f, args, 0)?.0)))
}

/// Go's `IsGlobalUnicast`: not unspecified, loopback, link-local, multicast
/// or the IPv4 broadcast address; private ranges count.
pub(crate) fn is_global_unicast(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let addr = ip_arg(f, args, 0)?.0;
    let broadcast = matches!(addr, IpAddr::V4(v4) if v4.is_broadcast());
    Ok(Value::Bool(
        !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || link_local_unicast(addr) || broadcast),
    ))
}

pub(crate) fn contains_ip(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(cidr_arg(f, args, 0)?.contains(ip_arg(f, args, 1)?.0)))
}

pub(crate) fn contains_cidr(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let (outer, inner) = (cidr_arg(f, args, 0)?, cidr_arg(f, args, 1)?);
    Ok(Value::Bool(inner.prefix >= outer.prefix && outer.contains(inner.addr)))
}

pub(crate) fn cidr_ip(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Opaque(Arc::new(Ip(cidr_arg(f, args, 0)?.addr))))
}

pub(crate) fn masked(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Opaque(Arc::new(cidr_arg(f, args, 0)?.masked())))
}

pub(crate) fn prefix_length(f: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(i64::from(cidr_arg(f, args, 0)?.prefix)))
}
