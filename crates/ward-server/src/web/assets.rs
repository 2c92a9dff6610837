//! Static assets, served under content-hashed names so browsers may cache them
//! for a year and still never run a stale script after an upgrade.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const STYLE: &str = include_str!("../../assets/ward.css");
const SCRIPT: &str = include_str!("../../assets/ward.js");

fn hashed(stem: &str, ext: &str, body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    format!("/static/{stem}.{}.{ext}", hex_prefix(&digest))
}

fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

pub(crate) static STYLE_PATH: LazyLock<String> = LazyLock::new(|| hashed("ward", "css", STYLE));
pub(crate) static SCRIPT_PATH: LazyLock<String> = LazyLock::new(|| hashed("ward", "js", SCRIPT));

pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let path = format!("/static/{name}");
    let (body, kind) = if path == *STYLE_PATH {
        (STYLE, "text/css; charset=utf-8")
    } else if path == *SCRIPT_PATH {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else {
        return crate::ApiError::not_found().into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}
