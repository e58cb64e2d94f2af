//! The [`Directory`] half of the one SQL implementation: people, their identities and roles,
//! and the operator's listings. Same rules as `sql.rs`: one SQL text for both engines.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::db::{Statement, Tx, sql};
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
impl Directory for SqlStore {
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityRecord>> {
        let row = self
            .db
            .fetch_optional::<IdentityRow>(
                sql(concat!(
                    "SELECT ",
                    identity_columns!(),
                    " FROM identities WHERE provider = $1 AND subject = $2"
                ))
                .bind(provider)
                .bind(subject),
            )
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
                self.db
                    .fetch_optional::<UserRow>(
                        sql(concat!(
                            "UPDATE users SET last_login_at = $1, name = COALESCE($2, name),
                                 email = COALESCE($3, email)
                             WHERE id = (SELECT user_id FROM identities
                                         WHERE provider = $4 AND subject = $5)
                             RETURNING ",
                            user_columns!()
                        ))
                        .bind(now)
                        .bind(&signed_in.name)
                        .bind(&signed_in.email)
                        .bind(&signed_in.provider)
                        .bind(&signed_in.subject),
                    )
                    .await?
            }
        };
        if let Some(user) = known {
            self.db
                .fetch_all::<(String,)>(identity_signed_in(signed_in, now))
                .await?;
            return Ok(user.into());
        }
        // A first sign-in of this identity: the person (when new) and the identity are recorded
        // together or not at all.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.db.begin().await?;
            let known = tx
                .fetch_optional::<(String,)>(identity_signed_in(signed_in, now))
                .await?;
            let user_id = match known {
                Some((user_id,)) => user_id,
                None => {
                    let (user_id, recorded) =
                        attach_identity(&mut tx, signed_in, attach, now).await?;
                    if !recorded && attempt < ATTACH_ATTEMPTS {
                        // A concurrent first sign-in of the same identity won: start again and
                        // take the person it recorded.
                        tx.rollback().await?;
                        continue;
                    }
                    user_id
                }
            };
            let user = tx
                .fetch_one::<UserRow>(
                    sql(concat!(
                        "UPDATE users SET last_login_at = $1, name = COALESCE($2, name),
                             email = COALESCE($3, email)
                         WHERE id = $4 RETURNING ",
                        user_columns!()
                    ))
                    .bind(now)
                    .bind(&signed_in.name)
                    .bind(&signed_in.email)
                    .bind(&user_id),
                )
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
        self.db
            .execute(
                sql("UPDATE identities SET claims = $1 WHERE provider = $2 AND subject = $3")
                    .bind(Json(claims))
                    .bind(provider)
                    .bind(subject),
            )
            .await?;
        Ok(())
    }

    async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> StoreResult<User> {
        let id = uuid::Uuid::new_v4().to_string();
        let row = self
            .db
            .fetch_one::<UserRow>(insert_user(&id, user, now))
            .await?;
        Ok(row.into())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = self
            .db
            .fetch_optional::<UserRow>(
                sql(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE id = $1"
                ))
                .bind(id),
            )
            .await?;
        Ok(row.map(User::from))
    }

    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
        let rows = self
            .db
            .fetch_all::<UserRow>(
                sql(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE email = $1 ORDER BY created_at, id"
                ))
                .bind(email.trim().to_lowercase()),
            )
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = self
            .db
            .fetch_all::<UserRow>(
                sql(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users ORDER BY created_at, id"
                ))
                .slow(),
            )
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn identities_of(&self, user_id: &str) -> StoreResult<Vec<IdentityRecord>> {
        let rows = self
            .db
            .fetch_all::<IdentityRow>(
                sql(concat!(
                    "SELECT ",
                    identity_columns!(),
                    " FROM identities WHERE user_id = $1 ORDER BY created_at, provider, subject"
                ))
                .bind(user_id),
            )
            .await?;
        Ok(rows.into_iter().map(IdentityRecord::from).collect())
    }

    async fn person(&self, user_id: &str, provider: &str) -> StoreResult<Option<Person>> {
        // One statement, so that the person, their roles and the identity are one snapshot:
        // a row per role (one with no role when they have none), each carrying the identity.
        let rows = self
            .db
            .fetch_all::<PersonRow>(
                sql(concat!(
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
                .bind(provider),
            )
            .await?;
        Ok(PersonRow::fold(rows, provider))
    }

    async fn person_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<Person>> {
        let rows = self
            .db
            .fetch_all::<PersonRow>(
                sql(concat!(
                    "SELECT ",
                    person_columns!(),
                    " FROM identities i
                     JOIN users u ON u.id = i.user_id
                     LEFT JOIN user_roles r ON r.user_id = u.id
                     WHERE i.provider = $1 AND i.subject = $2
                     ORDER BY r.role"
                ))
                .bind(provider)
                .bind(subject),
            )
            .await?;
        Ok(PersonRow::fold(rows, provider))
    }

    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let result = self
            .db
            .execute(
                sql("UPDATE users SET disabled_at = $1 WHERE id = $2")
                    .bind(disabled_at)
                    .bind(user_id),
            )
            .await?;
        Ok(result == 1)
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        let result = self
            .db
            .execute(sql("DELETE FROM users WHERE id = $1").bind(user_id))
            .await?;
        Ok(result == 1)
    }

    async fn add_user_role(
        &self,
        user_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .db
            .execute(
                sql(
                    "INSERT INTO user_roles (user_id, role, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, role) DO NOTHING",
                )
                .bind(user_id)
                .bind(role)
                .bind(now),
            )
            .await?;
        Ok(result == 1)
    }

    async fn remove_user_role(&self, user_id: &str, role: &str) -> StoreResult<bool> {
        let result = self
            .db
            .execute(
                sql("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
                    .bind(user_id)
                    .bind(role),
            )
            .await?;
        Ok(result == 1)
    }

    async fn active_grants_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .db
            .fetch_all::<(String,)>(
                sql("SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id")
                    .bind(user_id),
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn list_grants(&self, filter: &GrantFilter) -> StoreResult<Vec<Grant>> {
        // `$n IS NULL OR …` keeps one statement for every combination of filters.
        let rows = self
            .db
            .fetch_all::<GrantRow>(
                sql(concat!(
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
                .slow(),
            )
            .await?;
        Ok(rows.into_iter().map(Grant::from).collect())
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let rows = self
            .db
            .fetch_all::<ClientRow>(
                sql(concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients ORDER BY created_at DESC, client_id"
                ))
                .slow(),
            )
            .await?;
        Ok(rows.into_iter().map(Client::from).collect())
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        let result = self
            .db
            .execute(sql("DELETE FROM clients WHERE client_id = $1").bind(client_id))
            .await?;
        Ok(result == 1)
    }
}

/// Records a sign-in on a known identity (its email and claims as the provider sent them now);
/// returns its person's id, no row when the identity is new.
fn identity_signed_in(signed_in: &SignedIn, now: DateTime<Utc>) -> Statement<'_> {
    sql(
        "UPDATE identities SET email = $1, claims = $2, last_login_at = $3
         WHERE provider = $4 AND subject = $5 RETURNING user_id",
    )
    .bind(&signed_in.email)
    .bind(Json(&signed_in.claims))
    .bind(now)
    .bind(&signed_in.provider)
    .bind(&signed_in.subject)
}

/// Records a new identity for the person `attach` names (created now when new); the person's id,
/// and whether the identity was recorded (not, when a concurrent sign-in recorded it first).
async fn attach_identity(
    tx: &mut Tx,
    signed_in: &SignedIn,
    attach: &Attach,
    now: DateTime<Utc>,
) -> StoreResult<(String, bool)> {
    let user_id = match attach {
        Attach::To(user_id) => user_id.clone(),
        Attach::NewUser => {
            let id = uuid::Uuid::new_v4().to_string();
            let new = NewUser::default();
            tx.fetch_one::<UserRow>(insert_user(&id, &new, now)).await?;
            id
        }
    };
    let inserted = tx
        .execute(
            sql(
                "INSERT INTO identities (provider, subject, user_id, email, claims, created_at,
                     last_login_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (provider, subject) DO NOTHING",
            )
            .bind(&signed_in.provider)
            .bind(&signed_in.subject)
            .bind(&user_id)
            .bind(&signed_in.email)
            .bind(Json(&signed_in.claims))
            .bind(now),
        )
        .await?;
    Ok((user_id, inserted == 1))
}

/// Inserts a person with id `id`, returning them; `users.key` (see the migration) is
/// `user:<id>`.
fn insert_user<'a>(id: &'a str, user: &'a NewUser, now: DateTime<Utc>) -> Statement<'a> {
    sql(concat!(
        r#"INSERT INTO users (id, "key", email, name, created_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING "#,
        user_columns!()
    ))
    .bind(id)
    .bind(format!("user:{id}"))
    .bind(user.email.as_ref().map(|e| e.trim().to_lowercase()))
    .bind(&user.name)
    .bind(now)
}
