//! The seam between the one implementation (`sql.rs`) and the two engines: what each must say
//! for itself, and the timestamp wrapper each encodes its own way.

use chrono::{DateTime, Utc};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Encode, IntoArguments, Type};

/// What differs between the engines beyond connecting (each engine's file implements it).
pub trait Engine: Database<Arguments: IntoArguments<Self>, Connection: Migrate> {
    /// This engine's migrations, `migrations/<engine>`.
    const MIGRATOR: Migrator;

    /// The rows an `UPDATE` or `DELETE` changed (each driver has its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// A timestamp to bind. Each engine encodes it its own way: Postgres as a `TIMESTAMPTZ`, SQLite
/// as TEXT in one fixed-width form, so that comparing the stored text compares the times.
#[derive(Debug, Clone, Copy)]
pub struct Ts(pub DateTime<Utc>);

/// A value an engine can bind: shorthand for sqlx's `Encode` and `Type`.
pub trait Bind<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> {}

impl<T, DB: Database> Bind<DB> for T where T: for<'q> Encode<'q, DB> + Type<DB> {}
