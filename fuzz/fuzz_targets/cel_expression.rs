//! CEL expressions come from policy authors, and sometimes from strangers (a
//! VAP in a cluster paved audits): any text must compile or give an error,
//! and what compiles must evaluate to a value or an error, within the cost
//! budget, never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_cel::{Activation, Params, Validator};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let spec = json!({
        "variables": [{"name": "containers", "expression": "object.spec.containers"}],
        "validations": [{"expression": source, "messageExpression": source}]
    });
    let Ok(validator) = Validator::compile(&spec, &[], "spec") else { return };
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {"containers": [
            {"name": "a", "image": "nginx:1.27", "ports": [{"containerPort": 80, "hostPort": 8080}],
             "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}},
            {"name": "b", "image": "ghcr.io/x/y@sha256:00", "args": ["-v", "--x=1"]}
        ]}
    });
    let request = json!({"operation": "CREATE", "userInfo": {"username": "u", "groups": ["g"]}});
    let activation = Activation::new(&pod, &serde_json::Value::Null, &request, &serde_json::Value::Null);
    let _ = validator.evaluate(&activation, &Params::new(&json!({"max": 3, "names": ["a", "b"]})));
});
