//! Passkey ceremonies (WebAuthn, via webauthn-rs): registration in a signed-in
//! session, passwordless sign-in with a discoverable credential, the second factor
//! after a password, and re-authentication. The server half of each ceremony is
//! stored single-use and found through an HttpOnly cookie, so a challenge answers
//! once, in the browser that asked for it.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::mfa::AuthMethod;
use ward_core::passkey::{CEREMONY_TTL_SECS, Ceremony, CeremonyKind, PasskeyRecord};
use ward_core::session::Session;
use ward_core::user::User;
use ward_core::{Actor, CeremonyId, SessionId, TenantId, UserId};
use ward_store::{PasskeyEffect, PasskeyUse, PasskeyUseRecord};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid,
    WebauthnError,
};

use crate::extract::RequestMeta;
use crate::routes::event;
use crate::{ApiError, AppState};

/// The cookie that carries a ceremony's id between its start and its finish.
pub(crate) fn ceremony_cookie_name(state: &AppState) -> &'static str {
    if state.settings.https() {
        "__Host-ward_ceremony"
    } else {
        "ward_ceremony"
    }
}

/// `Set-Cookie` for a ceremony (Lax: an identity provider's redirect back is a
/// top-level cross-site navigation that must carry it).
pub(crate) fn ceremony_cookie(state: &AppState, id: &CeremonyId) -> HeaderValue {
    let secure = if state.settings.https() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={CEREMONY_TTL_SECS}{secure}",
        ceremony_cookie_name(state),
        id.as_str()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn webauthn(state: &AppState) -> Result<&Webauthn, ApiError> {
    state.webauthn.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "passkeys_unavailable",
            "passkeys are not configured on this server (see [webauthn] in the configuration)",
        )
    })
}

/// The WebAuthn user handle: the user's id as UUID bytes (random, never the email,
/// so the authenticator learns nothing about the account from it).
fn user_handle(user: &UserId) -> Result<Uuid, ApiError> {
    Uuid::try_parse(user.as_str()).map_err(|_| ApiError::internal())
}

/// Starts a ceremony: stores its state and returns the cookie that names it.
pub(crate) async fn begin<S: serde::Serialize>(
    state: &AppState,
    kind: CeremonyKind,
    session_id: Option<&SessionId>,
    user_id: Option<&UserId>,
    server_half: &S,
) -> Result<HeaderValue, ApiError> {
    let now = state.now();
    let c = Ceremony {
        id: CeremonyId::from_random(state.random_id_bytes()?),
        kind,
        session_id: session_id.cloned(),
        user_id: user_id.cloned(),
        state: serde_json::to_string(server_half).map_err(|_| ApiError::internal())?,
        created_at: now,
        expires_at: now.plus_seconds(CEREMONY_TTL_SECS),
    };
    state.store().create_ceremony(&c).await?;
    Ok(ceremony_cookie(state, &c.id))
}

/// Starts a ceremony for an unauthenticated caller, at most `max_open` open at
/// once per source address: 429 beyond that, and nothing stored.
pub(crate) async fn begin_bounded<S: serde::Serialize>(
    state: &AppState,
    kind: CeremonyKind,
    client_ip: std::net::IpAddr,
    max_open: i64,
    server_half: &S,
) -> Result<HeaderValue, ApiError> {
    let now = state.now();
    let c = Ceremony {
        id: CeremonyId::from_random(state.random_id_bytes()?),
        kind,
        session_id: None,
        user_id: None,
        state: serde_json::to_string(server_half).map_err(|_| ApiError::internal())?,
        created_at: now,
        expires_at: now.plus_seconds(CEREMONY_TTL_SECS),
    };
    if !state
        .store()
        .create_ceremony_bounded(&c, &client_ip.to_string(), max_open)
        .await?
    {
        return Err(ApiError::too_many(
            "rate_limited",
            "too many sign-ins in progress from this address; finish one or wait a few minutes",
            60,
        ));
    }
    Ok(ceremony_cookie(state, &c.id))
}

/// Takes the ceremony this browser started; it is gone afterwards either way. A
/// missing, used or expired one is refused and audited (a replayed response
/// lands here: its challenge was consumed by the first use).
pub(crate) async fn take(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    kind: CeremonyKind,
) -> Result<Ceremony, ApiError> {
    let found = match crate::extract::cookie_value(headers, ceremony_cookie_name(state))
        .and_then(|c| CeremonyId::parse(&c))
    {
        Some(id) => state.store().take_ceremony(&id, kind, state.now()).await?,
        None => None,
    };
    match found {
        Some(c) => Ok(c),
        None => Err(refuse(
            state,
            meta,
            None,
            Actor::anonymous(),
            kind.as_str(),
            Refusal::CEREMONY_GONE,
        )
        .await),
    }
}

fn server_half<T: serde::de::DeserializeOwned>(c: &Ceremony) -> Result<T, ApiError> {
    serde_json::from_str(&c.state).map_err(|_| ApiError::internal())
}

/// Options for registering a new passkey on this user's account. The library's
/// passkey profile does not ask for a discoverable credential; Ward asks for one
/// so the same passkey also signs in without a password.
pub(crate) async fn start_registration(
    state: &AppState,
    session_id: &SessionId,
    user: &User,
) -> Result<(CreationChallengeResponse, HeaderValue), ApiError> {
    let wa = webauthn(state)?;
    let existing = state
        .store()
        .list_passkeys(&user.tenant_id, &user.id)
        .await?;
    let exclude = existing
        .iter()
        .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
        .collect::<Vec<_>>();
    let (mut options, reg) = wa
        .start_passkey_registration(
            user_handle(&user.id)?,
            user.email.as_str(),
            &user.display_name,
            Some(exclude),
        )
        .map_err(|_| ApiError::internal())?;
    if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
        sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
        sel.require_resident_key = true;
    }
    let cookie = begin(
        state,
        CeremonyKind::PasskeyRegistration,
        Some(session_id),
        Some(&user.id),
        &reg,
    )
    .await?;
    Ok((options, cookie))
}

/// Why a passkey was refused: a stable reason for the audit trail and a message
/// for the person at the browser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal {
    pub reason: &'static str,
    pub message: &'static str,
}

impl Refusal {
    fn from_webauthn(e: &WebauthnError) -> Self {
        let (reason, message) = match e {
            WebauthnError::InvalidRPOrigin => (
                "wrong_origin",
                "the passkey answered for another site's origin",
            ),
            WebauthnError::InvalidRPIDHash => (
                "wrong_rp_id",
                "the passkey belongs to another relying party",
            ),
            WebauthnError::MismatchedChallenge => (
                "wrong_challenge",
                "the passkey answered a different challenge; start again",
            ),
            WebauthnError::CredentialPossibleCompromise => (
                "sign_count_regression",
                "this passkey's signature counter went backwards: it may have been cloned, so it was refused",
            ),
            WebauthnError::UserNotVerified => (
                "user_not_verified",
                "the authenticator did not verify you (PIN or biometric)",
            ),
            WebauthnError::CredentialAlteredAlgFromRequest | WebauthnError::CredentialNotFound => {
                ("unknown_credential", "this passkey is not registered here")
            }
            _ => ("invalid_response", "the passkey response is not valid"),
        };
        Self { reason, message }
    }

    const CHALLENGE_FROM_ANOTHER_SESSION: Refusal = Refusal {
        reason: "challenge_from_another_session",
        message: "this passkey step was started in another session; start again",
    };
    const UNKNOWN_CREDENTIAL: Refusal = Refusal {
        reason: "unknown_credential",
        message: "this passkey is not registered here",
    };
    const ALREADY_REGISTERED: Refusal = Refusal {
        reason: "already_registered",
        message: "this passkey is already registered",
    };
    const REPLAYED: Refusal = Refusal {
        reason: "replayed_assertion",
        message: "this passkey response was already used",
    };
    const CEREMONY_GONE: Refusal = Refusal {
        reason: "challenge_used_or_expired",
        message: "this sign-in step has expired or was already used; start again",
    };
    const DISABLED: Refusal = Refusal {
        reason: "disabled",
        message: "this account is disabled",
    };
}

/// Records the refusal in the audit trail and answers with it.
pub(crate) async fn refuse(
    state: &AppState,
    meta: &RequestMeta,
    tenant: Option<&TenantId>,
    actor: Actor,
    ceremony: &str,
    r: Refusal,
) -> ApiError {
    let audited = async {
        let e = event(state, meta, tenant, actor, actions::PASSKEY_REJECTED)?
            .failed()
            .details(json!({ "ceremony": ceremony, "reason": r.reason }));
        state.store().record_audit(&e).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(e) = audited {
        return e;
    }
    crate::metrics::record_login("passkey_refused");
    ApiError::new(StatusCode::BAD_REQUEST, "passkey_refused", r.message)
}

/// A credential from the browser, as JSON (`PublicKeyCredential.toJSON()`).
pub(crate) fn parse_credential<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_credential",
            "`credential` is not a WebAuthn credential in JSON form",
        )
    })
}

/// Finishes a registration started in this session.
pub(crate) async fn finish_registration(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    principal: &crate::extract::Principal,
    name: String,
    credential: serde_json::Value,
) -> Result<PasskeyRecord, ApiError> {
    let wa = webauthn(state)?;
    let c = take(state, meta, headers, CeremonyKind::PasskeyRegistration).await?;
    let refuse_with = |r| {
        refuse(
            state,
            meta,
            Some(&principal.tenant_id),
            principal.actor(),
            "registration",
            r,
        )
    };
    if c.session_id.as_ref() != principal.session_id() {
        return Err(refuse_with(Refusal::CHALLENGE_FROM_ANOTHER_SESSION).await);
    }
    let reg: RegisterPublicKeyCredential = parse_credential(credential)?;
    let half: PasskeyRegistration = server_half(&c)?;
    let passkey = match wa.finish_passkey_registration(&reg, &half) {
        Ok(p) => p,
        Err(e) => return Err(refuse_with(Refusal::from_webauthn(&e)).await),
    };
    let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
    let record = PasskeyRecord {
        id: ward_core::PasskeyId::from_random(state.random_id_bytes()?),
        tenant_id: principal.tenant_id.clone(),
        user_id: principal.user_id.clone(),
        name,
        credential_id,
        credential: serde_json::to_string(&passkey).map_err(|_| ApiError::internal())?,
        sign_count: 0,
        created_at: state.now(),
        last_used_at: None,
    };
    let e = event(
        state,
        meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::PASSKEY_REGISTERED,
    )?
    .target("passkey", record.id.to_string())
    .details(json!({ "name": record.name }));
    match state.store().add_passkey(&record, &e).await {
        Ok(()) => Ok(record),
        Err(ward_store::StoreError::Conflict(_)) => {
            Err(refuse_with(Refusal::ALREADY_REGISTERED).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// Options for a passkey assertion: discoverable (any of the user's passkeys,
/// the user unknown yet) or for one known user's passkeys.
pub(crate) async fn start_assertion(
    state: &AppState,
    kind: CeremonyKind,
    session_id: Option<&SessionId>,
    user: Option<&User>,
) -> Result<(RequestChallengeResponse, HeaderValue), ApiError> {
    let wa = webauthn(state)?;
    match user {
        None => {
            let (mut options, half) = wa
                .start_discoverable_authentication()
                .map_err(|_| ApiError::internal())?;
            // A button press, not conditional (autofill) mediation.
            options.mediation = None;
            let cookie = begin(state, kind, session_id, None, &half).await?;
            Ok((options, cookie))
        }
        Some(user) => {
            let passkeys = user_passkeys(state, user).await?;
            if passkeys.is_empty() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "no_passkey",
                    "register a passkey first",
                ));
            }
            let creds: Vec<Passkey> = passkeys.into_iter().map(|(_, p)| p).collect();
            let (options, half) = wa
                .start_passkey_authentication(&creds)
                .map_err(|_| ApiError::internal())?;
            let cookie = begin(state, kind, session_id, Some(&user.id), &half).await?;
            Ok((options, cookie))
        }
    }
}

async fn user_passkeys(
    state: &AppState,
    user: &User,
) -> Result<Vec<(PasskeyRecord, Passkey)>, ApiError> {
    let records = state
        .store()
        .list_passkeys(&user.tenant_id, &user.id)
        .await?;
    records
        .into_iter()
        .map(|r| {
            let p: Passkey =
                serde_json::from_str(&r.credential).map_err(|_| ApiError::internal())?;
            Ok((r, p))
        })
        .collect()
}

/// What a verified assertion does.
pub(crate) enum AssertionFor<'a> {
    /// Passwordless sign-in: a new session.
    SignIn,
    /// The second factor after the password of the ceremony's user: a new session.
    SecondFactor,
    /// Re-authenticating this signed-in principal.
    Reauth(&'a crate::extract::Principal),
}

/// A verified assertion: the user, and the session it opened (for sign-ins).
pub(crate) struct Asserted {
    pub user: User,
    pub session: Option<Session>,
}

/// Finishes an assertion ceremony: checks the response against the stored
/// challenge, the origin and RP id, user verification and the signature counter;
/// then records the use, with the new session or re-authentication, atomically.
pub(crate) async fn finish_assertion(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    purpose: AssertionFor<'_>,
    credential: serde_json::Value,
) -> Result<Asserted, ApiError> {
    let wa = webauthn(state)?;
    let (kind, label) = match purpose {
        AssertionFor::SignIn => (CeremonyKind::PasskeySignIn, "sign_in"),
        AssertionFor::SecondFactor => (CeremonyKind::SecondFactor, "second_factor"),
        AssertionFor::Reauth(_) => (CeremonyKind::PasskeyReauth, "reauth"),
    };
    let c = take(state, meta, headers, kind).await?;
    let response: PublicKeyCredential = parse_credential(credential)?;
    let anonymous = || Actor::anonymous();
    if let AssertionFor::Reauth(p) = &purpose
        && c.session_id.as_ref() != p.session_id()
    {
        return Err(refuse(
            state,
            meta,
            Some(&p.tenant_id),
            p.actor(),
            label,
            Refusal::CHALLENGE_FROM_ANOTHER_SESSION,
        )
        .await);
    }
    // Which passkey answered: by its credential id, which must belong to the
    // user this ceremony is for (or, for a discoverable sign-in, to the user
    // handle the authenticator returned).
    let credential_id = URL_SAFE_NO_PAD.encode(&response.raw_id);
    let record = state
        .store()
        .passkey_by_credential_id(&credential_id)
        .await?;
    let owner_ok = match (&record, &c.user_id, &purpose) {
        (Some(r), Some(u), _) => &r.user_id == u,
        (Some(r), None, AssertionFor::SignIn) => wa
            .identify_discoverable_authentication(&response)
            .ok()
            .is_some_and(|(handle, _)| user_handle(&r.user_id).is_ok_and(|h| h == handle)),
        _ => false,
    };
    let Some(record) = record.filter(|_| owner_ok) else {
        let tenant = match &purpose {
            AssertionFor::Reauth(p) => Some(p.tenant_id.clone()),
            _ => None,
        };
        return Err(refuse(
            state,
            meta,
            tenant.as_ref(),
            anonymous(),
            label,
            Refusal::UNKNOWN_CREDENTIAL,
        )
        .await);
    };
    let user = state
        .store()
        .find_user(&record.tenant_id, &record.user_id)
        .await?
        .ok_or_else(|| ApiError::internal())?;
    let actor = Actor::user(&user);
    if user.disabled {
        return Err(refuse(
            state,
            meta,
            Some(&user.tenant_id),
            actor,
            label,
            Refusal::DISABLED,
        )
        .await);
    }
    let mut passkey: Passkey =
        serde_json::from_str(&record.credential).map_err(|_| ApiError::internal())?;
    let verified = match kind {
        CeremonyKind::PasskeySignIn => {
            let half: webauthn_rs::prelude::DiscoverableAuthentication = server_half(&c)?;
            wa.finish_discoverable_authentication_v2(&response, half, &passkey)
        }
        _ => {
            let half: PasskeyAuthentication = server_half(&c)?;
            wa.finish_passkey_authentication(&response, &half)
        }
    };
    let result = match verified {
        Ok(r) => r,
        Err(e) => {
            let refusal = Refusal::from_webauthn(&e);
            return Err(refuse(state, meta, Some(&user.tenant_id), actor, label, refusal).await);
        }
    };
    // The library compares with the counter as it was when the ceremony began;
    // compare with the stored one too, which another sign-in may have raised since.
    let (old_count, new_count) = (record.sign_count, i64::from(result.counter()));
    if (old_count > 0 || new_count > 0) && new_count <= old_count {
        let refusal = Refusal::from_webauthn(&WebauthnError::CredentialPossibleCompromise);
        return Err(refuse(state, meta, Some(&user.tenant_id), actor, label, refusal).await);
    }
    passkey.update_credential(&result);
    let now = state.now();
    let used = event(
        state,
        meta,
        Some(&user.tenant_id),
        actor.clone(),
        actions::PASSKEY_USED,
    )?
    .target("passkey", record.id.to_string())
    .details(json!({ "ceremony": label, "name": record.name }));
    let (effect, follow, session) = match purpose {
        AssertionFor::Reauth(p) => {
            let session_id = p
                .session_id()
                .cloned()
                .ok_or_else(|| ApiError::internal())?;
            let e = event(
                state,
                meta,
                Some(&user.tenant_id),
                actor,
                actions::AUTH_REAUTHENTICATED,
            )?
            .target("session", session_id.to_string())
            .details(json!({ "method": "passkey" }));
            (PasskeyEffect::Reauthenticate(session_id), e, None)
        }
        AssertionFor::SignIn | AssertionFor::SecondFactor => {
            let method = if kind == CeremonyKind::PasskeySignIn {
                AuthMethod::Passkey
            } else {
                AuthMethod::PasswordAndPasskey
            };
            let session = new_session(state, meta, &user, method, true)?;
            let e = event(
                state,
                meta,
                Some(&user.tenant_id),
                actor,
                actions::AUTH_LOGIN,
            )?
            .target("session", session.id.to_string())
            .details(json!({ "method": method.as_str(), "password_rehashed": false }));
            (
                PasskeyEffect::NewSession(Box::new(session.clone())),
                e,
                Some(session),
            )
        }
    };
    let credential_json = serde_json::to_string(&passkey).map_err(|_| ApiError::internal())?;
    let outcome = state
        .store()
        .record_passkey_use(
            &PasskeyUseRecord {
                passkey: &record.id,
                old_sign_count: old_count,
                new_sign_count: new_count,
                credential: &credential_json,
                at: now,
                effect,
            },
            &[used, follow],
        )
        .await?;
    if outcome == PasskeyUse::CounterRaced {
        let actor = Actor::user(&user);
        return Err(refuse(
            state,
            meta,
            Some(&user.tenant_id),
            actor,
            label,
            Refusal::REPLAYED,
        )
        .await);
    }
    if session.is_some() {
        unlock_password_sign_in(state, meta, &user).await?;
    }
    Ok(Asserted { user, session })
}

/// A passkey sign-in proves the owner is back: a password lock that guessers
/// caused on the account ends (`ward_core::throttle`), and the trail says so.
async fn unlock_password_sign_in(
    state: &AppState,
    meta: &RequestMeta,
    user: &User,
) -> Result<(), ApiError> {
    let now = state.now();
    let was_locked = {
        let mut throttle = state
            .sign_in_failures
            .lock()
            .map_err(|_| ApiError::internal())?;
        let locked = throttle.is_locked(user.email.as_str(), now);
        throttle.clear_account(user.email.as_str());
        locked
    };
    if was_locked {
        let actor = Actor::user(user);
        let e = event(
            state,
            meta,
            Some(&user.tenant_id),
            actor,
            actions::AUTH_PASSWORD_UNLOCKED,
        )?
        .target("user", user.id.to_string())
        .details(json!({ "by": "passkey" }));
        state.store().record_audit(&e).await?;
    }
    Ok(())
}

/// A new session for a user who has just proven who they are.
pub(crate) fn new_session(
    state: &AppState,
    meta: &RequestMeta,
    user: &User,
    method: AuthMethod,
    multi_factor: bool,
) -> Result<Session, ApiError> {
    let now = state.now();
    Ok(Session {
        id: SessionId::from_random(state.random_id_bytes()?),
        tenant_id: user.tenant_id.clone(),
        user_id: user.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.plus_seconds(state.settings.session.absolute_timeout_secs),
        revoked_at: None,
        ip: meta.client_ip.to_string(),
        user_agent: meta.user_agent.clone(),
        auth_method: method.as_str().to_owned(),
        multi_factor,
        authenticated_at: now,
        reauth_multi_factor: multi_factor,
        sso_provider_id: None,
    })
}
