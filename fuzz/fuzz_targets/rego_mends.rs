//! The source mends that make regorus read Gatekeeper's Rego v0 as OPA does
//! run on every template's code, which comes from policy authors and, in a
//! cluster paved audits, from strangers: any text must come out as text,
//! never a panic or a hang, and the regex mend must keep every line where
//! it was (errors name lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_gatekeeper::template::{as_opa_reads_it, regex_as_re2};

fuzz_target!(|data: &[u8]| {
    let Ok(rego) = std::str::from_utf8(data) else { return };
    let wrapped = regex_as_re2(rego);
    assert_eq!(wrapped.lines().count(), rego.lines().count(), "{rego:?} became {wrapped:?}");
    let _ = as_opa_reads_it(rego);
});
