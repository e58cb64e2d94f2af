//! The [`AuditStore`] part of the one SQL implementation, and its two statements that are built
//! at run time: the multi-row insert and the filtered listing. `QueryBuilder` writes each
//! engine's own placeholders (`?` or `$n`).

use async_trait::async_trait;
use sqlx::{Connection, Database, Executor, FromRow, QueryBuilder};

use super::engine::{Bind, Engine, Ts};
use super::rows::{AuditEventRow, on_unique};
use super::sql::SqlStore;
use super::{AuditEvent, AuditFilter, AuditStore, StoreResult};

#[async_trait]
impl<DB: Engine> AuditStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Bind<DB>,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    i64: Bind<DB>,
    Option<i64>: Bind<DB>,
    Ts: Bind<DB>,
    for<'r> AuditEventRow: FromRow<'r, DB::Row>,
{
    async fn insert_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        if events.len() <= INSERT_CHUNK {
            // One statement is atomic on its own: no transaction (two more round trips).
            insert(events)
                .build()
                .execute(&mut *self.db.take().await?)
                .await
                .map_err(on_unique("audit event id exists"))?;
            return Ok(());
        }
        let mut conn = self.db.take().await?;
        let mut tx = conn.begin().await?;
        for chunk in events.chunks(INSERT_CHUNK) {
            insert(chunk)
                .build()
                .execute(&mut *tx)
                .await
                .map_err(on_unique("audit event id exists"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let mut select = select::<DB>(filter);
        let rows = select
            .build_query_as::<AuditEventRow>()
            .fetch_all(&mut *self.db.take().await?)
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

/// One `INSERT` of every event in `chunk` (at most [`INSERT_CHUNK`] of them).
pub(super) fn insert<DB: Database>(chunk: &[AuditEvent]) -> QueryBuilder<DB>
where
    for<'a> &'a str: Bind<DB>,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    Option<i64>: Bind<DB>,
    Ts: Bind<DB>,
{
    let mut insert = QueryBuilder::new(format!("INSERT INTO audit_events ({COLUMNS}) "));
    insert.push_values(chunk, |mut row, event| {
        row.push_bind(&event.id)
            .push_bind(Ts(event.time))
            .push_bind(event.kind.as_str())
            .push_bind(&event.request_id)
            .push_bind(&event.user_id)
            .push_bind(&event.user_email)
            .push_bind(&event.client_id)
            .push_bind(&event.backend)
            .push_bind(&event.tool)
            .push_bind(event.decision.as_str())
            .push_bind(&event.reason)
            .push_bind(&event.outcome)
            .push_bind(event.latency_ms)
            .push_bind(event.response_bytes)
            .push_bind(&event.trace_id);
    });
    insert
}

/// The `SELECT` of the events matching `filter`, newest first, at most `filter.limit`.
pub(super) fn select<DB: Database>(filter: &AuditFilter) -> QueryBuilder<DB>
where
    for<'a> &'a str: Bind<DB>,
    String: Bind<DB>,
    i64: Bind<DB>,
    Ts: Bind<DB>,
{
    let mut select = QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_events WHERE TRUE"));
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
        select.push(" AND time >= ").push_bind(Ts(since));
    }
    select
        .push(" ORDER BY time DESC, id DESC LIMIT ")
        .push_bind(i64::from(filter.limit));
    select
}
