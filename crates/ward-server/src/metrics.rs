//! Prometheus metrics. The recorder is process-wide (the `metrics` facade's design);
//! it is installed once, on first use.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

pub(crate) fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("ward_http_requests_total", &labels).increment(1);
    metrics::histogram!("ward_http_request_duration_seconds", &labels[..2]).record(seconds);
}

pub(crate) fn record_login(outcome: &'static str) {
    metrics::counter!("ward_logins_total", "outcome" => outcome).increment(1);
}
