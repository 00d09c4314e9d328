//! What paved's several readers of Kyverno documents share: how a rule that
//! autogen made is named, and which policies a PolicyException names. The
//! policy engine (paved-cel) lifts findings with it; the grants check
//! (paved-admission) and `paved audit` ask who may make one.

use serde_json::Value;

/// The rule a name in a result or an exception means: Kyverno calls the
/// rules autogen makes `autogen-<rule>` (`autogen-cronjob-<rule>` for
/// CronJobs), and paved judges them as the rule itself.
pub fn written_rule(name: &str) -> &str {
    name.strip_prefix("autogen-cronjob-").or_else(|| name.strip_prefix("autogen-")).unwrap_or(name)
}

/// Whether a group and kind are a Kyverno PolicyException's (of either API).
pub fn is_exception_kind(group: &str, kind: &str) -> bool {
    kind == "PolicyException" && (group == "kyverno.io" || group == "policies.kyverno.io")
}

/// The policies a PolicyException's `spec` names, each with its rules (none:
/// every rule): `kyverno.io/v2`'s `exceptions[].{policyName, ruleNames}`, or
/// `policies.kyverno.io`'s `policyRefs[].name`. `None` for a spec of neither shape.
pub fn exception_refs(spec: &Value) -> Option<Vec<(String, Vec<String>)>> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    if let Some(exceptions) = spec.get("exceptions").and_then(Value::as_array) {
        let refs = exceptions.iter().map(|e| {
            let rules = e.get("ruleNames").and_then(Value::as_array).into_iter().flatten();
            let rules = rules.filter_map(Value::as_str).map(|r| written_rule(r).to_owned()).collect();
            (text(e, "policyName"), rules)
        });
        return Some(refs.collect());
    }
    let refs = spec.get("policyRefs").and_then(Value::as_array)?;
    Some(refs.iter().map(|r| (text(r, "name"), Vec::new())).collect())
}

/// The exemptions a PolicyException grants, as paved names policies
/// (`kyverno/<policy>[/<rule>]`); `kyverno/*` when it names none, since
/// making even an empty one is not a requester's own to do.
pub fn exception_grants(spec: &Value) -> Vec<String> {
    let mut patterns = Vec::new();
    for (policy, rules) in exception_refs(spec).unwrap_or_default().into_iter().filter(|(p, _)| !p.is_empty()) {
        if rules.is_empty() {
            patterns.push(format!("kyverno/{policy}"));
        }
        patterns.extend(rules.iter().map(|r| format!("kyverno/{policy}/{r}")));
    }
    if patterns.is_empty() {
        patterns.push("kyverno/*".to_owned());
    }
    patterns.sort();
    patterns.dedup();
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_apis_name_their_policies_and_rules() {
        let v2 =
            json!({"exceptions": [{"policyName": "p", "ruleNames": ["autogen-cronjob-r", "s"]}, {"policyName": "q"}]});
        assert_eq!(exception_grants(&v2), ["kyverno/p/r", "kyverno/p/s", "kyverno/q"]);
        let refs = json!({"policyRefs": [{"name": "a", "kind": "ValidatingPolicy"}]});
        assert_eq!(exception_grants(&refs), ["kyverno/a"]);
        assert_eq!(exception_grants(&json!({})), ["kyverno/*"]);
        assert_eq!(exception_refs(&json!({"match": {}})), None);
        assert_eq!(written_rule("autogen-x"), "x");
    }
}
