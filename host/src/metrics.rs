//! Prometheus metrics (`GET /metrics`), through the `prometheus` crate.
//!
//! One registry per process. Every label value is bounded: route *patterns*
//! (`/v1/payments/{id}`), never raw paths; plugin ids and operation names;
//! outcome and error-kind names from fixed lists; egress hosts, which the
//! plugins' manifests and the operator's account base URLs bound. No payment
//! id, account id, key or amount is ever a label.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets, in seconds: 1 ms to 30 s (a plugin call's network time
/// is bounded by the egress timeout, 30 s at most).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    pub plugin_calls: IntCounterVec,
    pub plugin_duration: HistogramVec,
    pub plugin_traps: IntCounterVec,
    pub plugin_guest_time: HistogramVec,
    pub plugin_memory_peak: HistogramVec,
    pub egress_requests: IntCounterVec,
    pub egress_duration: HistogramVec,
    pub notifications: IntCounterVec,
    pub idempotency_replays: IntCounter,
    pub janitor_backlog: IntGaugeVec,
    pub store_round_trips: IntCounter,
    pub store_statements: IntCounter,
    pub store_transactions: IntCounter,
    pub store_calls_per_transaction: Histogram,
    pub http_store_round_trips: HistogramVec,
    pub http_store_statements: HistogramVec,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn plain_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    metric
}

/// Count buckets for the store work of one request.
/// A connector's own run time per call: from 10 µs (a fresh instance's
/// configuration check) to its CPU limit (seconds).
const GUEST_TIME_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Linear memory per instance, in bytes: 1 MiB to 256 MiB by doubling.
const MEMORY_BUCKETS: &[f64] = &[
    1_048_576.0,
    2_097_152.0,
    4_194_304.0,
    8_388_608.0,
    16_777_216.0,
    33_554_432.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
];

const COUNT_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0];

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    histogram_with(registry, name, help, labels, BUCKETS)
}

fn histogram_with(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let metric = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    metric
}

impl Metrics {
    // The names and labels below are constants: a failure to build them is
    // a programming error caught by the first test that starts a server,
    // never something a request can cause.
    fn new() -> Self {
        let registry = Registry::new();
        let http_requests = counter(
            &registry,
            "passerelle_http_requests_total",
            "HTTP requests answered, by method, route pattern and status.",
            &["method", "route", "status"],
        );
        let http_duration = histogram(
            &registry,
            "passerelle_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route pattern and status.",
            &["method", "route", "status"],
        );
        let http_in_flight = IntGauge::new(
            "passerelle_http_requests_in_flight",
            "HTTP requests being answered now.",
        )
        .unwrap_or_else(|e| panic!("metric in flight: {e}"));
        registry
            .register(Box::new(http_in_flight.clone()))
            .unwrap_or_else(|e| panic!("metric in flight: {e}"));
        let plugin_calls = counter(
            &registry,
            "passerelle_plugin_calls_total",
            "Connector calls, by connector, operation and outcome (succeeded, a payment \
             status such as authorized or refused, a connector error kind such as retryable \
             or invalid_signature, or plugin_failed).",
            &["connector", "operation", "outcome"],
        );
        let plugin_duration = histogram(
            &registry,
            "passerelle_plugin_call_duration_seconds",
            "Wall time of a connector call, network included, by connector and operation.",
            &["connector", "operation"],
        );
        let plugin_traps = counter(
            &registry,
            "passerelle_plugin_traps_total",
            "Connector calls the host cut short or that trapped, by connector, operation and \
             kind (trap, cpu_limit, memory_limit, timeout, output_too_large, ...).",
            &["connector", "operation", "kind"],
        );
        let plugin_guest_time = histogram_with(
            &registry,
            "passerelle_plugin_guest_seconds",
            "Time a connector's own code ran in one sandboxed call (its wall time less the \
             host's imports and the time parked in the executor): what its CPU limit counts, \
             by connector and operation.",
            &["connector", "operation"],
            GUEST_TIME_BUCKETS,
        );
        let plugin_memory_peak = histogram_with(
            &registry,
            "passerelle_plugin_memory_peak_bytes",
            "The most linear memory a connector's instance held during one call, by connector \
             and operation.",
            &["connector", "operation"],
            MEMORY_BUCKETS,
        );
        let egress_requests = counter(
            &registry,
            "passerelle_egress_requests_total",
            "HTTP requests plugins sent, by destination host and outcome (the status class \
             2xx..5xx, denied, timeout, connect, too_large, error).",
            &["host", "outcome"],
        );
        let egress_duration = histogram(
            &registry,
            "passerelle_egress_request_duration_seconds",
            "Time of one plugin HTTP request, body included, by destination host.",
            &["host"],
        );
        let notifications = counter(
            &registry,
            "passerelle_notifications_total",
            "Provider notifications: received, then verified or rejected \
             (rejected_signature, rejected_invalid, rejected_other).",
            &["result"],
        );
        let idempotency_replays = plain_counter(
            &registry,
            "passerelle_idempotency_replays_total",
            "Requests answered with the stored answer of an earlier request with the same \
             Idempotency-Key.",
        );
        let store_round_trips = plain_counter(
            &registry,
            "passerelle_store_round_trips_total",
            "Store round trips (a pooled connection taken for one transaction or statement \
             group), requests and background work together.",
        );
        let store_statements = plain_counter(
            &registry,
            "passerelle_store_statements_total",
            "SQL statements the store ran (BEGIN and COMMIT included), requests and \
             background work together.",
        );
        let store_transactions = plain_counter(
            &registry,
            "passerelle_store_transactions_total",
            "SQLite transactions committed or rolled back by the store's writer, each \
             holding the store calls queued while the one before ran (group commit).",
        );
        let store_calls_per_transaction = Histogram::with_opts(
            HistogramOpts::new(
                "passerelle_store_calls_per_transaction",
                "Store calls (round trips) run in one SQLite transaction by the store's \
                 writer: 1 when calls do not overlap, more under load.",
            )
            .buckets(COUNT_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|e| panic!("metric calls per transaction: {e}"));
        registry
            .register(Box::new(store_calls_per_transaction.clone()))
            .unwrap_or_else(|e| panic!("metric calls per transaction: {e}"));
        let http_store_round_trips = histogram_with(
            &registry,
            "passerelle_http_store_round_trips",
            "Store round trips per HTTP request, by method, route pattern and status.",
            &["method", "route", "status"],
            COUNT_BUCKETS,
        );
        let http_store_statements = histogram_with(
            &registry,
            "passerelle_http_store_statements",
            "SQL statements per HTTP request (BEGIN and COMMIT included), by method, route \
             pattern and status.",
            &["method", "route", "status"],
            COUNT_BUCKETS,
        );
        let janitor_backlog = IntGaugeVec::new(
            Opts::new(
                "passerelle_janitor_backlog",
                "Payments and refunds whose outcome the janitor still has to settle, by kind \
                 (payment, refund), read when /metrics is scraped.",
            ),
            &["object"],
        )
        .unwrap_or_else(|e| panic!("metric backlog: {e}"));
        registry
            .register(Box::new(janitor_backlog.clone()))
            .unwrap_or_else(|e| panic!("metric backlog: {e}"));
        Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            plugin_calls,
            plugin_duration,
            plugin_traps,
            plugin_guest_time,
            plugin_memory_peak,
            egress_requests,
            egress_duration,
            notifications,
            idempotency_replays,
            janitor_backlog,
            store_round_trips,
            store_statements,
            store_transactions,
            store_calls_per_transaction,
            http_store_round_trips,
            http_store_statements,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// One answered HTTP request and what it asked of the store.
    pub fn http_request(
        &self,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
        store: &crate::store::accounting::StoreWork,
    ) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
        self.http_store_round_trips
            .with_label_values(&labels)
            .observe(f64::from(store.round_trips()));
        self.http_store_statements
            .with_label_values(&labels)
            .observe(f64::from(store.statements()));
    }

    /// One connector call; `trap` names how the host cut it short, if it did.
    pub fn plugin_call(
        &self,
        connector: &str,
        operation: &str,
        outcome: &str,
        trap: Option<&str>,
        elapsed: Duration,
    ) {
        self.plugin_calls
            .with_label_values(&[connector, operation, outcome])
            .inc();
        self.plugin_duration
            .with_label_values(&[connector, operation])
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = trap {
            self.plugin_traps
                .with_label_values(&[connector, operation, kind])
                .inc();
        }
    }

    /// What one sandboxed call used.
    pub fn plugin_usage(
        &self,
        connector: &str,
        operation: &str,
        guest_time: Duration,
        memory_peak_bytes: usize,
    ) {
        self.plugin_guest_time
            .with_label_values(&[connector, operation])
            .observe(guest_time.as_secs_f64());
        self.plugin_memory_peak
            .with_label_values(&[connector, operation])
            .observe(memory_peak_bytes as f64);
    }

    /// One plugin HTTP request.
    pub fn egress(&self, host: &str, outcome: &str, elapsed: Duration) {
        self.egress_requests
            .with_label_values(&[host, outcome])
            .inc();
        self.egress_duration
            .with_label_values(&[host])
            .observe(elapsed.as_secs_f64());
    }
}

/// How the host cut a plugin call short, as a trap label.
pub fn trap_kind(error: &crate::runtime::PluginError) -> &'static str {
    use crate::runtime::PluginError as E;
    match error {
        E::CpuLimit { .. } => "cpu_limit",
        E::MemoryLimit { .. } => "memory_limit",
        E::Timeout { .. } => "timeout",
        E::OutputTooLarge { .. } => "output_too_large",
        E::InvalidIdentifier { .. } => "invalid_identifier",
        E::Trap { .. } => "trap",
        _ => "other",
    }
}

/// A connector error's kind, as an outcome label.
pub fn error_kind(kind: crate::runtime::bindings::types::ErrorKind) -> &'static str {
    use crate::runtime::bindings::types::ErrorKind as K;
    match kind {
        K::Retryable => "retryable",
        K::Rejected => "rejected",
        K::InvalidConfig => "invalid_config",
        K::InvalidRequest => "invalid_request",
        K::Unsupported => "unsupported",
        K::InvalidSignature => "invalid_signature",
    }
}

/// A payment status a connector answered, as an outcome label.
pub fn payment_status(status: &crate::runtime::bindings::types::PaymentStatus) -> &'static str {
    use crate::runtime::bindings::types::PaymentStatus as S;
    match status {
        S::Authorized => "authorized",
        S::Captured => "captured",
        S::Pending => "pending",
        S::RequiresAction(_) => "requires_action",
        S::Refused(_) => "refused",
        S::Canceled => "canceled",
    }
}

/// A modification status a connector answered, as an outcome label.
pub fn modification_status(
    status: &crate::runtime::bindings::types::ModificationStatus,
) -> &'static str {
    use crate::runtime::bindings::types::ModificationStatus as S;
    match status {
        S::Succeeded => "succeeded",
        S::Pending => "pending",
        S::Refused(_) => "refused",
    }
}

/// The name of an HTTP status class, for egress outcomes.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_values_with_their_labels() {
        let metrics = Metrics::new();
        let store = crate::store::accounting::StoreWork::default();
        store.add(3);
        metrics.http_request(
            "GET",
            "/v1/payments/{id}",
            200,
            Duration::from_millis(3),
            &store,
        );
        metrics.plugin_call(
            "dummy",
            "authorize",
            "plugin_failed",
            Some("cpu_limit"),
            Duration::from_millis(5),
        );
        metrics.egress("psp.example", "2xx", Duration::from_millis(7));
        let text = metrics.render().unwrap();
        assert!(text.contains(
            r#"passerelle_http_requests_total{method="GET",route="/v1/payments/{id}",status="200"} 1"#
        ));
        assert!(text.contains(
            r#"passerelle_plugin_traps_total{connector="dummy",kind="cpu_limit",operation="authorize"} 1"#
        ));
        assert!(text.contains(
            r#"passerelle_egress_request_duration_seconds_bucket{host="psp.example",le="0.01"} 1"#
        ));
        assert!(text.contains(
            r#"passerelle_http_store_statements_sum{method="GET",route="/v1/payments/{id}",status="200"} 3"#
        ));
        assert_eq!(status_class(503), "5xx");
    }
}
