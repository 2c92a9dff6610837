//! Passkeys, the company's MFA policy, re-authentication, and the single-use
//! server half of sign-in ceremonies.

use sqlx::Row;
use sqlx::any::AnyRow;
use ward_core::mfa::MfaPolicy;
use ward_core::passkey::{Ceremony, CeremonyKind, PasskeyRecord};
use ward_core::session::Session;
use ward_core::{AuditEvent, CeremonyId, PasskeyId, SessionId, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::{Store, StoreError, rows};

const PASSKEY_COLUMNS: &str = "id, tenant_id, user_id, name, credential_id, credential, sign_count, \
     created_at, last_used_at";

fn passkey(r: &AnyRow) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        id: PasskeyId::from_stored(r.try_get("id")?),
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        user_id: UserId::from_stored(r.try_get("user_id")?),
        name: r.try_get("name")?,
        credential_id: r.try_get("credential_id")?,
        credential: r.try_get("credential")?,
        sign_count: r.try_get("sign_count")?,
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
        last_used_at: r
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(Timestamp::from_millis),
    })
}

/// Why removing a passkey was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    NotFound,
    /// It is the user's last passkey and the company requires MFA.
    LastFactor,
}

/// The outcome of recording a passkey's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyUse {
    Recorded,
    /// Another sign-in with this passkey got there first with the same counter:
    /// the assertion is a replay or the authenticator is cloned.
    CounterRaced,
}

impl Store {
    pub async fn mfa_policy(&self, tenant: &TenantId) -> Result<MfaPolicy, StoreError> {
        let row = sqlx::query("SELECT mfa_policy FROM tenants WHERE id = $1")
            .bind(tenant.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        rows::mfa_policy(&row)
    }

    pub async fn set_mfa_policy(
        &self,
        tenant: &TenantId,
        policy: MfaPolicy,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        self.lock_company(&mut tx, tenant).await?;
        sqlx::query("UPDATE tenants SET mfa_policy = $1 WHERE id = $2")
            .bind(policy.as_str())
            .bind(tenant.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_passkeys(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<PasskeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .bind(user.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(passkey).collect()
    }

    pub async fn passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(credential_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(passkey).transpose()
    }

    /// Registers a passkey. A credential id registered before (to anyone) is a
    /// conflict, as WebAuthn requires.
    pub async fn add_passkey(
        &self,
        p: &PasskeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO passkeys (id, tenant_id, user_id, name, credential_id, credential, \
             sign_count, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(p.id.as_str().to_owned())
        .bind(p.tenant_id.as_str().to_owned())
        .bind(p.user_id.as_str().to_owned())
        .bind(p.name.clone())
        .bind(p.credential_id.clone())
        .bind(p.credential.clone())
        .bind(p.sign_count)
        .bind(p.created_at.millis())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes one of a user's passkeys, unless it is their last one and the
    /// company requires MFA (checked in the same transaction as the delete).
    pub async fn remove_passkey(
        &self,
        tenant: &TenantId,
        user: &UserId,
        id: &PasskeyId,
        audit: &AuditEvent,
    ) -> Result<PasskeyRemoval, StoreError> {
        let mut tx = self.begin().await?;
        self.lock_company(&mut tx, tenant).await?;
        let policy_row = sqlx::query("SELECT mfa_policy FROM tenants WHERE id = $1")
            .bind(tenant.as_str().to_owned())
            .fetch_one(&mut *tx)
            .await?;
        let policy = rows::mfa_policy(&policy_row)?;
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.as_str().to_owned())
                .bind(user.as_str().to_owned())
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let exists = sqlx::query(
            "SELECT id FROM passkeys WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
        )
        .bind(id.as_str().to_owned())
        .bind(tenant.as_str().to_owned())
        .bind(user.as_str().to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !exists {
            return Ok(PasskeyRemoval::NotFound);
        }
        if count <= 1 && policy != MfaPolicy::None {
            return Ok(PasskeyRemoval::LastFactor);
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1 AND tenant_id = $2 AND user_id = $3")
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .bind(user.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(PasskeyRemoval::Removed)
    }

    /// Records a verified passkey assertion: the new counter (by compare-and-swap
    /// on the old one, so two sign-ins with one assertion cannot both pass), the
    /// session it opens or re-authenticates, and the audit events, in one
    /// transaction.
    pub async fn record_passkey_use(
        &self,
        used: &PasskeyUseRecord<'_>,
        audits: &[AuditEvent],
    ) -> Result<PasskeyUse, StoreError> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE passkeys SET sign_count = $1, credential = $2, last_used_at = $3 \
             WHERE id = $4 AND sign_count = $5",
        )
        .bind(used.new_sign_count)
        .bind(used.credential.to_owned())
        .bind(used.at.millis())
        .bind(used.passkey.as_str().to_owned())
        .bind(used.old_sign_count)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Ok(PasskeyUse::CounterRaced);
        }
        match &used.effect {
            PasskeyEffect::NewSession(s) => {
                crate::sessions::insert_session(&mut tx, s).await?;
            }
            PasskeyEffect::Reauthenticate(session) => {
                reauthenticate(&mut tx, session, used.at, true).await?;
            }
        }
        for a in audits {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await?;
        Ok(PasskeyUse::Recorded)
    }

    /// Marks a session as re-authenticated now (by password).
    pub async fn reauthenticate_session(
        &self,
        session: &SessionId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        reauthenticate(&mut tx, session, at, false).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the server half of a ceremony, and clears out expired ones.
    pub async fn create_ceremony(&self, c: &Ceremony) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM auth_ceremonies WHERE expires_at < $1")
            .bind(c.created_at.millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO auth_ceremonies (id, kind, session_id, user_id, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id.as_str().to_owned())
        .bind(c.kind.as_str())
        .bind(c.session_id.as_ref().map(|s| s.as_str().to_owned()))
        .bind(c.user_id.as_ref().map(|s| s.as_str().to_owned()))
        .bind(c.state.clone())
        .bind(c.created_at.millis())
        .bind(c.expires_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a ceremony started by `client_ip` unless that address already has
    /// `max_open` unexpired ceremonies of the same kind (false then, nothing
    /// stored); expired ones are cleared out first. The count and the insert share
    /// a transaction, so on SQLite the bound is exact; on PostgreSQL concurrent
    /// starts from one address may pass it by a few.
    pub async fn create_ceremony_bounded(
        &self,
        c: &Ceremony,
        client_ip: &str,
        max_open: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM auth_ceremonies WHERE expires_at < $1")
            .bind(c.created_at.millis())
            .execute(&mut *tx)
            .await?;
        let open: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM auth_ceremonies WHERE client_ip = $1 AND kind = $2",
        )
        .bind(client_ip.to_owned())
        .bind(c.kind.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if open >= max_open {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO auth_ceremonies (id, kind, session_id, user_id, state, created_at, expires_at, client_ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(c.id.as_str().to_owned())
        .bind(c.kind.as_str())
        .bind(c.session_id.as_ref().map(|s| s.as_str().to_owned()))
        .bind(c.user_id.as_ref().map(|s| s.as_str().to_owned()))
        .bind(c.state.clone())
        .bind(c.created_at.millis())
        .bind(c.expires_at.millis())
        .bind(client_ip.to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Unexpired ceremonies of `kind` started from `client_ip` (for tests and checks).
    pub async fn open_ceremonies_from(
        &self,
        client_ip: &str,
        kind: CeremonyKind,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM auth_ceremonies WHERE client_ip = $1 AND kind = $2 AND expires_at >= $3",
        )
        .bind(client_ip.to_owned())
        .bind(kind.as_str())
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// Takes a ceremony: it is deleted whether or not it is then used, so a
    /// challenge answers at most once. Expired ones are `None`.
    pub async fn take_ceremony(
        &self,
        id: &CeremonyId,
        kind: CeremonyKind,
        now: Timestamp,
    ) -> Result<Option<Ceremony>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM auth_ceremonies WHERE id = $1 AND kind = $2 \
             RETURNING session_id, user_id, state, created_at, expires_at",
        )
        .bind(id.as_str().to_owned())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let c = Ceremony {
            id: id.clone(),
            kind,
            session_id: r
                .try_get::<Option<String>, _>("session_id")?
                .map(SessionId::from_stored),
            user_id: r
                .try_get::<Option<String>, _>("user_id")?
                .map(UserId::from_stored),
            state: r.try_get("state")?,
            created_at: Timestamp::from_millis(r.try_get("created_at")?),
            expires_at: Timestamp::from_millis(r.try_get("expires_at")?),
        };
        Ok((now < c.expires_at).then_some(c))
    }
}

/// A verified passkey assertion to record.
#[derive(Debug)]
pub struct PasskeyUseRecord<'a> {
    pub passkey: &'a PasskeyId,
    pub old_sign_count: i64,
    pub new_sign_count: i64,
    /// The credential with its counter updated.
    pub credential: &'a str,
    pub at: Timestamp,
    pub effect: PasskeyEffect,
}

/// What a passkey assertion was for.
#[derive(Debug)]
pub enum PasskeyEffect {
    /// A sign-in (passwordless, or the second factor): this session starts.
    NewSession(Box<Session>),
    /// A re-authentication of this session (also makes it multi-factor).
    Reauthenticate(SessionId),
}

async fn reauthenticate(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    session: &SessionId,
    at: Timestamp,
    multi_factor: bool,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE sessions SET authenticated_at = $1, reauth_multi_factor = $2, \
         multi_factor = CASE WHEN $2 = 1 THEN 1 ELSE multi_factor END, \
         auth_method = CASE WHEN $2 = 1 AND auth_method = 'password' THEN 'password+passkey' \
         ELSE auth_method END \
         WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(at.millis())
    .bind(i64::from(multi_factor))
    .bind(session.as_str().to_owned())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if done == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}
