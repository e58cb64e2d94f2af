//! Where a statement gets its connection: a pool (Postgres), or one connection taken in turn
//! (SQLite).
//!
//! sqlx's pool sends two extra messages to SQLite's worker thread for every statement: a ping
//! when a connection is taken and another when it is given back, the second from a task of its
//! own. Over a pool of one SQLite connection that tripled the hand-offs between threads, which
//! were most of a sign-in's server CPU. [`Connections::One`] holds the connection behind a fair
//! lock instead, so each statement costs one hand-off.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{Mutex, MutexGuard};

use crate::telemetry::metrics::PoolStats;

/// How long a statement waits for the one connection before the store reports the database
/// unavailable: sqlx's default acquire timeout, which the pool of one had.
const ONE_CONNECTION_WAIT: Duration = Duration::from_secs(30);

/// The connections a store runs its statements on.
pub enum Connections<DB: Database> {
    /// A pool: several connections, each statement on whichever is free.
    Pool(Pool<DB>),
    /// One connection, taken in turn (first come, first served).
    One(Mutex<DB::Connection>),
}

/// A connection taken from [`Connections`] for one statement or transaction; given back on drop.
pub enum Taken<'a, DB: Database> {
    Pooled(PoolConnection<DB>),
    One(MutexGuard<'a, DB::Connection>),
}

impl<DB: Database> Connections<DB> {
    /// A connection to run statements on, waiting for one when all are busy.
    pub async fn take(&self) -> Result<Taken<'_, DB>, sqlx::Error> {
        match self {
            Self::Pool(pool) => Ok(Taken::Pooled(pool.acquire().await?)),
            Self::One(connection) => tokio::time::timeout(ONE_CONNECTION_WAIT, connection.lock())
                .await
                .map(Taken::One)
                .map_err(|_| sqlx::Error::PoolTimedOut),
        }
    }

    /// What the metrics report: connections open, idle and allowed.
    pub fn stats(&self) -> PoolStats {
        match self {
            Self::Pool(pool) => PoolStats {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            },
            Self::One(connection) => PoolStats {
                open: 1,
                idle: u32::from(connection.try_lock().is_ok()),
                max: 1,
            },
        }
    }
}

impl<DB: Database> Deref for Taken<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Self::Pooled(connection) => connection,
            Self::One(connection) => connection,
        }
    }
}

impl<DB: Database> DerefMut for Taken<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Self::Pooled(connection) => connection,
            Self::One(connection) => connection,
        }
    }
}
