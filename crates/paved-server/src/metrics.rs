//! Prometheus metrics: what was decided, how fast, and every gesture on locks
//! and exemptions.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub operation: &'static str,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    /// Borrowed for native rules: counting a finding allocates nothing.
    pub policy: std::borrow::Cow<'static, str>,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: std::borrow::Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<VerdictLabels, Counter>,
    pub findings: Family<FindingLabels, Counter>,
    pub latency: Histogram,
    pub delete_refusals: Counter,
    pub unlocks: Family<ResultLabels, Counter>,
    pub exemptions: Family<ResultLabels, Counter>,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub cert_reloads: Family<ResultLabels, Counter>,
    /// Requests answered 4xx/5xx before a verdict: too big, malformed, too slow, shed.
    pub rejected: Family<ResultLabels, Counter>,
    /// `/mutate` answers, by result (patched, unchanged), and its errors by
    /// reason (the API server goes on without the defaults).
    pub mutations: Family<ResultLabels, Counter>,
    /// Each default set, by its id.
    pub defaults_set: Family<PolicyLabels, Counter>,
    pub mutation_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("paved");
        let requests = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by operation and verdict",
            requests.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register("policy_findings", "Findings at admission, by policy and action", findings.clone());
        // 25 µs to about 0.8 s.
        let latency = Histogram::new(exponential_buckets(25e-6, 2.0, 16));
        registry.register("admission_duration_seconds", "Time from request to answer", latency.clone());
        let delete_refusals = Counter::default();
        registry.register("lock_delete_refusals", "Deletes refused because of a lock", delete_refusals.clone());
        let unlocks = Family::<ResultLabels, Counter>::default();
        registry.register("lock_unlocks", "Attempts to lift a lock, by result (lifted, refused)", unlocks.clone());
        let exemptions = Family::<ResultLabels, Counter>::default();
        registry.register("exemption_grants", "Exemption grants, by result (granted, refused)", exemptions.clone());
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register("config_reloads", "Configuration reloads, by result (ok, error)", config_reloads.clone());
        let cert_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "certificate_reloads",
            "TLS certificate reloads, by result (ok, error)",
            cert_reloads.clone(),
        );
        let rejected = Family::<ResultLabels, Counter>::default();
        registry.register("rejected_requests", "Requests answered without a verdict, by reason", rejected.clone());
        let mutations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mutation_requests",
            "Mutation reviews, by result (patched, unchanged, or why none was answered)",
            mutations.clone(),
        );
        let defaults_set = Family::<PolicyLabels, Counter>::default();
        registry.register("defaults_set", "Defaults the paved road set at admission, by policy", defaults_set.clone());
        let mutation_latency = Histogram::new(exponential_buckets(25e-6, 2.0, 16));
        registry.register(
            "mutation_duration_seconds",
            "Time from mutation request to answer",
            mutation_latency.clone(),
        );
        Metrics {
            registry,
            requests,
            findings,
            latency,
            delete_refusals,
            unlocks,
            exemptions,
            config_reloads,
            cert_reloads,
            rejected,
            mutations,
            defaults_set,
            mutation_latency,
        }
    }
}

impl Metrics {
    /// Counts of the background image analyses, by result.
    pub fn register_images(&mut self, counts: Family<ResultLabels, Counter>) {
        self.registry.register("image_analyses", "Background image analyses, by result", counts);
    }

    /// A `/mutate` request: its result (patched, unchanged, refused), or why
    /// it was not answered.
    pub fn mutation(&self, result: &'static str) {
        self.mutations.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&ResultLabels { result: reason }).inc();
    }

    /// The metrics as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The metrics in the format the scraper asked for.
    pub fn encode_as(&self, format: Exposition) -> String {
        match format {
            Exposition::OpenMetrics => self.encode(),
            Exposition::Text => openmetrics_to_text(&self.encode()),
        }
    }
}

/// The two text formats a scraper may ask for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0, what Prometheus asks for first.
    OpenMetrics,
    /// Prometheus' text format 0.0.4: what promtool, older scrapers and
    /// `curl` (no `Accept`) read.
    Text,
}

impl Exposition {
    /// The format `accept` prefers, by its q-values: OpenMetrics only when it
    /// is asked for and preferred at least as much as plain text.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text { Exposition::OpenMetrics } else { Exposition::Text }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text as Prometheus' text format 0.0.4. The two differ, for
/// what paved exposes, in three ways: a counter family is named with its
/// `_total` suffix in HELP and TYPE, there is no `# EOF` or `# UNIT`, and a
/// counter's `_created` sample does not exist.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len() + counters.len() * 12);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if counters.contains(name) { format!("{name}_total") } else { name.to_owned() };
            out.push_str(prefix);
            out.push_str(&name);
            if !tail.is_empty() {
                out.push(' ');
                out.push_str(tail);
            }
        } else {
            let sample = line.split(['{', ' ']).next().unwrap_or("");
            if sample.strip_suffix("_created").is_some_and(|family| counters.contains(family)) {
                continue;
            }
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_openmetrics_and_curl_gets_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::negotiate(Some(prometheus)), Exposition::OpenMetrics);
        assert_eq!(Exposition::negotiate(Some("text/plain;version=0.0.4")), Exposition::Text);
        assert_eq!(Exposition::negotiate(None), Exposition::Text);
        assert_eq!(Exposition::negotiate(Some("*/*")), Exposition::Text);
        assert_eq!(
            Exposition::negotiate(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Exposition::Text
        );
    }

    #[test]
    fn counters_are_named_with_total_in_text_format() {
        let metrics = Metrics::default();
        metrics.reject("deadline");
        let text = metrics.encode_as(Exposition::Text);
        assert!(text.contains("# TYPE paved_rejected_requests_total counter\n"), "{text}");
        assert!(text.contains("# HELP paved_rejected_requests_total Requests answered"), "{text}");
        assert!(text.contains("paved_rejected_requests_total{result=\"deadline\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE paved_admission_duration_seconds histogram\n"), "{text}");
        assert!(!text.contains("# EOF") && text.ends_with('\n'), "{text}");
        assert!(metrics.encode_as(Exposition::OpenMetrics).ends_with("# EOF\n"));
    }
}
