//! A database written before people were keyed by (provider, subject), migrated: nobody is
//! lost, nobody is merged, and no unverified email survives.

use std::borrow::Cow;
use std::path::Path;

use portcullis::store::{self, Store};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{AssertSqlSafe, Database, Executor, Pool};

/// The first migration that keys people by identity.
const PEOPLE: i64 = 20261201000003;

/// What version 2 of the schema held: a person keyed by subject (with the unverified email
/// that keying implies), one keyed by a verified email, and a grant of each.
const ROWS: &str = r#"
INSERT INTO users (id, "key", email, name, created_at, last_login_at) VALUES
  ('u-sub', 'sub:github:4242', 'maybe@example.com', 'Sub', '2026-11-01T10:00:00.000000Z', '2026-11-02T10:00:00.000000Z'),
  ('u-mail', 'email:ada@example.com', 'ada@example.com', 'Ada', '2026-11-01T10:00:00.000000Z', '2026-11-03T10:00:00.000000Z');
INSERT INTO grants (id, user_id, client_id, provider, scope, resource, created_at) VALUES
  ('g-sub', 'u-sub', 'c', 'github', 'x:y:z', 'https://mcp.example/mcp', '2026-11-02T10:00:00.000000Z'),
  ('g-mail', 'u-mail', 'c', 'corp', 'x:y:z', 'https://mcp.example/mcp', '2026-11-03T10:00:00.000000Z');
"#;

/// Runs the migrations before [`PEOPLE`] from `dir` on `url`, then `ROWS`.
async fn at_version_two(url: &str, dir: &str) {
    let mut migrator = Migrator::new(Path::new(dir)).await.unwrap();
    migrator.migrations = Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|m| m.version < PEOPLE)
            .cloned()
            .collect(),
    );
    // Both engines read these timestamp literals (TEXT on SQLite, TIMESTAMPTZ on Postgres).
    if url.starts_with("sqlite") {
        fill::<sqlx::Sqlite>(&format!("{url}?mode=rwc"), &migrator).await;
    } else {
        fill::<sqlx::Postgres>(url, &migrator).await;
    }
}

async fn fill<DB: Database>(url: &str, migrator: &Migrator)
where
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let pool = Pool::<DB>::connect(url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(ROWS))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn carried_over(store: &dyn Store) {
    // Keyed by subject: now that identity, the unverified email dropped.
    let identity = store
        .find_identity("github", "4242")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.user_id, "u-sub");
    assert_eq!(identity.email, None);
    let sub = store.get_user("u-sub").await.unwrap().unwrap();
    assert_eq!(sub.email, None);
    assert_eq!(sub.name.as_deref(), Some("Sub"));
    assert_eq!(sub.disabled_at, None);
    // Keyed by a verified email: kept with it, no identity yet, so the next sign-in carrying
    // that verified email claims this person (as a pre-provisioned one).
    let ada = store.users_by_email("ada@example.com").await.unwrap();
    assert_eq!(ada.len(), 1);
    assert_eq!(ada[0].id, "u-mail");
    assert!(store.identities_of("u-mail").await.unwrap().is_empty());
    // Their grants are still theirs.
    assert_eq!(
        store.get_grant("g-sub").await.unwrap().unwrap().user_id,
        "u-sub"
    );
    let person = store.person("u-sub", "github").await.unwrap().unwrap();
    assert_eq!(person.identity.map(|i| i.subject).as_deref(), Some("4242"));
    assert!(person.roles.is_empty());
}

#[tokio::test]
async fn sqlite_people_are_carried_over() {
    let (url, _dir) = crate::support::db::empty_sqlite();
    at_version_two(&url, "migrations/sqlite").await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    carried_over(&*store).await;
}

#[tokio::test]
async fn postgres_people_are_carried_over() {
    let url = crate::support::db::empty_postgres().await;
    at_version_two(&url, "migrations/postgres").await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    carried_over(&*store).await;
}
