#!/usr/bin/env python3
"""Generates realistic Kubernetes manifests for benchmarks, deterministically.

usage: gen_manifests.py OBJECTS OUTDIR [PER_FILE]

A mix of Deployments, StatefulSets, Services and Pods of about 2 KB each,
some compliant, some not, five objects per file by default.
"""
import os
import random
import sys

KINDS = ["Deployment", "StatefulSet", "Service", "Pod", "Deployment"]


def container(rng, i, secure):
    image = rng.choice([
        "registry.example.com/shop/api:1.%d.%d" % (rng.randrange(20), rng.randrange(20)),
        "nginx:1.27",
        "ghcr.io/acme/worker@sha256:" + "%064x" % rng.getrandbits(256),
        "busybox",
    ])
    lines = [
        "      - name: app-%d" % i,
        "        image: %s" % image,
        "        imagePullPolicy: IfNotPresent",
        "        args: [\"--port=8080\", \"--log-level=info\", \"--metrics-addr=:9090\"]",
        "        env:",
    ]
    for e in range(rng.randrange(3, 7)):
        lines.append("        - name: SETTING_%d" % e)
        lines.append("          value: \"value-%d-%d\"" % (e, rng.randrange(1000)))
    lines += [
        "        ports:",
        "        - name: http",
        "          containerPort: 8080",
        "          protocol: TCP",
        "        - name: metrics",
        "          containerPort: 9090",
    ]
    if rng.random() < 0.8:
        lines += [
            "        resources:",
            "          requests:",
            "            cpu: %dm" % rng.choice([50, 100, 250]),
            "            memory: %dMi" % rng.choice([64, 128, 256]),
            "          limits:",
            "            cpu: %dm" % rng.choice([500, 1000]),
            "            memory: %dMi" % rng.choice([256, 512]),
        ]
    if rng.random() < 0.7:
        lines += [
            "        livenessProbe:",
            "          httpGet: {path: /healthz, port: http}",
            "          initialDelaySeconds: 10",
            "          periodSeconds: 10",
            "        readinessProbe:",
            "          httpGet:",
            "            path: /ready",
            "            port: http",
        ]
    lines += [
        "        volumeMounts:",
        "        - name: config",
        "          mountPath: /etc/app",
        "          readOnly: true",
    ]
    if secure:
        lines += [
            "        securityContext:",
            "          allowPrivilegeEscalation: false",
            "          readOnlyRootFilesystem: true",
            "          capabilities:",
            "            drop: [\"ALL\"]",
        ]
    elif rng.random() < 0.3:
        lines += ["        securityContext:", "          privileged: true"]
    return lines


def pod_spec(rng, indent, secure):
    pad = " " * indent
    lines = []
    if secure:
        lines += [
            "automountServiceAccountToken: false",
            "securityContext:",
            "  runAsNonRoot: true",
            "  runAsUser: %d" % rng.randrange(1000, 65000),
            "  seccompProfile:",
            "    type: RuntimeDefault",
        ]
    lines += ["serviceAccountName: app", "terminationGracePeriodSeconds: 30", "containers:"]
    body = [pad + l for l in lines]
    for i in range(rng.choice([1, 1, 2])):
        body += [pad[6:] + l for l in container(rng, i, secure)] if indent >= 6 else [l[6 - indent:] for l in container(rng, i, secure)]
    body += [pad + l for l in [
        "volumes:",
        "- name: config",
        "  configMap:",
        "    name: app-config",
    ]]
    return body


def labels(pad, name, team):
    return [
        pad + "labels:",
        pad + "  app.kubernetes.io/name: %s" % name,
        pad + "  app.kubernetes.io/part-of: shop",
        pad + "  team: %s" % team,
    ]


def manifest(rng, n):
    kind = KINDS[n % len(KINDS)]
    name = "svc-%05d" % n
    ns = "team-%d" % (n % 17)
    team = rng.choice(["payments", "search", "checkout", "catalog"])
    secure = rng.random() < 0.5
    head = ["apiVersion: %s" % ("v1" if kind in ("Service", "Pod") else "apps/v1"), "kind: %s" % kind,
            "metadata:", "  name: %s" % name, "  namespace: %s" % ns]
    head += labels("  ", name, team)
    head += ["  annotations:", "    description: \"generated workload %d for benchmarks\"" % n,
             "    owner: \"%s@example.com\"" % team]
    if kind == "Service":
        svc_type = rng.choice(["ClusterIP", "ClusterIP", "LoadBalancer"])
        body = ["spec:", "  type: %s" % svc_type, "  selector:", "    app.kubernetes.io/name: %s" % name, "  ports:"]
        for p, (pname, port) in enumerate([("http", 80), ("https", 443), ("metrics", 9090)]):
            body += ["  - name: %s" % pname, "    port: %d" % port, "    targetPort: %d" % (8080 + p), "    protocol: TCP"]
        if svc_type == "LoadBalancer" and rng.random() < 0.5:
            body += ["  loadBalancerSourceRanges:", "  - 10.0.0.0/8", "  - 192.168.0.0/16"]
        body += ["  sessionAffinity: None", "  ipFamilyPolicy: SingleStack", "  ipFamilies: [IPv4]"]
        body += ["  internalTrafficPolicy: Cluster"] * 1
        return "\n".join(head + body) + "\n"
    if kind == "Pod":
        return "\n".join(head + ["spec:"] + pod_spec(rng, 2, secure)) + "\n"
    body = ["spec:", "  replicas: %d" % rng.randrange(1, 6)]
    if kind == "StatefulSet":
        body += ["  serviceName: %s" % name, "  podManagementPolicy: Parallel"]
    else:
        body += ["  strategy:", "    type: RollingUpdate", "    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}"]
    body += ["  selector:", "    matchLabels:", "      app.kubernetes.io/name: %s" % name,
             "  template:", "    metadata:"] + labels("      ", name, team) + ["    spec:"]
    body += pod_spec(rng, 6, secure)
    return "\n".join(head + body) + "\n"


def main():
    total = int(sys.argv[1])
    out = sys.argv[2]
    per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    rng = random.Random(42)
    os.makedirs(out, exist_ok=True)
    for f in range(0, total, per_file):
        docs = [manifest(rng, n) for n in range(f, min(f + per_file, total))]
        with open(os.path.join(out, "m-%06d.yaml" % (f // per_file)), "w") as fh:
            fh.write("---\n".join(docs))


if __name__ == "__main__":
    main()
