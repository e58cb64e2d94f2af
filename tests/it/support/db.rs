//! A fresh, migrated database per test, on either engine.

use portcullis::store::{self, DynStore};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use url::Url;

/// A new SQLite file in its own temporary directory, which lives as long as the returned guard.
pub async fn fresh_sqlite() -> (DynStore, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
    let store = store::connect(&url)
        .await
        .expect("open the SQLite database");
    store.migrate().await.expect("migrate the SQLite database");
    (store, url, dir)
}

/// A new database on the Postgres server named by `TEST_POSTGRES_URL`.
///
/// Without that variable this fails rather than skips: a suite that passes while testing nothing
/// would hide a broken Postgres implementation.
pub async fn fresh_postgres() -> (DynStore, String) {
    let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
        panic!(
            "TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts a \
             throwaway Postgres and sets it (or set it to an admin URL such as \
             postgres://postgres@127.0.0.1:5432/postgres)"
        );
    };
    let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to TEST_POSTGRES_URL ({admin_url}): {e}"));
    // The name is ours (a prefix and a UUID): nothing to inject.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    admin.close().await.ok();

    let mut url = Url::parse(&admin_url).expect("TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    let url = url.to_string();
    let store = store::connect(&url)
        .await
        .expect("connect to the test database");
    store
        .migrate()
        .await
        .expect("migrate the Postgres database");
    (store, url)
}
