//! Kyverno's CEL libraries, for Kyverno's policies only: `resource.Get` and
//! `resource.List` (answered from objects paved already holds: `--inventory`,
//! a `kyverno test` context, a server's synced inventory; never a call to
//! the API server while judging), `image.GetMetadata` (from a `kyverno test`
//! context), `image()`/`isImage()`, `parseServiceAccount()` and `time.now()`.
//!
//! A Kyverno expression's calls are rewritten when it is compiled
//! ([`rewrite_call`]) to functions named `@kyverno.…`, which no expression
//! can write, so a ValidatingAdmissionPolicy never reaches them. The calls
//! that read objects get one more argument: the [`DATA`] variable, which
//! holds what the evaluation may read ([`ClusterData`]).

use std::sync::{Arc, OnceLock};

use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue};
use cel::common::value::{CowVal, Val};
use cel::objects::Opaque;
use cel::{ExecutionError, Value};
use paved_core::image::ImageRef;
use serde_json::Value as Json;

use crate::expr::CompileError;
use crate::libs::error;

/// The variable holding an evaluation's [`ClusterData`].
pub(crate) const DATA: &str = "@kyverno.data";

/// Kyverno's libraries that read from outside the object, and what paved
/// can do for each of their functions.
const LIBRARIES: [&str; 6] = ["resource", "image", "http", "globalContext", "imagedata", "generator"];

/// Objects and image metadata a Kyverno policy may read while it judges.
pub trait ClusterData: Send + Sync {
    /// The object `name` (in `namespace`, `""` for cluster-scoped ones) of
    /// `resource` (a plural, as `configmaps`) in `api_version`.
    fn get(&self, api_version: &str, resource: &str, namespace: &str, name: &str) -> Result<Json, String>;
    /// Every such object in `namespace` (all namespaces when `""`), as
    /// `{"apiVersion", "kind": "List", "items": [...]}`.
    fn list(&self, api_version: &str, resource: &str, namespace: &str) -> Result<Json, String>;
    /// What `image.GetMetadata` answers for `image`: `manifest`, `config`, …
    fn image_metadata(&self, image: &str) -> Result<Json, String>;
}

/// Nothing to read: every call says where objects would come from.
pub struct NoData;

impl ClusterData for NoData {
    fn get(&self, api_version: &str, resource: &str, namespace: &str, name: &str) -> Result<Json, String> {
        Err(format!(
            "{resource}.{api_version} {namespace}/{name}: paved reads only the objects it is given \
             (--inventory, a kyverno test context, a server's synced state), and here it has none"
        ))
    }

    fn list(&self, api_version: &str, resource: &str, _namespace: &str) -> Result<Json, String> {
        Ok(list_of(api_version, resource, Vec::new()))
    }

    fn image_metadata(&self, image: &str) -> Result<Json, String> {
        Err(no_image_metadata(image))
    }
}

/// Why `image.GetMetadata` has no answer for `image`.
pub fn no_image_metadata(image: &str) -> String {
    format!(
        "image.GetMetadata({image:?}): paved does not fetch from registries while judging; \
         it knows image metadata only from a kyverno test context (spec.images)"
    )
}

/// `resource.List`'s answer: the objects as an unstructured list.
pub fn list_of(api_version: &str, resource: &str, items: Vec<Json>) -> Json {
    let kind = kind_of_resource(api_version, resource).map_or_else(String::new, |k| format!("{k}List"));
    serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {}, "items": items})
}

/// A [`ClusterData`] as a CEL value, for [`DATA`].
#[derive(Clone)]
pub(crate) struct DataHandle(pub(crate) Arc<dyn ClusterData>);

impl std::fmt::Debug for DataHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterData")
    }
}

impl PartialEq for DataHandle {
    fn eq(&self, other: &DataHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DataHandle {}

impl Opaque for DataHandle {
    fn runtime_type_name(&self) -> &str {
        "kyverno.Data"
    }
}

impl DataHandle {
    pub(crate) fn value(data: Option<&Arc<dyn ClusterData>>) -> Box<dyn Val> {
        let data = data.map_or_else(|| Arc::new(NoData) as Arc<dyn ClusterData>, Arc::clone);
        let value = Value::Opaque(Arc::new(DataHandle(data)));
        // An opaque value always converts; the fallback is never taken.
        let converted: Result<Box<dyn Val>, _> = value.try_into();
        converted.unwrap_or_else(|_| Box::new(cel::common::types::CelNull))
    }
}

/// The library and function a call names: `resource.Get(…)` parses as a
/// call of `Get` on `resource`, or as the qualified function `resource.Get`.
fn qualified(call: &CallExpr) -> Option<(&str, &str)> {
    match call.target.as_deref() {
        Some(IdedExpr { expr: Expr::Ident(library), .. }) => Some((library.as_str(), call.func_name.as_str())),
        Some(_) => None,
        None => call.func_name.split_once('.'),
    }
}

fn literal_string(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// Rewrites a call of Kyverno's libraries in place; `data` makes the
/// [`DATA`] argument. Calls that read objects record `(apiVersion,
/// resource)` in `reads`. A library function paved does not have is an
/// error naming it. Member calls with a lower-case name (`image.startsWith`
/// on a variable called `image`) are CEL's own and left alone.
pub(crate) fn rewrite_call(
    call: &mut CallExpr,
    reads: &mut Vec<(String, String)>,
    data: &mut dyn FnMut() -> IdedExpr,
) -> Result<(), CompileError> {
    let (name, takes_data) = match (qualified(call), call.args.len()) {
        (Some(("resource", "Get")), 4) | (Some(("resource", "List")), 3) => {
            let (Some(api_version), Some(resource)) = (literal_string(&call.args[0]), literal_string(&call.args[1]))
            else {
                return Err(CompileError::new(format!(
                    "resource.{}: write its apiVersion and resource as literal strings, so that paved knows \
                     which objects to keep for it",
                    call.func_name.rsplit('.').next().unwrap_or_default()
                )));
            };
            reads.push((api_version.to_owned(), resource.to_owned()));
            let function = if call.args.len() == 4 { "@kyverno.resource.Get" } else { "@kyverno.resource.List" };
            (function, true)
        }
        (Some(("image", "GetMetadata")), 1) => ("@kyverno.image.GetMetadata", true),
        (Some(("time", "now")), 0) => ("@kyverno.time.now", false),
        (None, 1) if call.target.is_none() => match call.func_name.as_str() {
            "image" => ("@kyverno.image", false),
            "isImage" => ("@kyverno.isImage", false),
            "parseServiceAccount" => ("@kyverno.parseServiceAccount", false),
            _ => return Ok(()),
        },
        (Some((library, function)), _)
            if LIBRARIES.contains(&library) && function.starts_with(|c: char| c.is_ascii_uppercase()) =>
        {
            let why = match (library, function) {
                ("resource", "Post") => "it writes to the API server, which paved never does while judging",
                ("http", _) => "it calls out over the network, which paved never does while judging",
                _ => "paved does not have it",
            };
            return Err(CompileError::new(format!(
                "calls {library}.{function} ({} arguments), a Kyverno library function paved does not run: {why}",
                call.args.len()
            )));
        }
        _ => return Ok(()),
    };
    call.func_name = name.to_owned();
    call.target = None;
    if takes_data {
        call.args.insert(0, data());
    }
    Ok(())
}

/// Declares the functions [`rewrite_call`] calls.
pub(crate) fn declare(env: &mut cel::Env) {
    use cel::common::types::{DYN_TYPE, STRING_TYPE, Type};
    let add = |result: Result<(), cel::DeclarationError>| debug_assert!(result.is_ok(), "{result:?}");
    let image = || Type::new_opaque_type(IMAGE_TYPE);
    add(env.add_overload(
        "@kyverno.resource.Get",
        "kyverno_resource_get",
        vec![DYN_TYPE, STRING_TYPE, STRING_TYPE, STRING_TYPE, STRING_TYPE],
        resource_get,
    ));
    add(env.add_overload(
        "@kyverno.resource.List",
        "kyverno_resource_list",
        vec![DYN_TYPE, STRING_TYPE, STRING_TYPE, STRING_TYPE],
        resource_list,
    ));
    add(env.add_overload(
        "@kyverno.image.GetMetadata",
        "kyverno_image_get_metadata",
        vec![DYN_TYPE, STRING_TYPE],
        image_get_metadata,
    ));
    add(env.add_overload("@kyverno.time.now", "kyverno_time_now", vec![], time_now));
    add(env.add_overload("@kyverno.image", "kyverno_image", vec![STRING_TYPE], image_parse));
    add(env.add_overload("@kyverno.isImage", "kyverno_is_image", vec![STRING_TYPE], image_is));
    add(env.add_overload(
        "@kyverno.parseServiceAccount",
        "kyverno_parse_service_account",
        vec![STRING_TYPE],
        parse_service_account,
    ));
    for (name, function) in [
        ("registry", image_registry as cel::common::functions::Function),
        ("repository", image_repository),
        ("identifier", image_identifier),
        ("tag", image_tag),
        ("digest", image_digest),
        ("containsDigest", image_contains_digest),
    ] {
        add(env.add_member_overload(name, &format!("kyverno_image_{name}"), image(), vec![], function));
    }
}

fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(&**a)).collect()
}

fn owned<'b, 'v>(value: Box<dyn Val>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(CowVal::Owned(value))
}

fn from_value<'b, 'v>(value: Value) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let boxed: Box<dyn Val> = value.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn data_and_strings<'a>(
    function: &str,
    values: &'a [Value],
) -> Result<(&'a Arc<dyn ClusterData>, Vec<&'a str>), ExecutionError> {
    let Some(Value::Opaque(data)) = values.first() else { return Err(error(function, "no data")) };
    let data = data.downcast_ref::<DataHandle>().ok_or_else(|| error(function, "no data"))?;
    let strings = values[1..]
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.as_str()),
            other => Err(error(function, format!("expected a string, got {other:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((&data.0, strings))
}

fn resource_get<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    const F: &str = "resource.Get";
    let values = values(&args)?;
    let (data, s) = data_and_strings(F, &values)?;
    let [api_version, resource, namespace, name] = s[..] else { return Err(error(F, "expects 4 arguments")) };
    let object = data.get(api_version, resource, namespace, name).map_err(|why| error(F, why))?;
    owned(crate::shared::from_json(&object))
}

fn resource_list<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    const F: &str = "resource.List";
    let values = values(&args)?;
    let (data, s) = data_and_strings(F, &values)?;
    let [api_version, resource, namespace] = s[..] else { return Err(error(F, "expects 3 arguments")) };
    let list = data.list(api_version, resource, namespace).map_err(|why| error(F, why))?;
    owned(crate::shared::from_json(&list))
}

fn image_get_metadata<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    const F: &str = "image.GetMetadata";
    let values = values(&args)?;
    let (data, s) = data_and_strings(F, &values)?;
    let [image] = s[..] else { return Err(error(F, "expects 1 argument")) };
    let metadata = data.image_metadata(image).map_err(|why| error(F, why))?;
    owned(crate::shared::from_json(&metadata))
}

fn time_now<'b, 'v>(_: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    from_value(Value::Timestamp(chrono::Utc::now().fixed_offset()))
}

fn one_string(function: &str, args: &[CowVal<'_, '_>]) -> Result<String, ExecutionError> {
    match values(args)?.into_iter().next() {
        Some(Value::String(s)) => Ok(s.to_string()),
        other => Err(error(function, format!("expected a string, got {other:?}"))),
    }
}

/// `parseServiceAccount("system:serviceaccount:NS:NAME")`: `Namespace` and
/// `Name`, both empty for a user that is not a service account.
fn parse_service_account<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let user = one_string("parseServiceAccount", &args)?;
    let (namespace, name) = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'))
        .unwrap_or(("", ""));
    owned(crate::shared::from_json(&serde_json::json!({"Namespace": namespace, "Name": name})))
}

/// The CEL type name of `image()`'s values.
const IMAGE_TYPE: &str = "kyverno.Image";

/// A parsed image reference, as `image()` returns it.
#[derive(Debug, PartialEq, Eq)]
struct Image(ImageRef);

impl Opaque for Image {
    fn runtime_type_name(&self) -> &str {
        IMAGE_TYPE
    }
}

/// The reference grammar of container images (distribution's): an optional
/// registry host with port, lower-case path components, an optional tag,
/// an optional digest.
fn reference_grammar() -> Option<&'static regex::Regex> {
    static GRAMMAR: OnceLock<Option<regex::Regex>> = OnceLock::new();
    GRAMMAR.get_or_init(|| {
        let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        let host = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?";
        let pattern = format!(
            r"^(?:{host}/)?{component}(?:/{component})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$"
        );
        // The pattern is a constant that compiles (a test says so).
        regex::Regex::new(&pattern).ok()
    })
    .as_ref()
}

/// Whether `text` is an image reference: the grammar, and a name of at most
/// 255 characters. (A lone host such as `localhost:5000` is a name with a tag.)
pub fn is_image_reference(text: &str) -> bool {
    let name_len = text.split(['@']).next().map_or(0, str::len);
    name_len <= 255 && reference_grammar().is_some_and(|g| g.is_match(text))
}

fn image_of(function: &str, args: &[CowVal<'_, '_>]) -> Result<Arc<dyn Opaque>, ExecutionError> {
    match args.first().map(|a| Value::try_from(&**a)).transpose()? {
        Some(Value::Opaque(o)) if o.downcast_ref::<Image>().is_some() => Ok(o),
        other => Err(error(function, format!("expected an image, got {other:?}"))),
    }
}

fn image_parse<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = one_string("image", &args)?;
    if !is_image_reference(&text) {
        return Err(error("image", format!("{text:?} is not an image reference")));
    }
    from_value(Value::Opaque(Arc::new(Image(ImageRef::parse(&text)))))
}

fn image_is<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = one_string("isImage", &args)?;
    from_value(Value::Bool(is_image_reference(&text)))
}

/// Reads one part of an image; `part` gets the reference.
fn image_part<'b, 'v>(
    function: &str,
    args: &[CowVal<'b, 'v>],
    part: impl Fn(&ImageRef) -> Value,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let image = image_of(function, args)?;
    let reference = &image.downcast_ref::<Image>().ok_or_else(|| error(function, "expected an image"))?.0;
    from_value(part(reference))
}

/// The tag a runtime pulls: the one written, else `latest` unless a digest names the image.
fn tag_of(r: &ImageRef) -> String {
    match (&r.tag, &r.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => "latest".to_owned(),
    }
}

fn image_registry<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    image_part("registry", &args, |r| Value::String(Arc::new(r.registry.clone())))
}

fn image_repository<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    image_part("repository", &args, |r| Value::String(Arc::new(r.repository.clone())))
}

fn image_identifier<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    image_part("identifier", &args, |r| Value::String(Arc::new(r.digest.clone().unwrap_or_else(|| tag_of(r)))))
}

fn image_tag<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    image_part("tag", &args, |r| Value::String(Arc::new(tag_of(r))))
}

fn image_digest<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    image_part("digest", &args, |r| Value::String(Arc::new(r.digest.clone().unwrap_or_default())))
}

fn image_contains_digest<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    image_part("containsDigest", &args, |r| Value::Bool(r.digest.is_some()))
}

/// Built-in kinds by `apiVersion`, for `resource.Get`'s plural resource
/// names (a server must know the kind to keep the objects in sync).
const BUILT_IN_KINDS: &[(&str, &[&str])] = &[
    (
        "v1",
        &[
            "ConfigMap",
            "Endpoints",
            "Event",
            "LimitRange",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "ResourceQuota",
            "Secret",
            "Service",
            "ServiceAccount",
        ],
    ),
    ("apps/v1", &["ControllerRevision", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"]),
    ("batch/v1", &["CronJob", "Job"]),
    ("autoscaling/v1", &["HorizontalPodAutoscaler"]),
    ("autoscaling/v2", &["HorizontalPodAutoscaler"]),
    ("networking.k8s.io/v1", &["Ingress", "IngressClass", "NetworkPolicy"]),
    ("policy/v1", &["PodDisruptionBudget"]),
    ("rbac.authorization.k8s.io/v1", &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]),
    ("storage.k8s.io/v1", &["CSIDriver", "CSINode", "CSIStorageCapacity", "StorageClass", "VolumeAttachment"]),
    ("scheduling.k8s.io/v1", &["PriorityClass"]),
    ("node.k8s.io/v1", &["RuntimeClass"]),
    ("coordination.k8s.io/v1", &["Lease"]),
    ("discovery.k8s.io/v1", &["EndpointSlice"]),
    ("events.k8s.io/v1", &["Event"]),
    ("certificates.k8s.io/v1", &["CertificateSigningRequest"]),
    ("apiextensions.k8s.io/v1", &["CustomResourceDefinition"]),
    (
        "admissionregistration.k8s.io/v1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingWebhookConfiguration",
        ],
    ),
];

/// The kind a built-in resource of `api_version` names, e.g. `ConfigMap`
/// for `v1` `configmaps`.
pub fn kind_of_resource(api_version: &str, resource: &str) -> Option<&'static str> {
    BUILT_IN_KINDS
        .iter()
        .filter(|(v, _)| *v == api_version)
        .flat_map(|(_, kinds)| kinds.iter())
        .find(|kind| crate::vap::resource_of(kind) == resource)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_resources_name_their_kinds() {
        assert_eq!(kind_of_resource("v1", "configmaps"), Some("ConfigMap"));
        assert_eq!(kind_of_resource("v1", "endpoints"), Some("Endpoints"));
        assert_eq!(kind_of_resource("networking.k8s.io/v1", "networkpolicies"), Some("NetworkPolicy"));
        assert_eq!(kind_of_resource("networking.k8s.io/v1", "ingresses"), Some("Ingress"));
        assert_eq!(kind_of_resource("apps/v1", "configmaps"), None);
        assert_eq!(kind_of_resource("example.com/v1", "widgets"), None);
    }

    #[test]
    fn image_references_follow_the_grammar() {
        for good in [
            "nginx",
            "nginx:1.27",
            "ghcr.io/kyverno/test-busybox:1.35",
            "localhost:5000/app",
            "registry.example.com:443/team/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_reference(good), "{good}");
        }
        for bad in ["", "Nginx", "nginx:", "nginx@sha256:xyz", "a//b", "-a", "nginx:1.0 ", &"a".repeat(256)] {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }
}
