//! Mapping rows to domain types, in one place per type.

use sqlx::Row;
use sqlx::any::AnyRow;
use ward_core::mfa::MfaPolicy;
use ward_core::session::Session;
use ward_core::tenant::Tenant;
use ward_core::token::ApiToken;
use ward_core::user::User;
use ward_core::{Email, Role, SessionId, SsoProviderId, TenantId, Timestamp, TokenId, UserId};

use crate::StoreError;

pub(crate) const USER_COLUMNS: &str =
    "u.id, u.tenant_id, u.email, u.display_name, u.role, u.disabled, u.created_at, u.updated_at";
/// User columns aliased with a `u_` prefix, for joins with another table's `id`.
pub(crate) const USER_COLUMNS_PREFIXED: &str = "u.id AS u_id, u.tenant_id AS u_tenant_id, u.email AS u_email, \
     u.display_name AS u_display_name, u.role AS u_role, u.disabled AS u_disabled, \
     u.created_at AS u_created_at, u.updated_at AS u_updated_at";
pub(crate) const SESSION_COLUMNS: &str = "s.id, s.tenant_id, s.user_id, s.created_at, s.last_seen_at, \
     s.expires_at, s.revoked_at, s.ip, s.user_agent, s.auth_method, s.multi_factor, s.authenticated_at, s.reauth_multi_factor, s.sso_provider_id";
pub(crate) const TOKEN_COLUMNS: &str = "t.id, t.tenant_id, t.user_id, t.name, t.scope, t.created_at, t.expires_at, t.last_used_at, t.revoked_at, t.sensitive, t.sso_provider_id, t.metrics";

fn role(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).map_err(|_| StoreError::Corrupt(format!("role {text:?}")))
}

pub(crate) fn mfa_policy(r: &AnyRow) -> Result<MfaPolicy, StoreError> {
    let text: String = r.try_get("mfa_policy")?;
    MfaPolicy::parse(&text).map_err(|_| StoreError::Corrupt(format!("mfa policy {text:?}")))
}

fn ts(r: &AnyRow, col: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(r.try_get(col)?))
}

fn opt_ts(r: &AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(r.try_get::<Option<i64>, _>(col)?
        .map(Timestamp::from_millis))
}

pub(crate) fn tenant(r: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::from_stored(r.try_get("id")?),
        name: r.try_get("name")?,
        slug: r.try_get("slug")?,
        created_at: ts(r, "created_at")?,
    })
}

pub(crate) fn user(r: &AnyRow) -> Result<User, StoreError> {
    user_with_prefix(r, "")
}

/// A user read from columns named `{prefix}id`, `{prefix}email`, ...
pub(crate) fn user_with_prefix(r: &AnyRow, prefix: &str) -> Result<User, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let role_text: String = r.try_get(col("role").as_str())?;
    Ok(User {
        id: UserId::from_stored(r.try_get(col("id").as_str())?),
        tenant_id: TenantId::from_stored(r.try_get(col("tenant_id").as_str())?),
        email: Email::from_stored(r.try_get(col("email").as_str())?),
        display_name: r.try_get(col("display_name").as_str())?,
        role: role(&role_text)?,
        disabled: r.try_get::<i64, _>(col("disabled").as_str())? != 0,
        created_at: ts(r, &col("created_at"))?,
        updated_at: ts(r, &col("updated_at"))?,
    })
}

pub(crate) fn session(r: &AnyRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_stored(r.try_get("id")?),
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        user_id: UserId::from_stored(r.try_get("user_id")?),
        created_at: ts(r, "created_at")?,
        last_seen_at: ts(r, "last_seen_at")?,
        expires_at: ts(r, "expires_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        auth_method: r.try_get("auth_method")?,
        multi_factor: r.try_get::<i64, _>("multi_factor")? != 0,
        authenticated_at: Timestamp::from_millis(r.try_get("authenticated_at")?),
        reauth_multi_factor: r.try_get::<i64, _>("reauth_multi_factor")? != 0,
        sso_provider_id: provider_id(r)?,
    })
}

pub(crate) fn token(r: &AnyRow) -> Result<ApiToken, StoreError> {
    let scope: String = r.try_get("scope")?;
    Ok(ApiToken {
        id: TokenId::from_stored(r.try_get("id")?),
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        user_id: UserId::from_stored(r.try_get("user_id")?),
        name: r.try_get("name")?,
        scope: role(&scope)?,
        created_at: ts(r, "created_at")?,
        expires_at: ts(r, "expires_at")?,
        last_used_at: opt_ts(r, "last_used_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
        sensitive: r.try_get::<i64, _>("sensitive")? != 0,
        sso_provider_id: provider_id(r)?,
        metrics: r.try_get::<i64, _>("metrics")? != 0,
    })
}

fn provider_id(r: &AnyRow) -> Result<Option<SsoProviderId>, StoreError> {
    Ok(r.try_get::<Option<String>, _>("sso_provider_id")?
        .map(SsoProviderId::from_stored))
}
