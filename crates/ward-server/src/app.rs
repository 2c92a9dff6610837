//! Assembles the router: API routes with their OpenAPI document (`openapi.rs`), fallbacks that
//! answer in problem details, and the middleware stack.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware as mw};
use tower_http::catch_panic::CatchPanicLayer;

use crate::middleware::{capture_route, csrf, rate_limit, request_meta, security_headers};
use crate::{ApiError, AppState};

/// The whole app, ready to serve with `into_make_service_with_connect_info`.
pub fn build_app(state: AppState) -> Router {
    let (router, api) = crate::openapi::api();
    let spec = Arc::new(api);
    let body_limit = state.settings.max_body_bytes;
    router
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { Json(spec.as_ref().clone()) }
            }),
        )
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here",
            )
        })
        .route_layer(mw::from_fn(capture_route))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(mw::from_fn_with_state(state.clone(), csrf))
        .layer(mw::from_fn_with_state(state.clone(), rate_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        // Outside CSRF, rate limiting and panics, so a browser gets an HTML page
        // for those refusals too; inside the security headers, so that page
        // carries the CSP like every other response.
        .layer(mw::from_fn(crate::web::html_errors))
        // Before routing and extractors: a path holding control characters or
        // bytes that are not UTF-8 is refused the same way on every route.
        .layer(mw::from_fn(crate::path_guard::refuse_unclean_paths))
        .layer(mw::from_fn_with_state(state.clone(), security_headers))
        .layer(mw::from_fn_with_state(state.clone(), request_meta))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let mut r = ApiError::internal().into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}
