//! Checkpoints off the request path. SQLite checkpoints by itself inside whichever commit
//! filled the log past 1,000 pages; with statements on the async workers that commit would
//! block one of them for the copy and its `fsync`. Instead the automatic checkpoint is off, the
//! main connection's commit hook notes that something was written, and a task copies the log
//! back once a second when it was, on a connection of its own on the blocking pool. A passive
//! checkpoint takes no lock writers wait for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::store::StoreResult;

/// How often the log is copied back when something was written.
const EVERY: Duration = Duration::from_secs(1);

/// The running checkpoint task; it stops when this is dropped.
pub(super) struct Checkpoints {
    _stop: oneshot::Sender<()>,
}

/// Starts checkpointing the database at `path`, written by `main`.
pub(super) fn start(main: &Connection, path: &str, flags: OpenFlags) -> StoreResult<Checkpoints> {
    let written = Arc::new(AtomicBool::new(false));
    let noted = written.clone();
    main.commit_hook(Some(move || {
        noted.store(true, Ordering::Relaxed);
        false // let the commit go on
    }))?;
    main.pragma_update(None, "wal_autocheckpoint", 0)?;
    let mut own = Connection::open_with_flags(path, flags)?;
    own.busy_timeout(Duration::from_secs(5))?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            if !written.swap(false, Ordering::Relaxed) {
                continue;
            }
            let done = tokio::task::spawn_blocking(move || {
                let result = checkpoint(&own);
                (own, result)
            })
            .await;
            match done {
                Ok((connection, result)) => {
                    own = connection;
                    if let Err(error) = result {
                        tracing::warn!(%error, "SQLite checkpoint failed; it is retried");
                        written.store(true, Ordering::Relaxed);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "SQLite checkpoints stopped");
                    break;
                }
            }
        }
    });
    Ok(Checkpoints { _stop: stop })
}

/// Copies what it can of the log back into the database, without waiting on anyone.
fn checkpoint(connection: &Connection) -> rusqlite::Result<()> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
