#!/usr/bin/env python3
"""Generates AdmissionReview requests as the API server sends them, deterministically.

usage: gen_reviews.py --out DIR [--count N]

Pod and Deployment CREATE reviews of realistic size (labels, env, probes,
volumes, managedFields-free as admission sees them), a mix of verdicts under
the default profile: about half allowed, 30% warned (restricted-only
findings), 20% denied (baseline findings; the Pods are the replicaset
controller's, judged at their owner, so theirs are warned).
Files: review-NNNN-VERDICT.json, VERDICT as paved answers it.
"""
import argparse
import json
import os
import random
import uuid

NAMESPACES = ["shop", "payments", "search", "checkout", "catalog"]


def container(rng, i, verdict):
    security = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "readOnlyRootFilesystem": True,
    }
    if verdict == "warned":
        security = {"readOnlyRootFilesystem": True}
    elif verdict == "denied":
        security = rng.choice([{"privileged": True}, {"capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}])
    return {
        "name": "app-%d" % i,
        "image": "registry.example.com/shop/api:1.%d.%d" % (rng.randrange(20), rng.randrange(20)),
        "imagePullPolicy": "IfNotPresent",
        "args": ["--port=8080", "--log-level=info", "--metrics-addr=:9090"],
        "env": [{"name": "SETTING_%d" % e, "value": "value-%d" % rng.randrange(1000)} for e in range(rng.randrange(3, 8))],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": security,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def pod_spec(rng, verdict):
    spec = {
        "containers": [container(rng, i, verdict) for i in range(rng.choice([1, 1, 2]))],
        "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                    {"name": "tmp", "emptyDir": {}}],
        "automountServiceAccountToken": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "app",
        "schedulerName": "default-scheduler",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}} if verdict != "warned" else {},
    }
    if verdict == "denied" and rng.random() < 0.3:
        spec["hostNetwork"] = True
    return spec


def review(rng, verdict, kind):
    ns = rng.choice(NAMESPACES)
    name = "api-%d" % rng.randrange(100000)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "team": "checkout"}
    if kind == "Pod":
        obj = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name + "-7d4b9c-x2x9q", "generateName": name + "-7d4b9c-", "namespace": ns,
                            "labels": labels, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                            "name": name + "-7d4b9c", "uid": str(uuid.UUID(int=rng.getrandbits(128))),
                            "controller": True, "blockOwnerDeletion": True}]},
               "spec": pod_spec(rng, verdict)}
        group, version, resource, user = "", "v1", "pods", "system:serviceaccount:kube-system:replicaset-controller"
    else:
        obj = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": ns, "labels": labels,
                            "annotations": {"deployment.kubernetes.io/revision": "1"}},
               "spec": {"replicas": rng.choice([2, 3, 5]), "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                        "template": {"metadata": {"labels": labels}, "spec": pod_spec(rng, verdict)}}}
        group, version, resource, user = "apps", "v1", "deployments", "dev@example.com"
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.UUID(int=rng.getrandbits(128))), "kind": gvk, "resource": gvr,
        "requestKind": gvk, "requestResource": gvr, "name": obj["metadata"]["name"], "namespace": ns,
        "operation": "CREATE",
        "userInfo": {"username": user, "uid": "2a1b", "groups": ["system:authenticated"]},
        "object": obj, "oldObject": None, "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=200)
    args = p.parse_args()
    rng = random.Random(7)
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.count):
        r = rng.random()
        verdict = "allowed" if r < 0.5 else "warned" if r < 0.8 else "denied"
        kind = "Pod" if i % 2 else "Deployment"
        # The Pods are the replicaset controller's: what would deny them was
        # judged at their owner, so they are answered with warnings.
        expected = "warned" if kind == "Pod" and verdict == "denied" else verdict
        with open(os.path.join(args.out, "review-%04d-%s.json" % (i, expected)), "w") as f:
            json.dump(review(rng, verdict, kind), f, separators=(",", ":"))
    print(args.out)


if __name__ == "__main__":
    main()
