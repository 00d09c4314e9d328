//! The engine: one object in, findings out. No I/O; the clock is an argument.

use jiff::Timestamp;

use crate::config::{Config, Params};
use crate::exempt::{self, Exemption};
use crate::image::ImageFacts;
use crate::mutate::{Mutation, PatchOp, ResourceDefaults};
use crate::node::{FieldPath, Node};
use crate::object::{ObjectRef, PodView};
use crate::policy::{Action, Applies, Exempted, Finding, Raw, clip_message};
use crate::profile::{Mode, PolicySet, ProfileError, ProfileRef};

/// What a rule sees of the object being evaluated.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub obj: &'a Node<'a>,
    pub kind: &'a str,
    /// The pod spec, for Pod and every controller's template.
    pub pod: Option<PodView<'a>>,
    /// Kubernetes minor version of the Pod Security Standards in force.
    pub pss: u32,
    pub params: &'a Params,
    /// Exemption annotations on the object and its pod template.
    pub exemptions: &'a [Exemption],
    /// What images carry, when the surface knows (see [`ImageFacts`]).
    pub images: Option<&'a dyn ImageFacts>,
}

/// Policies written in another language (Gatekeeper Rego, CEL), evaluated
/// by an adapter crate. The engine runs them beside the native rules, so
/// every surface that adds them (check, serve, audit) gets their findings,
/// exemptions and ordering the same way.
pub trait Foreign: Send + Sync + std::fmt::Debug {
    /// What the foreign policies find in one object. `request` is the
    /// AdmissionRequest as JSON (operation, user, old object…) when the
    /// object comes from one; without it, the object is judged as created.
    fn evaluate(&self, obj: &Node, request: Option<&serde_json::Value>) -> Vec<ForeignFinding>;

    /// The policies it holds, as `paved policies` lists them and `paved
    /// explain` (and the editor's hover) shows them.
    fn describe(&self) -> Vec<ForeignPolicy>;

    /// Whether it holds mutating policies ([`Foreign::mutate`] has work).
    fn mutates(&self) -> bool {
        false
    }

    /// What its mutating policies (MutatingAdmissionPolicies) make of an
    /// object at admission; `None` when it holds none. `request` is the
    /// AdmissionRequest as JSON; `None` for a manifest, mutated as created.
    /// Only the policies whose id `runs` accepts run (the others are off
    /// in the configuration, or the object is exempt from them).
    fn mutate(
        &self,
        _object: &serde_json::Value,
        _old_object: &serde_json::Value,
        _request: Option<&serde_json::Value>,
        _runs: &dyn Fn(&str) -> bool,
    ) -> Option<ForeignMutation> {
        None
    }
}

/// What [`Engine::mutate`] made of an object.
#[derive(Debug, Default)]
pub struct Mutations {
    /// RFC 6902 operations from the object as given to the object as
    /// mutated; empty when nothing changed.
    pub patch: Vec<PatchOp>,
    /// The defaults set on the object as given (their paths are into it).
    pub defaults: Vec<Mutation>,
    /// The defaults set on what the policies changed.
    pub defaults_after_policies: Vec<Mutation>,
    /// The foreign policies that changed it, by id, in order.
    pub by: Vec<String>,
    /// Those that could not: `(id, why, refuses)`, as [`ForeignMutation`].
    pub errors: Vec<(String, String, bool)>,
}

/// The mutations that did something, in the order they did it.
fn applied_only(mutations: Vec<Mutation>, applied: &[usize]) -> Vec<Mutation> {
    let mut mutations: Vec<Option<Mutation>> = mutations.into_iter().map(Some).collect();
    applied.iter().filter_map(|&i| mutations.get_mut(i)?.take()).collect()
}

/// An object as foreign mutating policies left it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForeignMutation {
    pub object: serde_json::Value,
    /// The policies (bindings) that changed it, by id, in order.
    pub by: Vec<String>,
    /// Those that failed: `(id, why, refuses)`; `refuses` when the policy's
    /// failure policy is Fail, so the request is refused.
    pub errors: Vec<(String, String, bool)>,
}

/// A foreign policy, described for people.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignPolicy {
    /// The id its findings carry, e.g. `gatekeeper/k8srequiredlabels/owner`.
    pub id: String,
    /// What defines it, e.g. "Gatekeeper constraint".
    pub origin: &'static str,
    pub title: String,
    /// The action its own definition gives, before the configuration's overrides.
    pub action: Action,
    /// What it checks, as labelled paragraphs (description, code, match, parameters).
    pub details: Vec<(&'static str, String)>,
    /// A mutating policy: it changes objects (on or off), it has no action.
    pub mutates: bool,
}

impl ForeignPolicy {
    /// What it does in a policy set: its action, `mutate`, or `off`.
    pub fn action_in(&self, set: &PolicySet) -> &'static str {
        match (set.foreign_action(&self.id, self.action), self.mutates) {
            (None, _) => "off",
            (Some(_), true) => "mutate",
            (Some(action), false) => action.as_str(),
        }
    }
}

/// A finding from a [`Foreign`] policy: its own id, action and message.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignFinding {
    pub policy: String,
    pub action: Action,
    pub message: String,
    /// The field, when the policy says; the object's root otherwise.
    pub path: FieldPath,
    /// Set when the policy's own kind of exception covers the finding
    /// (a Kyverno PolicyException): why, for people.
    pub exempted: Option<String>,
}

/// A compiled configuration: evaluates many objects.
#[derive(Debug, Clone)]
pub struct Engine {
    set: PolicySet,
    params: Params,
    foreign: Vec<std::sync::Arc<dyn Foreign>>,
    images: Option<std::sync::Arc<dyn ImageFacts>>,
}

impl Engine {
    /// Compiles a profile (the configuration's, unless `profile` overrides it).
    pub fn new(config: &Config, profile: Option<&str>, mode: Mode) -> Result<Engine, ProfileError> {
        let name = profile.or(config.profile.as_deref()).unwrap_or(crate::profile::DEFAULT_PROFILE);
        let profile = ProfileRef::parse(name)?;
        Ok(Engine {
            set: PolicySet::compile(config, &profile, mode)?,
            params: config.params.clone(),
            foreign: Vec::new(),
            images: None,
        })
    }

    /// Gives the image-content rules (`supply-chain/no-shell`, …) what
    /// images carry; without it they find nothing.
    pub fn with_images(mut self, facts: std::sync::Arc<dyn ImageFacts>) -> Engine {
        self.images = Some(facts);
        self
    }

    /// Whether an active rule reads image contents, so a surface knows
    /// whether analysing images is worth its cost.
    pub fn needs_image_contents(&self) -> bool {
        self.set.active.iter().any(|(rule, _)| crate::rules::supply_chain::READS_CONTENTS.contains(&rule.id))
    }

    /// Adds policies another engine evaluates (see [`Foreign`]).
    pub fn with_foreign(mut self, foreign: impl IntoIterator<Item = std::sync::Arc<dyn Foreign>>) -> Engine {
        self.foreign.extend(foreign);
        self
    }

    pub fn policies(&self) -> &PolicySet {
        &self.set
    }

    /// The foreign policies this engine runs, described.
    pub fn foreign_policies(&self) -> Vec<ForeignPolicy> {
        self.foreign.iter().flat_map(|f| f.describe()).collect()
    }

    /// Evaluates one object. Findings come ordered by position, each located in
    /// the object's source when it has one; exempted findings are marked, not
    /// dropped. `now` decides which exemptions have expired.
    pub fn evaluate(&self, obj: &Node, now: Timestamp) -> Vec<Finding> {
        self.evaluate_request(obj, now, None)
    }

    /// What the foreign mutating policies make of `object` (a manifest, or
    /// the object of `request` at admission), in order; `None` when none is
    /// loaded. A policy the configuration turns `off`, or that the object
    /// is exempt from (its annotations, or its pod template's, valid at
    /// `now`), does not run: the same two switches as for any policy.
    pub fn mutate_foreign(
        &self,
        object: &serde_json::Value,
        old_object: &serde_json::Value,
        request: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Option<ForeignMutation> {
        let mut mutators = self.foreign.iter().filter(|f| f.mutates()).peekable();
        mutators.peek()?;
        let node = Node::from_json(object);
        let pod = PodView::of(&node, object.get("kind").and_then(serde_json::Value::as_str).unwrap_or(""));
        let exemptions = exempt::exemptions_of(&node, pod.as_ref(), now);
        // The action given is a placeholder: only `off` matters to a mutation.
        let runs = |id: &str| {
            self.set.foreign_action(id, Action::Audit).is_some() && exempt::honoured(&exemptions, id).is_none()
        };
        let mut out = ForeignMutation { object: object.clone(), ..ForeignMutation::default() };
        for foreign in mutators {
            let Some(m) = foreign.mutate(&out.object, old_object, request, &runs) else { continue };
            out.object = m.object;
            out.by.extend(m.by);
            out.errors.extend(m.errors);
        }
        Some(out)
    }

    /// What the paved road's defaults and the loaded mutating policies make
    /// of one object, in the API server's order: the defaults this engine
    /// has on (with the configured `resources`; `None`: no defaults, the
    /// policies alone), then the foreign mutating policies on what the
    /// defaults left, then the defaults again on what the policies changed
    /// (a sidecar they added), as a reinvocation of the defaults webhook
    /// gives them. One sequence for `/mutate`, `paved fix` and the editor.
    pub fn mutate(
        &self,
        object: &Node,
        kind: &str,
        resources: Option<&ResourceDefaults>,
        old_object: &serde_json::Value,
        request: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Mutations {
        let mut out = Mutations::default();
        let defaults_of = |node: &Node| match resources {
            Some(resources) => crate::mutate::paved_road_defaults(node, kind, &self.set.defaults, resources, now),
            None => Vec::new(),
        };
        let first = defaults_of(object);
        // Most objects need nothing: decided before converting to JSON.
        if first.is_empty() && !self.foreign.iter().any(|f| f.mutates()) {
            return out;
        }
        let Ok(json) = serde_json::to_value(object) else { return out };
        let (patch, defaulted, applied) = crate::mutate::patch(&json, &first);
        out.defaults = applied_only(first, &applied);
        let Some(foreign) = self.mutate_foreign(&defaulted, old_object, request, now) else {
            out.patch = patch;
            return out;
        };
        out.errors = foreign.errors;
        out.by = foreign.by;
        if out.by.is_empty() {
            out.patch = patch;
            return out;
        }
        let again = defaults_of(&Node::from_json(&foreign.object));
        let (_, mutated, applied) = crate::mutate::patch(&foreign.object, &again);
        out.defaults_after_policies = applied_only(again, &applied);
        out.patch = crate::mutate::diff(&json, &mutated);
        out
    }

    /// Whether foreign policies run (then they may want the request, see [`Foreign`]).
    pub fn has_foreign(&self) -> bool {
        !self.foreign.is_empty()
    }

    /// As [`Engine::evaluate`], for an object that came in an admission
    /// request (`request`, as JSON), which foreign policies may read.
    pub fn evaluate_request(&self, obj: &Node, now: Timestamp, request: Option<&serde_json::Value>) -> Vec<Finding> {
        let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
        let pod = PodView::of(obj, kind);
        let exemptions = exempt::exemptions_of(obj, pod.as_ref(), now);
        let cx = Ctx {
            obj,
            kind,
            pod,
            pss: self.set.profile.pss_minor,
            params: &self.params,
            exemptions: &exemptions,
            images: self.images.as_deref(),
        };
        let mut raws: Vec<Raw> = Vec::new();
        let mut findings = Vec::new();
        let mut object: Option<std::sync::Arc<ObjectRef>> = None;
        // One way from a rule's (or a foreign policy's) report to a located,
        // possibly exempted finding.
        let mut push = |policy: std::borrow::Cow<'static, str>,
                        exemptible: bool,
                        action,
                        message,
                        short,
                        path,
                        excepted: Option<String>| {
            let object = std::sync::Arc::clone(object.get_or_insert_with(|| ObjectRef::of(obj).into()));
            let exempted = exemptible
                .then(|| exempt::honoured(&exemptions, &policy))
                .flatten()
                .map(|e| Exempted { reason: e.reason.clone().unwrap_or_default(), until: e.until_text.clone() })
                .or_else(|| excepted.map(|reason| Exempted { reason, until: None }));
            let mut f = Finding {
                policy,
                action,
                message: clip_message(message),
                short,
                object,
                path,
                span: crate::node::Span::NONE,
                exact: false,
                exempted,
            };
            f.locate(obj);
            findings.push(f);
        };
        for (rule, action) in &self.set.active {
            let applies = match rule.applies {
                Applies::Any => true,
                Applies::PodSpec => cx.pod.is_some(),
                Applies::Kinds(kinds) => kinds.contains(&kind),
            };
            if !applies {
                continue;
            }
            (rule.check)(&cx, &mut raws);
            for raw in raws.drain(..) {
                // Exemption hygiene findings cannot themselves be exempted.
                let action = raw.at_most.map_or(*action, |cap| cap.min(*action));
                let short = raw.short.or(Some(rule.doc.short.into()));
                push(rule.id.into(), rule.group != "paved", action, raw.message, short, raw.path, None);
            }
        }
        for foreign in &self.foreign {
            for ff in foreign.evaluate(obj, request) {
                if let Some(action) = self.set.foreign_action(&ff.policy, ff.action) {
                    push(ff.policy.into(), true, action, ff.message, None, ff.path, ff.exempted);
                }
            }
        }
        drop_shadowed(&mut findings);
        findings.sort_by_key(|f| (f.span.start, f.span.end));
        findings
    }
}

/// In profiles that run both PSS levels (paved-road), a restricted check can
/// repeat what a baseline check already denies on the same field (hostPath
/// volumes, added capabilities): keep the stronger finding only.
fn drop_shadowed(findings: &mut Vec<Finding>) {
    let is_pss = |f: &Finding| f.policy.starts_with("pss-");
    let standing = |f: &Finding| is_pss(f) && f.counts();
    // Most objects have no PSS finding stronger than another: nothing to compare.
    let Some(strongest) = findings.iter().filter(|g| standing(g)).map(|g| g.action).max() else { return };
    // The strongest standing action on each field, so that each finding is
    // compared once, not with every other (a pod of thousands of containers
    // has thousands of findings).
    let mut strongest_at: std::collections::HashMap<&FieldPath, Action> = std::collections::HashMap::new();
    for g in findings.iter().filter(|g| standing(g)) {
        let at = strongest_at.entry(&g.path).or_insert(g.action);
        *at = (*at).max(g.action);
    }
    let shadowed: Vec<bool> = findings
        .iter()
        .map(|f| is_pss(f) && f.action < strongest && strongest_at.get(&f.path).is_some_and(|a| *a > f.action))
        .collect();
    let mut shadowed = shadowed.into_iter();
    findings.retain(|_| !shadowed.next().unwrap_or(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(pod: serde_json::Value) -> Vec<Finding> {
        let engine = Engine::new(&Config::default(), None, Mode::Enforce).expect("default profile");
        engine.evaluate(&Node::from_json(&pod), Timestamp::UNIX_EPOCH)
    }

    fn pod(annotations: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}],
                     "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
        })
    }

    #[derive(Debug)]
    struct NeedsOwner;

    impl Foreign for NeedsOwner {
        fn evaluate(&self, obj: &Node, _: Option<&serde_json::Value>) -> Vec<ForeignFinding> {
            if obj.at(&["metadata", "labels", "owner"]).is_some() {
                return Vec::new();
            }
            vec![ForeignFinding {
                policy: "gatekeeper/k8srequiredlabels/owner".into(),
                action: Action::Deny,
                message: "you must provide labels: {\"owner\"}".into(),
                path: FieldPath::root().key("metadata"),
                exempted: None,
            }]
        }

        fn describe(&self) -> Vec<ForeignPolicy> {
            Vec::new()
        }
    }

    /// Answers by image reference: `shell:…` carries /bin/sh, `clean:…`
    /// nothing, `busy:…` is being analysed, `broken:…` failed.
    #[derive(Debug)]
    struct Facts;

    impl ImageFacts for Facts {
        fn lookup(&self, image: &str) -> crate::image::ImageLookup {
            use crate::image::{ImageContents, ImageLookup};
            let contents = |shells: Vec<String>| {
                ImageLookup::Known(std::sync::Arc::new(ImageContents { shells, ..ImageContents::default() }))
            };
            match image.split_once(':').map(|(r, _)| r) {
                Some("shell") => contents(vec!["/bin/sh".into()]),
                Some("clean") => contents(Vec::new()),
                Some("busy") => ImageLookup::Pending,
                Some("broken") => ImageLookup::Failed("not authorized".into()),
                _ => ImageLookup::Unknown,
            }
        }
    }

    #[test]
    fn image_contents_deny_only_when_known() {
        let mut config = Config::default();
        config.policies.insert("supply-chain/no-shell".into(), "deny".into());
        let engine = Engine::new(&config, Some("supply-chain"), Mode::Enforce)
            .expect("profile")
            .with_images(std::sync::Arc::new(Facts));
        let shell = |image: &str| {
            let pod = serde_json::json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": image}]}
            });
            let found = engine.evaluate(&Node::from_json(&pod), Timestamp::UNIX_EPOCH);
            found.into_iter().find(|f| f.policy == "supply-chain/no-shell").map(|f| (f.action, f.message))
        };
        let (action, message) = shell("shell:1").expect("a shell is found");
        assert_eq!(action, Action::Deny);
        assert!(message.contains("carries a shell: /bin/sh"), "{message}");
        assert_eq!(shell("clean:1"), None);
        assert_eq!(shell("other:1"), None, "nothing known, nothing said");
        let (action, message) = shell("busy:1").expect("a note while analysing");
        assert_eq!(action, Action::Warn, "never refused before the contents are known");
        assert!(message.contains("is being analysed"), "{message}");
        let (action, message) = shell("broken:1").expect("a note on failure");
        assert_eq!(action, Action::Warn);
        assert!(
            message.contains("could not be analysed") && message.contains("not checked: not authorized (broken:1)"),
            "{message}"
        );
        // Audit stays audit: the cap lowers, never raises.
        let audit = Engine::new(&config, Some("supply-chain"), Mode::Audit).expect("profile");
        let audit = audit.with_images(std::sync::Arc::new(Facts));
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busy:1"}]}});
        let found = audit.evaluate(&Node::from_json(&pod), Timestamp::UNIX_EPOCH);
        let f = found.iter().find(|f| f.policy == "supply-chain/no-shell").expect("noted");
        assert_eq!(f.action, Action::Audit);
    }

    #[test]
    fn foreign_findings_follow_the_mode_and_exemptions() {
        let foreign: std::sync::Arc<dyn Foreign> = std::sync::Arc::new(NeedsOwner);
        let engine = |mode| {
            Engine::new(&Config::default(), Some("pss-baseline"), mode)
                .expect("profile")
                .with_foreign([foreign.clone()])
        };
        let obj = pod(serde_json::json!({}));
        let node = Node::from_json(&obj);
        let found = |e: &Engine| {
            e.evaluate(&node, Timestamp::UNIX_EPOCH).into_iter().find(|f| f.policy.starts_with("gatekeeper/"))
        };
        let enforce = found(&engine(Mode::Enforce)).expect("a finding");
        assert_eq!((enforce.action, enforce.path.to_string().as_str()), (Action::Deny, "metadata"));
        assert_eq!(found(&engine(Mode::Warn)).expect("a finding").action, Action::Warn, "warn mode softens it");
        let exempt = pod(serde_json::json!({"paved.dev/exempt": "gatekeeper/*", "paved.dev/exempt-reason": "OPS-2"}));
        let exempt = Node::from_json(&exempt);
        let f = engine(Mode::Enforce).evaluate(&exempt, Timestamp::UNIX_EPOCH);
        assert!(f.iter().any(|f| f.policy.starts_with("gatekeeper/") && !f.counts()), "exempted by group");
    }

    /// `policies:` in the configuration reaches foreign ids too, the most
    /// specific pattern winning, as for native rules.
    #[test]
    fn configuration_overrides_set_foreign_actions() {
        let foreign: std::sync::Arc<dyn Foreign> = std::sync::Arc::new(NeedsOwner);
        let action_with = |overrides: &[(&str, &str)]| {
            let mut config = Config::default();
            for (pattern, action) in overrides {
                config.policies.insert((*pattern).to_owned(), (*action).to_owned());
            }
            let engine = Engine::new(&config, Some("pss-baseline"), Mode::Enforce)
                .expect("foreign patterns are accepted before the policies load")
                .with_foreign([foreign.clone()]);
            let obj = pod(serde_json::json!({}));
            let node = Node::from_json(&obj);
            let found = engine.evaluate(&node, Timestamp::UNIX_EPOCH);
            found.into_iter().find(|f| f.policy.starts_with("gatekeeper/")).map(|f| f.action)
        };
        assert_eq!(action_with(&[]), Some(Action::Deny), "the constraint's own action");
        assert_eq!(action_with(&[("gatekeeper/*", "warn")]), Some(Action::Warn));
        assert_eq!(action_with(&[("gatekeeper/k8srequiredlabels/owner", "off")]), None);
        assert_eq!(
            action_with(&[("gatekeeper/*", "off"), ("gatekeeper/k8srequiredlabels/owner", "audit")]),
            Some(Action::Audit),
            "an exact id wins over a glob"
        );
        assert_eq!(action_with(&[("vap/not-loaded-here/x", "warn")]), Some(Action::Deny));
        assert_eq!(action_with(&[("kyverno/not-loaded-here", "off")]), Some(Action::Deny), "Kyverno ids are accepted");
        assert!(
            Engine::new(
                &Config { policies: [("pss-nope/*".to_owned(), "warn".to_owned())].into(), ..Config::default() },
                Some("pss-baseline"),
                Mode::Enforce
            )
            .is_err(),
            "a native pattern still must match a rule"
        );
    }

    #[test]
    fn a_field_denied_by_baseline_is_not_warned_about_again() {
        let findings = evaluate(pod(serde_json::json!({})));
        let on_host_path: Vec<_> =
            findings.iter().filter(|f| f.path.to_string() == "spec.volumes[0].hostPath").collect();
        assert_eq!(on_host_path.len(), 1, "{on_host_path:?}");
        assert_eq!(on_host_path[0].policy, "pss-baseline/host-path-volumes");
        assert_eq!(on_host_path[0].action, Action::Deny);
    }

    #[test]
    fn an_exempted_denial_does_not_hide_the_warning() {
        let findings = evaluate(pod(serde_json::json!({
            "paved.dev/exempt": "pss-baseline/host-path-volumes",
            "paved.dev/exempt-reason": "node agent; OPS-1",
        })));
        let on_host_path: Vec<_> =
            findings.iter().filter(|f| f.path.to_string() == "spec.volumes[0].hostPath").collect();
        assert_eq!(on_host_path.len(), 2, "{on_host_path:?}");
        assert!(on_host_path.iter().any(|f| f.policy == "pss-restricted/volume-types" && f.counts()));
    }
}
