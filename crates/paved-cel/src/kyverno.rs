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

/// A pod controller autogen reaches: its kind, API group, and where its pod template is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controller {
    pub kind: &'static str,
    pub group: &'static str,
    pub plural: &'static str,
    pub template: &'static str,
}

/// Every controller Kyverno generates rules for, in its order.
pub const CONTROLLERS: [Controller; 7] = [
    Controller { kind: "DaemonSet", group: "apps", plural: "daemonsets", template: "/spec/template" },
    Controller { kind: "Deployment", group: "apps", plural: "deployments", template: "/spec/template" },
    Controller { kind: "Job", group: "batch", plural: "jobs", template: "/spec/template" },
    Controller { kind: "StatefulSet", group: "apps", plural: "statefulsets", template: "/spec/template" },
    Controller { kind: "ReplicaSet", group: "apps", plural: "replicasets", template: "/spec/template" },
    Controller {
        kind: "ReplicationController",
        group: "",
        plural: "replicationcontrollers",
        template: "/spec/template",
    },
    Controller { kind: "CronJob", group: "batch", plural: "cronjobs", template: "/spec/jobTemplate/spec/template" },
];

/// Whether `doc` is a Kyverno ValidatingPolicy or NamespacedValidatingPolicy.
pub fn is_validating_policy(doc: &Value) -> bool {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    api_version.split_once('/').is_some_and(|(g, v)| g == GROUP && VERSIONS.contains(&v))
        && VALIDATING_KINDS.contains(&kind)
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

/// The Pod autogen judges in place of a controller `object`: its template's
/// `metadata` and `spec`, as Kyverno's rewritten expressions read them.
/// `None` when the object is not of one of `controllers` or has no template.
pub fn pod_of_template(object: &Value, controllers: &[Controller]) -> Option<(Value, &'static str)> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let group = object.get("apiVersion").and_then(Value::as_str)?.split_once('/').map_or("", |(g, _)| g);
    let controller = controllers.iter().find(|c| c.kind == kind && c.group == group)?;
    let template = object.pointer(controller.template)?;
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or(Value::Null),
    });
    Some((pod, controller.template))
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
        let (pod, at) = pod_of_template(&cronjob, &CONTROLLERS).unwrap();
        assert_eq!(at, "/spec/jobTemplate/spec/template");
        assert_eq!(pod["metadata"]["labels"]["a"], "b");
        assert_eq!(pod["spec"]["containers"], json!([]));
        assert!(pod_of_template(&cronjob, &CONTROLLERS[..1]).is_none());
    }
}
