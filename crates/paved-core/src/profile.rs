//! Profiles: named sets of policies with default actions, compiled together
//! with the configuration's overrides into a [`PolicySet`].

use std::fmt;

use globset::{Glob, GlobMatcher};

use crate::config::Config;
use crate::policy::{Action, Rule, Setting};
use crate::rules::{self, pss};

/// The embedded default profile.
pub const DEFAULT_PROFILE: &str = "paved-road";

/// The profiles a user can choose.
pub const PROFILES: &[(&str, &str)] = &[
    ("paved-road", "PSS baseline = deny, PSS restricted = warn, best practices = warn, exposure to 0.0.0.0/0 = deny"),
    ("pss-baseline", "Pod Security Standards, baseline level: every violation denied"),
    ("pss-restricted", "Pod Security Standards, restricted level (includes baseline): every violation denied"),
    ("best-practices", "Resources, probes, pinned images, registries, exposure, host ports, token automount: denied"),
    (
        "supply-chain",
        "Images: shells, package managers, setuid files = warn; digest pinning, allowed registries = deny",
    ),
];

/// Best-practice rules that expose a workload to the whole internet: `paved-road` denies them.
pub const EXPOSURE_RULES: &[&str] =
    &["best-practices/restrict-loadbalancer-sources", "best-practices/no-open-ingress-cidr"];

/// A profile name with the Pod Security Standards version it pins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProfileRef {
    pub name: String,
    /// Kubernetes minor version whose PSS rules apply (`v1.29` → 29).
    pub pss_minor: u32,
}

impl ProfileRef {
    /// Parses `name[:version]`, where version is `latest`, `v1.29` or `1.29`.
    pub fn parse(s: &str) -> Result<ProfileRef, ProfileError> {
        let (name, version) = s.split_once(':').unwrap_or((s, "latest"));
        if !PROFILES.iter().any(|(p, _)| *p == name) {
            return Err(ProfileError::UnknownProfile(name.to_string()));
        }
        let pss_minor = parse_version(version).ok_or_else(|| ProfileError::BadVersion(version.to_string()))?;
        Ok(ProfileRef { name: name.to_string(), pss_minor })
    }
}

impl fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pss_minor >= pss::LATEST_MINOR {
            write!(f, "{}:latest", self.name)
        } else {
            write!(f, "{}:v1.{}", self.name, self.pss_minor)
        }
    }
}

fn parse_version(v: &str) -> Option<u32> {
    if v == "latest" {
        return Some(u32::MAX);
    }
    let (major, minor) = v.trim_start_matches('v').split_once('.')?;
    if major != "1" {
        return None;
    }
    minor.parse().ok()
}

/// How a namespace (`paved.dev/mode`) softens its profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    #[default]
    Enforce,
    /// Every Deny becomes Warn.
    Warn,
    /// Every Deny and Warn becomes Audit.
    Audit,
}

impl Mode {
    /// The `paved.dev/mode` label value.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "warn" => Some(Mode::Warn),
            "audit" => Some(Mode::Audit),
            _ => None,
        }
    }

    /// The action `a` becomes in this mode: warn and audit soften deny.
    pub fn apply(self, a: Action) -> Action {
        match (self, a) {
            (Mode::Enforce, a) => a,
            (Mode::Warn, Action::Deny) => Action::Warn,
            (Mode::Warn, a) => a,
            (Mode::Audit, _) => Action::Audit,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error(
        "unknown profile {0:?}: expected one of paved-road, pss-baseline, pss-restricted, best-practices, supply-chain"
    )]
    UnknownProfile(String),
    #[error("bad version {0:?}: expected latest or v1.N (e.g. v1.29)")]
    BadVersion(String),
    #[error("policies: {pattern:?}: {reason}")]
    BadOverride { pattern: String, reason: String },
    #[error("policies: {0:?} matches no policy (see `paved policies`)")]
    NoSuchPolicy(String),
}

/// The default action of a rule in a profile, or `None` when not a member.
fn membership(profile: &ProfileRef, rule: &Rule) -> Option<Action> {
    if rule.group == "paved" {
        // Meta rules (exemption hygiene) are part of every profile.
        return Some(Action::Warn);
    }
    let replaced = || pss::REPLACEMENTS.iter().any(|r| r.baseline == rule.id && profile.pss_minor >= r.since);
    match (profile.name.as_str(), rule.group) {
        ("paved-road", "pss-baseline") => Some(Action::Deny),
        ("paved-road", "pss-restricted") => Some(Action::Warn),
        ("paved-road", "best-practices") if EXPOSURE_RULES.contains(&rule.id) => Some(Action::Deny),
        // PSS baseline already denies host ports; one finding per field is enough.
        ("paved-road", "best-practices") if rule.id == "best-practices/no-host-ports" => None,
        ("paved-road", "best-practices") => Some(Action::Warn),
        ("pss-baseline", "pss-baseline") => Some(Action::Deny),
        ("pss-restricted", "pss-baseline") if !replaced() => Some(Action::Deny),
        ("pss-restricted", "pss-restricted") => Some(Action::Deny),
        ("best-practices", "best-practices") => Some(Action::Deny),
        // What an image carries is a judgment call: warned, not refused.
        ("supply-chain", "supply-chain") if rules::supply_chain::READS_CONTENTS.contains(&rule.id) => {
            Some(Action::Warn)
        }
        ("supply-chain", "supply-chain") => Some(Action::Deny),
        ("supply-chain", "best-practices") if rule.id == "best-practices/allowed-registries" => Some(Action::Deny),
        _ => None,
    }
}

#[derive(Clone)]
struct Override {
    pattern: String,
    matcher: GlobMatcher,
    setting: Setting,
}

/// The active rules with their actions: compiled once, used for many objects.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub profile: ProfileRef,
    /// Actions already reflect the mode the set was compiled with.
    pub active: Vec<(&'static Rule, Action)>,
    /// The namespace's mode, applied to foreign policies' actions too.
    pub mode: Mode,
    /// The configuration's overrides, most specific last, for foreign
    /// policies (whose ids are only known once their files are loaded).
    overrides: Vec<Override>,
    /// The paved road's defaults that are on ([`crate::mutate::DEFAULTS`]):
    /// the `paved-road` profile's, less those an override turns `off`.
    pub defaults: Vec<&'static str>,
}

/// Ids of policies loaded from files: Gatekeeper constraints,
/// Validating and MutatingAdmissionPolicy bindings, and Kyverno policies
/// (and rules).
pub const FOREIGN_PREFIXES: [&str; 4] = ["gatekeeper/", "vap/", "map/", "kyverno/"];

impl PolicySet {
    /// Compiles a profile with the configuration's overrides.
    pub fn compile(config: &Config, profile: &ProfileRef, mode: Mode) -> Result<PolicySet, ProfileError> {
        let mut overrides = Vec::new();
        for (pattern, action) in &config.policies {
            let setting = action
                .parse::<Setting>()
                .map_err(|reason| ProfileError::BadOverride { pattern: pattern.clone(), reason })?;
            let matcher = Glob::new(pattern)
                .map_err(|e| ProfileError::BadOverride { pattern: pattern.clone(), reason: e.kind().to_string() })?
                .compile_matcher();
            let foreign = FOREIGN_PREFIXES.iter().any(|p| pattern.starts_with(p));
            let a_default = crate::mutate::DEFAULTS.iter().any(|(id, _)| matcher.is_match(id));
            if !foreign && !a_default && !rules::all().any(|r| matcher.is_match(r.id)) {
                return Err(ProfileError::NoSuchPolicy(pattern.clone()));
            }
            overrides.push(Override { pattern: pattern.clone(), matcher, setting });
        }
        // The most specific pattern wins: an exact id over a glob, a longer glob over a shorter.
        overrides.sort_by_key(|o| (!o.pattern.contains('*'), o.pattern.len()));
        let mut active = Vec::new();
        for rule in rules::all() {
            let base = membership(profile, rule).map_or(Setting::Off, Setting::On);
            let setting = overrides.iter().rev().find(|o| o.matcher.is_match(rule.id)).map_or(base, |o| o.setting);
            if let Setting::On(action) = setting {
                active.push((rule, mode.apply(action)));
            }
        }
        let defaults = crate::mutate::DEFAULTS
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| {
                let base = if profile.name == DEFAULT_PROFILE { Setting::On(Action::Warn) } else { Setting::Off };
                let setting = overrides.iter().rev().find(|o| o.matcher.is_match(id)).map_or(base, |o| o.setting);
                matches!(setting, Setting::On(_))
            })
            .collect();
        Ok(PolicySet { profile: profile.clone(), active, mode, overrides, defaults })
    }

    /// The action of a foreign policy's finding: the configuration's most
    /// specific override of its id (`gatekeeper/*: warn`), else the action
    /// its own file gives (a constraint's `enforcementAction`), then the
    /// namespace's mode. `None` when an override turns it off.
    pub fn foreign_action(&self, id: &str, own: Action) -> Option<Action> {
        let setting =
            self.overrides.iter().rev().find(|o| o.matcher.is_match(id)).map_or(Setting::On(own), |o| o.setting);
        match setting {
            Setting::On(action) => Some(self.mode.apply(action)),
            Setting::Off => None,
        }
    }

    /// The action of a policy in this set, or `None` when it is off.
    pub fn action_of(&self, id: &str) -> Option<Action> {
        self.active.iter().find(|(r, _)| r.id == id).map(|(_, a)| *a)
    }
}

impl fmt::Debug for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.pattern, self.setting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(profile: &str, overrides: &[(&str, &str)]) -> Result<PolicySet, ProfileError> {
        let mut config = Config::default();
        for (k, v) in overrides {
            config.policies.insert(k.to_string(), v.to_string());
        }
        PolicySet::compile(&config, &ProfileRef::parse(profile)?, Mode::Enforce)
    }

    #[test]
    fn paved_road_mixes_actions() -> Result<(), ProfileError> {
        let s = set("paved-road", &[])?;
        assert_eq!(s.action_of("pss-baseline/privileged"), Some(Action::Deny));
        assert_eq!(s.action_of("pss-restricted/run-as-non-root"), Some(Action::Warn));
        assert_eq!(s.action_of("best-practices/require-probes"), Some(Action::Warn));
        assert_eq!(s.action_of("best-practices/restrict-loadbalancer-sources"), Some(Action::Deny));
        Ok(())
    }

    #[test]
    fn a_profile_alone_denies_its_own_policies() -> Result<(), ProfileError> {
        let s = set("pss-restricted:v1.29", &[])?;
        assert_eq!(s.action_of("pss-restricted/run-as-non-root"), Some(Action::Deny));
        assert_eq!(s.action_of("pss-baseline/privileged"), Some(Action::Deny));
        // replaced by pss-restricted/capabilities from v1.22
        assert_eq!(s.action_of("pss-baseline/capabilities"), None);
        assert_eq!(s.action_of("best-practices/require-probes"), None);
        Ok(())
    }

    #[test]
    fn overrides_most_specific_wins() -> Result<(), ProfileError> {
        let s = set("paved-road", &[("pss-restricted/*", "audit"), ("pss-restricted/run-as-user", "off")])?;
        assert_eq!(s.action_of("pss-restricted/run-as-non-root"), Some(Action::Audit));
        assert_eq!(s.action_of("pss-restricted/run-as-user"), None);
        Ok(())
    }

    #[test]
    fn typos_in_overrides_are_errors() {
        assert!(matches!(set("paved-road", &[("pss-restriced/*", "warn")]), Err(ProfileError::NoSuchPolicy(_))));
        assert!(matches!(set("paved-road", &[("pss-restricted/*", "loud")]), Err(ProfileError::BadOverride { .. })));
        assert!(matches!(ProfileRef::parse("strict"), Err(ProfileError::UnknownProfile(_))));
        assert!(matches!(ProfileRef::parse("pss-baseline:2.0"), Err(ProfileError::BadVersion(_))));
    }

    #[test]
    fn versions_parse() -> Result<(), ProfileError> {
        assert_eq!(ProfileRef::parse("pss-baseline:v1.29")?.pss_minor, 29);
        assert_eq!(ProfileRef::parse("pss-baseline:1.8")?.pss_minor, 8);
        assert_eq!(ProfileRef::parse("pss-baseline")?.pss_minor, u32::MAX);
        Ok(())
    }

    #[test]
    fn modes_soften() -> Result<(), ProfileError> {
        let p = ProfileRef::parse("paved-road")?;
        let s = PolicySet::compile(&Config::default(), &p, Mode::Warn)?;
        assert_eq!(s.action_of("pss-baseline/privileged"), Some(Action::Warn));
        let s = PolicySet::compile(&Config::default(), &p, Mode::Audit)?;
        assert_eq!(s.action_of("pss-baseline/privileged"), Some(Action::Audit));
        Ok(())
    }
}
