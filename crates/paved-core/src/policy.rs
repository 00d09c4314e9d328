//! The policy model: actions, rules and their documentation, findings.

use std::fmt;
use std::str::FromStr;

use crate::eval::Ctx;
use crate::node::{FieldPath, Node, Span};
use crate::object::ObjectRef;

/// What happens when a policy finds something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Recorded only (audit annotation, report).
    Audit,
    /// Admission warning; shown in CI without failing unless `--fail-on warn`.
    Warn,
    /// Rejected at admission; exit 1 in CI.
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Audit => "audit",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action as configured: one of the verdicts, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    On(Action),
    Off,
}

impl FromStr for Setting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "deny" | "enforce" => Ok(Setting::On(Action::Deny)),
            "warn" => Ok(Setting::On(Action::Warn)),
            "audit" | "dryrun" => Ok(Setting::On(Action::Audit)),
            "off" | "false" | "disabled" => Ok(Setting::Off),
            other => Err(format!("unknown action {other:?}: expected deny, warn, audit or off")),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::On(a) => a.fmt(f),
            Setting::Off => f.write_str("off"),
        }
    }
}

/// What a policy checks, why, how to fix a finding, how to get an exception.
#[derive(Clone, Copy, Debug)]
pub struct Doc {
    pub title: &'static str,
    pub what: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    /// The fix in one short sentence, for admission warnings: the policy id,
    /// the field's owner and this fit in 120 characters, so kubectl shows it whole.
    pub short: &'static str,
}

/// A native rule: a plain function registered with its id and documentation.
pub struct Rule {
    /// `<profile>/<name>`, e.g. `pss-restricted/run-as-non-root`.
    pub id: &'static str,
    /// The group the rule belongs to (`pss-baseline`, `pss-restricted`, `best-practices`, `paved`).
    pub group: &'static str,
    /// For Pod Security Standards: the upstream check id (`runAsNonRoot`).
    pub upstream: Option<&'static str>,
    pub doc: Doc,
    pub applies: Applies,
    pub check: fn(&Ctx<'_>, &mut Vec<Raw>),
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Which objects a rule looks at; lets the engine skip rules cheaply.
#[derive(Clone, Copy, Debug)]
pub enum Applies {
    /// Every object.
    Any,
    /// Objects that carry a pod spec (Pod and every controller's template).
    PodSpec,
    /// Objects of these kinds.
    Kinds(&'static [&'static str]),
}

/// A rule's raw result: where, and what is wrong. The engine adds the rest.
#[derive(Clone, Debug)]
pub struct Raw {
    pub path: FieldPath,
    pub message: String,
    /// The strongest action this report may take, whatever the policy's:
    /// a rule that cannot judge yet (an image still being analysed) warns
    /// rather than refuses.
    pub at_most: Option<Action>,
    /// Replaces the rule's [`Doc::short`] when the report is not the usual
    /// finding (an image that could not be judged yet).
    pub short: Option<std::borrow::Cow<'static, str>>,
}

impl Raw {
    pub fn new(path: FieldPath, message: impl Into<String>) -> Raw {
        Raw { path, message: message.into(), at_most: None, short: None }
    }

    /// The short sentence a warning shows for this report.
    pub fn short(mut self, short: impl Into<std::borrow::Cow<'static, str>>) -> Raw {
        self.short = Some(short.into());
        self
    }

    /// This report never goes beyond `action`.
    pub fn at_most(mut self, action: Action) -> Raw {
        self.at_most = Some(action);
        self
    }
}

/// The maximum length of a finding's message, in characters: room for a
/// foreign policy's explanation, a bound on what one can print.
pub const MAX_MESSAGE: usize = 512;

/// Cuts a message to [`MAX_MESSAGE`] characters, marking the cut.
pub fn clip_message(m: String) -> String {
    clip_chars(m, MAX_MESSAGE)
}

/// At most `max` characters (not bytes), the last an ellipsis when cut.
pub fn clip_chars(mut m: String, max: usize) -> String {
    if max > 0 && m.chars().count() > max {
        let cut = m.char_indices().nth(max - 1).map_or(m.len(), |(i, _)| i);
        m.truncate(cut);
        m.push('…');
    }
    m
}

/// An exemption that covered a finding.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Exempted {
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// One thing a policy found wrong with one object.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// Static for native rules; foreign policies (Rego, CEL) bring their own ids.
    pub policy: std::borrow::Cow<'static, str>,
    pub action: Action,
    pub message: String,
    /// For native rules, the fix in one short sentence ([`Doc::short`]),
    /// which admission warnings show instead of `message`.
    #[serde(skip)]
    pub short: Option<std::borrow::Cow<'static, str>>,
    /// Shared by every finding of the same object.
    pub object: std::sync::Arc<ObjectRef>,
    /// The field the finding is about (it may be missing from the object).
    pub path: FieldPath,
    /// Where `path` (or its nearest existing parent) stands in the source.
    #[serde(skip)]
    pub span: Span,
    /// Whether `span` is the field itself rather than a parent.
    #[serde(skip)]
    pub exact: bool,
    /// Set when a valid exemption covers this finding: it is listed, never counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempted: Option<Exempted>,
}

impl Finding {
    /// Whether this finding counts towards the verdict (not exempted).
    pub fn counts(&self) -> bool {
        self.exempted.is_none()
    }

    pub(crate) fn locate(&mut self, root: &Node) {
        let (span, exact) = root.locate(&self.path);
        self.span = span;
        self.exact = exact;
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_clipped_to_their_maximum() {
        let m = clip_message("é".repeat(MAX_MESSAGE * 2));
        assert_eq!(m.chars().count(), MAX_MESSAGE);
        assert!(m.ends_with('…'));
        assert_eq!(clip_message("short".into()), "short");
    }

    #[test]
    fn settings_parse_case_insensitively() {
        assert_eq!("Deny".parse::<Setting>(), Ok(Setting::On(Action::Deny)));
        assert_eq!("off".parse::<Setting>(), Ok(Setting::Off));
        assert!("maybe".parse::<Setting>().is_err());
    }
}
