//! Middleware, outermost first: request metadata (id, client IP, logging, metrics),
//! security headers, (HTML error pages for browsers, in `web`, and panic
//! catching), per-IP rate limiting, and CSRF protection.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::client_ip::resolve_client_ip;
use crate::extract::RequestMeta;
use crate::{ApiError, AppState};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest user agent kept in logs and audit events.
const MAX_USER_AGENT: usize = 512;

/// The route template, carried out of the router so outer layers can label metrics
/// without one time series per user id.
#[derive(Clone)]
pub(crate) struct RouteTemplate(pub String);

pub(crate) async fn capture_route(req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut resp = next.run(req).await;
    if let Some(t) = template {
        resp.extensions_mut().insert(RouteTemplate(t));
    }
    resp
}

pub(crate) async fn request_meta(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = match state.random_id_bytes() {
        Ok(b) => hex_encode(&b),
        Err(e) => return e.into_response(),
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    // Proxies may append their own header line instead of extending the client's:
    // read all lines, in order, as one list.
    let xff_lines: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = (!xff_lines.is_empty()).then(|| xff_lines.join(","));
    let client_ip = resolve_client_ip(peer, xff.as_deref(), &state.settings.trusted_proxies);
    let user_agent: String = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect();
    let method = req.method().clone();
    let meta = RequestMeta {
        request_id: request_id.clone(),
        client_ip,
        user_agent,
    };
    req.extensions_mut().insert(meta);
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, client_ip = %client_ip);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    let status = resp.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    crate::metrics::record_request(method.as_str(), &route, status, elapsed);
    span.in_scope(|| {
        tracing::info!(route = %route, status, latency_ms = elapsed * 1000.0, "request");
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    resp
}

/// The Content-Security-Policy for every response (no inline script or style).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) async fn security_headers(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.settings.https() {
        // Two years, the hstspreload.org minimum for preloading.
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    h.remove(header::SERVER);
    resp
}

pub(crate) async fn rate_limit(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let (Some(limiter), Some(meta)) = (
        &state.request_limiter,
        req.extensions().get::<RequestMeta>(),
    ) && let Err(not_until) = limiter.check_key(&meta.client_ip)
    {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return ApiError::too_many(
            "rate_limited",
            "too many requests; slow down",
            wait.as_secs() + 1,
        )
        .into_response();
    }
    next.run(req).await
}

/// Cross-site request forgery protection by Fetch Metadata, as Go 1.25's
/// `CrossOriginProtection` does it. State-changing requests not authenticated by a
/// bearer token are refused when the browser says they are cross-site, unless their
/// Origin is trusted. Requests with neither `Sec-Fetch-Site` nor `Origin` come from
/// non-browser clients (curl, scripts), which cannot be made to carry a victim's
/// cookie, so they pass.
pub(crate) async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    match cross_origin_verdict(&req, &state.settings.trusted_origins) {
        Ok(()) => next.run(req).await,
        Err(reason) => {
            tracing::warn!(reason, "refused cross-origin request");
            ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_rejected",
                "cross-origin request refused",
            )
            .into_response()
        }
    }
}

fn cross_origin_verdict(req: &Request, trusted: &[String]) -> Result<(), &'static str> {
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let origin_trusted = origin.is_some_and(|o| trusted.iter().any(|t| t.eq_ignore_ascii_case(o)));
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str().unwrap_or_default() {
            "same-origin" | "none" => Ok(()),
            _ if origin_trusted => Ok(()),
            _ => Err("sec-fetch-site is cross-site"),
        };
    }
    let Some(origin) = origin else {
        return Ok(());
    };
    if origin_trusted {
        return Ok(());
    }
    // No Fetch Metadata (older browser): compare Origin's host with Host.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err("origin does not match host")
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
