//! Storage of the tamper-evident audit log: the sequencer's reads and its one
//! transaction per batch of leaves, stored subtrees for proofs, checkpoints, and
//! the leaf-ordered reads that verification and exports stream through.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AssertSqlSafe, Row};
use ward_audit::{Hash, NodeId};
use ward_core::Timestamp;
use ward_core::audit::StoredAuditEvent;

use crate::audit::audit_from_row;
use crate::{Backend, Conflict, Store, StoreError};

const EVENT_COLUMNS: &str = "e.seq, e.id, e.occurred_at, e.tenant_id, e.actor_kind, e.actor_id, \
     e.actor_label, e.ip, e.user_agent, e.request_id, e.action, e.target_kind, e.target_id, \
     e.outcome, e.details";

/// Rows per multi-row INSERT (3 parameters each). Kept small: sqlx's SQLite
/// driver looks up every parameter's name per bind, quadratic in a statement's
/// parameters.
const INSERT_CHUNK: usize = 64;

/// One leaf to integrate: the event's `seq` and every subtree it completes.
#[derive(Debug, Clone)]
pub struct NewLeaf {
    pub event_seq: i64,
    pub nodes: Vec<(NodeId, Hash)>,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: Hash,
    pub issued_at: Timestamp,
    pub note: String,
}

/// One leaf as verification reads it: the stored leaf hash and the event it maps
/// to, either of which an attacker may have removed.
#[derive(Debug, Clone)]
pub struct LeafRecord {
    pub index: u64,
    pub event_seq: i64,
    pub integrated_at: Timestamp,
    pub leaf_hash: Option<Hash>,
    pub event: Option<StoredAuditEvent>,
}

fn to_hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("audit tree hash is not 32 bytes".into()))
}

impl Store {
    /// Leaves integrated so far.
    pub async fn audit_tree_size(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(leaf_index) FROM audit_leaves")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.map_or(0, |n| n as u64 + 1))
    }

    /// The highest event `seq` that is a leaf (0 for an empty tree).
    pub async fn audit_newest_integrated_seq(&self) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(event_seq) FROM audit_leaves")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// The stored subtree hashes among `ids`, in one round trip.
    pub async fn audit_nodes(
        &self,
        ids: &BTreeSet<NodeId>,
    ) -> Result<HashMap<NodeId, Hash>, StoreError> {
        Ok(self.read_audit_nodes(ids, false).await?.1)
    }

    /// The tree size and the stored subtrees among `ids`, read by one statement
    /// (for up to 64 ids, which covers any proof below 2^32 leaves): one round
    /// trip for a proof, and a size and nodes from one snapshot.
    pub async fn audit_tree_size_and_nodes(
        &self,
        ids: &BTreeSet<NodeId>,
    ) -> Result<(u64, HashMap<NodeId, Hash>), StoreError> {
        let (size, nodes) = self.read_audit_nodes(ids, true).await?;
        Ok((size.unwrap_or(0), nodes))
    }

    async fn read_audit_nodes(
        &self,
        ids: &BTreeSet<NodeId>,
        with_size: bool,
    ) -> Result<(Option<u64>, HashMap<NodeId, Hash>), StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut size = None;
        let ids: Vec<&NodeId> = ids.iter().collect();
        let mut chunks: Vec<&[&NodeId]> = ids.chunks(INSERT_CHUNK).collect();
        if chunks.is_empty() && with_size {
            chunks.push(&[]);
        }
        for (n, chunk) in chunks.into_iter().enumerate() {
            let mut sql = String::new();
            let sized = with_size && n == 0;
            if sized {
                // Level -1 is no subtree's: the row carrying the tree size.
                sql.push_str(
                    "SELECT -1 AS level, MAX(leaf_index) AS node_index, NULL AS hash \
                     FROM audit_leaves",
                );
                if !chunk.is_empty() {
                    sql.push_str(" UNION ALL ");
                }
            }
            if !chunk.is_empty() {
                sql.push_str(
                    "SELECT level, node_index, hash FROM audit_tree WHERE (level, node_index) IN (",
                );
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(i64::from(id.level)).bind(id.index as i64);
            }
            for r in q.fetch_all(&self.pool).await? {
                let level: i64 = r.try_get("level")?;
                let index: Option<i64> = r.try_get("node_index")?;
                if level < 0 {
                    size = Some(index.map_or(0, |last| last as u64 + 1));
                    continue;
                }
                let (Ok(level), Some(index)) = (u8::try_from(level), index) else {
                    return Err(StoreError::Corrupt(
                        "audit tree node key out of range".into(),
                    ));
                };
                out.insert(
                    NodeId {
                        level,
                        index: index as u64,
                    },
                    to_hash(r.try_get("hash")?)?,
                );
            }
        }
        Ok((size, out))
    }

    /// Events not yet in the tree with `seq` above `after_seq`, oldest first. The
    /// sequencer passes a floor some way below its last integrated `seq`, so an
    /// event whose transaction committed late (PostgreSQL hands out sequence
    /// values before commit) is still found; a floor of -1 sweeps everything.
    pub async fn pending_audit_events(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events e WHERE e.seq > $1 \
             AND NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_seq = e.seq) \
             ORDER BY e.seq LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Appends leaves `[size, size + leaves.len())` and their subtrees in one
    /// transaction. If another writer changed the tree meanwhile, nothing is
    /// written and `Conflict::Other` is returned.
    pub async fn append_audit_leaves(
        &self,
        size: u64,
        leaves: &[NewLeaf],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(leaf_index) FROM audit_leaves")
            .fetch_one(&mut *tx)
            .await?;
        if current.map_or(0, |n| n as u64 + 1) != size {
            return Err(StoreError::Conflict(Conflict::Other));
        }
        let leaf_rows: Vec<(i64, i64)> = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| ((size + i as u64) as i64, l.event_seq))
            .collect();
        for chunk in leaf_rows.chunks(INSERT_CHUNK) {
            let sql = values_sql(
                "INSERT INTO audit_leaves (leaf_index, event_seq, integrated_at) VALUES ",
                chunk.len(),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (index, seq) in chunk {
                q = q.bind(*index).bind(*seq).bind(now.millis());
            }
            q.execute(&mut *tx).await?;
        }
        let nodes: Vec<&(NodeId, Hash)> = leaves.iter().flat_map(|l| l.nodes.iter()).collect();
        for chunk in nodes.chunks(INSERT_CHUNK) {
            let sql = values_sql(
                "INSERT INTO audit_tree (level, node_index, hash) VALUES ",
                chunk.len(),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, hash) in chunk {
                q = q
                    .bind(i64::from(id.level))
                    .bind(id.index as i64)
                    .bind(hash.to_vec());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_audit_checkpoint(&self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        // A second checkpoint at the same size (two signers racing) is harmless:
        // the first one stands.
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, issued_at, note) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(c.tree_size as i64)
        .bind(c.root.to_vec())
        .bind(c.issued_at.millis())
        .bind(c.note.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn latest_audit_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let r = sqlx::query(
            "SELECT tree_size, root_hash, issued_at, note FROM audit_checkpoints \
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| checkpoint_from_row(&r)).transpose()
    }

    /// Every checkpoint, smallest tree first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, root_hash, issued_at, note FROM audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// Leaves `[from, to)` with their stored hashes and events, in leaf order.
    pub async fn audit_leaf_records(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<LeafRecord>, StoreError> {
        let sql = format!(
            "SELECT l.leaf_index, l.event_seq AS leaf_seq, l.integrated_at, t.hash AS leaf_hash, {EVENT_COLUMNS} \
             FROM audit_leaves l \
             LEFT JOIN audit_tree t ON t.level = 0 AND t.node_index = l.leaf_index \
             LEFT JOIN audit_events e ON e.seq = l.event_seq \
             WHERE l.leaf_index >= $1 AND l.leaf_index < $2 ORDER BY l.leaf_index"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(from as i64)
            .bind(to as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let present: Option<String> = r.try_get("id")?;
                Ok(LeafRecord {
                    index: r.try_get::<i64, _>("leaf_index")? as u64,
                    event_seq: r.try_get("leaf_seq")?,
                    integrated_at: Timestamp::from_millis(r.try_get("integrated_at")?),
                    leaf_hash: r
                        .try_get::<Option<Vec<u8>>, _>("leaf_hash")?
                        .map(to_hash)
                        .transpose()?,
                    event: present.map(|_| audit_from_row(r)).transpose()?,
                })
            })
            .collect()
    }

    /// Level-0 hashes `[from, to)`, in order (for finding where a moved event came from).
    pub async fn audit_leaf_hashes(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        let rows = sqlx::query(
            "SELECT node_index, hash FROM audit_tree WHERE level = 0 AND node_index >= $1 \
             AND node_index < $2 ORDER BY node_index",
        )
        .bind(from as i64)
        .bind(to as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("node_index")? as u64,
                    to_hash(r.try_get("hash")?)?,
                ))
            })
            .collect()
    }

    /// The first event that is in no leaf although the sequencer integrated an
    /// event with a higher `seq` more than `grace` after it occurred: a backdated
    /// insertion, not a transaction that committed late. Returns the leaf index it
    /// would sit at and its id.
    pub async fn audit_inserted_event(
        &self,
        grace_millis: i64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let r = sqlx::query(
            "SELECT e.id, (SELECT MIN(l2.leaf_index) FROM audit_leaves l2 WHERE l2.event_seq > e.seq) AS at_index \
             FROM audit_events e \
             WHERE NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_seq = e.seq) \
             AND EXISTS (SELECT 1 FROM audit_leaves l3 WHERE l3.event_seq > e.seq \
                         AND l3.integrated_at > e.occurred_at + $1) \
             ORDER BY e.seq LIMIT 1",
        )
        .bind(grace_millis)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok((
                r.try_get::<Option<i64>, _>("at_index")?.unwrap_or(0) as u64,
                r.try_get::<String, _>("id")?,
            ))
        })
        .transpose()
    }

    /// Events written but not yet integrated.
    pub async fn audit_pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events e \
             WHERE NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_seq = e.seq)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// What is missing from the audit tables' append-only protection.
    pub async fn audit_schema_problems(&self) -> Result<Vec<String>, StoreError> {
        let expected: &[&str] = match self.backend {
            Backend::Sqlite => &[
                "audit_events_no_update",
                "audit_events_no_delete",
                "audit_leaves_no_update",
                "audit_leaves_no_delete",
                "audit_tree_no_update",
                "audit_tree_no_delete",
                "audit_checkpoints_no_update",
                "audit_checkpoints_no_delete",
            ],
            Backend::Postgres => &[
                "audit_events_no_update_delete",
                "audit_events_no_truncate",
                "audit_leaves_no_update_delete",
                "audit_leaves_no_truncate",
                "audit_tree_no_update_delete",
                "audit_tree_no_truncate",
                "audit_checkpoints_no_update_delete",
                "audit_checkpoints_no_truncate",
            ],
        };
        let present: Vec<String> =
            match self.backend {
                // A trigger counts only if it sits on its own table and aborts: one
                // re-created as a no-op under the same name does not.
                Backend::Sqlite => {
                    sqlx::query_scalar(
                        "SELECT name FROM sqlite_master WHERE type = 'trigger' \
                     AND name LIKE tbl_name || '\\_%' ESCAPE '\\' \
                     AND instr(upper(sql), 'RAISE(ABORT') > 0",
                    )
                    .fetch_all(&self.pool)
                    .await?
                }
                // Disabled (ALTER TABLE … DISABLE TRIGGER), on another table, or
                // calling a function that no longer raises: counts as missing.
                Backend::Postgres => sqlx::query_scalar(
                    "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                     JOIN pg_proc p ON p.oid = t.tgfoid \
                     WHERE c.relnamespace = current_schema()::regnamespace AND t.tgenabled <> 'D' \
                     AND t.tgname::text LIKE c.relname::text || '\\_%' \
                     AND p.prosrc LIKE '%RAISE EXCEPTION%'",
                )
                .fetch_all(&self.pool)
                .await?,
            };
        let mut problems: Vec<String> = expected
            .iter()
            .filter(|name| !present.iter().any(|p| p == *name))
            .map(|name| format!("trigger {name} is missing, disabled or altered"))
            .collect();
        // The keys that make each row's identity unique: a table re-created
        // without one can hold two rows for one index.
        for (table, key) in AUDIT_KEYS {
            let columns: Vec<String> = match self.backend {
                Backend::Sqlite => {
                    sqlx::query_scalar(
                        "SELECT name FROM pragma_table_info($1) WHERE pk > 0 ORDER BY pk",
                    )
                    .bind(*table)
                    .fetch_all(&self.pool)
                    .await?
                }
                Backend::Postgres => {
                    sqlx::query_scalar(
                        "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a \
                         ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                         WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
                         ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    )
                    .bind(*table)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
            if columns.iter().map(String::as_str).ne(key.iter().copied()) {
                problems.push(format!(
                    "table {table} has lost its primary key ({})",
                    key.join(", ")
                ));
            }
        }
        Ok(problems)
    }
}

/// The audit tables and the primary key each was created with.
const AUDIT_KEYS: &[(&str, &[&str])] = &[
    ("audit_events", &["seq"]),
    ("audit_leaves", &["leaf_index"]),
    ("audit_tree", &["level", "node_index"]),
    ("audit_checkpoints", &["tree_size"]),
];

fn values_sql(prefix: &str, rows: usize) -> String {
    let mut sql = String::from(prefix);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
    }
    sql
}

fn checkpoint_from_row(r: &sqlx::any::AnyRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: r.try_get::<i64, _>("tree_size")? as u64,
        root: to_hash(r.try_get("root_hash")?)?,
        issued_at: Timestamp::from_millis(r.try_get("issued_at")?),
        note: r.try_get("note")?,
    })
}

/// One leaf as the packed verification read returns it (a JSON array).
#[derive(serde::Deserialize)]
struct PackedLeaf(
    u64,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn hash_from_hex(text: &str) -> Result<Hash, StoreError> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    to_hash(bytes.ok_or_else(|| StoreError::Corrupt("audit tree hash is not hex".into()))?)
}

fn unpack_leaf(p: PackedLeaf) -> Result<LeafRecord, StoreError> {
    use ward_core::audit::{Actor, ActorKind};
    use ward_core::{EventId, RequestContext, TenantId};
    let PackedLeaf(
        index,
        event_seq,
        integrated_at,
        hash,
        seq,
        id,
        occurred_at,
        tenant_id,
        actor_kind,
        actor_id,
        actor_label,
        ip,
        user_agent,
        request_id,
        action,
        target_kind,
        target_id,
        outcome,
        details,
    ) = p;
    let corrupt = |what: &str| StoreError::Corrupt(format!("audit event at leaf {index}: {what}"));
    let event = match (seq, id) {
        (Some(seq), Some(id)) => {
            let kind = actor_kind.unwrap_or_default();
            Some(StoredAuditEvent {
                seq,
                leaf_index: Some(index),
                id: EventId::from_stored(id),
                occurred_at: Timestamp::from_millis(occurred_at.ok_or_else(|| corrupt("time"))?),
                tenant_id: tenant_id.map(TenantId::from_stored),
                actor: Actor {
                    kind: ActorKind::parse(&kind).ok_or_else(|| corrupt("actor kind"))?,
                    id: actor_id,
                    label: actor_label.unwrap_or_default(),
                },
                context: RequestContext {
                    ip: ip.unwrap_or_default(),
                    user_agent: user_agent.unwrap_or_default(),
                    request_id: request_id.unwrap_or_default(),
                },
                action: action.unwrap_or_default(),
                target_kind,
                target_id,
                outcome: outcome.unwrap_or_default(),
                details: serde_json::from_str(details.as_deref().unwrap_or("null"))
                    .map_err(|_| corrupt("details"))?,
            })
        }
        _ => None,
    };
    Ok(LeafRecord {
        index,
        event_seq,
        integrated_at: Timestamp::from_millis(integrated_at),
        leaf_hash: hash.as_deref().map(hash_from_hex).transpose()?,
        event,
    })
}

impl Store {
    /// What verification needs for leaves `[from, to)` — each leaf with its stored
    /// hash and event, and the stored subtrees those leaves complete — in two
    /// round trips, each returning one JSON document instead of a row per leaf
    /// (per-row transfer, not SQL, dominates reading millions of leaves).
    pub async fn audit_verify_page(
        &self,
        from: u64,
        to: u64,
    ) -> Result<(Vec<LeafRecord>, HashMap<NodeId, Hash>), StoreError> {
        let columns = "l.leaf_index, l.event_seq, l.integrated_at, {HEX}, e.seq, e.id, \
             e.occurred_at, e.tenant_id, e.actor_kind, e.actor_id, e.actor_label, e.ip, e.user_agent, \
             e.request_id, e.action, e.target_kind, e.target_id, e.outcome, e.details";
        let joins = "FROM audit_leaves l \
             LEFT JOIN audit_tree t ON t.level = 0 AND t.node_index = l.leaf_index \
             LEFT JOIN audit_events e ON e.seq = l.event_seq \
             WHERE l.leaf_index >= $1 AND l.leaf_index < $2";
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "SELECT json_group_array(json_array({})) {joins}",
                columns.replace("{HEX}", "lower(hex(t.hash))")
            ),
            Backend::Postgres => format!(
                "SELECT json_agg(json_build_array({}) ORDER BY l.leaf_index)::text {joins}",
                columns.replace("{HEX}", "encode(t.hash, 'hex')")
            ),
        };
        let packed: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(from as i64)
            .bind(to as i64)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<PackedLeaf> = serde_json::from_str(packed.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Corrupt(format!("audit page: {e}")))?;
        let mut records = rows
            .into_iter()
            .map(unpack_leaf)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| r.index);

        // Subtrees of level ≥ 1 whose last leaf lies in [from, to).
        let mut clauses = Vec::new();
        let mut binds: Vec<i64> = Vec::new();
        for level in 1..64u8 {
            if (1u64 << level) > to {
                break;
            }
            let lo = (from + 1).div_ceil(1 << level) - 1;
            let hi = to >> level;
            if lo < hi {
                let n = binds.len();
                clauses.push(format!(
                    "(level = ${} AND node_index >= ${} AND node_index < ${})",
                    n + 1,
                    n + 2,
                    n + 3
                ));
                binds.extend([i64::from(level), lo as i64, hi as i64]);
            }
        }
        let mut nodes = HashMap::new();
        if !clauses.is_empty() {
            let select = match self.backend {
                Backend::Sqlite => {
                    "SELECT json_group_array(json_array(level, node_index, lower(hex(hash))))"
                }
                Backend::Postgres => {
                    "SELECT json_agg(json_build_array(level, node_index, encode(hash, 'hex')))::text"
                }
            };
            let sql = format!("{select} FROM audit_tree WHERE {}", clauses.join(" OR "));
            let mut q = sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(b);
            }
            let packed = q.fetch_one(&self.pool).await?;
            let rows: Vec<(u8, u64, String)> =
                serde_json::from_str(packed.as_deref().unwrap_or("[]"))
                    .map_err(|e| StoreError::Corrupt(format!("audit nodes: {e}")))?;
            for (level, index, hex) in rows {
                nodes.insert(NodeId { level, index }, hash_from_hex(&hex)?);
            }
        }
        Ok((records, nodes))
    }
}
