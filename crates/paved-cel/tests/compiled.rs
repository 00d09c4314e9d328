//! paved's own CEL evaluator against the cel crate's interpreter, the
//! reference: each expression gives the same outcome both ways, and the
//! expressions policies use run without the interpreter, while anything
//! the evaluator is not sure of is handed back to it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use paved_cel::{Activation, Outcome, Params, Validator};
use serde_json::{Value, json};

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "wéb", "namespace": "shop", "labels": {"app": "web", "tier": "front"},
                     "annotations": {"owner": "team-a"}},
        "spec": {
            "hostNetwork": false,
            "containers": [
                {"name": "a", "image": "nginx:1.27", "ports": [{"containerPort": 80, "hostPort": 8080}],
                 "securityContext": {"privileged": true, "runAsUser": 0}},
                {"name": "b", "image": "ghcr.io/x/sidecar@sha256:abc", "args": ["-v", "--x=1"]}
            ]
        }
    })
}

/// The validator for one boolean expression, with a variable it may read.
fn validator(expression: &str) -> Validator {
    let spec = json!({
        "variables": [{"name": "containers", "expression": "object.spec.containers"}],
        "validations": [{"expression": expression, "messageExpression": "'failed: ' + object.metadata.name"}]
    });
    Validator::compile(&spec, &[], "spec").unwrap_or_else(|e| panic!("{expression}: {e:?}"))
}

/// `(interpreted, compiled alone)` for `expression` on the pod.
fn both(expression: &str) -> (Outcome, Option<Outcome>) {
    let request = json!({"operation": "CREATE", "userInfo": {"username": "alice", "groups": ["dev"]}});
    let activation = Activation::new(&pod(), &Value::Null, &request, &json!({"metadata": {"name": "shop"}}));
    let params = Params::new(&json!({"max": 3, "names": ["a", "b"], "big": 18446744073709551615u64}));
    let validator = validator(expression);
    let compiled = validator.evaluate_without_interpreter(&activation, &params);
    let interpreted = validator.evaluate_interpreted(&activation, &params);
    assert_eq!(validator.evaluate(&activation, &params), interpreted, "{expression}: the result differs");
    (interpreted, compiled)
}

/// Runs without the interpreter, and comes out `passes` as the interpreter's does.
fn compiled_alike(expression: &str, passes: bool) {
    let (interpreted, compiled) = both(expression);
    assert!(interpreted.errors.is_empty(), "{expression}: {:?}", interpreted.errors);
    assert_eq!(interpreted.failures.is_empty(), passes, "{expression}: {interpreted:?}");
    assert_eq!(compiled.as_ref(), Some(&interpreted), "{expression}");
}

/// Ends on an error: the evaluator hands the object to the interpreter,
/// which words it.
fn handed_back(expression: &str) {
    let (interpreted, compiled) = both(expression);
    assert!(!interpreted.errors.is_empty(), "{expression}: the interpreter gave {interpreted:?}");
    assert_eq!(compiled, None, "{expression}");
}

#[test]
fn field_selection_and_presence() {
    compiled_alike("object.metadata.labels.app == 'web'", true);
    compiled_alike("object.metadata.labels['tier'] == 'front'", true);
    compiled_alike("has(object.spec.hostNetwork) && !object.spec.hostNetwork", true);
    compiled_alike("has(object.spec.hostPID)", false);
    compiled_alike("'app' in object.metadata.labels && !('db' in object.metadata.labels)", true);
    compiled_alike("object.spec.containers[1].args[0] == '-v'", true);
    compiled_alike("size(object.metadata.labels) == 2 && object.spec.containers.size() == 2", true);
    compiled_alike("request.userInfo.username == 'alice' && 'dev' in request.userInfo.groups", true);
    compiled_alike("namespaceObject.metadata.name == 'shop' && oldObject == null", true);
    compiled_alike("params.max == 3 && params.names == params.names", true);
    handed_back("object.spec.hostPID");
    handed_back("has(object.spec.containers[0].image.x)");
    handed_back("object.spec.containers[5].name == 'a'");
}

#[test]
fn errors_absorbed_as_cel_absorbs_them() {
    // `||` and `&&` decide on either side; an error on the other does not matter.
    compiled_alike("object.spec.hostPID || true", true);
    compiled_alike("true || object.spec.hostPID", true);
    compiled_alike("!(object.spec.hostPID && false)", true);
    compiled_alike("!(false && object.spec.hostPID)", true);
    handed_back("object.spec.hostPID || false");
    handed_back("true && object.spec.hostPID");
    handed_back("object.metadata.name || true && object.spec.hostPID");
    // `all` and `exists`: an element that decides the result clears an
    // error on another; otherwise the error stands.
    compiled_alike("!object.spec.containers.all(c, c.securityContext.privileged == false)", true);
    compiled_alike("object.spec.containers.exists(c, c.securityContext.privileged)", true);
    compiled_alike("[{}, {'p': true}].exists(c, c.p) && !([{}, {'p': false}].all(c, c.p))", true);
    handed_back("[{}, {'p': true}].all(c, c.p)");
    handed_back("object.spec.containers.all(c, c.securityContext.privileged)");
    handed_back("object.spec.containers.exists(c, c.securityContext.runAsUser == 1)");
    // A non-bool condition is an error, a ternary's too.
    handed_back("object.metadata.name ? true : false");
    handed_back("!object.metadata.name");
}

#[test]
fn macros_and_variables() {
    compiled_alike("variables.containers.map(c, c.name) == ['a', 'b']", true);
    compiled_alike("variables.containers.filter(c, has(c.securityContext)).map(c, c.name).join(',') == 'a'", true);
    compiled_alike("variables.containers.exists_one(c, c.image.startsWith('nginx'))", true);
    compiled_alike("object.metadata.labels.all(k, k.size() > 2)", true);
    compiled_alike("object.metadata.labels.filter(k, k.startsWith('t')) == ['tier']", true);
    // Shadowing: the inner `x` is the inner list's.
    compiled_alike("[1, 2].all(x, [3].all(x, x == 3))", true);
    // A comprehension's variable is gone after it: `object` is the object again.
    compiled_alike("[1].all(object, object == 1) && object.metadata.name == 'wéb'", true);
    compiled_alike("[[1], [2, 3]].map(l, l.map(x, x * 2)) == [[2], [4, 6]]", true);
    compiled_alike("{'a': 1, 'b': [2]}.b[0] == 2 && has({'a': 1}.a) && 'a' in {'a': 1}", true);
    compiled_alike("[{'n': 'x'}].map(m, m.n + '!')[0] == 'x!'", true);
}

#[test]
fn strings_numbers_and_lists() {
    compiled_alike("object.metadata.name.size() == 3 && size('héllo') == 5", true);
    compiled_alike("object.spec.containers[0].image.matches('^nginx:[0-9.]+$')", true);
    compiled_alike("matches('abc', 'b') && !'abc'.matches('^b')", true);
    compiled_alike("'A-b'.lowerAscii() == 'a-b' && 'a'.upperAscii() == 'A' && ' x '.trim() == 'x'", true);
    compiled_alike("'a*b*'.replace('*', '') == 'ab' && 'abc'.contains('bc') && 'abc'.endsWith('c')", true);
    compiled_alike("string(12) == '12' && string(true) == 'true' && string(3u) == '3' && dyn('x') == 'x'", true);
    compiled_alike("['a', 'b'].join() == 'ab' && ['a', 'b'].join(', ') == 'a, b'", true);
    compiled_alike("1 == 1.0 && 1u == 1 && -1 < 1u && 2.5 > 2 && 'b' > 'a' && 1 != 'a'", true);
    compiled_alike("[1, 2] + [3] == [1, 2, 3] && size([1] + []) == 1 && 2 in [1, 2]", true);
    compiled_alike("7 / 2 == 3 && 7 % 2 == 1 && 2 * 3 - 1 == 5 && -(2) == -2 && 1.5 + 1.5 == 3.0", true);
    compiled_alike("object.spec.containers[0].ports[0].hostPort > 1024", true);
    compiled_alike("params.big > 0u", true);
    // Overflow, division by zero: errors the interpreter words.
    handed_back("9223372036854775807 + 1 > 0");
    handed_back("1 / 0 == 0");
    handed_back("'x'.matches('(')");
    handed_back("{'a': 1, 'a': 2}.a == 1");
}

#[test]
fn what_the_evaluator_leaves_to_the_interpreter() {
    // Functions it does not have: the policy runs on the interpreter, alike.
    for expression in ["quantity('1Gi').isGreaterThan(quantity('1Mi'))", "object.metadata.?labels.orValue({}) != {}"] {
        assert!(!validator(expression).is_compiled(), "{expression}");
        let (interpreted, compiled) = both(expression);
        assert!(interpreted.errors.is_empty() && interpreted.failures.is_empty(), "{expression}: {interpreted:?}");
        assert_eq!(compiled, None);
    }
    assert!(validator("object.spec.containers.all(c, c.name != '')").is_compiled());
    // `sets.contains` is a function even where a variable is named `sets`.
    assert!(!validator("['ab'].all(sets, sets.contains('a'))").is_compiled());
    assert!(validator("['ab'].all(set, set.contains('a'))").is_compiled());
}

#[test]
fn a_runaway_expression_is_stopped_both_ways() {
    let expression = "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, \
                      [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, true))))))";
    let (interpreted, compiled) = both(expression);
    assert_eq!(compiled, None);
    assert!(interpreted.errors.iter().any(|e| e.message.contains("budget")), "{interpreted:?}");
}
