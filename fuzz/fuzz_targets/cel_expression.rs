//! CEL expressions come from policy authors, and sometimes from strangers (a
//! VAP in a cluster paved audits): any text must compile or give an error,
//! and what compiles must evaluate to a value or an error, within the cost
//! budget, never a panic, a stack overflow or a hang. Where paved's own
//! evaluator answers without the interpreter, it must answer as the
//! interpreter does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paved_cel::{Activation, Outcome, Params, Validator};
use serde_json::{Value, json};

/// The interpreter iterates maps in a random order (as cel-go does), so maps
/// here have at most two keys, and a disagreement is retried with freshly
/// built maps before it counts.
const ORDERS_TRIED: usize = 64;

fn inputs() -> (Activation, Params) {
    let pod = json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "a", "image": "nginx:1.27"},
            {"image": "ghcr.io/x/y@sha256:00", "securityContext": {"privileged": true}}
        ]}
    });
    let request = json!({"operation": "CREATE", "userInfo": {"username": "u", "groups": ["g"]}});
    let activation = Activation::new(&pod, &Value::Null, &request, &Value::Null);
    (activation, Params::new(&json!({"max": 3, "names": ["a", "b"]})))
}

fn interpreted(validator: &Validator) -> Outcome {
    let (activation, params) = inputs();
    validator.evaluate_interpreted(&activation, &params)
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let spec = json!({
        "variables": [{"name": "containers", "expression": "object.spec.containers"}],
        "validations": [{"expression": source, "messageExpression": source}]
    });
    // Kyverno's dialect too: its library calls rewritten, read from no data.
    if let Ok(kyverno) = Validator::compile_in(&spec, &[], "spec", paved_cel::expr::Dialect::Kyverno) {
        let (activation, params) = inputs();
        let _ = kyverno.evaluate(&activation, &params);
    }
    let Ok(validator) = Validator::compile(&spec, &[], "spec") else { return };
    let (activation, params) = inputs();
    // Whichever engine runs it, it must not panic, overflow or hang.
    let _ = validator.evaluate(&activation, &params);
    if let Some(compiled) = validator.evaluate_without_interpreter(&activation, &params) {
        let agrees = (0..ORDERS_TRIED).any(|_| interpreted(&validator) == compiled);
        assert!(agrees, "{source}: compiled {compiled:?}, interpreted {:?}", interpreted(&validator));
    }
});
