//! Storage tests, each run on SQLite and on PostgreSQL against a fresh database.

use ward_core::audit::actions;
use ward_core::tenant::Tenant;
use ward_core::user::User;
use ward_core::{
    Actor, AuditEvent, Email, EventId, RequestContext, Role, TenantId, Timestamp, UserId,
};
use ward_store::testing::TestDatabase;
use ward_store::{AuditFilter, Backend, Conflict, ConnectSettings, MIGRATIONS, Store, StoreError};

#[path = "store/postgres_tls.rs"]
mod postgres_tls;
#[path = "store/schema_lists.rs"]
mod schema_lists;

ward_store::on_both_backends!(
    migrations_apply_once_and_record_versions,
    audit_events_are_append_only,
    email_is_unique_across_tenants,
    tenant_scoping_hides_other_tenants_users,
    audit_filter_and_pagination,
    concurrent_appends_are_all_durable_and_tree_tables_append_only,
    one_bad_event_in_a_group_commit_fails_alone,
    admins_demoting_each_other_at_once_keep_one_admin,
);

async fn fresh(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.url, ConnectSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

fn rand16(seed: u8, n: u8) -> [u8; 16] {
    let mut b = [seed; 16];
    b[0] = n;
    b[15] = n.wrapping_mul(31);
    b
}

fn event(n: u8, tenant: Option<&TenantId>, action: &'static str) -> AuditEvent {
    AuditEvent::new(
        EventId::from_random(rand16(0xE0, n)),
        Timestamp::from_millis(1_000 * i64::from(n)),
        tenant.cloned(),
        Actor::system("test"),
        RequestContext::cli(format!("req-{n}")),
        action,
    )
}

async fn tenant(store: &Store, n: u8) -> Tenant {
    let t = Tenant {
        id: TenantId::from_random(rand16(0x70, n)),
        name: format!("Tenant {n}"),
        slug: format!("tenant-{n}"),
        created_at: Timestamp::from_millis(1),
    };
    store
        .create_tenant(&t, &event(100 + n, Some(&t.id), actions::TENANT_CREATED))
        .await
        .expect("tenant");
    t
}

fn user(tenant: &Tenant, n: u8, email: &str) -> User {
    User {
        id: UserId::from_random(rand16(0x55, n)),
        tenant_id: tenant.id.clone(),
        email: Email::parse(email).expect("email"),
        display_name: format!("User {n}"),
        role: Role::User,
        disabled: false,
        created_at: Timestamp::from_millis(2),
        updated_at: Timestamp::from_millis(2),
    }
}

async fn migrations_apply_once_and_record_versions(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.url, ConnectSettings::default())
        .await
        .expect("connect");
    assert_eq!(store.schema_version().await.expect("version"), None);
    assert!(store.installation().await.expect("installation").is_none());
    let applied = store.migrate().await.expect("migrate");
    assert_eq!(
        applied,
        MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    assert!(
        store.migrate().await.expect("again").is_empty(),
        "second run applies nothing"
    );
    assert_eq!(
        store.schema_version().await.expect("version"),
        MIGRATIONS.last().map(|m| m.version)
    );
}

async fn audit_events_are_append_only(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    store
        .record_audit(&event(1, None, actions::TENANT_CREATED))
        .await
        .expect("insert");
    // Tampering goes around the store, straight to SQL, as an attacker with DB access would.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&_db.url).await.expect("raw pool");
    let upd = sqlx::query("UPDATE audit_events SET action = 'x'")
        .execute(&pool)
        .await;
    assert!(upd.is_err(), "UPDATE must be refused");
    let del = sqlx::query("DELETE FROM audit_events").execute(&pool).await;
    assert!(del.is_err(), "DELETE must be refused");
    if backend == Backend::Postgres {
        let tr = sqlx::query("TRUNCATE audit_events").execute(&pool).await;
        assert!(tr.is_err(), "TRUNCATE must be refused");
    }
    let all = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].action, actions::TENANT_CREATED);
}

async fn email_is_unique_across_tenants(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tenant(&store, 1).await;
    let b = tenant(&store, 2).await;
    store
        .create_user(
            &user(&a, 1, "x@example.com"),
            None,
            &event(1, Some(&a.id), actions::USER_CREATED),
        )
        .await
        .expect("first");
    let dup = store
        .create_user(
            &user(&b, 2, "x@example.com"),
            None,
            &event(2, Some(&b.id), actions::USER_CREATED),
        )
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(Conflict::EmailTaken))),
        "{dup:?}"
    );
    // Nothing half-written: the refused user's audit event is not there either.
    let events = store
        .list_audit(&AuditFilter {
            tenant_id: Some(b.id.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(events.iter().all(|e| e.action != actions::USER_CREATED));
    let slug = store
        .create_tenant(
            &Tenant {
                id: TenantId::from_random([9; 16]),
                name: "dup".into(),
                slug: "tenant-1".into(),
                created_at: Timestamp::from_millis(1),
            },
            &event(3, None, actions::TENANT_CREATED),
        )
        .await;
    assert!(
        matches!(slug, Err(StoreError::Conflict(Conflict::SlugTaken))),
        "{slug:?}"
    );
}

async fn tenant_scoping_hides_other_tenants_users(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tenant(&store, 1).await;
    let b = tenant(&store, 2).await;
    let ua = user(&a, 1, "a@example.com");
    store
        .create_user(
            &ua,
            Some("$argon2id$stub"),
            &event(1, Some(&a.id), actions::USER_CREATED),
        )
        .await
        .expect("user");
    assert!(
        store
            .find_user(&a.id, &ua.id)
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        store
            .find_user(&b.id, &ua.id)
            .await
            .expect("find")
            .is_none()
    );
    assert!(store.list_users(&b.id).await.expect("list").is_empty());
    let creds = store
        .find_user_by_email(&Email::parse("A@Example.com").expect("email"))
        .await
        .expect("by email");
    assert_eq!(creds.map(|c| c.user.id), Some(ua.id));
}

async fn audit_filter_and_pagination(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tenant(&store, 1).await;
    for n in 1..=5 {
        store
            .record_audit(&event(n, Some(&a.id), actions::AUTH_LOGIN_FAILED))
            .await
            .expect("insert");
    }
    let f = AuditFilter {
        tenant_id: Some(a.id.clone()),
        action: Some(actions::AUTH_LOGIN_FAILED.into()),
        limit: 2,
        ..Default::default()
    };
    let page1 = store.list_audit(&f).await.expect("page 1");
    assert_eq!(page1.len(), 2);
    assert!(page1[0].seq > page1[1].seq, "newest first");
    let page2 = store
        .list_audit(&AuditFilter {
            before_seq: Some(page1[1].seq),
            ..f.clone()
        })
        .await
        .expect("page 2");
    assert_eq!(page2.len(), 2);
    assert!(page2[0].seq < page1[1].seq);
    let since = store
        .list_audit(&AuditFilter {
            since: Some(Timestamp::from_millis(4_000)),
            ..f.clone()
        })
        .await
        .expect("since");
    assert_eq!(since.len(), 2);
    let other = store
        .list_audit(&AuditFilter {
            tenant_id: Some(TenantId::from_random([1; 16])),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("other");
    assert!(other.is_empty());
}

/// Concurrent standalone appends share commits (group commit) yet every caller
/// returns only once its event is stored; the tree tables refuse rewrites.
async fn concurrent_appends_are_all_durable_and_tree_tables_append_only(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let mut tasks = Vec::new();
    for w in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u8 {
                let mut e = event(w, None, actions::AUTH_LOGIN_FAILED);
                e.id = EventId::from_random([w, i, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
                store.record_audit(&e).await.expect("append");
                // Visible as soon as the call returns.
                let seen = store
                    .list_audit(&AuditFilter {
                        limit: 1000,
                        ..Default::default()
                    })
                    .await
                    .expect("list");
                assert!(seen.iter().any(|s| s.id == e.id));
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let all = store
        .list_audit(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 16 * 25);
    let leaves = ward_audit_sequencer_leaves(&store).await;
    assert_eq!(leaves.len(), 16 * 25);
    store
        .insert_audit_checkpoint(&ward_store::StoredCheckpoint {
            tree_size: 400,
            root: [1; 32],
            issued_at: Timestamp::from_millis(1),
            note: "n".into(),
        })
        .await
        .expect("checkpoint");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("raw pool");
    for sql in [
        "UPDATE audit_leaves SET event_seq = event_seq",
        "DELETE FROM audit_leaves",
        "UPDATE audit_tree SET hash = hash",
        "DELETE FROM audit_tree",
        "DELETE FROM audit_checkpoints",
    ] {
        assert!(
            sqlx::query(sql).execute(&pool).await.is_err(),
            "{sql} must be refused"
        );
    }
}

/// Integrates everything through the store's sequencer calls (as the server does).
async fn ward_audit_sequencer_leaves(store: &Store) -> Vec<i64> {
    let pending = store
        .pending_audit_events(-1, 10_000)
        .await
        .expect("pending");
    let mut f = ward_audit::Frontier::new();
    let leaves: Vec<ward_store::NewLeaf> = pending
        .iter()
        .map(|e| ward_store::NewLeaf {
            event_seq: e.seq,
            nodes: f.append(ward_audit::leaf_hash(e.id.as_str().as_bytes())),
        })
        .collect();
    store
        .append_audit_leaves(0, &leaves, Timestamp::from_millis(1))
        .await
        .expect("append leaves");
    // A second writer with a stale size is refused and writes nothing.
    assert!(
        store
            .append_audit_leaves(0, &leaves, Timestamp::from_millis(1))
            .await
            .is_err()
    );
    assert_eq!(
        store.audit_tree_size().await.expect("size"),
        leaves.len() as u64
    );
    pending.iter().map(|e| e.seq).collect()
}

/// Two Admins demoting each other at the same moment: one change wins, the other
/// is refused as the last Admin's, and the company always keeps an Admin
/// (PostgreSQL under READ COMMITTED needed the company row locked for this).
async fn admins_demoting_each_other_at_once_keep_one_admin(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    for round in 0..10u8 {
        let t = tenant(&store, 10 + round).await;
        let mut admins = Vec::new();
        for k in 0..2u8 {
            let mut u = user(
                &t,
                100 + round * 2 + k,
                &format!("admin{k}-{round}@example.com"),
            );
            u.role = Role::Admin;
            store
                .create_user(
                    &u,
                    None,
                    &event(20 + round * 4 + k, Some(&t.id), actions::USER_CREATED),
                )
                .await
                .expect("admin");
            admins.push(u);
        }
        let demote = |who: &ward_core::user::User, n: u8| {
            let (store, t, id) = (store.clone(), t.id.clone(), who.id.clone());
            tokio::spawn(async move {
                store
                    .update_user(
                        &t,
                        &id,
                        &ward_core::user::UserChange {
                            display_name: None,
                            role: Some(Role::Viewer),
                            disabled: None,
                        },
                        Timestamp::from_millis(5),
                        &event(n, Some(&t), actions::USER_UPDATED),
                    )
                    .await
                    .expect("update")
            })
        };
        let (a, b) = (
            demote(&admins[0], 22 + round * 4),
            demote(&admins[1], 23 + round * 4),
        );
        let outcomes = [a.await.expect("a"), b.await.expect("b")];
        let remaining = store
            .list_users(&t.id)
            .await
            .expect("list")
            .into_iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count();
        assert_eq!(remaining, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, ward_store::UpdateOutcome::LastAdmin)),
            "{outcomes:?}"
        );
    }
}

/// Events sharing a commit do not share a failure: when one of a burst cannot
/// be stored (its id is taken), its caller gets the error and every other
/// caller's event is stored. On a SQLite file this runs through the writer
/// thread, elsewhere through the pool.
async fn one_bad_event_in_a_group_commit_fails_alone(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let taken = event(200, None, actions::AUTH_LOGIN_FAILED);
    store.record_audit(&taken).await.expect("first");
    for round in 0..5u8 {
        let mut tasks = Vec::new();
        for w in 0..12u8 {
            let store = store.clone();
            let mut e = event(w, None, actions::AUTH_LOGIN_FAILED);
            e.id = if w == 5 {
                taken.id.clone()
            } else {
                EventId::from_random([round, w, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
            };
            tasks.push(tokio::spawn(
                async move { (w, store.record_audit(&e).await) },
            ));
        }
        for t in tasks {
            let (w, result) = t.await.expect("writer");
            assert_eq!(result.is_err(), w == 5, "writer {w}: {result:?}");
        }
    }
    let all = store
        .list_audit(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 1 + 5 * 11);
}
