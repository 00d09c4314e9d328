#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use paved_cel::{Activation, Params, Validator};
use serde_json::{Value, json};

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "a", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"memory": "512Mi"}}},
            {"name": "b", "image": "ghcr.io/x/sidecar@sha256:abc"}
        ]}
    })
}

fn create(object: &Value) -> Activation {
    let request = json!({"operation": "CREATE", "userInfo": {"username": "alice", "groups": ["dev"]}});
    Activation::new(object, &Value::Null, &request, &json!({"metadata": {"name": "shop", "labels": {"env": "prod"}}}))
}

fn run(spec: Value, object: &Value, params: &Value) -> paved_cel::Outcome {
    let validator = Validator::compile(&spec, &[], "spec").unwrap_or_else(|e| panic!("{e:?}"));
    validator.evaluate(&create(object), &Params::new(params))
}

fn messages(outcome: &paved_cel::Outcome) -> Vec<&str> {
    outcome.failures.iter().map(|f| f.message.as_str()).collect()
}

#[test]
fn a_false_validation_is_a_failure_with_its_message_and_reason() {
    let outcome = run(
        json!({"validations": [
            {"expression": "object.spec.containers.all(c, c.image.contains('@sha256:'))",
             "message": "images must be pinned", "reason": "Forbidden"},
            {"expression": "object.metadata.name == 'web'", "message": "never shown"}
        ]}),
        &pod(),
        &Value::Null,
    );
    assert!(outcome.matched);
    assert_eq!(messages(&outcome), ["images must be pinned"]);
    assert_eq!(outcome.failures[0].reason, "Forbidden");
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

#[test]
fn message_expression_wins_unless_empty_or_multiline_then_message_then_the_expression() {
    let spec = json!({"validations": [
        {"expression": "false", "messageExpression": "'pod ' + object.metadata.name + ' is bad'", "message": "m0"},
        {"expression": "false", "messageExpression": "''", "message": "fallback"},
        {"expression": "false", "messageExpression": "'two\\nlines'", "message": "one line"},
        {"expression": " 1 == 2 "}
    ]});
    let outcome = run(spec, &pod(), &Value::Null);
    assert_eq!(messages(&outcome), ["pod web is bad", "fallback", "one line", "failed expression: 1 == 2"]);
    assert_eq!(outcome.failures[3].reason, "Invalid");
}

#[test]
fn variables_compose_and_are_evaluated_lazily() {
    // `boom` would fail (no such key) but nothing reads it.
    let spec = json!({
        "variables": [
            {"name": "images", "expression": "object.spec.containers.map(c, c.image)"},
            {"name": "unpinned", "expression": "variables.images.filter(i, !i.contains('@'))"},
            {"name": "boom", "expression": "object.spec.nothing.here"}
        ],
        "validations": [{"expression": "size(variables.unpinned) == 0",
                         "messageExpression": "'unpinned: ' + variables.unpinned.join(', ')"}]
    });
    let outcome = run(spec, &pod(), &Value::Null);
    assert_eq!(messages(&outcome), ["unpinned: nginx:1.27"]);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

#[test]
fn a_failing_variable_is_named_in_the_error_of_the_validation_that_reads_it() {
    let spec = json!({
        "variables": [{"name": "boom", "expression": "object.spec.nothing.here"}],
        "validations": [{"expression": "variables.boom == 1"}]
    });
    let outcome = run(spec, &pod(), &Value::Null);
    assert!(outcome.failures.is_empty());
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(outcome.errors[0].field, "validations[0].expression");
    assert!(outcome.errors[0].message.contains("variables.boom"), "{}", outcome.errors[0].message);
}

#[test]
fn a_variable_can_only_use_those_defined_before_it() {
    let spec = json!({
        "variables": [{"name": "a", "expression": "variables.b"}, {"name": "b", "expression": "1"}],
        "validations": [{"expression": "variables.a == 1"}]
    });
    let errors = Validator::compile(&spec, &[], "spec").err().expect("a forward reference must not compile");
    assert_eq!(errors[0].field, "spec.variables[0].expression");
    assert!(errors[0].message.contains("variables.b is not defined"), "{}", errors[0].message);
}

#[test]
fn match_conditions_skip_the_object_when_one_is_false() {
    let spec = json!({
        "matchConditions": [{"name": "not-alice", "expression": "request.userInfo.username != 'alice'"}],
        "validations": [{"expression": "false"}]
    });
    let outcome = run(spec, &pod(), &Value::Null);
    assert!(!outcome.matched);
    assert!(outcome.failures.is_empty());
    let spec = json!({
        "matchConditions": [{"name": "prod", "expression": "namespaceObject.metadata.labels.env == 'prod'"}],
        "validations": [{"expression": "false", "message": "judged"}]
    });
    assert_eq!(messages(&run(spec, &pod(), &Value::Null)), ["judged"]);
}

#[test]
fn request_holds_the_request_attributes_but_not_the_objects() {
    let request =
        json!({"operation": "UPDATE", "userInfo": {"username": "alice"}, "object": pod(), "oldObject": pod()});
    let activation = Activation::new(&pod(), &pod(), &request, &Value::Null);
    let spec = json!({"validations": [
        {"expression": "request.operation == 'UPDATE' && request.userInfo.username == 'alice'"},
        {"expression": "!has(request.object) && !has(request.oldObject) && has(oldObject.spec)"}
    ]});
    let outcome = Validator::compile(&spec, &[], "spec").unwrap().evaluate(&activation, &Params::none());
    assert!(outcome.failures.is_empty() && outcome.errors.is_empty(), "{outcome:?}");
}

#[test]
fn params_are_read_from_the_parameter_object() {
    let spec = json!({"validations": [{
        "expression": "object.metadata.labels.all(k, k in params.allowed)",
        "messageExpression": "'labels must be among ' + params.allowed.join(', ')"
    }]});
    assert!(run(spec.clone(), &pod(), &json!({"allowed": ["app", "team"]})).failures.is_empty());
    assert_eq!(messages(&run(spec, &pod(), &json!({"allowed": ["team"]}))), ["labels must be among team"]);
}

#[test]
fn compile_errors_name_the_field_and_every_bad_expression_is_reported() {
    let spec = json!({"validations": [
        {"expression": "object.metadata.name =="},
        {"expression": "true"},
        {"expression": "has(object.spec"}
    ]});
    let errors = Validator::compile(&spec, &[], "spec").err().expect("must not compile");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.validations[0].expression", "spec.validations[2].expression"]);
    assert!(!errors[0].message.is_empty());
}

#[test]
fn a_non_bool_validation_is_an_error_not_a_pass() {
    let outcome = run(json!({"validations": [{"expression": "object.metadata.name"}]}), &pod(), &Value::Null);
    assert!(outcome.failures.is_empty());
    assert!(outcome.errors[0].message.contains("must evaluate to a bool"), "{:?}", outcome.errors);
}

#[test]
fn authorizer_is_a_clear_error_offline() {
    let spec = json!({"validations": [{
        "expression": "authorizer.group('apps').resource('deployments').check('create').allowed()"
    }]});
    let validator = Validator::compile(&spec, &[], "spec").unwrap();
    assert!(validator.uses_authorizer());
    let outcome = validator.evaluate(&create(&pod()), &Params::none());
    assert!(outcome.failures.is_empty());
    assert!(outcome.errors[0].message.contains("authorizer"), "{:?}", outcome.errors);
}

#[test]
fn a_runaway_expression_hits_the_cost_budget_instead_of_hanging() {
    let big = json!({"metadata": {"name": "big"}, "items": (0..2_000).collect::<Vec<i32>>()});
    // 2,000³ = 8·10⁹ iterations unbounded; the budget stops it early.
    let spec = json!({"validations": [{
        "expression": "object.items.all(a, object.items.all(b, object.items.all(c, a + b + c >= 0)))"
    }]});
    let started = Instant::now();
    let outcome = run(spec, &big, &Value::Null);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(outcome.failures.is_empty());
    assert!(outcome.errors[0].message.contains("cost budget"), "{:?}", outcome.errors);
    // An error swallowed by `||` still reports the budget.
    let spec = json!({"validations": [{
        "expression": "true || object.items.exists(a, object.items.exists(b, a + b < 0))"
    }, {
        "expression": "object.items.exists(a, object.items.exists(b, a + b < 0)) || true"
    }]});
    let outcome = run(spec, &big, &Value::Null);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert_eq!(outcome.errors[0].field, "validations[1].expression");
}

#[test]
fn the_objects_lists_and_maps_compare_and_combine_as_cel_values_do() {
    // The object's containers are shared, not the interpreter's own; every
    // operation must treat them the same, on either side.
    let checks = [
        "object.metadata.labels == {'app': 'web'}",
        "{'app': 'web'} == object.metadata.labels",
        "object.spec.containers.map(c, c.name) == ['a', 'b']",
        "['a', 'b'] == variables.names",
        "variables.names + ['c'] == ['a', 'b', 'c']",
        "object.spec.containers + object.spec.containers == variables.doubled",
        "size(variables.doubled) == 4 && variables.doubled[2].name == 'a'",
        "object.spec.containers[0].ports == [{'containerPort': 80}]",
        "{'containerPort': 80} in object.spec.containers[0].ports",
        "'app' in object.metadata.labels && !('x' in object.metadata.labels)",
        "type(object.spec.containers) == list && type(object.metadata) == map",
        "object.spec.containers.filter(c, has(c.ports)) == [object.spec.containers[0]]",
        "variables.firstPorts.orValue([]) == [{'containerPort': 80}]",
        "object.metadata.labels.all(k, k == 'app')",
    ];
    let spec = json!({
        "variables": [
            {"name": "names", "expression": "object.spec.containers.map(c, c.name)"},
            {"name": "doubled", "expression": "object.spec.containers + object.spec.containers"},
            {"name": "firstPorts", "expression": "object.spec.containers[0].?ports"}
        ],
        "validations": checks.iter().map(|e| json!({"expression": e})).collect::<Vec<_>>()
    });
    let outcome = run(spec, &pod(), &Value::Null);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(outcome.failures.is_empty(), "{:?}", messages(&outcome));
    // And unequal ones are unequal, whichever side the object is on.
    let spec = json!({"validations": [
        {"expression": "object.metadata.labels == {'app': 'db'}", "message": "a"},
        {"expression": "{'app': 'db'} == object.metadata.labels", "message": "b"},
        {"expression": "['b', 'a'] == object.spec.containers.map(c, c.name)", "message": "c"}
    ]});
    assert_eq!(messages(&run(spec, &pod(), &Value::Null)), ["a", "b", "c"]);
}

#[test]
fn a_variable_is_evaluated_only_when_an_expression_reaches_it() {
    let big = json!({"metadata": {"name": "big"}, "items": (0..2_000).collect::<Vec<i32>>()});
    // Over budget if evaluated; behind a true `||` it never is, as in the API server.
    let spec = json!({
        "variables": [{"name": "runaway", "expression": "object.items.exists(a, object.items.exists(b, a + b < 0))"}],
        "validations": [{"expression": "object.metadata.name == 'big' || variables.runaway"}]
    });
    let outcome = run(spec.clone(), &big, &Value::Null);
    assert!(outcome.errors.is_empty() && outcome.failures.is_empty(), "{outcome:?}");
    // Reached, it is evaluated and stopped by the budget.
    let reached = json!({"metadata": {"name": "other"}, "items": big["items"]});
    let outcome = run(spec, &reached, &Value::Null);
    assert!(outcome.errors[0].message.contains("cost budget"), "{outcome:?}");
}

#[test]
fn map_and_filter_over_a_big_list_stay_within_budget() {
    let big = json!({"metadata": {"name": "big"}, "items": (0..50_000).collect::<Vec<i32>>()});
    let spec =
        json!({"validations": [{"expression": "size(object.items.filter(i, i % 2 == 0).map(i, i * 2)) == 25000"}]});
    let outcome = run(spec, &big, &Value::Null);
    assert!(outcome.errors.is_empty() && outcome.failures.is_empty(), "{outcome:?}");
}

#[test]
fn kubernetes_libraries() {
    let cases = [
        "[1, 2, 3].isSorted() && ![2, 1].isSorted()",
        "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0",
        "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
        "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1",
        "sets.contains([1, 2, 3], [3, 1]) && !sets.contains([1], [2])",
        "sets.equivalent([1, 2, 2], [2, 1]) && !sets.equivalent([1], [1, 2])",
        "sets.intersects([1, 2], [2, 3]) && !sets.intersects([1], [2])",
        "'abc 123 def 456'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
        "'abc 123 def 456'.findAll('[0-9]+') == ['123', '456'] && 'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
        "'Hello'.lowerAscii() == 'hello' && 'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'",
        "'nginx:*'.replace('*', '') == 'nginx:' && 'abc'.indexOf('c') == 2",
        "'registry.k8s.io/pause'.matches('^registry\\\\.k8s\\\\.io/')",
        "object.metadata.?labels.?app.orValue('none') == 'web' && object.metadata.?annotations.?x.orValue('none') == 'none'",
        "has(object.metadata.labels) && !has(object.metadata.annotations)",
        "object.spec.containers.exists_one(c, c.name == 'a') && dyn(1) == 1",
        "[[1], [2, 3]].flatten() == [1, 2, 3] && [1, 1, 2].distinct() == [1, 2]",
        "math.greatest(1, 5, 3) == 5 && string(5) == '5' && int('7') == 7",
        "quantity('1Gi').isGreaterThan(quantity('1000Mi')) && quantity('500m').isLessThan(quantity('1'))",
        "quantity('1Gi') == quantity('1024Mi') && quantity('1k').compareTo(quantity('1000')) == 0",
        "quantity('1.5').add(quantity('500m')).asInteger() == 2 && quantity('2').sub(3).sign() == -1",
        "!quantity('1.5').isInteger() && quantity('250m').asApproximateFloat() == 0.25",
        "isQuantity('100Mi') && !isQuantity('100 MB')",
        "ip('10.0.0.1').family() == 4 && ip('fe80::1').family() == 6 && isIP('::1') && !isIP('10.0.0.300')",
        "!isIP('::ffff:10.0.0.1') && ip.isCanonical('10.0.0.1') && !ip.isCanonical('2001:DB8::1')",
        "ip('127.0.0.1').isLoopback() && ip('0.0.0.0').isUnspecified() && ip('169.254.1.1').isLinkLocalUnicast()",
        "ip('224.0.0.5').isLinkLocalMulticast() && ip('10.1.2.3').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()",
        "cidr('10.0.0.0/8').containsIP(ip('10.2.3.4')) && cidr('10.0.0.0/8').containsIP('10.9.9.9') && !cidr('10.0.0.0/8').containsIP('11.0.0.1')",
        "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')",
        "cidr('10.1.2.3/16').masked() == cidr('10.1.0.0/16') && cidr('10.1.2.3/16').ip() == ip('10.1.2.3') && cidr('::/0').prefixLength() == 0",
        "isCIDR('192.168.0.0/24') && !isCIDR('192.168.0.0/33') && !isCIDR('192.168.0.0')",
        "!cidr('::/0').containsIP('10.0.0.1') && cidr('2001:db8::/32').containsIP('2001:db8:1::5')",
        "object.spec.containers.all(c, !has(c.resources) || quantity(c.resources.limits.memory).isLessThan(quantity('2Gi')))",
        "url('https://example.com:80/').getHost() == 'example.com:80' && url('https://example.com/path/').getScheme() == 'https'",
        "url('https://[::1]:80/').getHostname() == '::1' && url('https://example.com:80/').getPort() == '80' && url('https://example.com/').getPort() == ''",
        "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
        "url('https://example.com/p?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
        "isURL('https://example.com/') && isURL('/absolute/path') && !isURL('../relative-path') && !isURL('example.com')",
        "format.dns1123Label().validate('my-name') == optional.none()",
        "format.dns1123Label().validate('My_Name').hasValue() && format.named('uuid').hasValue() && !format.named('nope').hasValue()",
        "format.named('labelValue').value().validate('ok.value') == optional.none()",
        "format.qualifiedName().validate('example.com/a/b').value().size() == 1",
        "format.dns1123SubdomainPrefix().validate('my.sub-') == optional.none() && format.uri().validate('x').hasValue()",
        "format.date().validate('2024-02-29') == optional.none() && format.datetime().validate('2024-02-29 10:00:00Z').hasValue()",
        "semver('1.2.3').major() == 1 && semver('1.2.3').minor() == 2 && semver('1.2.3').patch() == 3",
        "semver('1.10.0').isGreaterThan(semver('1.9.0')) && semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))",
        "semver('1.0.0+a').compareTo(semver('1.0.0+b')) == 0 && isSemver('1.2.3') && !isSemver('v1.2') && isSemver('v1.2', true)",
        "semver('v1.02', true) == semver('1.2.0')",
    ];
    for expression in cases {
        let outcome = run(json!({"validations": [{"expression": expression}]}), &pod(), &Value::Null);
        assert!(outcome.failures.is_empty() && outcome.errors.is_empty(), "{expression}: {outcome:?}");
    }
    // And the libraries can say no.
    let false_ones = [
        "cidr('10.0.0.0/8').containsIP('11.0.0.1')",
        "quantity('1Gi').isLessThan(quantity('1Mi'))",
        "ip('10.0.0.1') == ip('10.0.0.2')",
        "sets.contains([1], [2])",
        "[2, 1].isSorted()",
        "url('https://a.example/').getHostname() == 'b.example'",
        "format.dns1123Label().validate('-bad-') == optional.none()",
        "semver('2.0.0').isLessThan(semver('1.9.9'))",
        "object.spec.containers.all(c, !has(c.resources) || quantity(c.resources.limits.memory).isLessThan(quantity('256Mi')))",
    ];
    for expression in false_ones {
        let outcome = run(json!({"validations": [{"expression": expression}]}), &pod(), &Value::Null);
        assert_eq!(outcome.failures.len(), 1, "{expression}: {outcome:?}");
    }
    // A malformed argument is an error, not a false.
    let outcome =
        run(json!({"validations": [{"expression": "quantity('ten') == quantity('10')"}]}), &pod(), &Value::Null);
    assert!(outcome.errors[0].message.contains("quantities must match"), "{outcome:?}");
    for (expression, why) in [
        ("url('example.com').getHost() == ''", "invalid URI for request"),
        ("url('https://h:8o/').getHost() == ''", "invalid port"),
        ("semver('1.2') == semver('1.2.0')", "Semver parse error"),
    ] {
        let outcome = run(json!({"validations": [{"expression": expression}]}), &pod(), &Value::Null);
        assert!(outcome.errors.first().is_some_and(|e| e.message.contains(why)), "{expression}: {outcome:?}");
    }
}

#[test]
fn audit_annotations_carry_their_values() {
    let spec = json!({
        "validations": [{"expression": "true"}],
        "auditAnnotations": [
            {"key": "image-count", "valueExpression": "string(size(object.spec.containers))"},
            {"key": "skipped", "valueExpression": "null"}
        ]
    });
    let outcome = run(spec, &pod(), &Value::Null);
    assert_eq!(outcome.annotations, [("image-count".to_owned(), "2".to_owned())]);
}

#[test]
fn hostile_expressions_are_refused_when_compiled() {
    let sources = [
        format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000)),
        format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000)),
        "1 + ".repeat(3_000) + "1 == 0",
        "1 + ".repeat(50) + "1 == 0",
        "object".to_owned() + &".a".repeat(5_000),
        "1 + ".repeat(20_000) + "1",
    ];
    for source in sources {
        let spec = json!({"validations": [{"expression": source}]});
        let errors = Validator::compile(&spec, &[], "spec").err().expect("a hostile expression must be refused");
        assert_eq!(errors[0].field, "spec.validations[0].expression");
    }
    // Just under the depth limit, it compiles and runs on a test thread's stack.
    let source = "1 + ".repeat(45) + "1 == 46";
    let outcome = run(json!({"validations": [{"expression": source}]}), &pod(), &Value::Null);
    assert!(outcome.failures.is_empty() && outcome.errors.is_empty(), "{outcome:?}");
}

#[test]
fn chained_variables_do_not_add_up_on_the_stack() {
    // Each is just under the depth limit; read lazily one inside the other
    // they would nest 4 × 45 deep.
    let chain = |n: usize| "1 + ".repeat(n) + "1";
    let spec = json!({
        "variables": [
            {"name": "a", "expression": chain(44)},
            {"name": "b", "expression": format!("variables.a + {}", chain(43))},
            {"name": "c", "expression": format!("variables.b + {}", chain(43))},
            {"name": "d", "expression": format!("variables.c + {}", chain(43))}
        ],
        "validations": [{"expression": format!("variables.d + {} == 220", chain(42))}]
    });
    let outcome = run(spec, &pod(), &Value::Null);
    assert!(outcome.failures.is_empty() && outcome.errors.is_empty(), "{outcome:?}");
}

/// As cel-go (the API server's and Kyverno's) evaluates it, `orValue` on a
/// value that is not an optional is that value: Kyverno's library relies
/// on `container.resources.requests.orValue({}).cpu`.
#[test]
fn or_value_on_a_plain_value_is_the_value() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
    let spec = json!({"validations": [
        {"expression": "object.spec.containers[0].resources.requests.orValue({}).cpu == '1'"},
        {"expression": "object.spec.containers[0].resources.?limits.orValue({'cpu': '2'}).cpu == '2'"},
    ]});
    let outcome = run(spec, &pod, &Value::Null);
    assert!(
        outcome.errors.is_empty() && outcome.failures.is_empty(),
        "{:?} {:?}",
        outcome.errors,
        outcome.failures.len()
    );
}
