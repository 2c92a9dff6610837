//! The API's routes, each registered with its OpenAPI description.

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod connections;
pub(crate) mod domains;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod passkeys;
pub(crate) mod rule_bundle;
pub(crate) mod rule_reviews;
pub(crate) mod rules;
pub(crate) mod sessions;
pub(crate) mod sso;
pub(crate) mod tokens;
pub(crate) mod users;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use ward_core::{Actor, AuditEvent, EventId, TenantId};

use crate::extract::RequestMeta;
use crate::{ApiError, AppState};

pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(passkeys::start_passkey_sign_in))
        .routes(routes!(passkeys::finish_passkey_sign_in))
        .routes(routes!(passkeys::second_factor))
        .routes(routes!(passkeys::reauth_with_password))
        .routes(routes!(passkeys::start_passkey_reauth))
        .routes(routes!(passkeys::finish_passkey_reauth))
        .routes(routes!(passkeys::list_passkeys, passkeys::register_passkey))
        .routes(routes!(passkeys::start_registration))
        .routes(routes!(passkeys::remove_passkey))
        .routes(routes!(passkeys::get_mfa_policy, passkeys::set_mfa_policy))
        .routes(routes!(sso::list_providers, sso::create_provider))
        .routes(routes!(sso::update_provider, sso::delete_provider))
        .routes(routes!(sso::list_links))
        .routes(routes!(domains::list_domains, domains::claim_domain))
        .routes(routes!(domains::remove_domain))
        .routes(routes!(domains::verify_domain))
        .routes(routes!(sso::start_link, sso::unlink))
        .routes(routes!(rules::list_rules, rules::create_rule))
        .routes(routes!(rule_bundle::import_rules))
        .routes(routes!(rule_bundle::export_rules))
        .routes(routes!(
            rules::get_rule,
            rules::save_rule,
            rules::delete_rule
        ))
        .routes(routes!(rules::list_versions))
        .routes(routes!(rules::diff_versions))
        .routes(routes!(rules::get_tests, rules::set_tests))
        .routes(routes!(rules::run_tests))
        .routes(routes!(rules::list_test_runs))
        .routes(routes!(rule_reviews::submit_rule))
        .routes(routes!(rule_reviews::approve_rule))
        .routes(routes!(rule_reviews::reject_rule))
        .routes(routes!(rule_reviews::get_review))
        .routes(routes!(rule_reviews::review_queue))
        .routes(routes!(
            rule_reviews::get_review_policy,
            rule_reviews::set_review_policy
        ))
        .routes(routes!(account::me))
        .routes(routes!(account::change_password))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(users::revoke_user_sessions))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::revoke_session))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(audit::list_events))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(audit::inclusion))
        .routes(routes!(audit::consistency))
        .routes(routes!(audit::export))
        .routes(routes!(
            connections::list_connections,
            connections::create_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::update_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::test_connection))
        .routes(routes!(keys::status))
        .routes(routes!(keys::rotate))
        .routes(routes!(keys::set_policy))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// A new audit event for this request.
pub(crate) fn event(
    state: &AppState,
    meta: &RequestMeta,
    tenant: Option<&TenantId>,
    actor: Actor,
    action: &'static str,
) -> Result<AuditEvent, ApiError> {
    Ok(AuditEvent::new(
        EventId::from_random(state.random_id_bytes()?),
        state.now(),
        tenant.cloned(),
        actor,
        meta.context(),
        action,
    ))
}
