//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), as
//! constraints, policies and bindings write them in JSON.

use serde_json::Value;

/// Whether `selector` selects an object with `labels` (a JSON object of
/// strings, or none). An empty selector selects everything; an unknown
/// operator selects nothing.
pub fn matches(selector: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object)
        && !m.iter().all(|(k, v)| get(k) == v.as_str())
    {
        return false;
    }
    for expr in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> =
            expr.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let value = get(key);
        let ok = match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => value.is_some_and(|v| values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::matches;
    use serde_json::json;

    #[test]
    fn labels_and_expressions() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(matches(&json!({}), Some(&labels)));
        assert!(matches(&json!({"matchLabels": {"app": "web"}}), Some(&labels)));
        assert!(!matches(&json!({"matchLabels": {"app": "db"}}), Some(&labels)));
        let expr = |op: &str, values: &[&str]| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(matches(&expr("In", &["front", "back"]), Some(&labels)));
        assert!(!matches(&expr("NotIn", &["front"]), Some(&labels)));
        assert!(matches(&expr("NotIn", &["front"]), None));
        assert!(matches(&expr("Exists", &[]), Some(&labels)));
        assert!(!matches(&expr("DoesNotExist", &[]), Some(&labels)));
        assert!(!matches(&expr("Sometimes", &[]), Some(&labels)));
    }
}
