//! SQLite's migrations, run as sqlx ran them: the same embedded files and checksums, and the
//! same `_sqlx_migrations` table, so a database any earlier version migrated opens unchanged
//! (`tests/it/store/legacy.rs` migrates one half-way with sqlx itself, then with this).

use std::collections::HashMap;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};
use sqlx::migrate::{MigrateError, Migration, Migrator};

use crate::store::StoreResult;

/// This engine's migrations, `migrations/sqlite`.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Applies every migration not applied yet, each with its bookkeeping in one transaction.
pub(super) fn run(connection: &mut Connection) -> StoreResult<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL,
             execution_time BIGINT NOT NULL
         )",
    )?;
    let dirty: Option<i64> = connection
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(version) = dirty {
        return Err(MigrateError::Dirty(version).into());
    }
    let applied: HashMap<i64, Vec<u8>> = connection
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // A migration this version does not know was applied by a newer one.
    if let Some(version) = applied
        .keys()
        .find(|version| !MIGRATOR.iter().any(|m| m.version == **version))
    {
        return Err(MigrateError::VersionMissing(*version).into());
    }
    for migration in MIGRATOR.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version).into());
            }
            Some(_) => {}
            None => apply(connection, migration)?,
        }
    }
    Ok(())
}

fn apply(connection: &mut Connection, migration: &Migration) -> StoreResult<()> {
    let started = Instant::now();
    let record = |connection: &Connection| {
        connection.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum,
                 execution_time)
             VALUES (?1, ?2, TRUE, ?3, -1)",
            params![
                migration.version,
                &*migration.description,
                &*migration.checksum
            ],
        )
    };
    if migration.no_tx {
        connection.execute_batch(migration.sql.as_str())?;
        record(connection)?;
    } else {
        let tx = connection.transaction()?;
        tx.execute_batch(migration.sql.as_str())?;
        record(&tx)?;
        tx.commit()?;
    }
    // As sqlx does: the time is kept for the record, outside the migration's transaction.
    let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
    connection.execute(
        "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
        params![nanos, migration.version],
    )?;
    Ok(())
}
