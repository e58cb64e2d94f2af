//! The [`Directory`] half of the one SQL implementation: people, their identities and roles,
//! and the operator's listings. Same rules as `sql.rs`: one SQL text for both engines.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Connection, Executor, FromRow};

use super::engine::{Bind, Engine, Ts};
use super::rows::{
    ClientRow, GrantRow, IdentityRow, PersonRow, UserRow, client_columns, grant_columns,
    identity_columns, person_columns, user_columns,
};
use super::sql::SqlStore;
use super::{
    Attach, Client, Directory, Grant, GrantFilter, IdentityRecord, NewUser, Person, SignedIn,
    StoreResult, User,
};

/// How many times a first sign-in retries after losing the race to record the same identity.
const ATTACH_ATTEMPTS: usize = 3;

#[async_trait]
impl<DB: Engine> Directory for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Bind<DB>,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    Ts: Bind<DB>,
    Option<Ts>: Bind<DB>,
    for<'a> Json<&'a serde_json::Value>: Bind<DB>,
    for<'r> UserRow: FromRow<'r, DB::Row>,
    for<'r> IdentityRow: FromRow<'r, DB::Row>,
    for<'r> PersonRow: FromRow<'r, DB::Row>,
    for<'r> GrantRow: FromRow<'r, DB::Row>,
    for<'r> ClientRow: FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityRecord>> {
        let row = sqlx::query_as::<_, IdentityRow>(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE provider = $1 AND subject = $2"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_optional(&mut *self.db.take().await?)
        .await?;
        Ok(row.map(IdentityRecord::from))
    }

    async fn record_sign_in(
        &self,
        signed_in: &SignedIn,
        attach: &Attach,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        // A known identity, the common case: the person takes the sign-in in one statement
        // that finds them through the identity, then the identity does. Each statement is whole
        // on its own, so no transaction (two more round trips to the database) is needed. A new
        // person cannot have an identity yet.
        let known = match attach {
            Attach::NewUser => None,
            Attach::To(_) => {
                sqlx::query_as::<_, UserRow>(concat!(
                    "UPDATE users SET last_login_at = $1, name = COALESCE($2, name),
                         email = COALESCE($3, email)
                     WHERE id = (SELECT user_id FROM identities
                                 WHERE provider = $4 AND subject = $5)
                     RETURNING ",
                    user_columns!()
                ))
                .bind(Ts(now))
                .bind(&signed_in.name)
                .bind(&signed_in.email)
                .bind(&signed_in.provider)
                .bind(&signed_in.subject)
                .fetch_optional(&mut *self.db.take().await?)
                .await?
            }
        };
        if let Some(user) = known {
            sqlx::query(
                "UPDATE identities SET email = $1, claims = $2, last_login_at = $3
                 WHERE provider = $4 AND subject = $5",
            )
            .bind(&signed_in.email)
            .bind(Json(&signed_in.claims))
            .bind(Ts(now))
            .bind(&signed_in.provider)
            .bind(&signed_in.subject)
            .execute(&mut *self.db.take().await?)
            .await?;
            return Ok(user.into());
        }
        // A first sign-in of this identity: the person (when new) and the identity are recorded
        // together or not at all.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.db.take().await?;
            let mut tx = conn.begin().await?;
            let known = sqlx::query_as::<_, (String,)>(
                "UPDATE identities SET email = $1, claims = $2, last_login_at = $3
                 WHERE provider = $4 AND subject = $5 RETURNING user_id",
            )
            .bind(&signed_in.email)
            .bind(Json(&signed_in.claims))
            .bind(Ts(now))
            .bind(&signed_in.provider)
            .bind(&signed_in.subject)
            .fetch_optional(&mut *tx)
            .await?;
            let user_id = match (known, attach) {
                (Some((user_id,)), _) => user_id,
                (None, attach) => {
                    let user_id = match attach {
                        Attach::To(user_id) => user_id.clone(),
                        Attach::NewUser => {
                            let id = uuid::Uuid::new_v4().to_string();
                            insert_user(&mut *tx, &id, &NewUser::default(), now).await?;
                            id
                        }
                    };
                    let inserted = sqlx::query(
                        "INSERT INTO identities (provider, subject, user_id, email, claims,
                             created_at, last_login_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6)
                         ON CONFLICT (provider, subject) DO NOTHING",
                    )
                    .bind(&signed_in.provider)
                    .bind(&signed_in.subject)
                    .bind(&user_id)
                    .bind(&signed_in.email)
                    .bind(Json(&signed_in.claims))
                    .bind(Ts(now))
                    .execute(&mut *tx)
                    .await?;
                    if DB::rows_affected(&inserted) == 0 && attempt < ATTACH_ATTEMPTS {
                        // A concurrent first sign-in of the same identity won: start again and
                        // take the person it recorded.
                        tx.rollback().await?;
                        continue;
                    }
                    user_id
                }
            };
            let user = sqlx::query_as::<_, UserRow>(concat!(
                "UPDATE users SET last_login_at = $1, name = COALESCE($2, name),
                     email = COALESCE($3, email)
                 WHERE id = $4 RETURNING ",
                user_columns!()
            ))
            .bind(Ts(now))
            .bind(&signed_in.name)
            .bind(&signed_in.email)
            .bind(&user_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(user.into());
        }
    }

    async fn update_identity_claims(
        &self,
        provider: &str,
        subject: &str,
        claims: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE identities SET claims = $1 WHERE provider = $2 AND subject = $3")
            .bind(Json(claims))
            .bind(provider)
            .bind(subject)
            .execute(&mut *self.db.take().await?)
            .await?;
        Ok(())
    }

    async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> StoreResult<User> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut conn = self.db.take().await?;
        Ok(insert_user(&mut *conn, &id, user, now).await?.into())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.db.take().await?)
        .await?;
        Ok(row.map(User::from))
    }

    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
        let rows = sqlx::query_as::<_, UserRow>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1 ORDER BY created_at, id"
        ))
        .bind(email.trim().to_lowercase())
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query_as::<_, UserRow>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, id"
        ))
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn identities_of(&self, user_id: &str) -> StoreResult<Vec<IdentityRecord>> {
        let rows = sqlx::query_as::<_, IdentityRow>(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE user_id = $1 ORDER BY created_at, provider, subject"
        ))
        .bind(user_id)
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(IdentityRecord::from).collect())
    }

    async fn person(&self, user_id: &str, provider: &str) -> StoreResult<Option<Person>> {
        // One statement, so that the person, their roles and the identity are one snapshot:
        // a row per role (one with no role when they have none), each carrying the identity.
        let rows = sqlx::query_as::<_, PersonRow>(concat!(
            "SELECT ",
            person_columns!(),
            " FROM users u
             LEFT JOIN user_roles r ON r.user_id = u.id
             LEFT JOIN identities i ON i.user_id = u.id AND i.provider = $2
                 AND i.subject = (SELECT subject FROM identities
                                  WHERE user_id = u.id AND provider = $2
                                  ORDER BY last_login_at DESC, subject LIMIT 1)
             WHERE u.id = $1
             ORDER BY r.role"
        ))
        .bind(user_id)
        .bind(provider)
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(PersonRow::fold(rows, provider))
    }

    async fn person_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<Person>> {
        let rows = sqlx::query_as::<_, PersonRow>(concat!(
            "SELECT ",
            person_columns!(),
            " FROM identities i
             JOIN users u ON u.id = i.user_id
             LEFT JOIN user_roles r ON r.user_id = u.id
             WHERE i.provider = $1 AND i.subject = $2
             ORDER BY r.role"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(PersonRow::fold(rows, provider))
    }

    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(disabled_at.map(Ts))
            .bind(user_id)
            .execute(&mut *self.db.take().await?)
            .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *self.db.take().await?)
            .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn add_user_role(
        &self,
        user_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO user_roles (user_id, role, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, role) DO NOTHING",
        )
        .bind(user_id)
        .bind(role)
        .bind(Ts(now))
        .execute(&mut *self.db.take().await?)
        .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn remove_user_role(&self, user_id: &str, role: &str) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
            .bind(user_id)
            .bind(role)
            .execute(&mut *self.db.take().await?)
            .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn active_grants_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query_as::<_, (String,)>(
            "SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn list_grants(&self, filter: &GrantFilter) -> StoreResult<Vec<Grant>> {
        // `$n IS NULL OR …` keeps one statement for every combination of filters.
        let rows = sqlx::query_as::<_, GrantRow>(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR client_id = $2)
               AND ($3 = 'all' OR revoked_at IS NULL)
             ORDER BY created_at DESC, id"
        ))
        .bind(&filter.user_id)
        .bind(&filter.client_id)
        .bind(if filter.include_revoked {
            "all"
        } else {
            "active"
        })
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(Grant::from).collect())
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query_as::<_, ClientRow>(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY created_at DESC, client_id"
        ))
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(Client::from).collect())
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *self.db.take().await?)
            .await?;
        Ok(DB::rows_affected(&result) == 1)
    }
}

/// Inserts a person with id `id`; `users.key` (see the migration) is `user:<id>`.
async fn insert_user<'c, DB: Engine>(
    executor: impl Executor<'c, Database = DB>,
    id: &str,
    user: &NewUser,
    now: DateTime<Utc>,
) -> StoreResult<UserRow>
where
    for<'a> &'a str: Bind<DB>,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    Ts: Bind<DB>,
    for<'r> UserRow: FromRow<'r, DB::Row>,
{
    let row = sqlx::query_as::<_, UserRow>(concat!(
        r#"INSERT INTO users (id, "key", email, name, created_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING "#,
        user_columns!()
    ))
    .bind(id)
    .bind(format!("user:{id}"))
    .bind(user.email.as_ref().map(|e| e.trim().to_lowercase()))
    .bind(&user.name)
    .bind(Ts(now))
    .fetch_one(executor)
    .await?;
    Ok(row)
}
