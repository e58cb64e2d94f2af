//! `portcullis api-keys create`, `list` and `revoke`: keys for machines acting for a person.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::output::{Outcome, Output, time};
use super::{Admin, AdminError, AdminResult, audit, person_event, resolve_person, who};
use crate::oauth::api_keys;
use crate::oauth::scope::Scopes;
use crate::store::ApiKey;
use crate::table::cell;

/// A key as listed: never its hash.
#[derive(Debug, Serialize)]
struct KeyView {
    id: String,
    user_id: String,
    user_email: Option<String>,
    name: String,
    prefix: String,
    scopes: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl KeyView {
    fn new(key: &ApiKey, user_email: Option<String>) -> Self {
        Self {
            id: key.id.clone(),
            user_id: key.user_id.clone(),
            user_email,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            scopes: key.scopes.clone(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// What `create` prints with `--json`: the key, this once.
#[derive(Debug, Serialize)]
struct Created<'a> {
    key: &'a str,
    #[serde(flatten)]
    view: KeyView,
}

pub(super) async fn create(
    admin: &Admin<'_>,
    user: &str,
    scopes: &str,
    expires: Option<&str>,
    name: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let owner = resolve_person(admin.store, user).await?;
    if owner.disabled_at.is_some() {
        return Err(AdminError::Refused(format!(
            "{} is disabled: enable them first",
            who(&owner)
        )));
    }
    let scopes = Scopes::parse(scopes)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AdminError::Refused(format!(
                "--scopes {scopes:?} is not a space-separated list of scopes"
            ))
        })?;
    if name.trim().is_empty() || name.len() > 100 {
        return Err(AdminError::Refused(
            "--name must be 1 to 100 characters".into(),
        ));
    }
    let expires_at = match expires {
        None => None,
        Some(raw) => Some(
            crate::audit::cli::parse_ago(raw)
                .map(|span| admin.now + span)
                .ok_or_else(|| {
                    AdminError::Refused(format!(
                        "--expires {raw:?} is not a time such as 90d, 12h or 2w"
                    ))
                })?,
        ),
    };
    let (record, key) = api_keys::issue(
        &owner.id,
        name.trim(),
        &scopes.to_string(),
        expires_at,
        admin.now,
    );
    admin.store.insert_api_key(&record).await?;
    let reason = format!(
        "API key {} ({}) created with scopes {}",
        record.name, record.id, record.scopes
    );
    audit(admin, person_event(admin, &owner, reason)).await?;
    let view = KeyView::new(&record, owner.email.clone());
    if out.json {
        return out.json_lines(&[Created { key: &key, view }]);
    }
    out.fields(&[
        ("key", key.clone()),
        ("id", view.id),
        ("owner", who(&owner).to_owned()),
        ("scopes", view.scopes),
        (
            "expires",
            view.expires_at.map_or_else(|| "never".into(), time),
        ),
    ])?;
    out.section("The key is shown this once: only its hash is kept.")
}

pub(super) async fn list(
    admin: &Admin<'_>,
    user: Option<&str>,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let owner = match user {
        Some(user) => Some(resolve_person(admin.store, user).await?),
        None => None,
    };
    let keys = admin
        .store
        .list_api_keys(owner.as_ref().map(|o| o.id.as_str()))
        .await?;
    let mut views = Vec::with_capacity(keys.len());
    for key in &keys {
        let email = admin
            .store
            .get_user(&key.user_id)
            .await?
            .and_then(|u| u.email);
        views.push(KeyView::new(key, email));
    }
    if out.json {
        return out.json_lines(&views);
    }
    let never = |at: Option<DateTime<Utc>>| at.map_or_else(|| "-".to_owned(), time);
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|k| {
            vec![
                cell(Some(&k.id)),
                cell(k.user_email.as_deref().or(Some(&k.user_id))),
                cell(Some(&k.name)),
                cell(Some(&k.prefix)),
                cell(Some(&k.scopes)),
                time(k.created_at),
                never(k.expires_at),
                never(k.last_used_at),
                never(k.revoked_at),
            ]
        })
        .collect();
    out.table(
        &[
            "ID",
            "OWNER",
            "NAME",
            "PREFIX",
            "SCOPES",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "REVOKED",
        ],
        &rows,
    )
}

pub(super) async fn revoke(admin: &Admin<'_>, id: &str, out: &mut Output<'_>) -> AdminResult<()> {
    let keys = admin.store.list_api_keys(None).await?;
    let Some(key) = keys.into_iter().find(|k| k.id == id) else {
        return Err(AdminError::Refused(format!("no API key with id {id:?}")));
    };
    if key.revoked_at.is_some() {
        return out.outcome(&Outcome::new(
            format!("API key {id} was revoked already"),
            false,
        ));
    }
    admin.store.revoke_api_key(id, admin.now).await?;
    super::publish(admin, crate::cluster::Event::KeysChanged).await;
    if let Some(owner) = admin.store.get_user(&key.user_id).await? {
        let reason = format!("API key {} ({id}) revoked", key.name);
        audit(admin, person_event(admin, &owner, reason)).await?;
    }
    out.outcome(&Outcome::new(
        if admin.redis.is_some() {
            format!("API key {id} revoked: every instance refuses it now")
        } else {
            format!(
                "API key {id} revoked: every instance refuses it within {} s",
                crate::gateway::api_keys::VERDICT_TTL.as_secs()
            )
        },
        true,
    ))
}
