//! Password sign-in and sign-out.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use ward_core::audit::actions;
use ward_core::mfa::AuthMethod;
use ward_core::passkey::CeremonyKind;
use ward_core::session::Session;
use ward_core::throttle::{Attempt, Escalation, Source};
use ward_core::user::User;
use ward_core::{Actor, Email};
use ward_crypto::{PasswordVerification, PhcString};
use zeroize::Zeroizing;

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{LoginRequest, LoginResponse, SecondFactorChallenge, UserView};
use crate::{ApiError, AppState};

const BAD_CREDENTIALS: &str = "the email or password is incorrect";

/// Sign in with email and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse, description = "Signed in; `Set-Cookie` carries the session"),
        (status = 401, body = crate::Problem, description = "`invalid_credentials`, whether or not the account exists"),
        (status = 429, body = crate::Problem, description = "`login_throttled`, `password_locked` or `rate_limited`, with Retry-After"),
        (status = 503, body = crate::Problem, description = "`unavailable`"),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let LoginRequest { email, password } = req;
    match sign_in_with_password(&state, &meta, &email, Zeroizing::new(password)).await? {
        PasswordSignIn::Complete { user, session } => signed_in(&state, &user, &session),
        PasswordSignIn::SecondFactor { options, cookie } => {
            let mut resp = (
                StatusCode::ACCEPTED,
                Json(SecondFactorChallenge {
                    second_factor: "passkey",
                    options: serde_json::to_value(options).map_err(|_| ApiError::internal())?,
                }),
            )
                .into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(resp)
        }
    }
}

/// The outcome of a correct password.
pub(crate) enum PasswordSignIn {
    /// Signed in (a password-only session when the user has no passkey; under an
    /// MFA policy it can only register one until it is verified).
    Complete { user: User, session: Session },
    /// The user has a passkey: it must answer this challenge before a session
    /// exists (`POST /api/v1/auth/second-factor`).
    SecondFactor {
        options: webauthn_rs::prelude::RequestChallengeResponse,
        cookie: HeaderValue,
    },
}

/// Checks an email and password (throttled per account and per IP, audited
/// either way) and starts the session or the second-factor step. Used by the
/// API and by the sign-in page alike.
pub(crate) async fn sign_in_with_password(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password: Zeroizing<String>,
) -> Result<PasswordSignIn, ApiError> {
    if let Some(limiter) = &state.login_limiter
        && limiter.check_key(&meta.client_ip).is_err()
    {
        return Err(ApiError::too_many(
            "rate_limited",
            "too many sign-in attempts from this address",
            60,
        ));
    }
    let now = state.now();
    let account_key: String = email.trim().to_lowercase().chars().take(300).collect();
    let ip_key = meta.client_ip.to_string();
    // The audit trail keeps what was typed only if it is an email address: a
    // password pasted into the wrong field must not be stored for ever.
    let audit_email = Email::parse(email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|_| "<not an email address>".to_owned());
    let source = Source::of(meta.client_ip);
    // Check and count the attempt in one step, before the (slow) password check,
    // so concurrent attempts cannot all slip under the limit. A success takes its
    // count back below; what the count escalated is audited once the password
    // has turned out wrong.
    let (refusal, escalations) = {
        let mut pairs = state
            .sign_in_failures
            .lock()
            .map_err(|_| ApiError::internal())?;
        let mut ips = state.ip_failures.lock().map_err(|_| ApiError::internal())?;
        let refusal = match pairs.check(&account_key, source, now) {
            Attempt::AccountLocked { retry_after_secs } => {
                Some(SignInRefusal::PasswordLocked(retry_after_secs))
            }
            Attempt::SourceDelayed { retry_after_secs } => {
                Some(SignInRefusal::Throttled(retry_after_secs))
            }
            Attempt::Allowed => ips.retry_after(&ip_key, now).map(SignInRefusal::Throttled),
        };
        let escalations = if refusal.is_none() {
            ips.record_failure(&ip_key, now);
            pairs.record_failure(&account_key, source, now)
        } else {
            Vec::new()
        };
        (refusal, escalations)
    };
    if let Some(refusal) = refusal {
        let e = event(
            state,
            meta,
            None,
            Actor::anonymous(),
            actions::AUTH_LOGIN_FAILED,
        )?
        .failed()
        .details(json!({ "email": audit_email, "reason": refusal.reason() }));
        state.store().record_audit(&e).await?;
        crate::metrics::record_login("throttled");
        return Err(refusal.into_error());
    }

    let creds = match Email::parse(email) {
        Ok(email) => state.store().find_user_by_email(&email).await?,
        Err(_) => None,
    };
    let stored = creds
        .as_ref()
        .and_then(|c| c.password_hash.clone())
        .map(PhcString::from_stored);
    let verdict = verify_off_runtime(state, password, stored).await?;

    let failure = match (&creds, &verdict) {
        (None, _) => Some("unknown_user"),
        (Some(c), _) if c.password_hash.is_none() => Some("no_password"),
        (Some(_), Verdict::Invalid) => Some("wrong_password"),
        (Some(c), _) if c.user.disabled => Some("disabled"),
        (Some(_), Verdict::Valid { .. }) => None,
    };
    if let Some(reason) = failure {
        let mut escalations = escalations;
        escalations.extend(
            state
                .sign_in_failures
                .lock()
                .map_err(|_| ApiError::internal())?
                .record_wrong_password(&account_key, now),
        );
        let tenant = creds.as_ref().map(|c| c.user.tenant_id.clone());
        let mut e = event(
            state,
            meta,
            tenant.as_ref(),
            Actor::anonymous(),
            actions::AUTH_LOGIN_FAILED,
        )?
        .failed()
        .details(json!({ "email": audit_email, "reason": reason }));
        if let Some(c) = &creds {
            e = e.target("user", c.user.id.to_string());
        }
        state.store().record_audit(&e).await?;
        audit_escalations(
            state,
            meta,
            creds.as_ref().map(|c| (&c.user.tenant_id, &c.user.id)),
            &audit_email,
            source,
            &escalations,
        )
        .await?;
        crate::metrics::record_login("failure");
        return Err(ApiError::unauthenticated(
            "invalid_credentials",
            BAD_CREDENTIALS,
        ));
    }
    let Some(creds) = creds else {
        return Err(ApiError::internal());
    };
    let Verdict::Valid { rehashed } = verdict else {
        return Err(ApiError::internal());
    };
    let user = creds.user;
    state
        .sign_in_failures
        .lock()
        .map_err(|_| ApiError::internal())?
        .record_success(&account_key, source);
    state
        .ip_failures
        .lock()
        .map_err(|_| ApiError::internal())?
        .forgive_one(&ip_key);
    let has_passkey = !state
        .store()
        .list_passkeys(&user.tenant_id, &user.id)
        .await?
        .is_empty();
    if has_passkey {
        let (options, cookie) =
            crate::passkeys::start_assertion(state, CeremonyKind::SecondFactor, None, Some(&user))
                .await?;
        return Ok(PasswordSignIn::SecondFactor { options, cookie });
    }
    let session = crate::passkeys::new_session(state, meta, &user, AuthMethod::Password, false)?;
    let actor = Actor::user(&user);
    let e = event(
        state,
        meta,
        Some(&user.tenant_id),
        actor,
        actions::AUTH_LOGIN,
    )?
    .target("session", session.id.to_string())
    .details(json!({ "method": "password", "password_rehashed": rehashed.is_some() }));
    state
        .store()
        .create_session(&session, rehashed.as_ref().map(PhcString::as_str), &e)
        .await?;
    crate::metrics::record_login("success");
    Ok(PasswordSignIn::Complete { user, session })
}

/// Why a password attempt was refused before its password was checked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignInRefusal {
    /// This source waits out a delay on this account, or the address is over
    /// its budget: 429 `login_throttled`.
    Throttled(i64),
    /// The account's password sign-in is locked: 429 `password_locked`.
    PasswordLocked(i64),
}

impl SignInRefusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Throttled(_) => "throttled",
            Self::PasswordLocked(_) => "password_locked",
        }
    }

    pub(crate) fn into_error(self) -> ApiError {
        match self {
            Self::Throttled(secs) => ApiError::too_many(
                "login_throttled",
                "too many failed sign-ins from here; try again after the delay",
                u64::try_from(secs.max(1)).unwrap_or(60),
            ),
            Self::PasswordLocked(secs) => ApiError::too_many(
                "password_locked",
                "password sign-in for this account is locked after too many failed \
                 attempts; sign in with a passkey, ask an Admin to reset the password, \
                 or try again later",
                u64::try_from(secs.max(1)).unwrap_or(60),
            ),
        }
    }
}

/// Audits what a failure escalated: a source's delays starting
/// (`auth.sign_in_throttled`) or the account's password lock
/// (`auth.password_locked`).
pub(crate) async fn audit_escalations(
    state: &AppState,
    meta: &RequestMeta,
    user: Option<(&ward_core::TenantId, &ward_core::UserId)>,
    email: &str,
    source: Source,
    escalations: &[Escalation],
) -> Result<(), ApiError> {
    for esc in escalations {
        let (action, details) = match *esc {
            Escalation::SourceThrottled {
                failures,
                delay_secs,
            } => (
                actions::AUTH_SIGN_IN_THROTTLED,
                json!({ "email": email, "source": source.to_string(),
                        "failures": failures, "delay_secs": delay_secs }),
            ),
            Escalation::AccountLocked {
                failures,
                lock_secs,
            } => (
                actions::AUTH_PASSWORD_LOCKED,
                json!({ "email": email, "failures": failures, "lock_secs": lock_secs }),
            ),
        };
        let mut e = event(
            state,
            meta,
            user.map(|(tenant, _)| tenant),
            Actor::anonymous(),
            action,
        )?
        .failed()
        .details(details);
        if let Some((_, id)) = user {
            e = e.target("user", id.to_string());
        }
        state.store().record_audit(&e).await?;
    }
    Ok(())
}

/// The session cookie and the sign-in response for a new session.
pub(crate) fn signed_in(
    state: &AppState,
    user: &User,
    session: &Session,
) -> Result<Response, ApiError> {
    let mut resp = Json(LoginResponse {
        user: UserView::from(user),
        session_id: session.id.to_string(),
        expires_at: session.expires_at.to_rfc3339(),
    })
    .into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie_for(state, session)?);
    Ok(resp)
}

/// `Set-Cookie` carrying a sealed session id.
pub(crate) fn session_cookie_for(
    state: &AppState,
    session: &Session,
) -> Result<HeaderValue, ApiError> {
    let token = state
        .keys
        .sessions
        .seal(session.id.as_str())
        .map_err(|_| ApiError::internal())?;
    Ok(session_cookie(
        state,
        &token,
        state.settings.session.absolute_timeout_secs,
    ))
}

/// Sign out: revokes this session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out"), (status = 400, body = crate::Problem, description = "`no_session`: an API token")))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(ward_core::Permission::ReadOwnAccount)?;
    let Some(session_id) = principal.session_id() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_session",
            "sign-out ends a cookie session; revoke API tokens with DELETE /api/v1/tokens/{id}",
        ));
    };
    let now = state.now();
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::AUTH_LOGOUT,
    )?
    .target("session", session_id.to_string());
    state
        .store()
        .revoke_session(
            &principal.tenant_id,
            &principal.user_id,
            session_id,
            now,
            &e,
        )
        .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(resp)
}

pub(crate) fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.settings.https() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        state.cookie_name()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

enum Verdict {
    Valid { rehashed: Option<PhcString> },
    Invalid,
}

/// Verifies (and, if the stored parameters are outdated, re-hashes) on the blocking
/// pool, holding a permit so at most `password_hash_concurrency` run at once. With
/// no stored hash, verifies against the dummy so the time taken is the same.
async fn verify_off_runtime(
    state: &AppState,
    password: Zeroizing<String>,
    stored: Option<PhcString>,
) -> Result<Verdict, ApiError> {
    let _permit = state
        .hash_permits
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    let hashing = state.hashing.clone();
    let rng = state.rng.clone();
    tokio::task::spawn_blocking(move || {
        let Some(stored) = stored else {
            hashing.verify_dummy(&password);
            return Ok(Verdict::Invalid);
        };
        match hashing.verify(&password, &stored) {
            Ok(PasswordVerification::Valid { needs_rehash }) => {
                let rehashed = if needs_rehash {
                    Some(
                        hashing
                            .hash(&password, rng.as_ref())
                            .map_err(|_| ApiError::internal())?,
                    )
                } else {
                    None
                };
                Ok(Verdict::Valid { rehashed })
            }
            Ok(PasswordVerification::Invalid) => Ok(Verdict::Invalid),
            Err(_) => {
                tracing::error!("stored password hash is unreadable");
                Ok(Verdict::Invalid)
            }
        }
    })
    .await
    .map_err(|_| ApiError::internal())?
}

/// Hashes a new password on the blocking pool under the same concurrency bound.
pub(crate) async fn hash_off_runtime(
    state: &AppState,
    password: Zeroizing<String>,
) -> Result<PhcString, ApiError> {
    let _permit = state
        .hash_permits
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    let hashing = state.hashing.clone();
    let rng = state.rng.clone();
    tokio::task::spawn_blocking(move || {
        hashing
            .hash(&password, rng.as_ref())
            .map_err(|_| ApiError::internal())
    })
    .await
    .map_err(|_| ApiError::internal())?
}

/// Verifies a password of a known user (re-authentication) under the same bound.
pub(crate) async fn check_password(
    state: &AppState,
    password: Zeroizing<String>,
    stored: Option<PhcString>,
) -> Result<bool, ApiError> {
    Ok(matches!(
        verify_off_runtime(state, password, stored).await?,
        Verdict::Valid { .. }
    ))
}
