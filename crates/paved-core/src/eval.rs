//! The engine: one object in, findings out. No I/O; the clock is an argument.

use jiff::Timestamp;

use crate::config::{Config, Params};
use crate::exempt::{self, Exemption};
use crate::node::Node;
use crate::object::{ObjectRef, PodView};
use crate::policy::{Applies, Exempted, Finding, Raw, clip_message};
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
}

/// A compiled configuration: evaluates many objects.
#[derive(Debug, Clone)]
pub struct Engine {
    set: PolicySet,
    params: Params,
}

impl Engine {
    /// Compiles a profile (the configuration's, unless `profile` overrides it).
    pub fn new(config: &Config, profile: Option<&str>, mode: Mode) -> Result<Engine, ProfileError> {
        let name = profile.or(config.profile.as_deref()).unwrap_or(crate::profile::DEFAULT_PROFILE);
        let profile = ProfileRef::parse(name)?;
        Ok(Engine { set: PolicySet::compile(config, &profile, mode)?, params: config.params.clone() })
    }

    pub fn policies(&self) -> &PolicySet {
        &self.set
    }

    /// Evaluates one object. Findings come ordered by position, each located in
    /// the object's source when it has one; exempted findings are marked, not
    /// dropped. `now` decides which exemptions have expired.
    pub fn evaluate(&self, obj: &Node, now: Timestamp) -> Vec<Finding> {
        let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
        let pod = PodView::of(obj, kind);
        let exemptions = exempt::exemptions_of(obj, pod.as_ref(), now);
        let cx = Ctx { obj, kind, pod, pss: self.set.profile.pss_minor, params: &self.params, exemptions: &exemptions };
        let mut raws: Vec<Raw> = Vec::new();
        let mut findings = Vec::new();
        let mut object: Option<std::sync::Arc<ObjectRef>> = None;
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
                let object = std::sync::Arc::clone(object.get_or_insert_with(|| ObjectRef::of(obj).into()));
                // Exemption hygiene findings cannot themselves be exempted.
                let exempted = (rule.group != "paved")
                    .then(|| exemptions.iter().find(|e| e.is_valid() && e.covers(rule.id)))
                    .flatten()
                    .map(|e| Exempted { reason: e.reason.clone().unwrap_or_default(), until: e.until_text.clone() });
                let mut f = Finding {
                    policy: rule.id.into(),
                    action: *action,
                    message: clip_message(raw.message),
                    object,
                    path: raw.path,
                    span: crate::node::Span::NONE,
                    exact: false,
                    exempted,
                };
                f.locate(obj);
                findings.push(f);
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
    let shadowed: Vec<bool> = findings
        .iter()
        .map(|f| {
            is_pss(f) && findings.iter().any(|g| is_pss(g) && g.counts() && g.path == f.path && g.action > f.action)
        })
        .collect();
    let mut i = 0;
    findings.retain(|_| {
        i += 1;
        !shadowed[i - 1]
    });
}
