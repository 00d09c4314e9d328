//! Gatekeeper policies in paved: ConstraintTemplates (Rego, evaluated with
//! regorus in Rego v0 mode) and their constraints (`match`, parameters,
//! enforcement actions), and Gatekeeper's own test suites.

pub mod constraint;
pub mod kyverno_test;
pub mod locate;
pub mod policies;
pub mod suite;
pub mod template;
