//! The Pod Security Standards, baseline and restricted, every check,
//! versioned as Kubernetes' Pod Security Admission versions them.
//!
//! Each check reports one finding per offending field, so that every finding
//! points at its own line. Messages start with the same reason text as Pod
//! Security Admission (`allowPrivilegeEscalation != false`, `hostPort`, …)
//! followed by a detail that says what to change.

use crate::eval::Ctx;
use crate::node::{FieldPath, Node};
use crate::object::{Container, PodView};
use crate::policy::{Applies, Doc, Raw, Rule};

/// The newest Kubernetes minor version whose PSS content this build knows.
pub const LATEST_MINOR: u32 = 37;

/// A baseline check that a restricted check replaces, from a version on.
pub struct Replacement {
    pub baseline: &'static str,
    pub restricted: &'static str,
    pub since: u32,
}

/// When the restricted level is evaluated alone, these baseline checks give
/// way to their stricter restricted versions (as in Pod Security Admission).
pub const REPLACEMENTS: &[Replacement] = &[
    Replacement { baseline: "pss-baseline/capabilities", restricted: "pss-restricted/capabilities", since: 22 },
    Replacement { baseline: "pss-baseline/seccomp-profile", restricted: "pss-restricted/seccomp-profile", since: 19 },
    Replacement { baseline: "pss-baseline/host-path-volumes", restricted: "pss-restricted/volume-types", since: 0 },
    Replacement { baseline: "pss-baseline/proc-mount", restricted: "pss-restricted/proc-mount", since: 35 },
];

fn msg(reason: &str, detail: impl std::fmt::Display) -> String {
    format!("{reason} ({detail})")
}

macro_rules! pss_rule {
    ($id:literal, $group:literal, $upstream:literal, $check:ident, $title:literal, $what:literal, $why:literal, $fix:literal, $short:literal) => {
        Rule {
            id: $id,
            group: $group,
            upstream: Some($upstream),
            doc: Doc { title: $title, what: $what, why: $why, fix: $fix, short: $short },
            applies: Applies::PodSpec,
            check: $check,
        }
    };
}

pub static RULES: &[Rule] = &[
    pss_rule!(
        "pss-baseline/host-namespaces",
        "pss-baseline",
        "hostNamespaces",
        host_namespaces,
        "Host namespaces",
        "Forbids sharing the host's network, PID or IPC namespace (spec.hostNetwork, hostPID, hostIPC).",
        "A pod in the host's namespaces can see and talk to every process and interface of the node.",
        "Remove hostNetwork, hostPID and hostIPC, or set them to false.",
        "Remove hostNetwork, hostPID and hostIPC."
    ),
    pss_rule!(
        "pss-baseline/privileged",
        "pss-baseline",
        "privileged",
        privileged,
        "Privileged containers",
        "Forbids securityContext.privileged=true on every container, init container and ephemeral container.",
        "A privileged container has every capability and all host devices: it is root on the node.",
        "Remove securityContext.privileged or set it to false.",
        "Remove securityContext.privileged: true."
    ),
    pss_rule!(
        "pss-baseline/capabilities",
        "pss-baseline",
        "capabilities_baseline",
        capabilities_baseline,
        "Non-default capabilities",
        "Allows adding only the container runtime's default capabilities (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).",
        "Capabilities such as SYS_ADMIN or NET_ADMIN break the isolation between container and node.",
        "Remove the capability from securityContext.capabilities.add.",
        "Add only default capabilities to capabilities.add."
    ),
    pss_rule!(
        "pss-baseline/host-path-volumes",
        "pss-baseline",
        "hostPathVolumes",
        host_path_volumes,
        "hostPath volumes",
        "Forbids hostPath volumes.",
        "A hostPath volume gives the pod the node's filesystem: its credentials, its runtime socket, its logs.",
        "Use a persistentVolumeClaim, emptyDir, configMap or secret volume instead.",
        "Use a volume type other than hostPath."
    ),
    pss_rule!(
        "pss-baseline/host-ports",
        "pss-baseline",
        "hostPorts",
        host_ports,
        "Host ports",
        "Forbids containers[*].ports[*].hostPort (other than 0).",
        "A host port binds the node's interface, bypasses network policy and limits scheduling.",
        "Remove hostPort and expose the pod through a Service.",
        "Remove hostPort; expose the pod through a Service."
    ),
    pss_rule!(
        "pss-baseline/apparmor",
        "pss-baseline",
        "appArmorProfile",
        apparmor,
        "AppArmor profile",
        "Forbids the Unconfined AppArmor profile (fields appArmorProfile.type, or the container.apparmor.security.beta.kubernetes.io annotations).",
        "AppArmor confines what a process may touch; turning it off removes a layer of defence.",
        "Remove the override, or use RuntimeDefault (runtime/default) or a Localhost profile.",
        "Use the RuntimeDefault or a Localhost AppArmor profile."
    ),
    pss_rule!(
        "pss-baseline/selinux",
        "pss-baseline",
        "seLinuxOptions",
        selinux,
        "SELinux options",
        "Allows only the container SELinux types (container_t, container_init_t, container_kvm_t, container_engine_t) and forbids setting user or role.",
        "A custom SELinux type or user can give the container the host's labels.",
        "Remove seLinuxOptions.user and role, and use a container_* type or none.",
        "Remove seLinuxOptions.user and role; use a container_* type."
    ),
    pss_rule!(
        "pss-baseline/proc-mount",
        "pss-baseline",
        "procMount",
        proc_mount,
        "/proc mount type",
        "Requires the default /proc mask (securityContext.procMount unset or Default); from v1.35 pods in a user namespace (hostUsers: false) may unmask.",
        "The masked paths of /proc hide kernel interfaces that let a process reach the host.",
        "Remove securityContext.procMount or set it to Default.",
        "Remove securityContext.procMount or set it to Default."
    ),
    pss_rule!(
        "pss-baseline/seccomp-profile",
        "pss-baseline",
        "seccompProfile_baseline",
        seccomp_baseline,
        "Seccomp profile (baseline)",
        "Forbids the Unconfined seccomp profile (securityContext.seccompProfile.type, or the seccomp annotations before v1.19).",
        "Seccomp blocks the system calls most kernel exploits need.",
        "Remove the Unconfined profile; use RuntimeDefault or Localhost.",
        "Use the RuntimeDefault or a Localhost seccomp profile."
    ),
    pss_rule!(
        "pss-baseline/sysctls",
        "pss-baseline",
        "sysctls",
        sysctls,
        "Sysctls",
        "Allows only the namespaced, isolated sysctls of the Pod Security Standards in spec.securityContext.sysctls.",
        "Other sysctls change the node's kernel for every pod on it.",
        "Remove the sysctl, or set it on the node instead.",
        "Remove the sysctl, or set it on the node."
    ),
    pss_rule!(
        "pss-baseline/windows-host-process",
        "pss-baseline",
        "windowsHostProcess",
        windows_host_process,
        "Windows HostProcess",
        "Forbids securityContext.windowsOptions.hostProcess=true at pod and container level.",
        "A HostProcess container runs directly on the Windows node with its privileges.",
        "Remove windowsOptions.hostProcess or set it to false.",
        "Remove windowsOptions.hostProcess: true."
    ),
    pss_rule!(
        "pss-baseline/host-probes",
        "pss-baseline",
        "hostProbesAndHostLifecycle",
        host_probes,
        "Probe and lifecycle hosts",
        "From v1.34, forbids a host in probes and lifecycle handlers (httpGet.host, tcpSocket.host).",
        "A probe with a host makes the kubelet connect to any address on the pod's behalf.",
        "Remove the host field: probes then target the pod's own IP.",
        "Remove the host field of the probe or lifecycle handler."
    ),
    pss_rule!(
        "pss-restricted/volume-types",
        "pss-restricted",
        "restrictedVolumes",
        restricted_volumes,
        "Volume types",
        "Allows only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes.",
        "Other volume types reach the node or network storage directly, bypassing the cluster's access control.",
        "Use a persistentVolumeClaim (with a StorageClass) instead of the inline volume source.",
        "Use a persistentVolumeClaim instead of this volume type."
    ),
    pss_rule!(
        "pss-restricted/privilege-escalation",
        "pss-restricted",
        "allowPrivilegeEscalation",
        allow_privilege_escalation,
        "Privilege escalation",
        "From v1.8, every container must set securityContext.allowPrivilegeEscalation=false (Windows pods are exempt from v1.25).",
        "Without it, setuid binaries and file capabilities can give a process more privileges than its parent.",
        "Set securityContext.allowPrivilegeEscalation: false on every container.",
        "Set allowPrivilegeEscalation: false."
    ),
    pss_rule!(
        "pss-restricted/run-as-non-root",
        "pss-restricted",
        "runAsNonRoot",
        run_as_non_root,
        "Run as non-root",
        "Requires runAsNonRoot=true on the pod or on every container, and forbids runAsNonRoot=false.",
        "Root in a container is root on the node as soon as any isolation fails.",
        "Set spec.securityContext.runAsNonRoot: true (and a non-zero runAsUser if the image runs as root).",
        "Set securityContext.runAsNonRoot: true."
    ),
    pss_rule!(
        "pss-restricted/run-as-user",
        "pss-restricted",
        "runAsUser",
        run_as_user,
        "Run as non-zero user",
        "From v1.23, forbids runAsUser=0 at pod and container level.",
        "User 0 is root.",
        "Set runAsUser to a non-zero UID, or remove it and use an image with a non-root USER.",
        "Set runAsUser to a non-zero UID."
    ),
    pss_rule!(
        "pss-restricted/seccomp-profile",
        "pss-restricted",
        "seccompProfile_restricted",
        seccomp_restricted,
        "Seccomp profile (restricted)",
        "From v1.19, requires seccompProfile.type RuntimeDefault or Localhost on the pod or on every container (Windows pods exempt from v1.25).",
        "Seccomp blocks the system calls most kernel exploits need; the default is often Unconfined.",
        "Set spec.securityContext.seccompProfile.type: RuntimeDefault.",
        "Set seccompProfile.type: RuntimeDefault."
    ),
    pss_rule!(
        "pss-restricted/capabilities",
        "pss-restricted",
        "capabilities_restricted",
        capabilities_restricted,
        "Capabilities (restricted)",
        "From v1.22, every container must drop ALL capabilities and may add back only NET_BIND_SERVICE (Windows pods exempt from v1.25).",
        "The runtime's default capabilities still include several an attacker can use (NET_RAW, MKNOD, …).",
        "Set securityContext.capabilities.drop: [ALL]; add only NET_BIND_SERVICE if needed.",
        "Drop ALL capabilities; add back only NET_BIND_SERVICE."
    ),
    pss_rule!(
        "pss-restricted/proc-mount",
        "pss-restricted",
        "procMount_restricted",
        proc_mount_restricted,
        "/proc mount type (restricted)",
        "From v1.35, requires the default /proc mask even for pods in a user namespace.",
        "The masked paths of /proc hide kernel interfaces that let a process reach the host.",
        "Remove securityContext.procMount or set it to Default.",
        "Remove securityContext.procMount or set it to Default."
    ),
];

fn pod<'a>(cx: &Ctx<'a>) -> Option<PodView<'a>> {
    cx.pod
}

fn host_namespaces(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod.spec.get(field).is_some_and(Node::is_true) {
            out.push(Raw::new(
                pod.spec_field(&[field]),
                msg("host namespaces", format_args!("{field}=true; remove it")),
            ));
        }
    }
}

fn privileged(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    for c in pod.containers() {
        if c.security(&["privileged"]).is_some_and(Node::is_true) {
            let detail = format_args!("{} must not set securityContext.privileged=true", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "privileged"]), msg("privileged", detail)));
        }
    }
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities<'a>(c: &Container<'a>) -> impl Iterator<Item = (usize, &'a Node<'a>)> + 'a {
    c.security(&["capabilities", "add"]).map(Node::as_seq).unwrap_or(&[]).iter().enumerate()
}

fn capabilities_baseline(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    for c in pod.containers() {
        for (i, cap) in added_capabilities(&c) {
            let name = cap.as_str().unwrap_or("");
            if !BASELINE_CAPABILITIES.contains(&name) {
                let detail = format_args!("{} must not add {name:?} to securityContext.capabilities", c.describe());
                let path = c.field(&["securityContext", "capabilities", "add"]).index(i);
                out.push(Raw::new(path, msg("non-default capabilities", detail)));
            }
        }
    }
}

fn volumes<'a>(pod: &PodView<'a>) -> impl Iterator<Item = (usize, &'a Node<'a>)> + 'a {
    pod.spec.get("volumes").map(Node::as_seq).unwrap_or(&[]).iter().enumerate()
}

fn volume_path(pod: &PodView<'_>, index: usize) -> FieldPath {
    pod.spec_field(&["volumes"]).index(index)
}

fn volume_name<'a>(v: &'a Node<'_>) -> &'a str {
    v.get("name").and_then(Node::as_str).unwrap_or("")
}

fn host_path_volumes(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    for (i, v) in volumes(&pod) {
        if v.get("hostPath").is_some_and(|h| !h.is_null()) {
            let detail = format_args!("volume {:?} must not use hostPath", volume_name(v));
            out.push(Raw::new(volume_path(&pod, i).key("hostPath"), msg("hostPath volumes", detail)));
        }
    }
}

fn host_ports(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    for c in pod.containers() {
        for (i, hp) in c.host_ports() {
            let shown = hp.as_i64().map_or_else(|| "?".to_string(), |p| p.to_string());
            let detail = format_args!("{} uses hostPort {shown}; remove it", c.describe());
            out.push(Raw::new(c.host_port_path(i), msg("hostPort", detail)));
        }
    }
}

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

fn apparmor(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    const REASON: &str = "forbidden AppArmor profile";
    let bad_type =
        |n: Option<&Node>| n.and_then(Node::as_str).is_some_and(|t| t != "RuntimeDefault" && t != "Localhost");
    if bad_type(pod.spec.at(&["securityContext", "appArmorProfile", "type"])) {
        let path = pod.spec_field(&["securityContext", "appArmorProfile", "type"]);
        out.push(Raw::new(path, msg(REASON, "pod must not set appArmorProfile.type=Unconfined")));
    }
    for c in pod.containers() {
        if bad_type(c.security(&["appArmorProfile", "type"])) {
            let detail = format_args!("{} must not set appArmorProfile.type=Unconfined", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "appArmorProfile", "type"]), msg(REASON, detail)));
        }
    }
    let Some(annotations) = pod.meta.and_then(|m| m.get("annotations")).and_then(Node::as_map) else { return };
    for (key, value) in annotations.iter() {
        let Some(container) = key.strip_prefix(APPARMOR_ANNOTATION) else { continue };
        let v = value.as_str().unwrap_or("");
        if v != "runtime/default" && !v.starts_with("localhost/") {
            let detail = format_args!("container {container:?} must not use AppArmor profile {v:?}");
            out.push(Raw::new(pod.meta_path().key("annotations").key(key.to_owned()), msg(REASON, detail)));
        }
    }
}

fn selinux(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    let allowed_type = |t: &str| {
        matches!(t, "" | "container_t" | "container_init_t" | "container_kvm_t")
            || (cx.pss >= 31 && t == "container_engine_t")
    };
    // Paths and descriptions are built only for options that are set.
    let mut check = |opts: &Node<'_>, path: &dyn Fn() -> FieldPath, who: &dyn std::fmt::Display| {
        if let Some(t) = opts.get("type").and_then(Node::as_str).filter(|t| !allowed_type(t)) {
            let detail = format_args!("{who} must not set seLinuxOptions.type {t:?}");
            out.push(Raw::new(path().key("type"), msg("seLinuxOptions", detail)));
        }
        for field in ["user", "role"] {
            if opts.get(field).and_then(Node::as_str).is_some_and(|s| !s.is_empty()) {
                let detail = format_args!("{who} must not set seLinuxOptions.{field}");
                out.push(Raw::new(path().key(field), msg("seLinuxOptions", detail)));
            }
        }
    };
    if let Some(opts) = pod.spec.at(&["securityContext", "seLinuxOptions"]) {
        check(opts, &|| pod.spec_field(&["securityContext", "seLinuxOptions"]), &"pod");
    }
    for c in pod.containers() {
        if let Some(opts) = c.security(&["seLinuxOptions"]) {
            check(opts, &|| c.field(&["securityContext", "seLinuxOptions"]), &c.describe());
        }
    }
}

fn unmasked_proc_mounts<'a>(pod: &PodView<'a>, out: &mut Vec<Raw>) {
    for c in pod.containers() {
        if let Some(pm) = c.security(&["procMount"]).and_then(Node::as_str).filter(|pm| *pm != "Default") {
            let detail = format_args!("{} must not set securityContext.procMount={pm}", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "procMount"]), msg("procMount", detail)));
        }
    }
}

fn proc_mount(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    // From v1.35 a pod in its own user namespace may unmask /proc.
    if cx.pss >= 35 && pod.in_user_namespace() {
        return;
    }
    unmasked_proc_mounts(&pod, out);
}

fn proc_mount_restricted(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    if cx.pss >= 35 {
        unmasked_proc_mounts(&pod, out);
    }
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn seccomp_baseline(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    const REASON: &str = "seccompProfile";
    if cx.pss < 19 {
        let Some(annotations) = pod.meta.and_then(|m| m.get("annotations")).and_then(Node::as_map) else { return };
        for (key, value) in annotations.iter() {
            let who = if key == SECCOMP_POD_ANNOTATION {
                "pod".to_string()
            } else if let Some(c) = key.strip_prefix(SECCOMP_CONTAINER_ANNOTATION) {
                format!("container {c:?}")
            } else {
                continue;
            };
            if value.as_str() == Some("unconfined") {
                let detail = format_args!("{who} must not use seccomp profile \"unconfined\"");
                out.push(Raw::new(pod.meta_path().key("annotations").key(key.to_owned()), msg(REASON, detail)));
            }
        }
        return;
    }
    let unconfined = |n: Option<&Node>| n.and_then(Node::as_str) == Some("Unconfined");
    if unconfined(pod.spec.at(&["securityContext", "seccompProfile", "type"])) {
        let path = pod.spec_field(&["securityContext", "seccompProfile", "type"]);
        out.push(Raw::new(path, msg(REASON, "pod must not set securityContext.seccompProfile.type=Unconfined")));
    }
    for c in pod.containers() {
        if unconfined(c.security(&["seccompProfile", "type"])) {
            let detail = format_args!("{} must not set securityContext.seccompProfile.type=Unconfined", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "seccompProfile", "type"]), msg(REASON, detail)));
        }
    }
}

fn sysctl_allowed(name: &str, minor: u32) -> bool {
    match name {
        "kernel.shm_rmid_forced"
        | "net.ipv4.ip_local_port_range"
        | "net.ipv4.tcp_syncookies"
        | "net.ipv4.ping_group_range"
        | "net.ipv4.ip_unprivileged_port_start" => true,
        "net.ipv4.ip_local_reserved_ports" => minor >= 27,
        "net.ipv4.tcp_keepalive_time"
        | "net.ipv4.tcp_fin_timeout"
        | "net.ipv4.tcp_keepalive_intvl"
        | "net.ipv4.tcp_keepalive_probes" => minor >= 29,
        "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" => minor >= 32,
        "net.ipv4.tcp_slow_start_after_idle" | "net.ipv4.tcp_notsent_lowat" => minor >= 37,
        _ => false,
    }
}

fn sysctls(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    let list = pod.spec.at(&["securityContext", "sysctls"]).map(Node::as_seq).unwrap_or(&[]);
    for (i, s) in list.iter().enumerate() {
        let name = s.get("name").and_then(Node::as_str).unwrap_or("");
        if !sysctl_allowed(name, cx.pss) {
            let path = pod.spec_field(&["securityContext", "sysctls"]).index(i).key("name");
            out.push(Raw::new(path, msg("forbidden sysctls", format_args!("{name}; remove it"))));
        }
    }
}

fn windows_host_process(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    const REASON: &str = "hostProcess";
    if pod.spec.at(&["securityContext", "windowsOptions", "hostProcess"]).is_some_and(Node::is_true) {
        let path = pod.spec_field(&["securityContext", "windowsOptions", "hostProcess"]);
        out.push(Raw::new(path, msg(REASON, "pod must not set securityContext.windowsOptions.hostProcess=true")));
    }
    for c in pod.containers() {
        if c.security(&["windowsOptions", "hostProcess"]).is_some_and(Node::is_true) {
            let detail = format_args!("{} must not set securityContext.windowsOptions.hostProcess=true", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "windowsOptions", "hostProcess"]), msg(REASON, detail)));
        }
    }
}

fn host_probes(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    if cx.pss < 34 {
        return;
    }
    const HANDLERS: [&[&str]; 5] = [
        &["livenessProbe"],
        &["readinessProbe"],
        &["startupProbe"],
        &["lifecycle", "postStart"],
        &["lifecycle", "preStop"],
    ];
    for c in pod.containers() {
        for handler in HANDLERS {
            let Some(h) = c.node.at(handler) else { continue };
            for action in ["httpGet", "tcpSocket"] {
                let host = h.at(&[action, "host"]).and_then(Node::as_str).unwrap_or("");
                if !host.is_empty() {
                    let path = c.field(handler).key(action).key("host");
                    let detail =
                        format_args!("{} must not set {}.{action}.host={host}", c.describe(), handler.join("."));
                    out.push(Raw::new(path, msg("probe or lifecycle host", detail)));
                }
            }
        }
    }
}

const RESTRICTED_VOLUME_SOURCES: &[&str] =
    &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

fn restricted_volumes(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    for (i, v) in volumes(&pod) {
        let Some(m) = v.as_map() else { continue };
        for (key, source) in m.iter() {
            if key == "name" || source.is_null() || RESTRICTED_VOLUME_SOURCES.contains(&key) {
                continue;
            }
            let detail = format_args!("volume {:?} uses restricted volume type {key:?}", volume_name(v));
            out.push(Raw::new(volume_path(&pod, i).key(key.to_owned()), msg("restricted volume types", detail)));
        }
    }
}

/// Restricted checks that do not apply to Windows pods from v1.25.
fn skip_windows(cx: &Ctx<'_>, pod: &PodView<'_>) -> bool {
    cx.pss >= 25 && pod.is_windows()
}

fn allow_privilege_escalation(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    if cx.pss < 8 || skip_windows(cx, &pod) {
        return;
    }
    for c in pod.containers() {
        if c.security(&["allowPrivilegeEscalation"]).and_then(Node::as_bool) != Some(false) {
            let detail = format_args!("{} must set securityContext.allowPrivilegeEscalation=false", c.describe());
            out.push(Raw::new(
                c.field(&["securityContext", "allowPrivilegeEscalation"]),
                msg("allowPrivilegeEscalation != false", detail),
            ));
        }
    }
}

fn run_as_non_root(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    const REASON: &str = "runAsNonRoot != true";
    let pod_level = pod.spec.at(&["securityContext", "runAsNonRoot"]).and_then(Node::as_bool);
    if pod_level == Some(false) {
        let path = pod.spec_field(&["securityContext", "runAsNonRoot"]);
        out.push(Raw::new(path, msg(REASON, "pod must not set securityContext.runAsNonRoot=false")));
    }
    for c in pod.containers() {
        let path = || c.field(&["securityContext", "runAsNonRoot"]);
        match c.security(&["runAsNonRoot"]).and_then(Node::as_bool) {
            Some(true) => {}
            Some(false) => {
                let detail = format_args!("{} must not set securityContext.runAsNonRoot=false", c.describe());
                out.push(Raw::new(path(), msg(REASON, detail)));
            }
            None if pod_level != Some(true) => {
                let detail = format_args!("pod or {} must set securityContext.runAsNonRoot=true", c.describe());
                out.push(Raw::new(path(), msg(REASON, detail)));
            }
            None => {}
        }
    }
}

fn run_as_user(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    if cx.pss < 23 {
        return;
    }
    const REASON: &str = "runAsUser=0";
    if pod.spec.at(&["securityContext", "runAsUser"]).and_then(Node::as_i64) == Some(0) {
        let path = pod.spec_field(&["securityContext", "runAsUser"]);
        out.push(Raw::new(path, msg(REASON, "pod must not set runAsUser=0; use a non-zero UID")));
    }
    for c in pod.containers() {
        if c.security(&["runAsUser"]).and_then(Node::as_i64) == Some(0) {
            let detail = format_args!("{} must not set runAsUser=0; use a non-zero UID", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "runAsUser"]), msg(REASON, detail)));
        }
    }
}

fn seccomp_restricted(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    if cx.pss < 19 || skip_windows(cx, &pod) {
        return;
    }
    const REASON: &str = "seccompProfile";
    let valid = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let pod_type = pod.spec.at(&["securityContext", "seccompProfile", "type"]).and_then(Node::as_str);
    let pod_ok = pod_type.is_some_and(valid);
    if let Some(t) = pod_type.filter(|t| !valid(t)) {
        let path = pod.spec_field(&["securityContext", "seccompProfile", "type"]);
        out.push(Raw::new(path, msg(REASON, format_args!("pod must not set securityContext.seccompProfile.type={t}"))));
    }
    for c in pod.containers() {
        let path = || c.field(&["securityContext", "seccompProfile", "type"]);
        match c.security(&["seccompProfile", "type"]).and_then(Node::as_str) {
            Some(t) if valid(t) => {}
            Some(t) => {
                let detail = format_args!("{} must not set securityContext.seccompProfile.type={t}", c.describe());
                out.push(Raw::new(path(), msg(REASON, detail)));
            }
            None if !pod_ok => {
                let detail =
                    format_args!("pod or {} must set securityContext.seccompProfile.type=RuntimeDefault", c.describe());
                out.push(Raw::new(path(), msg(REASON, detail)));
            }
            None => {}
        }
    }
}

fn capabilities_restricted(cx: &Ctx<'_>, out: &mut Vec<Raw>) {
    let Some(pod) = pod(cx) else { return };
    if cx.pss < 22 || skip_windows(cx, &pod) {
        return;
    }
    const REASON: &str = "unrestricted capabilities";
    for c in pod.containers() {
        let drops = c.security(&["capabilities", "drop"]).map(Node::as_seq).unwrap_or(&[]);
        if !drops.iter().any(|d| d.as_str() == Some("ALL")) {
            let detail = format_args!("{} must set securityContext.capabilities.drop=[\"ALL\"]", c.describe());
            out.push(Raw::new(c.field(&["securityContext", "capabilities", "drop"]), msg(REASON, detail)));
        }
        for (i, cap) in added_capabilities(&c) {
            let name = cap.as_str().unwrap_or("");
            if name != "NET_BIND_SERVICE" {
                let detail = format_args!("{} must not add {name:?}; only NET_BIND_SERVICE is allowed", c.describe());
                let path = c.field(&["securityContext", "capabilities", "add"]).index(i);
                out.push(Raw::new(path, msg(REASON, detail)));
            }
        }
    }
}
