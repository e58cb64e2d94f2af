//! SQLite on the calling thread: the stored form of a timestamp, transactions given up
//! half-way, and checkpoints taken off the request path.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::store::Store;
use crate::store::db::{Statement, sql};

/// The stored form is what earlier versions wrote and what existing databases hold: it must
/// not change, or comparing new binds with old rows would stop comparing times.
#[tokio::test]
async fn timestamps_are_stored_as_fixed_width_utc_text() {
    let store = SqlStore::sqlite("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let whole_second = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let with_nanos = whole_second + Duration::nanoseconds(1_234_567);
    store
        .revoke_access_token("jti-1", with_nanos, whole_second)
        .await
        .unwrap();

    let stored: Vec<(String, String)> = store
        .db
        .fetch_all(sql(
            "SELECT CAST(expires_at AS TEXT), CAST(revoked_at AS TEXT)
             FROM revoked_access_tokens",
        ))
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![(
            "2026-11-22T10:00:00.001234Z".to_owned(),
            "2026-11-22T10:00:00.000000Z".to_owned()
        )]
    );
}

async fn in_memory() -> SqlStore {
    let store = SqlStore::sqlite("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn revoke(jti: &str) -> Statement<'_> {
    sql("INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $2)")
        .bind(jti)
        .bind(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap())
}

async fn revoked(store: &SqlStore) -> i64 {
    let counted: (i64,) = store
        .db
        .fetch_one(sql("SELECT COUNT(*) FROM revoked_access_tokens"))
        .await
        .unwrap();
    counted.0
}

#[tokio::test]
async fn a_transaction_dropped_unfinished_is_rolled_back() {
    let store = in_memory().await;
    let mut tx = store.db.begin().await.unwrap();
    tx.execute(revoke("jti-1")).await.unwrap();
    drop(tx);

    assert_eq!(revoked(&store).await, 0);
    store.db.execute(revoke("jti-2")).await.unwrap();
    assert_eq!(revoked(&store).await, 1);
}

/// A request that goes away while its transaction's slow statement runs on the blocking pool
/// leaves the transaction open on the connection; the next holder rolls it back first.
#[tokio::test]
async fn a_transaction_abandoned_during_a_slow_statement_is_rolled_back_before_the_next() {
    let store = in_memory().await;
    let mut tx = store.db.begin().await.unwrap();
    tx.execute(revoke("jti-1")).await.unwrap();
    let slow = tx.fetch_all::<(i64,)>(
        sql(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)
             SELECT COUNT(*) FROM c",
        )
        .slow(),
    );
    assert!(
        tokio::time::timeout(std::time::Duration::ZERO, slow)
            .await
            .is_err(),
        "the slow statement was still running"
    );
    drop(tx);

    assert_eq!(revoked(&store).await, 0);
    store.db.execute(revoke("jti-2")).await.unwrap();
    assert_eq!(revoked(&store).await, 1);
}

/// The automatic checkpoint is off; the store's own task copies the log into the database file.
/// Far fewer pages than SQLite's automatic threshold (1,000) are written here, so only that task
/// can have copied them.
#[tokio::test]
async fn the_log_is_copied_into_the_database_file_by_the_checkpoint_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let store = SqlStore::sqlite(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
        .db
        .execute(
            sql(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)
             INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at)
             SELECT 'jti-' || x || '-' || hex(randomblob(48)), $1, $1 FROM c",
            )
            .bind(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()),
        )
        .await
        .unwrap();
    let written = 3000 * 100;

    let mut size = 0;
    for _ in 0..100 {
        size = std::fs::metadata(&path).unwrap().len();
        if size >= written {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(size >= written, "the database file holds {size} bytes");
    assert_eq!(revoked(&store).await, 3000);
}

#[test]
fn urls_name_a_file_or_memory() {
    let file = |url| match place(url).unwrap() {
        Place::File(path) => path,
        Place::Memory => panic!("{url} is a file"),
    };
    assert_eq!(file("sqlite:portcullis.db"), "portcullis.db");
    assert_eq!(file("sqlite://var/portcullis.db"), "var/portcullis.db");
    assert_eq!(file("sqlite:state.db?mode=rwc"), "file:state.db?mode=rwc");
    assert!(matches!(place("sqlite::memory:").unwrap(), Place::Memory));
    assert!(matches!(place("sqlite://:memory:").unwrap(), Place::Memory));
    assert!(place("sqlite:").is_err());
}

/// Another process holding the write lock (an operator's `sqlite3` shell) makes a write wait, as
/// it did, but on the blocking pool: the async workers go on meanwhile. The test's runtime has
/// one thread, so the ticks below could not happen while the write waited on it.
#[tokio::test]
async fn a_write_waits_for_another_process_lock_without_holding_up_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let store = SqlStore::sqlite(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (locked, lock_taken) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let shell = rusqlite::Connection::open(&path).unwrap();
        shell.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(600));
        shell.execute_batch("COMMIT").unwrap();
    });
    lock_taken.recv().unwrap();

    let mut ticks = 0;
    let write = store.db.execute(revoke("jti-1"));
    tokio::pin!(write);
    let written = loop {
        tokio::select! {
            written = &mut write => break written,
            () = tokio::time::sleep(std::time::Duration::from_millis(20)) => ticks += 1,
        }
    };
    other.join().unwrap();

    assert_eq!(written.unwrap(), 1);
    assert!(
        ticks >= 5,
        "the runtime ticked {ticks} times while the write waited"
    );
    assert_eq!(revoked(&store).await, 1);
}
