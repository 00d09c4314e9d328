//! Exemptions (PRODUCT.md section 4): `paved.dev/exempt`, `-reason`, `-until`
//! annotations on the object or its pod template.
//!
//! Who may *grant* an exemption is an admission concern (`paved serve`);
//! here an exemption is honoured when it is well-formed and not expired, and
//! an exemption that is not is itself a finding.

use jiff::Timestamp;

use crate::node::{FieldPath, Node};
use crate::object::PodView;

pub const EXEMPT: &str = "paved.dev/exempt";
pub const EXEMPT_REASON: &str = "paved.dev/exempt-reason";
pub const EXEMPT_UNTIL: &str = "paved.dev/exempt-until";

/// One set of exemption annotations, as found on one metadata block.
#[derive(Clone, Debug)]
pub struct Exemption {
    /// Policy ids, or `<group>/*`.
    pub patterns: Vec<String>,
    pub reason: Option<String>,
    /// The `exempt-until` text as written.
    pub until_text: Option<String>,
    /// Path of the metadata's annotations, for locating findings about it.
    pub annotations: FieldPath,
    pub state: State,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Valid,
    MissingReason,
    /// A reason nobody wrote: `TODO…`, `FIXME`, `TBD`, `<reason>`, or the
    /// editor's stub. Not honoured: a placeholder must not silence findings.
    PlaceholderReason,
    BadDate,
    Expired,
}

/// What the editor's exemption stub writes as the reason, for a person to replace.
pub const REASON_STUB: &str = "TODO: why, and a ticket";

/// Whether a reason is a placeholder rather than one a person wrote.
pub fn is_placeholder_reason(reason: &str) -> bool {
    let r = reason.trim().to_ascii_lowercase();
    let word = |w: &str| {
        r.strip_prefix(w).is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| !c.is_ascii_alphanumeric()))
    };
    ["todo", "fixme", "tbd", "xxx", "changeme"].iter().any(|w| word(w)) || (r.starts_with('<') && r.ends_with('>'))
}

impl Exemption {
    pub fn covers(&self, policy: &str) -> bool {
        self.patterns.iter().any(|p| pattern_covers(p, policy))
    }

    pub fn is_valid(&self) -> bool {
        self.state == State::Valid
    }

    /// Path of one of the exemption annotations.
    pub fn field(&self, key: &'static str) -> FieldPath {
        self.annotations.clone().key(key)
    }
}

/// `pss-restricted/*` covers every id in that group; otherwise ids must match exactly.
pub fn pattern_covers(pattern: &str, policy: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(group) => policy.strip_prefix(group).is_some_and(|rest| rest.starts_with('/')),
        None => pattern == policy,
    }
}

/// Parses `exempt-until`: an RFC 3339 date-time, or a date (valid through that day, UTC).
pub fn parse_until(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    let date = s.parse::<jiff::civil::Date>().ok()?;
    let next = date.tomorrow().ok()?;
    format!("{next}T00:00:00Z").parse().ok()
}

fn from_metadata(meta: &Node, annotations: FieldPath, now: Timestamp) -> Option<Exemption> {
    let ann = meta.get("annotations")?;
    let list = ann.get(EXEMPT)?.as_str()?;
    let patterns: Vec<String> = list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
    let reason = ann.get(EXEMPT_REASON).and_then(Node::as_str).map(str::trim).filter(|r| !r.is_empty());
    let until_text = ann.get(EXEMPT_UNTIL).and_then(Node::as_str).map(str::to_owned);
    let state = match (&reason, until_text.as_deref().map(parse_until)) {
        (None, _) => State::MissingReason,
        (Some(reason), _) if is_placeholder_reason(reason) => State::PlaceholderReason,
        (_, Some(None)) => State::BadDate,
        (_, Some(Some(until))) if until <= now => State::Expired,
        _ => State::Valid,
    };
    Some(Exemption { patterns, reason: reason.map(str::to_owned), until_text, annotations, state })
}

/// The exemption that lifts `policy` for an object: valid (a reason, a
/// date not past) and naming it.
pub fn honoured<'e>(exemptions: &'e [Exemption], policy: &str) -> Option<&'e Exemption> {
    exemptions.iter().find(|e| e.is_valid() && e.covers(policy))
}

/// Exemptions on the object itself and, for workloads, on its pod template.
pub fn exemptions_of(obj: &Node, pod: Option<&PodView<'_>>, now: Timestamp) -> Vec<Exemption> {
    let mut out = Vec::new();
    if let Some(meta) = obj.get("metadata") {
        out.extend(from_metadata(meta, FieldPath::root().key("metadata").key("annotations"), now));
    }
    if let Some((pod, meta)) = pod.filter(|p| !p.template.is_empty()).and_then(|p| Some((p, p.meta?))) {
        out.extend(from_metadata(meta, pod.meta_path().key("annotations"), now));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_reasons_are_told_from_written_ones() {
        for placeholder in [super::REASON_STUB, "TODO", "todo later", "FIXME: ticket", "tbd", "<reason>", "XXX"] {
            assert!(super::is_placeholder_reason(placeholder), "{placeholder}");
        }
        for written in ["Runs as root until the v3 rewrite; BILL-1423", "todos app needs it, OPS-2", "reason: vendor"] {
            assert!(!super::is_placeholder_reason(written), "{written}");
        }
    }

    use super::*;

    #[test]
    fn group_patterns() {
        assert!(pattern_covers("pss-restricted/*", "pss-restricted/run-as-user"));
        assert!(!pattern_covers("pss-restricted/*", "pss-baseline/privileged"));
        assert!(!pattern_covers("pss/*", "pss-restricted/run-as-user"));
        assert!(pattern_covers("best-practices/pin-image", "best-practices/pin-image"));
    }

    #[test]
    fn until_accepts_dates_and_date_times() {
        let end_of_day = parse_until("2026-12-31");
        assert_eq!(end_of_day, "2027-01-01T00:00:00Z".parse().ok());
        assert_eq!(parse_until("2026-12-31T10:00:00+02:00"), "2026-12-31T08:00:00Z".parse().ok());
        assert_eq!(parse_until("next tuesday"), None);
    }

    #[test]
    fn states() -> Result<(), jiff::Error> {
        let now: Timestamp = "2026-11-23T12:00:00Z".parse()?;
        let state = |ann: serde_json::Value| {
            let json = serde_json::json!({"metadata": {"annotations": ann}});
            exemptions_of(&Node::from_json(&json), None, now).first().map(|e| e.state.clone())
        };
        assert_eq!(state(serde_json::json!({EXEMPT: "a/b", EXEMPT_REASON: "JIRA-1"})), Some(State::Valid));
        assert_eq!(state(serde_json::json!({EXEMPT: "a/b"})), Some(State::MissingReason));
        assert_eq!(
            state(serde_json::json!({EXEMPT: "a/b", EXEMPT_REASON: "x", EXEMPT_UNTIL: "2026-11-22"})),
            Some(State::Expired)
        );
        assert_eq!(
            state(serde_json::json!({EXEMPT: "a/b", EXEMPT_REASON: "x", EXEMPT_UNTIL: "2026-11-23"})),
            Some(State::Valid)
        );
        assert_eq!(
            state(serde_json::json!({EXEMPT: "a/b", EXEMPT_REASON: "x", EXEMPT_UNTIL: "soon"})),
            Some(State::BadDate)
        );
        assert_eq!(state(serde_json::json!({})), None);
        Ok(())
    }
}
