//! Reaching identity providers: `openidconnect`'s HTTP goes through the egress
//! edge (every request — discovery, the `jwks_uri` a discovery document names, the
//! token endpoint — is checked after resolution, redirects off), and discovery
//! documents with their key sets are cached for a short time, so an unauthenticated
//! `GET /sso/{id}` cannot make Ward fetch two documents per request (it is also
//! rate-limited per address, and its open ceremonies are bounded per address).

use std::collections::HashMap;
use std::sync::Mutex;

use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;
use ward_core::sso::SsoProvider;
use ward_core::{SsoProviderId, Timestamp};

use crate::AppState;
use ward_jobs::egress::{Egress, HttpOptions};

/// How long a discovery document and its key set are reused. Providers publish a
/// new signing key before signing with it (OpenID Connect Core §10.1.1), so five
/// minutes delays nothing in a normal rotation.
pub const DISCOVERY_TTL_SECS: i64 = 5 * 60;
/// Most providers cached at once (bounded memory; the oldest entry goes first).
pub const DISCOVERY_CACHE_ENTRIES: usize = 256;
/// Most unfinished OpenID Connect sign-ins one address may have open (each is a
/// row until it is finished or expires). Generous for offices behind one NAT
/// address; the per-address sign-in rate limit comes first.
pub const MAX_OPEN_SIGN_INS_PER_ADDRESS: i64 = 30;
/// Largest response accepted from a provider.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A failed request to a provider; `class` is the egress reason class
/// (`refused_by_policy`, `dns_failed`, `unreachable`) or `http`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HttpError {
    pub class: &'static str,
    message: String,
}

type HttpFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>,
>;

/// `openidconnect`'s async HTTP interface over the egress edge: each request gets
/// a client checked and pinned for its own origin.
pub(crate) fn oidc_http(egress: &Egress) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture {
    let egress = egress.clone();
    move |req: openidconnect::HttpRequest| {
        let egress = egress.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let url = parts.uri.to_string();
            let egress_error = |e: ward_jobs::egress::EgressError| HttpError {
                class: e.class(),
                message: e.to_string(),
            };
            let client = egress
                .http_client(&url, HttpOptions::default())
                .await
                .map_err(egress_error)?;
            let mut r = client
                .request(parts.method, &url)
                .map_err(egress_error)?
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| HttpError {
                    class: "unreachable",
                    message: e.without_url().to_string(),
                })?;
            let mut resp = openidconnect::http::Response::builder().status(r.status());
            if let Some(h) = resp.headers_mut() {
                *h = std::mem::take(r.headers_mut());
            }
            let body = r.bytes().await.map_err(|e| HttpError {
                class: "unreachable",
                message: e.without_url().to_string(),
            })?;
            if body.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError {
                    class: "http",
                    message: "response larger than 1 MiB".into(),
                });
            }
            resp.body(body.to_vec()).map_err(|e| HttpError {
                class: "http",
                message: e.to_string(),
            })
        })
    }
}

/// Discovery documents (with their key sets) by provider and issuer.
#[derive(Default)]
pub(crate) struct DiscoveryCache {
    entries: Mutex<HashMap<(SsoProviderId, String), (Timestamp, CoreProviderMetadata)>>,
}

impl DiscoveryCache {
    fn get(&self, p: &SsoProvider, now: Timestamp) -> Option<CoreProviderMetadata> {
        let entries = self.entries.lock().ok()?;
        let (at, m) = entries.get(&(p.id.clone(), p.issuer.clone()))?;
        (now.seconds_since(*at) < DISCOVERY_TTL_SECS && now >= *at).then(|| m.clone())
    }

    fn put(&self, p: &SsoProvider, now: Timestamp, m: CoreProviderMetadata) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.retain(|_, (at, _)| now.seconds_since(*at) < DISCOVERY_TTL_SECS);
        while entries.len() >= DISCOVERY_CACHE_ENTRIES {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.remove(&k),
                None => break,
            };
        }
        entries.insert((p.id.clone(), p.issuer.clone()), (now, m));
    }

    /// Forgets a provider's documents (it was changed or deleted).
    pub(crate) fn invalidate(&self, provider: &SsoProviderId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(id, _), _| id != provider);
        }
    }
}

/// Why discovery failed: the egress policy refused the provider's address, or it
/// could not be reached or understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscoveryFailure {
    RefusedByPolicy,
    Unreachable,
}

/// The provider's metadata and keys, from the cache or fetched (and cached).
pub(crate) async fn discover(
    state: &AppState,
    p: &SsoProvider,
) -> Result<CoreProviderMetadata, DiscoveryFailure> {
    let now = state.now();
    if let Some(m) = state.oidc_discovery.get(p, now) {
        return Ok(m);
    }
    let issuer = IssuerUrl::new(p.issuer.clone()).map_err(|_| DiscoveryFailure::Unreachable)?;
    let m = CoreProviderMetadata::discover_async(issuer, &oidc_http(&state.egress))
        .await
        .map_err(|e| {
            tracing::warn!(provider = %p.id, error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), "identity provider discovery failed");
            match e {
                openidconnect::DiscoveryError::Request(h) if h.class == "refused_by_policy" => {
                    DiscoveryFailure::RefusedByPolicy
                }
                _ => DiscoveryFailure::Unreachable,
            }
        })?;
    state.oidc_discovery.put(p, now, m.clone());
    Ok(m)
}
