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
        }
    }
}

impl Metrics {
    /// Counts of the background image analyses, by result.
    pub fn register_images(&mut self, counts: Family<ResultLabels, Counter>) {
        self.registry.register("image_analyses", "Background image analyses, by result", counts);
    }

    pub fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&ResultLabels { result: reason }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
