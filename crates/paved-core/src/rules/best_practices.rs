//! The `best-practices` profile: what a careful operator expects of every workload.

use crate::eval::Ctx;
use crate::image::ImageRef;
use crate::node::Node;
use crate::policy::{Applies, Doc, Raw, Rule};

macro_rules! rule {
    ($id:literal, $applies:expr, $check:ident, $title:literal, $what:literal, $why:literal, $fix:literal, $short:literal) => {
        Rule {
            id: $id,
            group: "best-practices",
            upstream: None,
            doc: Doc { title: $title, what: $what, why: $why, fix: $fix, short: $short },
            applies: $applies,
            check: $check,
        }
    };
}

pub static RULES: &[Rule] = &[
    rule!(
        "best-practices/require-resources",
        Applies::PodSpec,
        require_resources,
        "CPU and memory requests and limits",
        "Every container and init container sets resources.requests and resources.limits for cpu and memory.",
        "Without requests the scheduler overcommits nodes; without limits one pod can starve its neighbours or be OOM-killed unpredictably.",
        "Add resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}, sized from real usage.",
        "Set cpu and memory requests and limits."
    ),
    rule!(
        "best-practices/pin-image",
        Applies::PodSpec,
        pin_image,
        "Pinned image",
        "Every image names a tag other than latest, or better a digest (@sha256:…).",
        "A missing or latest tag means a restart can run different code than was reviewed and tested.",
        "Use an explicit version tag, or pin the digest: image: repo/app:1.4.2@sha256:…",
        "Name a version tag or a digest, not latest."
    ),
    rule!(
        "best-practices/allowed-registries",
        Applies::PodSpec,
        allowed_registries,
        "Allowed registries",
        "Every image comes from a registry listed in params.allowed-registries (a host, or host/path prefix). Off when the parameter is unset.",
        "Images from unvetted registries bypass the organisation's scanning and provenance controls.",
        "Mirror the image into an allowed registry, or add the registry to params.allowed-registries.",
        "Use an image from params.allowed-registries."
    ),
    rule!(
        "best-practices/require-probes",
        Applies::PodSpec,
        require_probes,
        "Liveness and readiness probes",
        "Long-running workloads (not Jobs, CronJobs or pods that run to completion) define livenessProbe and readinessProbe on every container.",
        "Without a readiness probe traffic reaches pods that are not ready; without a liveness probe a hung process is never restarted.",
        "Add livenessProbe and readinessProbe (httpGet, tcpSocket, grpc or exec) to each container.",
        "Add a livenessProbe and a readinessProbe."
    ),
    rule!(
        "best-practices/restrict-loadbalancer-sources",
        Applies::Kinds(&["Service"]),
        loadbalancer_sources,
        "LoadBalancer source ranges",
        "A Service of type LoadBalancer sets loadBalancerSourceRanges, and none of them is 0.0.0.0/0 or ::/0.",
        "A LoadBalancer without source ranges exposes the service to the whole internet.",
        "Set spec.loadBalancerSourceRanges to the networks that need access, e.g. [10.0.0.0/8].",
        "Set narrow loadBalancerSourceRanges."
    ),
    rule!(
        "best-practices/no-open-ingress-cidr",
        Applies::Kinds(&["NetworkPolicy"]),
        open_network_policy,
        "NetworkPolicy open to the internet",
        "A NetworkPolicy ingress rule does not allow ipBlock 0.0.0.0/0 or ::/0.",
        "An ipBlock of 0.0.0.0/0 admits traffic from anywhere, defeating the policy.",
        "Narrow ipBlock.cidr to the networks that need access.",
        "Narrow ipBlock.cidr to the networks that need it."
    ),
    rule!(
        "best-practices/no-host-ports",
        Applies::PodSpec,
        no_host_ports,
        "No host ports",
        "Containers do not set ports[*].hostPort.",
        "A host port ties the pod to a node port, bypasses network policy and limits scheduling.",
        "Remove hostPort and expose the pod through a Service.",
        "Remove hostPort; expose the pod through a Service."
    ),
    rule!(
        "best-practices/no-token-automount",
        Applies::PodSpec,
        token_automount,
        "Service account token automount",
        "Pods set automountServiceAccountToken: false unless they talk to the Kubernetes API.",
        "A mounted token is a credential for the API server that any compromise of the pod hands over.",
        "Set spec.automountServiceAccountToken: false (on the pod template), or on the ServiceAccount.",
        "Set automountServiceAccountToken: false."
    ),
];

fn require_resources(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = cx.pod else { return };
    const NEEDED: [(&str, &str, &str); 4] = [
        ("requests", "cpu", "cpu request"),
        ("requests", "memory", "memory request"),
        ("limits", "cpu", "cpu limit"),
        ("limits", "memory", "memory limit"),
    ];
    // Ephemeral containers cannot have resources.
    for c in pod.containers().filter(|c| c.list != "ephemeralContainers") {
        let missing: Vec<_> = NEEDED
            .iter()
            .filter(|(section, res, _)| c.node.at(&["resources", section, res]).is_none_or(Node::is_null))
            .collect();
        let Some((section, res, _)) = missing.first() else { continue };
        let what: Vec<&str> = missing.iter().map(|(_, _, w)| *w).collect();
        let message = format!("{} has no {}; set resources.requests and limits", c.describe(), what.join(", "));
        out.push(Raw::new(c.field(&["resources", section, res]), message));
    }
}

fn images<'a>(cx: &Ctx<'a>) -> impl Iterator<Item = (crate::object::Container<'a>, &'a str)> + 'a {
    cx.pod
        .into_iter()
        .flat_map(|p| p.containers())
        .filter_map(|c| c.node.get("image").and_then(Node::as_str).map(|i| (c, i)))
}

fn pin_image(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    for (c, image) in images(cx) {
        let (tag, digest) = crate::image::tag_and_digest(image);
        if digest.is_some() {
            continue;
        }
        let problem = match tag {
            None => "has no tag",
            Some("latest") => "uses the latest tag",
            Some(_) => continue,
        };
        let message = format!("{} image {image:?} {problem}; pin a version tag or @sha256 digest", c.describe());
        out.push(Raw::new(c.field(&["image"]), message));
    }
}

fn allowed_registries(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(allowed) = cx.params.allowed_registries.as_deref() else { return };
    for (c, image) in images(cx) {
        let r = ImageRef::parse(image);
        if !allowed.iter().any(|a| r.is_from(a)) {
            let message =
                format!("{} image {image:?} is not from an allowed registry ({})", c.describe(), allowed.join(", "));
            out.push(Raw::new(c.field(&["image"]), message));
        }
    }
}

fn require_probes(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = cx.pod else { return };
    if pod.runs_to_completion {
        return;
    }
    for c in pod.containers().filter(|c| c.list == "containers") {
        for probe in ["livenessProbe", "readinessProbe"] {
            if c.node.get(probe).is_none_or(Node::is_null) {
                let message =
                    format!("{} has no {probe}; add one so Kubernetes knows when it is healthy", c.describe());
                out.push(Raw::new(c.field(&[probe]), message));
            }
        }
    }
}

fn is_open_cidr(cidr: &str) -> bool {
    matches!(cidr.trim(), "0.0.0.0/0" | "::/0" | "0::0/0" | "::0/0")
}

const LB_SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

fn loadbalancer_sources(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let obj = cx.obj;
    if obj.at(&["spec", "type"]).and_then(Node::as_str) != Some("LoadBalancer") {
        return;
    }
    let spec_path = crate::node::FieldPath::root().key("spec");
    let ranges = obj.at(&["spec", "loadBalancerSourceRanges"]).map(Node::as_seq).unwrap_or(&[]);
    if !ranges.is_empty() {
        for (i, r) in ranges.iter().enumerate() {
            if r.as_str().is_some_and(is_open_cidr) {
                let message = format!(
                    "loadBalancerSourceRanges allows {} (the whole internet); narrow it",
                    r.as_str().unwrap_or("")
                );
                out.push(Raw::new(spec_path.clone().key("loadBalancerSourceRanges").index(i), message));
            }
        }
        return;
    }
    // The cloud providers also honour the annotation when the field is empty.
    if let Some(ann) = obj.at(&["metadata", "annotations", LB_SOURCE_RANGES_ANNOTATION]).and_then(Node::as_str) {
        if ann.split(',').any(is_open_cidr) {
            let path =
                crate::node::FieldPath::root().key("metadata").key("annotations").key(LB_SOURCE_RANGES_ANNOTATION);
            out.push(Raw::new(path, "load-balancer-source-ranges allows the whole internet; narrow it"));
        }
        if !ann.trim().is_empty() {
            return;
        }
    }
    out.push(Raw::new(
        spec_path.key("type"),
        "LoadBalancer Service without loadBalancerSourceRanges is open to the internet; set the ranges",
    ));
}

fn open_network_policy(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let rules = cx.obj.at(&["spec", "ingress"]).map(Node::as_seq).unwrap_or(&[]);
    for (i, rule) in rules.iter().enumerate() {
        for (j, peer) in rule.get("from").map(Node::as_seq).unwrap_or(&[]).iter().enumerate() {
            if let Some(cidr) = peer.at(&["ipBlock", "cidr"]).and_then(Node::as_str).filter(|c| is_open_cidr(c)) {
                let path = crate::node::FieldPath::root()
                    .key("spec")
                    .key("ingress")
                    .index(i)
                    .key("from")
                    .index(j)
                    .key("ipBlock")
                    .key("cidr");
                out.push(Raw::new(
                    path,
                    format!("ingress from ipBlock {cidr} admits the whole internet; narrow the cidr"),
                ));
            }
        }
    }
}

fn no_host_ports(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = cx.pod else { return };
    for c in pod.containers() {
        for (i, hp) in c.host_ports() {
            let shown = hp.as_i64().map_or_else(|| "?".to_string(), |p| p.to_string());
            let message = format!("{} binds hostPort {shown}; remove it and use a Service", c.describe());
            out.push(Raw::new(c.host_port_path(i), message));
        }
    }
}

fn token_automount(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = cx.pod else { return };
    if pod.spec.get("automountServiceAccountToken").and_then(Node::as_bool) != Some(false) {
        out.push(Raw::new(
            pod.spec_field(&["automountServiceAccountToken"]),
            "pod mounts a service account token; set automountServiceAccountToken: false unless it uses the API",
        ));
    }
}
