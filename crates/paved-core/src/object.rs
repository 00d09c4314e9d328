//! What an object is (its reference) and where its pod spec lives.

use crate::node::{FieldPath, Node};

/// apiVersion, kind, namespace and name of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ObjectRef {
    pub fn of(obj: &Node) -> ObjectRef {
        let s = |n: Option<&Node>| n.and_then(Node::as_str).map(str::to_owned);
        ObjectRef {
            api_version: s(obj.get("apiVersion")).unwrap_or_default(),
            kind: s(obj.get("kind")).unwrap_or_default(),
            namespace: s(obj.at(&["metadata", "namespace"])),
            name: s(obj.at(&["metadata", "name"])).or_else(|| s(obj.at(&["metadata", "generateName"]))),
        }
    }

    /// `Kind namespace/name`, as `Display` writes it, piece by piece: into a
    /// `String`, this is plain appends (reporters write it for every finding).
    pub fn write_into(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        out.write_str(&self.kind)?;
        if let Some(n) = &self.name {
            out.write_char(' ')?;
            if let Some(ns) = &self.namespace {
                out.write_str(ns)?;
                out.write_char('/')?;
            }
            out.write_str(n)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_into(f)
    }
}

/// Where a kind keeps its pod template, or `None` for kinds without one.
pub fn pod_template_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &[],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            &["spec", "template"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        "PodTemplate" => &["template"],
        _ => return None,
    })
}

/// The object's controller: the `ownerReferences` entry with `controller: true`.
pub fn controller_ref<'n, 'a>(obj: &'n Node<'a>) -> Option<&'n Node<'a>> {
    let refs = obj.at(&["metadata", "ownerReferences"])?;
    refs.as_seq().iter().find(|r| r.get("controller").is_some_and(Node::is_true))
}

/// The pod inside an object: its spec and metadata, and where they are.
#[derive(Clone, Copy, Debug)]
pub struct PodView<'a> {
    pub spec: &'a Node<'a>,
    pub meta: Option<&'a Node<'a>>,
    /// Path of the pod template (empty for a Pod): `spec.template`.
    pub template: &'static [&'static str],
    /// Whether the pod runs to completion (Job, CronJob, or restartPolicy other than Always).
    pub runs_to_completion: bool,
}

/// Container lists of a pod spec, in the order Kubernetes visits them.
pub const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

impl<'a> PodView<'a> {
    pub fn of(obj: &'a Node<'a>, kind: &str) -> Option<PodView<'a>> {
        let template = pod_template_path(kind)?;
        let pod = obj.at(template)?;
        let spec = pod.get("spec")?;
        let restart = spec.get("restartPolicy").and_then(Node::as_str).unwrap_or("Always");
        Some(PodView {
            spec,
            meta: pod.get("metadata"),
            template,
            runs_to_completion: matches!(kind, "Job" | "CronJob") || restart != "Always",
        })
    }

    /// Absolute path of a field of the pod spec.
    pub fn spec_path(&self) -> FieldPath {
        FieldPath::root().keys(self.template).key("spec")
    }

    /// Absolute path of the pod metadata.
    pub fn meta_path(&self) -> FieldPath {
        FieldPath::root().keys(self.template).key("metadata")
    }

    /// A pod-level field, e.g. `spec.securityContext`.
    pub fn spec_field(&self, keys: &[&'static str]) -> FieldPath {
        self.spec_path().keys(keys)
    }

    /// Every container (regular, init, ephemeral). Cheap: paths are built
    /// only when a rule reports a finding.
    pub fn containers(self) -> impl Iterator<Item = Container<'a>> + 'a {
        let spec = self.spec;
        let template = self.template;
        CONTAINER_LISTS.into_iter().flat_map(move |list| {
            spec.get(list).map(Node::as_seq).unwrap_or(&[]).iter().enumerate().map(move |(index, node)| Container {
                node,
                list,
                index,
                template,
            })
        })
    }

    /// `spec.os.name == "windows"`.
    pub fn is_windows(&self) -> bool {
        self.spec.at(&["os", "name"]).and_then(Node::as_str) == Some("windows")
    }

    /// `spec.hostUsers == false`: the pod runs in its own user namespace.
    pub fn in_user_namespace(&self) -> bool {
        self.spec.get("hostUsers").and_then(Node::as_bool) == Some(false)
    }
}

/// One container of a pod spec.
#[derive(Clone, Copy, Debug)]
pub struct Container<'a> {
    pub node: &'a Node<'a>,
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub list: &'static str,
    pub index: usize,
    template: &'static [&'static str],
}

impl<'a> Container<'a> {
    pub fn name(&self) -> &'a str {
        self.node.get("name").and_then(Node::as_str).unwrap_or("")
    }

    /// Path of this container: `spec.template.spec.containers[0]`.
    pub fn path(&self) -> FieldPath {
        self.field(&[])
    }

    /// Path of a field of this container, in one allocation.
    pub fn field(&self, keys: &[&'static str]) -> FieldPath {
        let segments = Vec::with_capacity(self.template.len() + 3 + keys.len());
        FieldPath(segments).keys(self.template).key("spec").key(self.list).index(self.index).keys(keys)
    }

    /// Ports that bind a host port (set, and not 0), with their index in `ports`.
    pub fn host_ports(&self) -> impl Iterator<Item = (usize, &'a Node<'a>)> + 'a {
        let ports = self.node.get("ports").map(Node::as_seq).unwrap_or(&[]);
        ports.iter().enumerate().filter_map(|(i, port)| {
            let hp = port.get("hostPort")?;
            (!hp.is_null() && hp.as_i64() != Some(0)).then_some((i, hp))
        })
    }

    /// Path of `ports[i].hostPort`.
    pub fn host_port_path(&self, index: usize) -> FieldPath {
        self.field(&["ports"]).index(index).key("hostPort")
    }

    pub fn security(&self, keys: &[&str]) -> Option<&'a Node<'a>> {
        self.node.get("securityContext")?.at(keys)
    }

    /// `container "x"`, `init container "x"` or `ephemeral container "x"`,
    /// as Pod Security Admission says it; formatted into messages directly.
    pub fn describe(&self) -> Described<'a> {
        let kind = match self.list {
            "initContainers" => "init container",
            "ephemeralContainers" => "ephemeral container",
            _ => "container",
        };
        Described { kind, name: self.name() }
    }
}

/// A container's description, written without an intermediate string.
#[derive(Clone, Copy, Debug)]
pub struct Described<'a> {
    kind: &'static str,
    name: &'a str,
}

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Kubernetes names cannot hold quotes or control characters.
        write!(f, "{} \"{}\"", self.kind, self.name)
    }
}
