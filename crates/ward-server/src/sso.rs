//! OpenID Connect single sign-on (authorization code flow with PKCE S256, state
//! and nonce), with the `openidconnect` crate. The provider's metadata and keys
//! are discovered through the egress policy and cached for five minutes
//! (`sso_discovery.rs`).
//! The ID token is checked for issuer, audience, expiry, nonce and a signature by
//! one of the provider's keys with an asymmetric algorithm (`none` and HMAC are
//! refused). Each refusal is audited with its reason and shown as one clear line.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ward_core::audit::actions;
use ward_core::mfa::{AuthMethod, idp_asserted_mfa};
use ward_core::passkey::{Ceremony, CeremonyKind};
use ward_core::session::Session;
use ward_core::sso::{EmailInUse, SignInRefusal, SignInTarget, SsoProvider, sign_in_target};
use ward_core::user::User;
use ward_core::{Actor, Email, SsoProviderId, UserId};
use ward_crypto::SettingsContext;
use ward_store::{SealedSecret, StoredSsoProvider};
use zeroize::Zeroizing;

use crate::extract::RequestMeta;
use crate::routes::event;
use crate::{ApiError, AppState};

/// Signature algorithms accepted on ID tokens: asymmetric only. `none` is never
/// accepted; HMAC (keyed with the client secret) is not offered either.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why an SSO sign-in failed: a stable reason for the audit trail and a message
/// for the person at the browser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SsoFailure {
    pub reason: &'static str,
    pub message: &'static str,
}

const fn failure(reason: &'static str, message: &'static str) -> SsoFailure {
    SsoFailure { reason, message }
}

const UNREACHABLE: SsoFailure = failure(
    "provider_unreachable",
    "the identity provider could not be reached; try again later or ask your administrator",
);
const REFUSED_BY_POLICY: SsoFailure = failure(
    "provider_refused_by_policy",
    "the identity provider's address is not one this server may connect to; ask your administrator",
);
const WRONG_STATE: SsoFailure = failure(
    "wrong_state",
    "this sign-in answer does not belong to the sign-in this browser started; start again",
);
const EXCHANGE_FAILED: SsoFailure = failure(
    "code_exchange_failed",
    "the identity provider did not accept the sign-in code (already used or expired); start again",
);

fn id_token_failure(e: &ClaimsVerificationError) -> SsoFailure {
    use ClaimsVerificationError as C;
    use SignatureVerificationError as S;
    match e {
        C::Expired(_) => failure(
            "id_token_expired",
            "the identity provider's token has expired; start again",
        ),
        C::InvalidAudience(_) => failure(
            "wrong_audience",
            "the identity provider's token was issued for another application",
        ),
        C::InvalidIssuer(_) => failure(
            "wrong_issuer",
            "the identity provider's token comes from another issuer",
        ),
        C::InvalidNonce(_) => failure(
            "wrong_nonce",
            "the identity provider's token does not belong to this sign-in",
        ),
        C::SignatureVerification(S::NoSignature) => failure(
            "unsigned_token",
            "the identity provider's token is not signed",
        ),
        C::SignatureVerification(S::DisallowedAlg(_) | S::UnsupportedAlg(_)) => failure(
            "disallowed_algorithm",
            "the identity provider's token uses a signature algorithm Ward does not accept",
        ),
        C::SignatureVerification(S::NoMatchingKey | S::AmbiguousKeyId(_)) => failure(
            "unknown_signing_key",
            "the identity provider's token is signed by a key it does not publish",
        ),
        C::SignatureVerification(_) => failure(
            "bad_signature",
            "the identity provider's token signature is not valid",
        ),
        _ => failure(
            "invalid_id_token",
            "the identity provider's token is not valid",
        ),
    }
}

/// The server half of an SSO sign-in.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: SsoProviderId,
    state: String,
    nonce: String,
    pkce_verifier: String,
    /// A signed-in owner linking this provider to their account, not a sign-in.
    #[serde(default)]
    link: bool,
}

/// Seals a client secret for storage.
pub(crate) fn seal_client_secret(
    state: &AppState,
    provider: &SsoProviderId,
    secret: &str,
) -> Result<SealedSecret, ApiError> {
    let keys = &state.keys.forwarding;
    let bytes = keys
        .settings
        .seal(
            secret.as_bytes(),
            secret_context(provider, keys.master_version),
            state.rng.as_ref(),
        )
        .map_err(|_| ApiError::internal())?;
    Ok(SealedSecret {
        bytes,
        master_version: keys.master_version,
    })
}

pub fn secret_context(provider: &SsoProviderId, master_version: u32) -> SettingsContext<'_> {
    SettingsContext {
        owner_kind: "sso_provider",
        owner_id: provider.as_str(),
        field: "client_secret",
        master_version,
    }
}

fn open_client_secret(
    state: &AppState,
    p: &StoredSsoProvider,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    open_provider_secret(&state.keys.forwarding, p).map_err(|e| {
        tracing::error!(error = %e, "sso client secret");
        ApiError::internal()
    })
}

/// Opens a provider's sealed client secret (also used by `ward keys verify`).
pub fn open_provider_secret(
    keys: &ward_jobs::forwarding::ForwarderKeys,
    p: &StoredSsoProvider,
) -> Result<Option<Zeroizing<String>>, String> {
    let Some(sealed) = &p.secret else {
        return Ok(None);
    };
    let v = sealed.master_version;
    let key = keys.for_version(v).ok_or_else(|| {
        format!(
            "the client secret of SSO provider {} is sealed under master version {v}, which is not configured",
            p.provider.name
        )
    })?;
    let plain = key
        .open(&sealed.bytes, secret_context(&p.provider.id, v))
        .map_err(|_| {
            format!(
                "the client secret of SSO provider {} does not open",
                p.provider.name
            )
        })?;
    String::from_utf8(plain.to_vec())
        .map(|s| Some(Zeroizing::new(s)))
        .map_err(|_| {
            format!(
                "the client secret of SSO provider {} is not text",
                p.provider.name
            )
        })
}

fn redirect_uri(state: &AppState) -> Result<RedirectUrl, ApiError> {
    RedirectUrl::new(format!("{}/sso/callback", state.settings.public_url))
        .map_err(|_| ApiError::internal())
}

async fn discover(state: &AppState, p: &SsoProvider) -> Result<CoreProviderMetadata, SsoFailure> {
    use crate::sso_discovery::DiscoveryFailure;
    crate::sso_discovery::discover(state, p)
        .await
        .map_err(|f| match f {
            DiscoveryFailure::RefusedByPolicy => REFUSED_BY_POLICY,
            DiscoveryFailure::Unreachable => UNREACHABLE,
        })
}

/// Starts a sign-in: the provider's authorization URL and the ceremony cookie.
/// `link`: the signed-in owner's session and account, when this is a link of the
/// provider to an existing account rather than a sign-in.
pub(crate) async fn start(
    state: &AppState,
    meta: &RequestMeta,
    provider: &StoredSsoProvider,
    link: Option<(&ward_core::SessionId, &UserId)>,
) -> Result<(String, HeaderValue), ApiError> {
    let p = &provider.provider;
    // An unauthenticated start reaches out to the provider and writes a row:
    // limited per address like a password sign-in.
    if link.is_none()
        && let Some(limiter) = &state.login_limiter
        && limiter.check_key(&meta.client_ip).is_err()
    {
        return Err(ApiError::too_many(
            "rate_limited",
            "too many sign-in attempts from this address",
            60,
        ));
    }
    if !p.enabled {
        return Err(refuse(
            state,
            meta,
            p,
            None,
            failure("provider_disabled", "this sign-in option is turned off"),
        )
        .await);
    }
    let metadata = match discover(state, p).await {
        Ok(m) => m,
        Err(f) => return Err(refuse(state, meta, p, None, f).await),
    };
    let secret = open_client_secret(state, provider)?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(redirect_uri(state)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in &p.scopes {
        request = request.add_scope(Scope::new(s.clone()));
    }
    let (url, csrf, nonce) = request.url();
    let pending = Pending {
        provider: p.id.clone(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        link: link.is_some(),
    };
    let cookie = match link {
        Some((session, user)) => {
            crate::passkeys::begin(
                state,
                CeremonyKind::OidcSignIn,
                Some(session),
                Some(user),
                &pending,
            )
            .await?
        }
        // Unauthenticated starts write a row each: bounded per address.
        None => {
            crate::passkeys::begin_bounded(
                state,
                CeremonyKind::OidcSignIn,
                meta.client_ip,
                crate::sso_discovery::MAX_OPEN_SIGN_INS_PER_ADDRESS,
                &pending,
            )
            .await?
        }
    };
    Ok((url.to_string(), cookie))
}

/// What the provider sends back to `/sso/callback`.
#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Finishes a sign-in: checks the state against this browser's ceremony,
/// exchanges the code (with the PKCE verifier), verifies the ID token, applies
/// the company's rules (domains, provisioning, roles), and opens a session.
pub(crate) async fn finish(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    cb: Callback,
) -> Result<Finished, ApiError> {
    let ceremony = take_ceremony(state, headers).await?;
    let pending: Pending =
        serde_json::from_str(&ceremony.state).map_err(|_| ApiError::internal())?;
    let provider = state
        .store()
        .find_sso_provider(&pending.provider)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "sso_failed",
                "this sign-in option no longer exists",
            )
        })?;
    let p = &provider.provider;
    let refused = |f| refuse(state, meta, p, None, f);
    // The state is compared in constant time: it is the only thing tying the
    // answer to this browser's request.
    let state_ok = cb.state.as_deref().is_some_and(|s| {
        subtle::ConstantTimeEq::ct_eq(s.as_bytes(), pending.state.as_bytes()).into()
    });
    if !state_ok {
        return Err(refused(WRONG_STATE).await);
    }
    if !p.enabled {
        return Err(refused(failure(
            "provider_disabled",
            "this sign-in option is turned off",
        ))
        .await);
    }
    if cb.error.is_some() {
        return Err(refused(failure(
            "provider_refused",
            "the identity provider did not sign you in",
        ))
        .await);
    }
    let Some(code) = cb.code else {
        return Err(refused(EXCHANGE_FAILED).await);
    };
    let metadata = match discover(state, p).await {
        Ok(m) => m,
        Err(f) => return Err(refused(f).await),
    };
    let secret = open_client_secret(state, &provider)?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(redirect_uri(state)?);
    let http = crate::sso_discovery::oidc_http(&state.egress);
    let exchange = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(x) => x,
        Err(_) => return Err(refused(EXCHANGE_FAILED).await),
    };
    let tokens = match exchange
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&http)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(provider = %p.id, error = %e, "code exchange failed");
            let f = if matches!(e, openidconnect::RequestTokenError::Request(_)) {
                UNREACHABLE
            } else {
                EXCHANGE_FAILED
            };
            return Err(refused(f).await);
        }
    };
    let Some(id_token) = tokens.id_token() else {
        return Err(refused(failure(
            "no_id_token",
            "the identity provider sent no ID token",
        ))
        .await);
    };
    let now_ms = state.now().millis();
    let nonce = Nonce::new(pending.nonce.clone());
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(ALLOWED_ALGS)
        .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default());
    let claims = match id_token.claims(&verifier, &nonce) {
        Ok(c) => c,
        // Signed by a key the cached key set lacks: the provider may have
        // rotated since. Read its keys once more (never more than once per
        // sign-in) and check again; a key it still does not publish is refused.
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {
            state.oidc_discovery.invalidate(&p.id);
            let fresh = match discover(state, p).await {
                Ok(m) => m,
                Err(f) => return Err(refused(f).await),
            };
            let client =
                CoreClient::from_provider_metadata(fresh, ClientId::new(p.client_id.clone()), None);
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(ALLOWED_ALGS)
                .set_time_fn(move || {
                    chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default()
                });
            match id_token.claims(&verifier, &nonce) {
                Ok(c) => c,
                Err(e) => return Err(refused(id_token_failure(&e)).await),
            }
        }
        Err(e) => return Err(refused(id_token_failure(&e)).await),
    };
    // Custom claims (groups) from the verified token's payload.
    let payload = verified_payload(&id_token.to_string());
    let Some(email) = claims.email().and_then(|e| Email::parse(e.as_str()).ok()) else {
        return Err(refused(failure(
            "email_missing",
            "the identity provider did not share a valid email address (add the email scope)",
        ))
        .await);
    };
    if claims.email_verified() == Some(false) {
        return Err(refused(failure(
            "email_unverified",
            "the identity provider has not verified this email address",
        ))
        .await);
    }
    let with_email = |f| refuse(state, meta, p, Some(email.as_str()), f);
    if !p.allows_email(&email) {
        return Err(with_email(failure(
            "domain_not_allowed",
            "this email domain may not sign in through this provider",
        ))
        .await);
    }
    let amr: Vec<String> = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|a| a.as_str().to_owned()).collect())
        .unwrap_or_default();
    let acr = claims.auth_context_ref().map(|a| a.as_str().to_owned());
    let multi_factor = idp_asserted_mfa(&amr, acr.as_deref(), &p.mfa_acr_values);
    let groups = groups(&payload, &p.groups_claim);

    let subject = claims.subject().as_str().to_owned();
    if pending.link {
        let owner = link_owner(state, headers, &ceremony).await?;
        return link(state, meta, &provider, owner, &subject, &email).await;
    }
    let linked = state.store().find_identity(&p.id, &subject).await?;
    let email_in_use = match &linked {
        Some(_) => EmailInUse::No,
        None => email_in_use(state, p, &email).await?,
    };
    let target = sign_in_target(
        p,
        linked.as_ref().map(|l| &l.user_id),
        email_in_use,
        &groups,
    );
    let (user, provisioned) = match target {
        SignInTarget::Linked(id) => {
            let found = state.store().find_user(&p.tenant_id, &id).await?;
            match found {
                Some(u) if u.disabled => {
                    return Err(with_email(failure("disabled", "this account is disabled")).await);
                }
                Some(u) => (u, false),
                None => return Err(with_email(refusal(SignInRefusal::NoAccount)).await),
            }
        }
        SignInTarget::Refuse(r) => return Err(with_email(refusal(r)).await),
        SignInTarget::Provision(role) => {
            let name = claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|| email.as_str().to_owned());
            let user = provision(state, meta, p, &email, &name, role, &groups, &subject).await?;
            (user, true)
        }
    };
    let mut session =
        crate::passkeys::new_session(state, meta, &user, AuthMethod::Oidc, multi_factor)?;
    session.sso_provider_id = Some(p.id.clone());
    let actor = Actor::user(&user);
    let e = event(
        state,
        meta,
        Some(&user.tenant_id),
        actor,
        actions::AUTH_LOGIN,
    )?
    .target("session", session.id.to_string())
    .details(json!({
        "method": "oidc",
        "provider": p.name,
        "idp_mfa": multi_factor,
        "provisioned": provisioned,
    }));
    state.store().create_session(&session, None, &e).await?;
    crate::metrics::record_login("success");
    Ok(Finished::SignedIn(Box::new((user, session))))
}

/// What a callback ended in.
pub(crate) enum Finished {
    /// A sign-in: the user and their new session.
    SignedIn(Box<(User, Session)>),
    /// The signed-in owner linked this provider to their account.
    Linked { provider: String },
}

fn refusal(r: SignInRefusal) -> SsoFailure {
    match r {
        SignInRefusal::NotLinked => failure(
            r.reason(),
            "an account with this email exists but is not linked to this identity provider: sign in with your password or passkey and link it from your account page",
        ),
        SignInRefusal::Unavailable => failure(
            r.reason(),
            "this email address cannot sign in through this provider; ask your administrator",
        ),
        SignInRefusal::NoAccount => failure(
            r.reason(),
            "there is no Ward account for this email; ask your administrator",
        ),
        SignInRefusal::NoRole => failure(
            r.reason(),
            "none of your groups is allowed into Ward; ask your administrator",
        ),
    }
}

/// Whether the email already belongs to an account (or its domain to another
/// company). The answer only steers the refusal; it never picks an account.
async fn email_in_use(
    state: &AppState,
    p: &SsoProvider,
    email: &Email,
) -> Result<EmailInUse, ApiError> {
    if let Some(owner) = state.store().domain_owner(email.domain()).await?
        && owner != p.tenant_id
    {
        return Ok(EmailInUse::Elsewhere);
    }
    Ok(match state.store().find_user_by_email(email).await? {
        Some(c) if c.user.tenant_id == p.tenant_id => EmailInUse::InThisCompany,
        Some(_) => EmailInUse::Elsewhere,
        None => EmailInUse::No,
    })
}

/// The account a link ceremony is for: the browser must still hold the very
/// session that started it (signed in by password or passkey).
async fn link_owner(
    state: &AppState,
    headers: &HeaderMap,
    ceremony: &Ceremony,
) -> Result<User, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "link_refused",
            "linking must finish in the session that started it; sign in and start again",
        )
    };
    let (Some(session_id), Some(user_id)) = (&ceremony.session_id, &ceremony.user_id) else {
        return Err(refused());
    };
    let current = crate::extract::cookie_value(headers, state.cookie_name())
        .and_then(|c| state.keys.sessions.open(&c).ok())
        .and_then(|s| ward_core::SessionId::parse(&s.session_id));
    if current.as_ref() != Some(session_id) {
        return Err(refused());
    }
    let found = state
        .store()
        .session_with_user(session_id)
        .await?
        .ok_or_else(refused)?;
    let active = state.settings.session.state(&found.session, state.now())
        == ward_core::session::SessionState::Active;
    if !active || found.user.disabled || &found.user.id != user_id {
        return Err(refused());
    }
    Ok(found.user)
}

/// Binds (provider, subject) to the signed-in owner's account, audited; every
/// Admin sees it on the Security page.
async fn link(
    state: &AppState,
    meta: &RequestMeta,
    provider: &StoredSsoProvider,
    owner: User,
    subject: &str,
    email: &Email,
) -> Result<Finished, ApiError> {
    let p = &provider.provider;
    if owner.tenant_id != p.tenant_id {
        return Err(ApiError::not_found());
    }
    let identity = ward_store::ExternalIdentity {
        provider_id: p.id.clone(),
        subject: subject.to_owned(),
        tenant_id: p.tenant_id.clone(),
        user_id: owner.id.clone(),
        linked_by: "owner",
        created_at: state.now(),
    };
    let actor = Actor::user(&owner);
    let e = event(
        state,
        meta,
        Some(&p.tenant_id),
        actor,
        actions::SSO_IDENTITY_LINKED,
    )?
    .target("user", owner.id.to_string())
    .details(json!({ "provider": p.name, "provider_id": p.id.to_string(),
            "subject": subject, "idp_email": email.as_str(), "linked_by": "owner" }));
    match state.store().link_identity(&identity, &e).await {
        Ok(()) => Ok(Finished::Linked {
            provider: p.name.clone(),
        }),
        Err(ward_store::StoreError::Conflict(ward_store::Conflict::IdentityLinked)) => {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "identity_linked",
                "this identity-provider account is already linked to a Ward account, or yours is already linked to this provider",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn take_ceremony(state: &AppState, headers: &HeaderMap) -> Result<Ceremony, ApiError> {
    let gone = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "sso_failed",
            "this sign-in has expired or was already used; start again",
        )
    };
    let Some(id) =
        crate::extract::cookie_value(headers, crate::passkeys::ceremony_cookie_name(state))
            .and_then(|c| ward_core::CeremonyId::parse(&c))
    else {
        return Err(gone());
    };
    state
        .store()
        .take_ceremony(&id, CeremonyKind::OidcSignIn, state.now())
        .await?
        .ok_or_else(gone)
}

/// A verified JWT's payload as JSON (call only after the signature check).
fn verified_payload(jwt: &str) -> serde_json::Value {
    jwt.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The user's groups: a list of strings, or one string, under `claim`.
fn groups(payload: &serde_json::Value, claim: &str) -> Vec<String> {
    match payload.get(claim) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .take(1000)
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Just-in-time provisioning: a new user with no password, role from groups,
/// bound to (provider, subject) in the same transaction.
#[allow(clippy::too_many_arguments)]
async fn provision(
    state: &AppState,
    meta: &RequestMeta,
    p: &SsoProvider,
    email: &Email,
    name: &str,
    role: ward_core::Role,
    groups: &[String],
    subject: &str,
) -> Result<User, ApiError> {
    let now = state.now();
    let user = User {
        id: UserId::from_random(state.random_id_bytes()?),
        tenant_id: p.tenant_id.clone(),
        email: email.clone(),
        display_name: ward_core::user::check_display_name(name)
            .unwrap_or_else(|_| email.as_str().to_owned()),
        role,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let created = event(state, meta, Some(&p.tenant_id), Actor::system("sso"), actions::USER_CREATED)?
        .target("user", user.id.to_string())
        .details(json!({
            "email": email.as_str(),
            "role": role.as_str(),
            "by": "sso",
            "provider": p.name,
            "groups_matched": p.role_mappings.iter().filter(|m| groups.contains(&m.group)).map(|m| m.group.clone()).collect::<Vec<_>>(),
        }));
    let linked = event(
        state,
        meta,
        Some(&p.tenant_id),
        Actor::system("sso"),
        actions::SSO_IDENTITY_LINKED,
    )?
    .target("user", user.id.to_string())
    .details(json!({ "provider": p.name, "provider_id": p.id.to_string(),
            "subject": subject, "linked_by": "provisioning" }));
    let identity = ward_store::ExternalIdentity {
        provider_id: p.id.clone(),
        subject: subject.to_owned(),
        tenant_id: p.tenant_id.clone(),
        user_id: user.id.clone(),
        linked_by: "provisioning",
        created_at: now,
    };
    state
        .store()
        .provision_sso_user(&user, &identity, &created, &linked)
        .await?;
    Ok(user)
}

/// Records a refused SSO sign-in and answers with its message.
async fn refuse(
    state: &AppState,
    meta: &RequestMeta,
    p: &SsoProvider,
    email: Option<&str>,
    f: SsoFailure,
) -> ApiError {
    let audited = async {
        let e = event(
            state,
            meta,
            Some(&p.tenant_id),
            Actor::anonymous(),
            actions::AUTH_SSO_FAILED,
        )?
        .failed()
        .target("sso_provider", p.id.to_string())
        .details(json!({ "provider": p.name, "reason": f.reason, "email": email }));
        state.store().record_audit(&e).await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(e) = audited {
        return e;
    }
    crate::metrics::record_login("sso_failure");
    let status = if f.reason == "provider_unreachable" {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(
        status,
        "sso_failed",
        format!("Single sign-on failed: {}", f.message),
    )
}
