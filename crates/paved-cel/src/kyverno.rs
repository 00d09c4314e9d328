//! Kyverno's CEL policies (`policies.kyverno.io`): a `ValidatingPolicy` is a
//! ValidatingAdmissionPolicy with its binding inside (`validationActions`
//! in its own spec) and Kyverno's additions, so it runs on the VAP
//! machinery of [`crate::vap`]. What is Kyverno's own lives here:
//! which documents are Kyverno policies, `evaluation.admission`, and **autogen**: a
//! policy written for Pods also judges the pod template of each pod
//! controller, as Kyverno generates it (the template's `metadata` and
//! `spec` standing for the Pod's).

use serde_json::{Value, json};

/// The API group of Kyverno's CEL policy kinds.
pub const GROUP: &str = "policies.kyverno.io";
const VERSIONS: [&str; 3] = ["v1alpha1", "v1beta1", "v1"];
/// The validating kinds: cluster-wide, and confined to its own namespace.
pub const VALIDATING_KINDS: [&str; 2] = ["ValidatingPolicy", "NamespacedValidatingPolicy"];

/// Whether `doc` is a Kyverno ClusterPolicy or Policy (`kyverno.io`).
pub fn is_cluster_policy(doc: &Value) -> bool {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    api_version.starts_with("kyverno.io/") && matches!(kind, "ClusterPolicy" | "Policy")
}

/// A pod controller autogen reaches: its kind and API group (where its pod
/// template is, paved-core's `pod_template_path` knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controller {
    pub kind: &'static str,
    pub group: &'static str,
    pub plural: &'static str,
}

/// Every controller Kyverno generates rules for, in its order.
pub const CONTROLLERS: [Controller; 7] = [
    Controller { kind: "DaemonSet", group: "apps", plural: "daemonsets" },
    Controller { kind: "Deployment", group: "apps", plural: "deployments" },
    Controller { kind: "Job", group: "batch", plural: "jobs" },
    Controller { kind: "StatefulSet", group: "apps", plural: "statefulsets" },
    Controller { kind: "ReplicaSet", group: "apps", plural: "replicasets" },
    Controller { kind: "ReplicationController", group: "", plural: "replicationcontrollers" },
    Controller { kind: "CronJob", group: "batch", plural: "cronjobs" },
];

/// Whether `doc` is a Kyverno ValidatingPolicy or NamespacedValidatingPolicy.
pub fn is_validating_policy(doc: &Value) -> bool {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    api_version.split_once('/').is_some_and(|(g, v)| g == GROUP && VERSIONS.contains(&v))
        && VALIDATING_KINDS.contains(&kind)
}

/// A Kyverno `MutatingPolicy` or `NamespacedMutatingPolicy`.
pub fn is_mutating_policy(doc: &Value) -> bool {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    api_version.split_once('/').is_some_and(|(g, v)| g == GROUP && VERSIONS.contains(&v))
        && matches!(kind, "MutatingPolicy" | "NamespacedMutatingPolicy")
}

/// The controllers a policy's autogen reaches. Only a policy whose rules
/// select Pods and nothing else is generated for controllers; then
/// `spec.autogen.podControllers.controllers` lists them (kinds or
/// plurals, any case; empty: none), and without it every controller is.
pub fn autogen_controllers(spec: &Value) -> Result<Vec<Controller>, String> {
    let rules = spec.pointer("/matchConstraints/resourceRules").and_then(Value::as_array);
    let only_pods = rules.is_some_and(|rules| {
        !rules.is_empty()
            && rules.iter().all(|r| {
                let list = |k: &str| r.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
                list("apiGroups").iter().all(|g| g == "")
                    && list("resources").iter().all(|r| r == "pods")
                    && r.get("resourceNames").and_then(Value::as_array).is_none_or(Vec::is_empty)
            })
    });
    if !only_pods {
        return Ok(Vec::new());
    }
    let Some(listed) = spec.pointer("/autogen/podControllers/controllers") else {
        return Ok(CONTROLLERS.to_vec());
    };
    let listed =
        listed.as_array().ok_or_else(|| "spec.autogen.podControllers.controllers must be a list".to_owned())?;
    listed
        .iter()
        .map(|name| {
            let name = name.as_str().unwrap_or("");
            CONTROLLERS
                .iter()
                .find(|c| c.kind.eq_ignore_ascii_case(name) || c.plural.eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| format!("spec.autogen.podControllers.controllers: {name:?} is not a pod controller"))
        })
        .collect()
}

/// `spec.evaluation.admission.enabled`: whether the policy judges at
/// admission (the default).
pub fn at_admission(spec: &Value) -> bool {
    spec.pointer("/evaluation/admission/enabled").and_then(Value::as_bool).unwrap_or(true)
}

/// Whether the policy judges objects that already exist (Kyverno's
/// background scans; `paved audit`): a ValidatingPolicy's
/// `spec.evaluation.background.enabled`, a ClusterPolicy's `spec.background`;
/// both default to yes.
pub fn in_background(spec: &Value) -> bool {
    spec.pointer("/evaluation/background/enabled")
        .or_else(|| spec.get("background"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// The Pod autogen judges in place of a controller: its template's
/// `metadata` and `spec`, as Kyverno's rewritten expressions read them.
pub struct TemplatePod {
    pub controller: Controller,
    pub pod: Value,
    /// Where the template is in the controller: `spec.template`.
    pub path: &'static [&'static str],
}

/// The pod template of `object`, when it is a pod controller with one.
pub fn pod_of_template(object: &Value) -> Option<TemplatePod> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let group = object.get("apiVersion").and_then(Value::as_str)?.split_once('/').map_or("", |(g, _)| g);
    let controller = *CONTROLLERS.iter().find(|c| c.kind == kind && c.group == group)?;
    let path = paved_core::object::pod_template_path(kind)?;
    let template = path.iter().try_fold(object, |v, key| v.get(key))?;
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or(Value::Null),
    });
    Some(TemplatePod { controller, pod, path })
}

/// What a ClusterPolicy rule's `match` or `exclude` selects:
/// `any` (one filter suffices) and `all` (every one must), or the older
/// single `resources`/`subjects` block, which is one `all` filter.
#[derive(Clone, Debug, Default)]
pub struct RuleMatch {
    any: Vec<Filter>,
    all: Vec<Filter>,
}

/// One resource filter: resources (kinds, names, namespaces, operations,
/// selectors, annotations) and who asks (subjects, roles, cluster roles).
#[derive(Clone, Debug, Default)]
struct Filter {
    kinds: Vec<String>,
    names: Vec<String>,
    namespaces: Vec<String>,
    operations: Vec<String>,
    annotations: Option<serde_json::Map<String, Value>>,
    selector: Option<Value>,
    namespace_selector: Option<Value>,
    subjects: Vec<Value>,
    roles: Vec<String>,
    cluster_roles: Vec<String>,
}

/// The request as a ClusterPolicy's match reads it.
pub struct Request<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub operation: &'a str,
    pub labels: Option<&'a Value>,
    pub annotations: Option<&'a Value>,
    pub namespace_labels: Option<&'a Value>,
    /// `userInfo`, and the `roles` and `clusterRoles` Kyverno adds to it.
    pub user: &'a Value,
}

fn strings_of(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

impl Filter {
    fn of(v: &Value) -> Filter {
        let resources = v.get("resources").unwrap_or(&Value::Null);
        Filter {
            kinds: strings_of(resources.get("kinds")),
            names: strings_of(resources.get("names"))
                .into_iter()
                .chain(resources.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect(),
            namespaces: strings_of(resources.get("namespaces")),
            operations: strings_of(resources.get("operations")),
            annotations: resources.get("annotations").and_then(Value::as_object).cloned(),
            selector: resources.get("selector").cloned(),
            namespace_selector: resources.get("namespaceSelector").cloned(),
            subjects: v.get("subjects").and_then(Value::as_array).cloned().unwrap_or_default(),
            roles: strings_of(v.get("roles")),
            cluster_roles: strings_of(v.get("clusterRoles")),
        }
    }

    /// Whether it selects the request: every part it names must hold.
    /// Checked cheapest and most selective first, each only if the ones
    /// before hold: every admission meets every rule's filters.
    fn selects(&self, r: &Request) -> bool {
        let any_or_empty = |list: &[String], ok: &dyn Fn(&str) -> bool| list.is_empty() || list.iter().any(|x| ok(x));
        if !any_or_empty(&self.kinds, &|k| kind_matches(k, r))
            || !any_or_empty(&self.operations, &|o| o == r.operation)
            || !any_or_empty(&self.names, &|n| wildcard(n, r.name))
            || !(self.namespaces.is_empty()
                || r.namespace.is_some_and(|ns| self.namespaces.iter().any(|n| wildcard(n, ns))))
        {
            return false;
        }
        let annotations_ok = self.annotations.as_ref().is_none_or(|wanted| {
            wanted.iter().all(|(k, v)| {
                let have = r.annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
                have.is_some_and(|have| wildcard(v.as_str().unwrap_or(""), have))
            })
        });
        let selectors_ok = self.selector.as_ref().is_none_or(|s| paved_core::selector::matches(s, r.labels))
            && self
                .namespace_selector
                .as_ref()
                .is_none_or(|s| r.namespace.is_some() && paved_core::selector::matches(s, r.namespace_labels));
        annotations_ok && selectors_ok && self.asked_by_one_named(r)
    }

    /// Whether the requester is one of `subjects` and has the roles named.
    fn asked_by_one_named(&self, r: &Request) -> bool {
        let user = |k: &str| r.user.get(k).and_then(Value::as_str).unwrap_or("");
        let subjects_ok = self.subjects.is_empty()
            || self.subjects.iter().any(|s| {
                let name = s.get("name").and_then(Value::as_str).unwrap_or("");
                match s.get("kind").and_then(Value::as_str).unwrap_or("") {
                    "User" => wildcard(name, user("username")),
                    "Group" => strings_of(r.user.get("groups")).iter().any(|g| wildcard(name, g)),
                    "ServiceAccount" => {
                        let ns = s.get("namespace").and_then(Value::as_str).unwrap_or("");
                        user("username") == format!("system:serviceaccount:{ns}:{name}")
                    }
                    _ => false,
                }
            });
        let has_role = |wanted: &[String], key: &str| {
            wanted.is_empty() || strings_of(r.user.get(key)).iter().any(|have| wanted.contains(have))
        };
        subjects_ok && has_role(&self.roles, "roles") && has_role(&self.cluster_roles, "clusterRoles")
    }

    /// Whether it names anything but kinds and operations: then autogen
    /// does not apply (a name or selector of a Pod says nothing of a Deployment).
    fn narrows(&self) -> bool {
        !self.names.is_empty() || self.selector.is_some() || self.annotations.is_some()
    }
}

/// `Pod`, `v1/Pod`, `apps/v1/Deployment`, `apps/*/Deployment`, `*`, and a
/// subresource `Pod/exec` (never the object itself).
fn kind_matches(pattern: &str, r: &Request) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('/').collect();
    let (group, version, kind) = match parts.as_slice() {
        [kind] => (None, None, *kind),
        [version, kind] if kind.chars().next().is_some_and(char::is_uppercase) => (None, Some(*version), *kind),
        [group, version, kind] => (Some(*group), Some(*version), *kind),
        _ => return false,
    };
    group.is_none_or(|g| wildcard(g, r.group))
        && version.is_none_or(|v| wildcard(v, r.version))
        && wildcard(kind, r.kind)
}

/// Kyverno's wildcards: `*` any run of characters, `?` one. Linear in
/// the lengths (one step back to the last `*` on a mismatch), so no
/// pattern of a policy can make matching an object's name slow.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen, and where in the text it began to match.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_at, matched_from)) = star {
            // Let the last `*` take one more character, and try again after it.
            pi = star_at + 1;
            ti = matched_from + 1;
            star = Some((star_at, matched_from + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl RuleMatch {
    pub fn of(v: Option<&Value>) -> RuleMatch {
        let Some(v) = v else { return RuleMatch::default() };
        let list = |k: &str| v.get(k).and_then(Value::as_array).map(|a| a.iter().map(Filter::of).collect());
        let mut m = RuleMatch { any: list("any").unwrap_or_default(), all: list("all").unwrap_or_default() };
        if v.get("resources").is_some() || v.get("subjects").is_some() {
            m.all.push(Filter::of(v));
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.all.is_empty()
    }

    pub fn selects(&self, r: &Request) -> bool {
        !self.is_empty()
            && (self.any.is_empty() || self.any.iter().any(|f| f.selects(r)))
            && self.all.iter().all(|f| f.selects(r))
    }

    /// Webhook rules for the kinds it matches (`Pod`, `apps/v1/Deployment`,
    /// `Pod/exec`), with their operations (`CREATE` and `UPDATE` unless it
    /// names others); `None` when a filter names no kind or a wildcard kind.
    pub fn admission_rules(&self) -> Option<Vec<Value>> {
        let mut rules = Vec::new();
        for filter in self.any.iter().chain(&self.all) {
            if filter.kinds.is_empty() {
                return None;
            }
            let operations =
                if filter.operations.is_empty() { json!(["CREATE", "UPDATE"]) } else { json!(filter.operations) };
            for pattern in &filter.kinds {
                let (kind_part, subresource) = match pattern.rsplit_once('/') {
                    Some((rest, sub)) if sub.starts_with(char::is_lowercase) => (rest, Some(sub)),
                    _ => (pattern.as_str(), None),
                };
                let parts: Vec<&str> = kind_part.split('/').collect();
                let (group, version, kind) = match parts.as_slice() {
                    [kind] => ("*", "*", *kind),
                    // `v1/Pod` names no group: Kyverno matches any.
                    [version, kind] => ("*", *version, *kind),
                    [group, version, kind] => (*group, *version, *kind),
                    _ => return None,
                };
                if kind.contains(['*', '?']) || group.contains('?') || version.contains('?') {
                    return None;
                }
                let resource = crate::vap::resource_of(kind);
                let resource = subresource.map_or_else(|| resource.clone(), |sub| format!("{resource}/{sub}"));
                rules.push(json!({"apiGroups": [group], "apiVersions": [version], "resources": [resource],
                    "operations": operations}));
            }
        }
        Some(rules)
    }

    /// Whether the rule selects Pods alone, by kind: autogen applies.
    pub fn only_pods(&self) -> bool {
        let filters: Vec<&Filter> = self.any.iter().chain(&self.all).collect();
        !filters.is_empty()
            && filters
                .iter()
                .all(|f| !f.kinds.is_empty() && !f.narrows() && f.kinds.iter().all(|k| k == "Pod" || k == "v1/Pod"))
    }
}

/// The controllers a ClusterPolicy's autogen reaches, from its annotation
/// `pod-policies.kyverno.io/autogen-controllers` (`none`, or a
/// comma-separated list of kinds); all of them without it.
pub fn cluster_policy_autogen(doc: &Value, rule_match: &RuleMatch) -> Vec<Controller> {
    if !rule_match.only_pods() {
        return Vec::new();
    }
    match doc.pointer("/metadata/annotations/pod-policies.kyverno.io~1autogen-controllers").and_then(Value::as_str) {
        None => CONTROLLERS.to_vec(),
        Some(list) => CONTROLLERS
            .iter()
            .filter(|c| list.split(',').any(|k| k.trim().eq_ignore_ascii_case(c.kind)))
            .copied()
            .collect(),
    }
}

/// The rule types paved does not run, found in a ClusterPolicy rule.
pub fn unsupported_rule_type(rule: &Value) -> Option<&'static str> {
    let validate = rule.get("validate");
    if validate.is_some_and(|v| v.get("cel").is_some()) {
        return None;
    }
    for (key, what) in [("mutate", "mutate"), ("generate", "generate"), ("verifyImages", "verifyImages")] {
        if rule.get(key).is_some() {
            return Some(what);
        }
    }
    let validate = validate?;
    for (key, what) in [
        ("pattern", "validate.pattern"),
        ("anyPattern", "validate.anyPattern"),
        ("deny", "validate.deny"),
        ("foreach", "validate.foreach"),
        ("podSecurity", "validate.podSecurity"),
        ("manifests", "validate.manifests"),
        ("assert", "validate.assert"),
    ] {
        if validate.get(key).is_some() {
            return Some(what);
        }
    }
    Some("validate without cel")
}

/// A Kyverno PolicyException: the policies (and rules) it lifts, and the
/// objects it lifts them for. `kyverno.io/v2` selects objects with a
/// `match` like a rule's; `policies.kyverno.io` with CEL `matchConditions`.
pub struct Exception {
    /// `namespace/name`, as findings name it.
    pub name: String,
    /// Policy names and, for ClusterPolicies, rule names (none: every rule).
    refs: Vec<(String, Vec<String>)>,
    /// `policyRefs[].kind`, where written, by policy name: a ref names a
    /// ValidatingPolicy or a MutatingPolicy, not both.
    ref_kinds: Vec<(String, String)>,
    matched: Option<RuleMatch>,
    conditions: Option<crate::Validator>,
}

/// Whether `doc` is a Kyverno PolicyException, of either API.
pub fn is_exception(doc: &Value) -> bool {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    paved_core::kyverno::is_exception_kind(group, doc.get("kind").and_then(Value::as_str).unwrap_or(""))
}

impl Exception {
    pub fn from_json(doc: &Value) -> Result<Exception, String> {
        let text = |p: &str| doc.pointer(p).and_then(Value::as_str).unwrap_or("");
        let name = format!("{}/{}", text("/metadata/namespace"), text("/metadata/name"));
        let spec = doc.get("spec").ok_or("no spec")?;
        let refs = paved_core::kyverno::exception_refs(spec).unwrap_or_default();
        // kyverno.io/v2 selects by `match`; policies.kyverno.io by `matchConditions`.
        if spec.get("exceptions").is_some() {
            let matched = RuleMatch::of(spec.get("match"));
            if matched.is_empty() {
                return Err("spec.match selects nothing".to_owned());
            }
            return Ok(Exception { name, refs, ref_kinds: Vec::new(), matched: Some(matched), conditions: None });
        }
        let ref_kinds = spec
            .get("policyRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.get("name")?.as_str()?.to_owned(), r.get("kind")?.as_str()?.to_owned())))
            .collect();
        if refs.is_empty() {
            return Err("spec.policyRefs or spec.exceptions must name a policy".to_owned());
        }
        let conditions = match spec.get("matchConditions") {
            Some(conditions) => {
                let spec = json!({"matchConditions": conditions, "validations": [{"expression": "true"}]});
                let compiled = crate::Validator::compile_in(&spec, &[], "spec", crate::expr::Dialect::Kyverno)
                    .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
                Some(compiled)
            }
            None => None,
        };
        Ok(Exception { name, refs, ref_kinds, matched: None, conditions })
    }

    /// Whether it lifts `policy` (of `kind`, and `rule`) for the request and object.
    pub fn covers(
        &self,
        (policy, kind): (&str, &str),
        rule: Option<&str>,
        request: &Request,
        activation: &crate::Activation,
    ) -> bool {
        let named = self
            .refs
            .iter()
            .any(|(p, rules)| p == policy && (rules.is_empty() || rule.is_some_and(|r| rules.iter().any(|x| x == r))));
        let mut kinds = self.ref_kinds.iter().filter(|(p, _)| p == policy).peekable();
        let of_kind = kinds.peek().is_none() || kinds.any(|(_, k)| k == kind);
        named
            && of_kind
            && self.matched.as_ref().is_none_or(|m| m.selects(request))
            && self.conditions.as_ref().is_none_or(|c| c.evaluate(activation, &crate::Params::none()).matched)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn autogen_reaches_every_controller_unless_told_otherwise() {
        let pods = json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""], "resources": ["pods"]}]}});
        assert_eq!(autogen_controllers(&pods).unwrap().len(), 7);
        let mut none = pods.clone();
        none["autogen"] = json!({"podControllers": {"controllers": []}});
        assert!(autogen_controllers(&none).unwrap().is_empty());
        let mut some = pods.clone();
        some["autogen"] = json!({"podControllers": {"controllers": ["deployments", "CronJob"]}});
        let kinds: Vec<&str> = autogen_controllers(&some).unwrap().iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["Deployment", "CronJob"]);
        let mixed = json!({"matchConstraints": {"resourceRules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"]}]}});
        assert!(autogen_controllers(&mixed).unwrap().is_empty());
    }

    #[test]
    fn a_cronjobs_pod_is_its_job_templates_pod_template() {
        let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}}}});
        let TemplatePod { controller, pod, path } = pod_of_template(&cronjob).unwrap();
        assert_eq!((controller.kind, path), ("CronJob", &["spec", "jobTemplate", "spec", "template"][..]));
        assert_eq!(pod["metadata"]["labels"]["a"], "b");
        assert_eq!(pod["spec"]["containers"], json!([]));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}});
        assert!(pod_of_template(&pod).is_none(), "a Pod is no controller");
    }

    fn request<'a>(kind: &'a str, group: &'a str, user: &'a Value) -> Request<'a> {
        Request {
            group,
            version: "v1",
            kind,
            name: "web-1",
            namespace: Some("shop"),
            operation: "CREATE",
            labels: None,
            annotations: None,
            namespace_labels: None,
            user,
        }
    }

    #[test]
    fn kinds_names_and_subjects_select_as_kyverno_reads_them() {
        let user = json!({"username": "alice", "groups": ["dev"]});
        let m = RuleMatch::of(Some(
            &json!({"any": [{"resources": {"kinds": ["apps/v1/Deployment"], "names": ["web-*"]}}]}),
        ));
        assert!(m.selects(&request("Deployment", "apps", &user)));
        assert!(!m.selects(&request("Pod", "", &user)));
        let by_group = RuleMatch::of(Some(&json!({"any": [{"subjects": [{"kind": "Group", "name": "dev"}]}]})));
        assert!(by_group.selects(&request("Pod", "", &user)));
        let all = RuleMatch::of(Some(
            &json!({"all": [{"resources": {"kinds": ["Pod"]}}, {"resources": {"namespaces": ["prod"]}}]}),
        ));
        assert!(!all.selects(&request("Pod", "", &user)));
        assert!(
            RuleMatch::of(Some(&json!({"any": [{"resources": {"kinds": ["Pod"], "operations": ["CREATE"]}}]})))
                .only_pods()
        );
        assert!(!m.only_pods());
        assert!(wildcard("a?c*", "abcdef") && !wildcard("a?c", "ac"));
        assert!(wildcard("*", "") && wildcard("kube-*", "kube-system") && !wildcard("kube-*", "kub"));
        assert!(wildcard("*a*b", "xxaxxb") && !wildcard("*a*b", "xxaxxbx") && wildcard("a*b*c", "abbbc"));
        // Many stars against a long name: answered at once, not after a combinatorial search.
        let name = "a".repeat(253);
        assert!(!wildcard(&format!("{}b", "*a".repeat(40)), &name));
    }
}
