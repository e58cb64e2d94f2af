//! The [`AuditStore`] part of the one SQL implementation, and its two statements that are built
//! at run time: the multi-row insert and the filtered listing.

use async_trait::async_trait;

use super::db::Statement;
use super::rows::{AuditEventRow, on_unique};
use super::sql::SqlStore;
use super::{AuditEvent, AuditFilter, AuditStore, StoreResult};

#[async_trait]
impl AuditStore for SqlStore {
    async fn insert_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        if events.len() <= INSERT_CHUNK {
            // One statement is atomic on its own: no transaction (two more round trips).
            self.db
                .execute(insert(events))
                .await
                .map_err(on_unique("audit event id exists"))?;
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for chunk in events.chunks(INSERT_CHUNK) {
            tx.execute(insert(chunk))
                .await
                .map_err(on_unique("audit event id exists"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let rows = self
            .db
            .fetch_all::<AuditEventRow>(select(filter).slow())
            .await?;
        rows.into_iter().map(AuditEvent::try_from).collect()
    }
}

/// The columns of `audit_events`, in the order both engines insert and select them.
pub(super) const COLUMNS: &str = "id, time, kind, request_id, user_id, user_email, client_id, \
    backend, tool, decision, reason, outcome, latency_ms, response_bytes, trace_id";

/// Rows per multi-row `INSERT`: 15 binds each keeps a statement well under SQLite's 32,766 and
/// Postgres' 65,535 bind parameters.
pub(super) const INSERT_CHUNK: usize = 500;

/// Batches larger than this are written off the async workers.
const SLOW_BATCH: usize = 64;

/// Appends placeholders for the values, separated by commas.
macro_rules! bind_row {
    ($statement:ident, $first:expr $(, $rest:expr)*) => {
        $statement.push_bind($first);
        $($statement.push(", ").push_bind($rest);)*
    };
}

/// One `INSERT` of every event in `chunk` (at most [`INSERT_CHUNK`] of them).
pub(super) fn insert(chunk: &[AuditEvent]) -> Statement<'_> {
    let mut insert = Statement::built(format!("INSERT INTO audit_events ({COLUMNS}) VALUES "));
    for (n, event) in chunk.iter().enumerate() {
        insert.push(if n == 0 { "(" } else { ", (" });
        bind_row!(
            insert,
            &event.id,
            event.time,
            event.kind.as_str(),
            &event.request_id,
            &event.user_id,
            &event.user_email,
            &event.client_id,
            &event.backend,
            &event.tool,
            event.decision.as_str(),
            &event.reason,
            &event.outcome,
            event.latency_ms,
            event.response_bytes,
            &event.trace_id
        );
        insert.push(")");
    }
    // A large batch (a burst of calls) takes milliseconds to write: on SQLite, not on an async
    // worker.
    if chunk.len() > SLOW_BATCH {
        insert.slow()
    } else {
        insert
    }
}

/// The `SELECT` of the events matching `filter`, newest first, at most `filter.limit`.
pub(super) fn select(filter: &AuditFilter) -> Statement<'_> {
    let mut select = Statement::built(format!("SELECT {COLUMNS} FROM audit_events WHERE TRUE"));
    if let Some(user) = &filter.user {
        select
            .push(" AND (user_id = ")
            .push_bind(user)
            .push(" OR user_email = ")
            .push_bind(user)
            .push(")");
    }
    if let Some(tool) = &filter.tool {
        select.push(" AND tool = ").push_bind(tool);
    }
    if let Some(backend) = &filter.backend {
        select.push(" AND backend = ").push_bind(backend);
    }
    if let Some(kind) = filter.kind {
        select.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(since) = filter.since {
        select.push(" AND time >= ").push_bind(since);
    }
    select
        .push(" ORDER BY time DESC, id DESC LIMIT ")
        .push_bind(i64::from(filter.limit));
    select
}
