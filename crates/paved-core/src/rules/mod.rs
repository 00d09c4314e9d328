//! The native rule table: every rule paved knows, by group.

pub mod best_practices;
pub mod meta;
pub mod pss;
pub mod supply_chain;

use crate::policy::Rule;

/// Every native rule, in a stable order (the order findings come in).
pub fn all() -> impl Iterator<Item = &'static Rule> {
    pss::RULES.iter().chain(best_practices::RULES).chain(supply_chain::RULES).chain(meta::RULES)
}

/// A rule by id.
pub fn find(id: &str) -> Option<&'static Rule> {
    all().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_grouped() {
        let mut seen = std::collections::HashSet::new();
        for r in all() {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(r.id.starts_with(&format!("{}/", r.group)), "{} is not in group {}", r.id, r.group);
            assert!(
                !r.doc.what.is_empty() && !r.doc.why.is_empty() && !r.doc.fix.is_empty(),
                "{} lacks documentation",
                r.id
            );
            // Admission warnings carry `[id] (a note) short`: kept well inside 120 characters.
            assert!(
                r.doc.short.ends_with('.') && r.id.len() + r.doc.short.len() <= 85,
                "{}: the short fix must be one short sentence",
                r.id
            );
        }
    }
}
