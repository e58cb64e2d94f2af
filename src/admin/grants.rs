//! `portcullis grants list` and `grants revoke`.

use std::collections::HashMap;

use super::output::{GrantView, Outcome, Output, time};
use super::{
    Admin, AdminError, AdminResult, audit, grants_count, person_event, resolve_person,
    revoke_grants, who,
};
use crate::store::{AuditEvent, AuditKind, Decision, Grant, GrantFilter};
use crate::table::cell;

/// Which grants `grants list` shows.
pub(super) struct Which<'a> {
    pub user: Option<&'a str>,
    pub client_id: Option<&'a str>,
    /// With `client_id`: one installation of a client.
    pub redirect_uri: Option<&'a str>,
    pub all: bool,
}

/// The grants of `client_id` issued through `redirect_uri`.
async fn of_installation(
    admin: &Admin<'_>,
    client_id: &str,
    redirect_uri: Option<&str>,
    include_revoked: bool,
) -> AdminResult<Vec<Grant>> {
    let filter = GrantFilter {
        user_id: None,
        client_id: Some(client_id.to_owned()),
        include_revoked,
    };
    let mut grants = admin.store.list_grants(&filter).await?;
    if let Some(redirect_uri) = redirect_uri {
        grants.retain(|g| g.redirect_uri.as_deref() == Some(redirect_uri));
    }
    Ok(grants)
}

pub(super) async fn list(
    admin: &Admin<'_>,
    which: &Which<'_>,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let user_id = match which.user {
        Some(user) => Some(resolve_person(admin.store, user).await?.id),
        None => None,
    };
    let grants = match which.client_id {
        Some(client_id) => {
            let mut grants =
                of_installation(admin, client_id, which.redirect_uri, which.all).await?;
            if let Some(user_id) = &user_id {
                grants.retain(|g| &g.user_id == user_id);
            }
            grants
        }
        None => {
            let filter = GrantFilter {
                user_id,
                client_id: None,
                include_revoked: which.all,
            };
            admin.store.list_grants(&filter).await?
        }
    };
    let mut emails: HashMap<String, Option<String>> = HashMap::new();
    let mut views = Vec::with_capacity(grants.len());
    for grant in &grants {
        if !emails.contains_key(&grant.user_id) {
            let email = admin
                .store
                .get_user(&grant.user_id)
                .await?
                .and_then(|user| user.email);
            emails.insert(grant.user_id.clone(), email);
        }
        let email = emails.get(&grant.user_id).cloned().flatten();
        views.push(GrantView::new(grant, email));
    }
    if out.json {
        return out.json_lines(&views);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|g| {
            vec![
                cell(Some(&g.id)),
                cell(g.user_email.as_deref().or(Some(&g.user_id))),
                cell(Some(&g.client_id)),
                cell(g.redirect_uri.as_deref()),
                cell(Some(&g.provider)),
                cell(Some(&g.resource)),
                cell(Some(&g.scope)),
                time(g.created_at),
                g.revoked_at.map_or_else(|| "-".to_owned(), time),
            ]
        })
        .collect();
    out.table(
        &[
            "ID", "USER", "CLIENT", "REDIRECT", "PROVIDER", "RESOURCE", "SCOPE", "CREATED",
            "REVOKED",
        ],
        &rows,
    )
}

pub(super) async fn revoke_one(
    admin: &Admin<'_>,
    grant_id: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let Some(grant) = admin.store.get_grant(grant_id).await? else {
        return Err(AdminError::NoSuchGrant(grant_id.to_owned()));
    };
    if let Some(revoked_at) = grant.revoked_at {
        let message = format!(
            "grant {grant_id} was revoked already, at {}",
            time(revoked_at)
        );
        return out.outcome(&Outcome::new(message, false).client(&grant.client_id));
    }
    revoke_grants(admin, std::slice::from_ref(&grant.id)).await?;
    let person = admin.store.get_user(&grant.user_id).await?;
    let email = person.as_ref().and_then(|p| p.email.as_deref());
    audit(
        admin,
        AuditEvent::new(AuditKind::Admin, Decision::Allowed, admin.now)
            .user(grant.user_id.clone(), email)
            .client(grant.client_id.clone())
            .reason(format!("grant {grant_id} revoked by the operator")),
    )
    .await?;
    let message = format!(
        "revoked grant {grant_id} of {} at {}",
        email.unwrap_or(&grant.user_id),
        grant.client_id
    );
    let mut outcome = Outcome::new(message, true)
        .client(&grant.client_id)
        .revoked(vec![grant.id.clone()]);
    outcome.user_id = Some(grant.user_id);
    out.outcome(&outcome)
}

pub(super) async fn revoke_all_of(
    admin: &Admin<'_>,
    user: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let person = resolve_person(admin.store, user).await?;
    let grants = admin.store.active_grants_of(&person.id).await?;
    revoke_grants(admin, &grants).await?;
    let revoked = format!("{} revoked", grants_count(grants.len()));
    if !grants.is_empty() {
        let reason = format!("{revoked} by the operator");
        audit(admin, person_event(admin, &person, reason)).await?;
    }
    let message = format!("{revoked} of {}", who(&person));
    let changed = !grants.is_empty();
    out.outcome(&Outcome::new(message, changed).user(&person).revoked(grants))
}

/// Revokes every active grant of one installation of a client: `client_id` through
/// `redirect_uri` (every person's).
pub(super) async fn revoke_installation(
    admin: &Admin<'_>,
    client_id: &str,
    redirect_uri: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let grants: Vec<String> = of_installation(admin, client_id, Some(redirect_uri), false)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    revoke_grants(admin, &grants).await?;
    let revoked = format!("{} revoked", grants_count(grants.len()));
    if !grants.is_empty() {
        audit(
            admin,
            AuditEvent::new(AuditKind::Admin, Decision::Allowed, admin.now)
                .client(client_id.to_owned())
                .reason(format!("{revoked} through {redirect_uri} by the operator")),
        )
        .await?;
    }
    let message = format!("{revoked} of {client_id} through {redirect_uri}");
    let changed = !grants.is_empty();
    out.outcome(
        &Outcome::new(message, changed)
            .client(client_id)
            .revoked(grants),
    )
}
