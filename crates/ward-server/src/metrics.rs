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

/// The bearer token Prometheus presents for `GET /metrics` on the main listener.
/// Metrics are the whole instance's (they carry every company's ids), so this
/// is the operator's credential (`metrics.token_file`), not a company's API
/// token. Only its SHA-256 digest is kept; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// Shortest accepted token: 128 bits as hex or base64 is 22–32 characters.
    pub const MIN_LEN: usize = 32;

    pub fn from_secret(secret: &str) -> Option<Self> {
        use sha2::Digest;
        let secret = secret.trim();
        (secret.len() >= Self::MIN_LEN)
            .then(|| Self(sha2::Sha256::digest(secret.as_bytes()).into()))
    }

    /// Constant-time comparison of digests, so timing tells nothing about the token.
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let d: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
        bool::from(d.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken([redacted])")
    }
}

/// The Prometheus text exposition: every metric, or with `company` one
/// company's view of them (`company_view`).
pub(crate) fn exposition(company: Option<&str>) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let all = handle().map(|h| h.render()).unwrap_or_default();
    let body = match company {
        Some(tenant) => company_view(&all, tenant),
        None => all,
    };
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Serves `GET /metrics` alone, without authentication, on its own listener
/// (`metrics.listen`): for a scrape network that only Prometheus reaches.
/// Everything else answers 404.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|| async { exposition(None) }),
        )
        .fallback(|| async { crate::ApiError::not_found() });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// What a company's metrics token sees: series without a `tenant` label
/// (instance-wide counts, no ids) and those labelled with its own company;
/// another company's series and the operator's sinks (`sink` label) are left
/// out. Comment lines (`# HELP`, `# TYPE`) are kept.
pub(crate) fn company_view(exposition: &str, tenant: &str) -> String {
    let mut out = String::with_capacity(exposition.len());
    for line in exposition.lines() {
        let keep = line.starts_with('#')
            || match label_value(line, "tenant") {
                Some(t) => t == tenant,
                None => label_value(line, "sink").is_none(),
            };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The raw (still escaped) value of label `name` in a sample line.
fn label_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, mut rest) = line.split_once('{')?;
    loop {
        let (key, after) = rest.split_once("=\"")?;
        // The value ends at the first quote not escaped by a backslash.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end?;
        if key.trim_start_matches(',').trim() == name {
            return after.get(..end);
        }
        rest = after.get(end + 1..)?;
        if rest.starts_with('}') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MetricsToken;

    #[test]
    fn a_company_sees_its_own_series_and_no_one_elses() {
        let all = "# TYPE ward_encrypted_fields gauge\n\
ward_encrypted_fields{tenant=\"ten_a\",entity=\"connection\",field=\"credentials\"} 2\n\
ward_encrypted_fields{entity=\"connection\",tenant=\"ten_b\",field=\"credentials\"} 3\n\
ward_encrypted_fields{tenant=\"ten_a\\\"x\",entity=\"e\"} 9\n\
ward_audit_sink_lag{sink=\"siem\"} 1\n\
ward_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 5\n\
ward_audit_tree_size 7\n";
        let seen = super::company_view(all, "ten_a");
        assert!(seen.contains("tenant=\"ten_a\",entity"), "{seen}");
        assert!(!seen.contains("ten_b"), "{seen}");
        assert!(!seen.contains("ten_a\\\"x"), "{seen}");
        assert!(!seen.contains("sink="), "{seen}");
        assert!(seen.contains("ward_http_requests_total"), "{seen}");
        assert!(seen.contains("ward_audit_tree_size 7"), "{seen}");
        assert!(seen.contains("# TYPE"), "{seen}");
    }

    #[test]
    fn tokens_are_compared_by_digest_and_never_printed() {
        let secret = "0123456789abcdef0123456789abcdef";
        let t = MetricsToken::from_secret(secret).expect("long enough");
        assert!(t.matches(secret));
        assert!(!t.matches("0123456789abcdef0123456789abcdeX"));
        assert!(!format!("{t:?}").contains("0123"));
        assert!(MetricsToken::from_secret("short").is_none());
    }
}
