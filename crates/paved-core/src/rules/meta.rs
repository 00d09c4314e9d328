//! Rules about paved's own annotations: an exemption that is void is a finding,
//! never a silent pass.

use crate::eval::Ctx;
use crate::exempt::{EXEMPT, EXEMPT_REASON, EXEMPT_UNTIL, State};
use crate::policy::{Applies, Doc, Raw, Rule};

pub static RULES: &[Rule] = &[
    Rule {
        id: "paved/exemption-expired",
        group: "paved",
        upstream: None,
        doc: Doc {
            title: "Expired exemption",
            what: "The object's paved.dev/exempt-until date has passed, so its exemption no longer applies.",
            why: "Exemptions are temporary by design; an expired one means the underlying problem was never fixed.",
            fix: "Fix the findings the exemption covered, or have the exception authority renew paved.dev/exempt-until.",
            short: "Fix the findings, or have exempt-until renewed.",
        },
        applies: Applies::Any,
        check: exemption_expired,
    },
    Rule {
        id: "paved/exemption-invalid",
        group: "paved",
        upstream: None,
        doc: Doc {
            title: "Invalid exemption",
            what: "A paved.dev/exempt annotation without paved.dev/exempt-reason, with an unreadable exempt-until, or naming an unknown policy.",
            why: "An exemption must say why (and ideally until when); one that cannot be read is not honoured.",
            fix: "Add paved.dev/exempt-reason (why, and a ticket), use an RFC 3339 date for exempt-until, and check policy ids with `paved policies`.",
            short: "Give a reason, an RFC 3339 exempt-until and known policy ids.",
        },
        applies: Applies::Any,
        check: exemption_invalid,
    },
];

fn exemption_expired(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    for e in cx.exemptions.iter().filter(|e| e.state == State::Expired) {
        let until = e.until_text.as_deref().unwrap_or("?");
        out.push(Raw::new(
            e.field(EXEMPT_UNTIL),
            format!("exemption expired on {until}; fix the findings or renew it"),
        ));
    }
}

fn exemption_invalid(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    for e in cx.exemptions {
        match e.state {
            State::MissingReason => out.push(Raw::new(
                e.field(EXEMPT),
                format!("exemption has no {EXEMPT_REASON}; it is not honoured until it says why"),
            )),
            State::PlaceholderReason => out.push(Raw::new(
                e.field(EXEMPT_REASON),
                format!(
                    "exemption reason {:?} is a placeholder; it is not honoured until a person writes why (and a ticket)",
                    e.reason.as_deref().unwrap_or("")
                ),
            )),
            State::BadDate => out.push(Raw::new(
                e.field(EXEMPT_UNTIL),
                "exempt-until is not an RFC 3339 date (e.g. 2026-12-31); the exemption is not honoured",
            )),
            State::Valid | State::Expired => {}
        }
        // Ids of policies loaded from files are known only to the engine that loads them.
        let native = |p: &&String| !crate::profile::FOREIGN_PREFIXES.iter().any(|f| p.starts_with(f));
        for p in e.patterns.iter().filter(native) {
            // A paved road default is opted out of as a policy is.
            let a_default = |id: &str| crate::mutate::DEFAULTS.iter().any(|(d, _)| *d == id);
            let known = match p.strip_suffix("/*") {
                Some(group) => {
                    crate::rules::all().any(|r| r.group == group)
                        || crate::mutate::DEFAULTS.iter().any(|(d, _)| d.split('/').next() == Some(group))
                }
                None => crate::rules::find(p).is_some() || a_default(p),
            };
            if !known {
                out.push(Raw::new(
                    e.field(EXEMPT),
                    format!("exemption names unknown policy {p:?}; see `paved policies`"),
                ));
            }
        }
    }
}
