//! Writing to the cluster as `kubectl apply --server-side` does: one
//! server-side apply (PATCH, `application/apply-patch+yaml`) per object with
//! paved as the field manager, so applying again changes nothing and fields
//! other managers own (a replica count an autoscaler sets) are left alone.
//! Only the kinds paved installs are known: they need no discovery, which a
//! cluster without paved's CRD yet could not answer for it.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;

/// The field manager paved's writes are recorded under.
pub const FIELD_MANAGER: &str = "paved";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}: paved does not install this kind")]
    UnknownKind(String),
    #[error("an object without metadata.name")]
    NoName,
    #[error("{what}: {message}")]
    Request { what: String, message: String, code: Option<u16> },
}

impl ApplyError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ApplyError::Request { code, .. } => *code,
            _ => None,
        }
    }
}

/// Which object, as kubectl names it in its output: `deployment.apps/paved`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectName {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.resource.kind.to_ascii_lowercase();
        if self.resource.group.is_empty() {
            write!(f, "{kind}/{}", self.name)
        } else {
            write!(f, "{kind}.{}/{}", self.resource.group, self.name)
        }
    }
}

impl ObjectName {
    /// The object's kind and name, read from its own fields.
    pub fn of(object: &Value) -> Result<ObjectName, ApplyError> {
        let text =
            |path: &[&str]| path.iter().try_fold(object, |v, k| v.get(k)).and_then(Value::as_str).map(str::to_owned);
        let api_version = text(&["apiVersion"]).unwrap_or_default();
        let kind = text(&["kind"]).unwrap_or_default();
        Ok(ObjectName {
            resource: resource_of(&api_version, &kind)?,
            namespace: text(&["metadata", "namespace"]),
            name: text(&["metadata", "name"]).ok_or(ApplyError::NoName)?,
        })
    }

    /// A named object of a kind paved installs.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Result<ObjectName, ApplyError> {
        Ok(ObjectName {
            resource: resource_of(api_version, kind)?,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }

    fn failed(&self, verb: &str, e: kube::Error) -> ApplyError {
        let code = match &e {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        };
        let message = match &e {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        ApplyError::Request { what: format!("{verb} {self}"), message, code }
    }
}

/// The API resource of a kind paved installs, from k8s-openapi's own constants.
fn resource_of(api_version: &str, kind: &str) -> Result<ApiResource, ApplyError> {
    let resource = match (api_version, kind) {
        ("v1", "Namespace") => ApiResource::erase::<Namespace>(&()),
        ("v1", "ServiceAccount") => ApiResource::erase::<ServiceAccount>(&()),
        ("v1", "ConfigMap") => ApiResource::erase::<ConfigMap>(&()),
        ("v1", "Secret") => ApiResource::erase::<Secret>(&()),
        ("v1", "Service") => ApiResource::erase::<Service>(&()),
        ("apps/v1", "Deployment") => ApiResource::erase::<Deployment>(&()),
        ("policy/v1", "PodDisruptionBudget") => ApiResource::erase::<PodDisruptionBudget>(&()),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => ApiResource::erase::<ClusterRole>(&()),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => ApiResource::erase::<ClusterRoleBinding>(&()),
        ("rbac.authorization.k8s.io/v1", "Role") => ApiResource::erase::<Role>(&()),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => ApiResource::erase::<RoleBinding>(&()),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            ApiResource::erase::<ValidatingWebhookConfiguration>(&())
        }
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            ApiResource::erase::<MutatingWebhookConfiguration>(&())
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => ApiResource::erase::<CustomResourceDefinition>(&()),
        _ => return Err(ApplyError::UnknownKind(format!("{api_version} {kind}"))),
    };
    Ok(resource)
}

/// Server-side applies `object` (forcing paved's ownership of its fields,
/// as an installer must); with `dry_run` the API server checks and answers
/// but stores nothing.
pub async fn apply(client: &kube::Client, object: &Value, dry_run: bool) -> Result<ObjectName, ApplyError> {
    let name = ObjectName::of(object)?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    name.api(client).patch(&name.name, &params, &Patch::Apply(object)).await.map_err(|e| name.failed("apply", e))?;
    Ok(name)
}

/// The object, or `None` when there is none.
pub async fn get(client: &kube::Client, name: &ObjectName) -> Result<Option<Value>, ApplyError> {
    match name.api(client).get_opt(&name.name).await {
        Ok(found) => Ok(found.and_then(|o| serde_json::to_value(o).ok())),
        Err(e) => Err(name.failed("get", e)),
    }
}

/// Whether a delete removed something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
}

/// Deletes the object in the background (its dependents follow, as
/// `kubectl delete` does); one that is not there is not an error.
pub async fn delete(client: &kube::Client, name: &ObjectName, dry_run: bool) -> Result<Deleted, ApplyError> {
    let mut params = DeleteParams::background();
    params.dry_run = dry_run;
    match name.api(client).delete(&name.name, &params).await {
        Ok(_) => Ok(Deleted::Deleted),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deleted::NotFound),
        Err(e) => Err(name.failed("delete", e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_kubectl_prints_them() {
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "paved", "namespace": "paved-system"}});
        let name = ObjectName::of(&deployment).unwrap();
        assert_eq!(name.to_string(), "deployment.apps/paved");
        assert_eq!(name.resource.plural, "deployments");
        assert_eq!(name.namespace.as_deref(), Some("paved-system"));
        let unknown = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(ObjectName::of(&unknown).unwrap_err().to_string(), "v1 Pod: paved does not install this kind");
    }
}
