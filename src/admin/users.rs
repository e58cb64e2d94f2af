//! `portcullis users list`, `show`, `add`, and `roles add` / `roles remove`.

use serde::Serialize;

use super::output::{GrantView, Outcome, Output, PersonView, joined, time};
use super::{Admin, AdminError, AdminResult, audit, check_role, person_event, resolve_person, who};
use crate::store::{GrantFilter, NewUser, Store, User};
use crate::table::cell;

pub(super) async fn list(admin: &Admin<'_>, out: &mut Output<'_>) -> AdminResult<()> {
    let mut people = Vec::new();
    for user in admin.store.list_users().await? {
        people.push(person_view(admin.store, user).await?);
    }
    if out.json {
        return out.json_lines(&people);
    }
    let rows: Vec<Vec<String>> = people
        .iter()
        .map(|p| {
            vec![
                cell(Some(&p.id)),
                cell(p.email.as_deref()),
                cell(p.name.as_deref()),
                cell(Some(&joined(&p.roles))),
                cell(Some(&p.identity_list())),
                p.disabled(),
                p.last_sign_in(),
            ]
        })
        .collect();
    out.table(
        &[
            "ID",
            "EMAIL",
            "NAME",
            "ROLES",
            "IDENTITIES",
            "DISABLED",
            "LAST SIGN-IN",
        ],
        &rows,
    )
}

/// `users show --json` prints one of these.
#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    person: PersonView,
    active_grants: Vec<GrantView>,
}

pub(super) async fn show(admin: &Admin<'_>, user: &str, out: &mut Output<'_>) -> AdminResult<()> {
    let person = resolve_person(admin.store, user).await?;
    let person = person_view(admin.store, person).await?;
    let filter = GrantFilter {
        user_id: Some(person.id.clone()),
        ..GrantFilter::default()
    };
    let grants: Vec<GrantView> = (admin.store.list_grants(&filter).await?)
        .iter()
        .map(|grant| GrantView::new(grant, person.email.clone()))
        .collect();
    if out.json {
        return out.json_lines(&[Shown {
            person,
            active_grants: grants,
        }]);
    }
    out.fields(&[
        ("id", person.id.clone()),
        ("email", cell(person.email.as_deref())),
        ("name", cell(person.name.as_deref())),
        ("roles", joined(&person.roles)),
        ("disabled", person.disabled()),
        ("created", time(person.created_at)),
        ("last sign-in", person.last_sign_in()),
    ])?;
    out.section("IDENTITIES")?;
    let rows: Vec<Vec<String>> = person
        .identities
        .iter()
        .map(|i| {
            vec![
                cell(Some(&i.provider)),
                cell(Some(&i.subject)),
                cell(i.email.as_deref()),
                time(i.last_sign_in_at),
            ]
        })
        .collect();
    out.table(&["PROVIDER", "SUBJECT", "EMAIL", "LAST SIGN-IN"], &rows)?;
    out.section("ACTIVE GRANTS")?;
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            vec![
                cell(Some(&g.id)),
                cell(Some(&g.client_id)),
                cell(Some(&g.resource)),
                cell(Some(&g.scope)),
                time(g.created_at),
            ]
        })
        .collect();
    out.table(&["ID", "CLIENT", "RESOURCE", "SCOPE", "CREATED"], &rows)
}

pub(super) async fn add(
    admin: &Admin<'_>,
    email: &str,
    name: Option<&str>,
    roles: &[String],
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let email = email.trim().to_lowercase();
    if !email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
    {
        return Err(AdminError::Refused(format!("{email:?} is not an email")));
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    for role in &roles {
        check_role(admin, role)?;
    }
    let existing = admin.store.users_by_email(&email).await?;
    if !existing.is_empty() {
        let ids: Vec<String> = existing.into_iter().map(|user| user.id).collect();
        return Err(AdminError::Refused(format!(
            "a person with the email {email:?} exists already: {}",
            ids.join(", ")
        )));
    }
    let new = NewUser {
        email: Some(email),
        name: name.map(str::to_owned),
    };
    let user = admin.store.create_user(&new, admin.now).await?;
    for role in &roles {
        admin.store.add_user_role(&user.id, role, admin.now).await?;
    }
    let with_roles = match roles.as_slice() {
        [] => String::new(),
        [role] => format!(" with the role {role}"),
        roles => format!(" with the roles {}", roles.join(", ")),
    };
    let reason = format!("added by the operator{with_roles}");
    audit(admin, person_event(admin, &user, reason)).await?;
    let message = format!("added {} ({}){with_roles}", who(&user), user.id);
    out.outcome(&Outcome::new(message, true).user(&user))
}

pub(super) async fn add_role(
    admin: &Admin<'_>,
    user: &str,
    role: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    check_role(admin, role)?;
    let person = resolve_person(admin.store, user).await?;
    if !admin
        .store
        .add_user_role(&person.id, role, admin.now)
        .await?
    {
        let message = format!("{} already had the role {role}", who(&person));
        return out.outcome(&Outcome::new(message, false).user(&person));
    }
    let reason = format!("role {role} assigned by the operator");
    audit(admin, person_event(admin, &person, reason)).await?;
    let message = format!("assigned the role {role} to {}", who(&person));
    out.outcome(&Outcome::new(message, true).user(&person))
}

pub(super) async fn remove_role(
    admin: &Admin<'_>,
    user: &str,
    role: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let person = resolve_person(admin.store, user).await?;
    // A role removed from [roles] may still be assigned: removing it must stay possible, so the
    // role is checked only when there was nothing to remove.
    if !admin.store.remove_user_role(&person.id, role).await? {
        check_role(admin, role)?;
        let message = format!("{} did not have the role {role}", who(&person));
        return out.outcome(&Outcome::new(message, false).user(&person));
    }
    let reason = format!("role {role} removed by the operator");
    audit(admin, person_event(admin, &person, reason)).await?;
    let message = format!("removed the role {role} from {}", who(&person));
    out.outcome(&Outcome::new(message, true).user(&person))
}

/// `user` with their assigned roles and their identities.
async fn person_view(store: &dyn Store, user: User) -> AdminResult<PersonView> {
    // No provider is named "": only the roles are wanted here, not an identity.
    let roles = store
        .person(&user.id, "")
        .await?
        .map(|person| person.roles)
        .unwrap_or_default();
    let identities = store.identities_of(&user.id).await?;
    Ok(PersonView::new(user, roles, &identities))
}
