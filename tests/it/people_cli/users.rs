//! `portcullis users`: people listed, shown, added, given roles, switched off and deleted.

use chrono::{Duration, Utc};
use portcullis::store::{GrantFilter, NewUser, Store};
use serde_json::{Value, json};

use super::{Shell, admin_reasons, grant, ids, revoked, signed_in, sqlite};
use crate::cli::text;

#[tokio::test]
async fn an_added_person_is_listed_as_a_table_and_as_json() {
    let (store, sh, _db) = sqlite().await;

    let said = sh.ok(&[
        "users",
        "add",
        "--email",
        "Ada@Example.com",
        "--name",
        "Ada",
        "--role",
        "reader",
    ]);

    assert!(said.starts_with("added ada@example.com ("), "{said}");
    let table = sh.ok(&["users", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for header in [
        "ID",
        "EMAIL",
        "NAME",
        "ROLES",
        "IDENTITIES",
        "DISABLED",
        "LAST SIGN-IN",
    ] {
        assert!(lines[0].contains(header), "{table}");
    }
    for cell in ["ada@example.com", "Ada", "reader", "no", "never"] {
        assert!(lines[1].contains(cell), "{cell} in {table}");
    }
    let people = sh.json(&["users", "list"]);
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["email"], "ada@example.com");
    assert_eq!(people[0]["roles"], json!(["reader"]));
    assert_eq!(people[0]["identities"], json!([]));
    assert_eq!(people[0]["disabled_at"], Value::Null);
    assert_eq!(
        admin_reasons(&*store).await,
        ["added by the operator with the role reader"]
    );
}

#[tokio::test]
async fn adding_refuses_a_known_email_and_an_undefined_role() {
    let (store, sh, _db) = sqlite().await;
    sh.ok(&["users", "add", "--email", "ada@example.com"]);

    let again = sh.fails(&["users", "add", "--email", "ADA@example.com"]);
    let unknown = sh.fails(&[
        "users",
        "add",
        "--email",
        "bo@example.com",
        "--role",
        "root",
    ]);

    assert!(
        again.contains("\"ada@example.com\" exists already"),
        "{again}"
    );
    assert_eq!(
        unknown,
        "portcullis: no role \"root\" is defined under [roles]"
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn roles_are_added_and_removed_once_and_an_undefined_one_is_named() {
    let (store, sh, _db) = sqlite().await;
    sh.ok(&["users", "add", "--email", "ada@example.com"]);
    let user = "ada@example.com";

    assert!(
        sh.ok(&["users", "roles", "add", user, "admin"])
            .starts_with("assigned the role admin")
    );
    assert!(
        sh.ok(&["users", "roles", "add", user, "admin"])
            .contains("already had the role admin")
    );
    assert_eq!(
        sh.json(&["users", "show", user])[0]["roles"],
        json!(["admin"])
    );
    assert!(
        sh.ok(&["users", "roles", "remove", user, "admin"])
            .starts_with("removed the role")
    );
    assert!(
        sh.ok(&["users", "roles", "remove", user, "admin"])
            .contains("did not have the role")
    );
    let unknown = sh.fails(&["users", "roles", "add", user, "wizard"]);

    assert_eq!(
        unknown,
        "portcullis: no role \"wizard\" is defined under [roles]"
    );
    assert_eq!(sh.json(&["users", "show", user])[0]["roles"], json!([]));
    assert_eq!(
        admin_reasons(&*store).await,
        [
            "added by the operator",
            "role admin assigned by the operator",
            "role admin removed by the operator"
        ]
    );
}

/// Disabling switches the person off and revokes every grant they hold, so every instance
/// refuses their tokens at its next poll; enabling hands nothing back.
async fn disabling_revokes_every_active_grant(store: &dyn Store, sh: &Shell) {
    let ada = signed_in(store, "ada", "ada@example.com").await;
    let bo = signed_in(store, "bo", "bo@example.com").await;
    grant(store, "g-ada-1", &ada, "client-1", 5).await;
    grant(store, "g-ada-2", &ada, "client-2", 4).await;
    grant(store, "g-bo", &bo, "client-1", 3).await;
    let before = Utc::now() - Duration::seconds(1);

    let done = sh.json(&["users", "disable", "ada@example.com"]);

    assert_eq!(done[0]["grants_revoked"], json!(["g-ada-1", "g-ada-2"]));
    assert_eq!(done[0]["user_id"], ada.id.as_str());
    assert!(
        store
            .get_user(&ada.id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_some()
    );
    assert!(revoked(&store.get_grant("g-ada-1").await.unwrap()).is_some());
    assert!(revoked(&store.get_grant("g-ada-2").await.unwrap()).is_some());
    assert!(revoked(&store.get_grant("g-bo").await.unwrap()).is_none());
    let polled: Vec<String> = (store.grants_revoked_since(before).await.unwrap())
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(polled.len(), 2, "{polled:?}");
    assert_eq!(
        admin_reasons(store).await,
        ["disabled by the operator; 2 grants revoked"]
    );
    let listed = sh.json(&["users", "list"]);
    assert!(listed[0]["disabled_at"].is_string(), "{}", listed[0]);
    assert!(listed[1]["disabled_at"].is_null(), "{}", listed[1]);

    let said = sh.ok(&["users", "enable", &ada.id]);

    assert!(said.starts_with("enabled ada@example.com"), "{said}");
    assert!(
        store
            .get_user(&ada.id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_none()
    );
    assert!(revoked(&store.get_grant("g-ada-1").await.unwrap()).is_some());
    assert!(
        sh.ok(&["users", "enable", &ada.id])
            .contains("is not disabled")
    );
    assert_eq!(admin_reasons(store).await.len(), 2);
}

#[tokio::test]
async fn disabling_revokes_every_active_grant_on_sqlite() {
    let (store, sh, _db) = sqlite().await;
    disabling_revokes_every_active_grant(&*store, &sh).await;
}

#[tokio::test]
async fn disabling_revokes_every_active_grant_on_postgres() {
    let (store, url) = crate::support::db::fresh_postgres().await;
    disabling_revokes_every_active_grant(&*store, &Shell::new(url)).await;
}

#[tokio::test]
async fn show_names_a_person_by_id_or_email_with_identities_and_active_grants() {
    let (store, sh, _db) = sqlite().await;
    let ada = signed_in(&*store, "ada-subject", "ada@example.com").await;
    grant(&*store, "g-1", &ada, "client-1", 5).await;
    grant(&*store, "g-2", &ada, "client-2", 4).await;
    store.revoke_grant("g-1", Utc::now()).await.unwrap();

    let by_email = sh.json(&["users", "show", "ada@example.com"]);
    let table = sh.ok(&["users", "show", &ada.id]);

    assert_eq!(by_email[0]["id"], ada.id.as_str());
    assert_eq!(by_email[0]["identities"][0]["provider"], "dev");
    assert_eq!(by_email[0]["identities"][0]["subject"], "ada-subject");
    assert_eq!(
        ids(by_email[0]["active_grants"].as_array().unwrap()),
        ["g-2"]
    );
    for seen in [
        "ada@example.com",
        "IDENTITIES",
        "ada-subject",
        "ACTIVE GRANTS",
        "client-2",
    ] {
        assert!(table.contains(seen), "{seen} in {table}");
    }
    assert!(!table.contains("g-1"), "{table}");
}

#[tokio::test]
async fn an_unknown_person_or_a_shared_email_is_named_in_one_line() {
    let (store, sh, _db) = sqlite().await;
    let new = |email: &str| NewUser {
        email: Some(email.to_owned()),
        name: None,
    };
    let first = store
        .create_user(&new("twin@example.com"), Utc::now())
        .await
        .unwrap();
    let second = store
        .create_user(&new("twin@example.com"), Utc::now())
        .await
        .unwrap();

    let unknown = sh.fails(&["users", "show", "ghost@example.com"]);
    let shared = sh.fails(&["users", "disable", "twin@example.com"]);

    assert_eq!(
        unknown,
        "portcullis: no person with id or email \"ghost@example.com\""
    );
    assert!(
        shared.contains("2 people have the email \"twin@example.com\""),
        "{shared}"
    );
    assert!(
        shared.contains(&first.id) && shared.contains(&second.id),
        "{shared}"
    );
    assert!(
        store
            .get_user(&first.id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_none()
    );
    for args in [
        &["users", "disable", "ghost"][..],
        &["users", "roles", "add", "ghost", "admin"],
        &["grants", "list", "--user", "ghost"],
        &["grants", "revoke", "--user", "ghost"],
    ] {
        assert!(
            sh.fails(args)
                .contains("no person with id or email \"ghost\""),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn a_person_is_deleted_only_once_no_token_of_theirs_can_be_valid() {
    let (store, sh, _db) = sqlite().await;
    let ada = signed_in(&*store, "ada", "ada@example.com").await;
    grant(&*store, "g-ada", &ada, "client-1", 5).await;
    let old = signed_in(&*store, "old", "old@example.com").await;
    grant(&*store, "g-old", &old, "client-1", 300).await;
    store
        .revoke_grant("g-old", Utc::now() - Duration::hours(2))
        .await
        .unwrap();
    sh.ok(&["users", "add", "--email", "new@example.com"]);

    let active = sh.fails(&["users", "delete", "ada@example.com", "--yes"]);
    sh.ok(&["users", "disable", "ada@example.com"]);
    let recent = sh.fails(&["users", "delete", "ada@example.com", "--yes"]);
    let unconfirmed = sh.fails(&["users", "delete", "new@example.com"]);

    assert!(
        active.contains("portcullis users disable ada@example.com"),
        "{active}"
    );
    assert!(recent.contains("may be valid until"), "{recent}");
    assert!(unconfirmed.contains("--yes"), "{unconfirmed}");
    assert!(store.get_user(&ada.id).await.unwrap().is_some());
    assert!(store.get_grant("g-ada").await.unwrap().is_some());
    assert_eq!(
        store.users_by_email("new@example.com").await.unwrap().len(),
        1
    );

    sh.ok(&["users", "delete", "new@example.com", "--yes"]);
    let said = sh.ok(&["users", "delete", &old.id, "--yes"]);

    assert!(said.starts_with("deleted old@example.com"), "{said}");
    assert!(store.get_user(&old.id).await.unwrap().is_none());
    assert!(store.get_grant("g-old").await.unwrap().is_none());
    assert!(
        store
            .users_by_email("new@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    let remaining = GrantFilter {
        include_revoked: true,
        ..GrantFilter::default()
    };
    assert_eq!(store.list_grants(&remaining).await.unwrap().len(), 1);
    let reasons = admin_reasons(&*store).await;
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "deleted by the operator")
            .count(),
        2
    );
}

#[test]
fn every_command_documents_itself() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["users", "grants", "clients"] {
        let output = crate::cli::portcullis(dir.path(), &[command, "--help"], &[]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(!output.stdout.is_empty());
    }
    let delete = crate::cli::portcullis(dir.path(), &["users", "delete", "--help"], &[]);
    assert!(
        text(&delete).contains("Disable them first"),
        "{}",
        text(&delete)
    );
}
