//! Extractors: request metadata, JSON and query bodies that fail as problem details,
//! and the authenticated principal (session cookie or bearer token).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use ward_core::audit::ActorKind;
use ward_core::session::SessionState;
use ward_core::user::User;
use ward_core::{Actor, Permission, RequestContext, Role, SessionId, TenantId, TokenId, UserId};
use ward_crypto::ApiTokenSecret;

use crate::problem::scrub_serde_message;
use crate::{ApiError, AppState};

/// Who is asking, where from: set by the outermost middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_ip: std::net::IpAddr,
    pub user_agent: String,
}

impl RequestMeta {
    pub fn context(&self) -> RequestContext {
        RequestContext {
            ip: self.client_ip.to_string(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .ok_or_else(|| ApiError::internal())
    }
}

/// A JSON body. Wrong content type, bad syntax, invalid UTF-8, unknown fields, wrong
/// types and oversized bodies each get their own problem code.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let text = scrub_serde_message(&r.body_text());
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "body_too_large",
            "the request body is larger than allowed",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "expected a body with content-type application/json",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::new(status, "invalid_body", text),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", text),
    }
}

/// Query parameters that fail as problem details.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        scrub_serde_message(&r.body_text()),
    )
}

/// How a principal authenticated.
#[derive(Debug, Clone)]
pub enum AuthVia {
    Session(SessionId),
    Token { id: TokenId, name: String },
}

/// An authenticated caller. The tenant comes from here and nowhere else.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: String,
    /// The user as read on this request.
    pub user: User,
    /// Effective role: for a token, the lesser of its scope and its owner's role.
    pub role: Role,
    pub via: AuthVia,
    /// Whether the session meets the company's MFA policy (always true for API
    /// tokens, which are created from a session that did).
    pub mfa_satisfied: bool,
    /// When the session last proved who its user is; `None` for API tokens.
    pub authenticated_at: Option<ward_core::Timestamp>,
    /// How the session was authenticated and whether with several factors;
    /// `None` for API tokens.
    pub strength: Option<(ward_core::mfa::AuthMethod, bool)>,
    /// Whether the session's last sign-in or re-authentication proved a second
    /// factor; for a token, whether it carries the `sensitive` capability.
    pub recent_second_factor: bool,
    /// The company's MFA policy as it is now.
    pub company_mfa: ward_core::mfa::MfaPolicy,
    /// The identity provider the session (or the session that minted the token)
    /// came through.
    pub sso_provider: Option<ward_core::SsoProviderId>,
}

impl Principal {
    /// The role must allow `permission`, and, until the session meets the
    /// company's MFA policy, only the own account (to register a passkey) and own
    /// sessions are reachable.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if !self.role.allows(permission) {
            return Err(ApiError::forbidden());
        }
        let enrollment = matches!(
            permission,
            Permission::ReadOwnAccount | Permission::ManageOwnSessions
        );
        if !self.mfa_satisfied && !enrollment {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_required",
                "your company requires multi-factor sign-in: register a passkey on your account page and verify with it",
            ));
        }
        Ok(())
    }

    /// Whether this principal would meet `policy` (API tokens always do).
    pub fn meets(&self, policy: ward_core::mfa::MfaPolicy) -> bool {
        self.strength
            .is_none_or(|(method, multi)| policy.is_met_by(method, multi))
    }

    /// Security-sensitive actions (MFA policy, SSO providers, role changes, key
    /// policy and rotation, domains, review policy) need a sign-in or
    /// re-authentication within the configured window — with a second factor
    /// when the company requires MFA. API tokens are refused unless they carry
    /// the `sensitive` capability (short-lived, minted from such a session);
    /// each such use is audited as `token.sensitive_used`.
    pub async fn require_sensitive(
        &self,
        state: &AppState,
        meta: &RequestMeta,
        action: &str,
    ) -> Result<(), ApiError> {
        match (&self.via, self.authenticated_at) {
            (AuthVia::Token { id, .. }, _) => {
                if !self.recent_second_factor {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "sensitive_capability_required",
                        "this security-sensitive action needs a signed-in session, or an API token minted with the sensitive capability",
                    ));
                }
                let e = crate::routes::event(
                    state,
                    meta,
                    Some(&self.tenant_id),
                    self.actor(),
                    ward_core::audit::actions::TOKEN_SENSITIVE_USED,
                )?
                .target("api_token", id.to_string())
                .details(serde_json::json!({ "action": action }));
                state.store().record_audit(&e).await?;
                Ok(())
            }
            (AuthVia::Session(_), Some(at)) => {
                if !state.settings.reauth.is_recent(at, state.now()) {
                    return Err(reauthentication_required());
                }
                if self.company_mfa != ward_core::mfa::MfaPolicy::None && !self.recent_second_factor
                {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "reauthentication_required",
                        "your company requires multi-factor sign-in: confirm it is you with a passkey, then retry",
                    ));
                }
                Ok(())
            }
            (AuthVia::Session(_), None) => Err(reauthentication_required()),
        }
    }

    /// The identity provider behind this principal, if any.
    pub fn sso_provider_id(&self) -> Option<&ward_core::SsoProviderId> {
        self.sso_provider.as_ref()
    }

    pub fn actor(&self) -> Actor {
        match &self.via {
            AuthVia::Session(_) => Actor {
                kind: ActorKind::User,
                id: Some(self.user_id.to_string()),
                label: self.email.clone(),
            },
            AuthVia::Token { id, name } => Actor {
                kind: ActorKind::ApiToken,
                id: Some(id.to_string()),
                label: format!("token {name:?} of {}", self.email),
            },
        }
    }

    pub fn session_id(&self) -> Option<&SessionId> {
        match &self.via {
            AuthVia::Session(id) => Some(id),
            AuthVia::Token { .. } => None,
        }
    }
}

fn reauthentication_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "reauthentication_required",
        "confirm it is you: re-authenticate with your password or a passkey, then retry",
    )
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Each handler extracts the principal once; nothing else reads it, so it is
        // not cached in the request's extensions.
        authenticate(parts, state).await
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        let text = auth.to_str().unwrap_or_default();
        let token = text.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::unauthenticated("token_invalid", "expected Authorization: Bearer ward_...")
        })?;
        return authenticate_token(token.trim(), state).await;
    }
    let Some(cookie) = session_cookie(parts, state.cookie_name()) else {
        return Err(ApiError::unauthenticated(
            "unauthenticated",
            "sign in or present an API token",
        ));
    };
    authenticate_session(&cookie, state).await
}

pub(crate) fn session_cookie(parts: &Parts, name: &str) -> Option<String> {
    cookie_value(&parts.headers, name)
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn authenticate_session(cookie: &str, state: &AppState) -> Result<Principal, ApiError> {
    let invalid = || {
        ApiError::unauthenticated(
            "session_invalid",
            "the session is invalid or has ended; sign in again",
        )
    };
    let sealed = state.keys.sessions.open(cookie).map_err(|_| invalid())?;
    let id = SessionId::parse(&sealed.session_id).ok_or_else(invalid)?;
    let found = state
        .sessions
        .get(id.clone())
        .await
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable",
            )
        })?
        .ok_or_else(invalid)?;
    let now = state.now();
    if found.user.disabled
        || state.settings.session.state(&found.session, now) != SessionState::Active
    {
        return Err(invalid());
    }
    if state.settings.session.needs_touch(&found.session, now) {
        state.store().touch_session(&id, now).await?;
    }
    Ok(Principal {
        mfa_satisfied: found.session.meets(found.mfa_policy),
        strength: found
            .session
            .method()
            .map(|m| (m, found.session.multi_factor)),
        authenticated_at: Some(found.session.authenticated_at),
        recent_second_factor: found.session.reauth_multi_factor,
        company_mfa: found.mfa_policy,
        sso_provider: found.session.sso_provider_id.clone(),
        tenant_id: found.session.tenant_id,
        user_id: found.session.user_id,
        email: found.user.email.as_str().to_owned(),
        role: found.user.role,
        user: found.user,
        via: AuthVia::Session(id),
    })
}

async fn authenticate_token(token: &str, state: &AppState) -> Result<Principal, ApiError> {
    let invalid = || {
        ApiError::unauthenticated(
            "token_invalid",
            "the API token is invalid, expired or revoked",
        )
    };
    if !ApiTokenSecret::is_well_formed(token) {
        return Err(invalid());
    }
    let digest = state.keys.api_tokens.digest(token);
    let found = state
        .store()
        .token_by_digest(&digest.0)
        .await?
        .ok_or_else(invalid)?;
    let now = state.now();
    if found.owner.disabled || !found.token.is_usable(now) {
        return Err(invalid());
    }
    if found.token.metrics {
        // A scraper's credential reads `/metrics` (routes/health.rs) and nothing else.
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "a token with the metrics scope reads only GET /metrics",
        ));
    }
    let stale = found
        .token
        .last_used_at
        .is_none_or(|t| now.seconds_since(t) >= ward_core::session::TOUCH_INTERVAL_SECS);
    if stale {
        state.store().touch_token(&found.token.id, now).await?;
    }
    Ok(Principal {
        tenant_id: found.token.tenant_id.clone(),
        user_id: found.token.user_id.clone(),
        email: found.owner.email.as_str().to_owned(),
        role: found.token.effective_role(found.owner.role),
        user: found.owner.clone(),
        via: AuthVia::Token {
            id: found.token.id.clone(),
            name: found.token.name.clone(),
        },
        mfa_satisfied: true,
        authenticated_at: None,
        strength: None,
        recent_second_factor: found.token.sensitive,
        company_mfa: ward_core::mfa::MfaPolicy::None,
        sso_provider: found.token.sso_provider_id.clone(),
    })
}
