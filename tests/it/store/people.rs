//! People as the operator manages them: provisioned, given roles, switched off, deleted; and
//! the listings of grants and clients.

use portcullis::store::{Attach, GrantFilter, NewUser, Store};

use super::fixtures::{at, client, seeded_grant, signed_in, t0};

pub(super) async fn roles_are_assigned_once_and_removed_once(store: &dyn Store) {
    let user = store
        .create_user(
            &NewUser {
                email: Some(" Kim@Example.COM ".into()),
                name: Some("Kim".into()),
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(user.email.as_deref(), Some("kim@example.com"));
    assert_eq!(user.last_login_at, t0());
    assert!(
        store
            .add_user_role(&user.id, "engineer", t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_user_role(&user.id, "engineer", at(1))
            .await
            .unwrap()
    );
    assert!(store.add_user_role(&user.id, "admin", t0()).await.unwrap());
    let person = store.person(&user.id, "corp").await.unwrap().unwrap();
    assert_eq!(person.roles, ["admin", "engineer"]);
    assert_eq!(person.identity, None);
    assert!(store.remove_user_role(&user.id, "admin").await.unwrap());
    assert!(!store.remove_user_role(&user.id, "admin").await.unwrap());
    assert_eq!(
        store.person(&user.id, "corp").await.unwrap().unwrap().roles,
        ["engineer"]
    );
    assert_eq!(store.person("nobody", "corp").await.unwrap(), None);
}

pub(super) async fn a_person_is_found_by_identity_with_roles_and_that_identity(store: &dyn Store) {
    let user = store
        .record_sign_in(
            &signed_in("corp", "ada", Some("ada@example.com")),
            &Attach::NewUser,
            t0(),
        )
        .await
        .unwrap();
    store
        .record_sign_in(
            &signed_in("corp", "ada-2", None),
            &Attach::To(user.id.clone()),
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(
        store.person_by_identity("corp", "nobody").await.unwrap(),
        None
    );
    let person = store
        .person_by_identity("corp", "ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(person.user.id, user.id);
    assert!(person.roles.is_empty());
    // The identity asked for, not the most recent one at the provider.
    assert_eq!(
        person.identity,
        store.find_identity("corp", "ada").await.unwrap()
    );
    assert_eq!(
        store
            .person(&user.id, "corp")
            .await
            .unwrap()
            .unwrap()
            .identity
            .map(|identity| identity.subject),
        Some("ada-2".to_owned())
    );

    store.add_user_role(&user.id, "viewer", t0()).await.unwrap();
    store.add_user_role(&user.id, "admin", t0()).await.unwrap();
    let person = store
        .person_by_identity("corp", "ada-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(person.roles, ["admin", "viewer"]);
    assert_eq!(
        person.identity,
        store.find_identity("corp", "ada-2").await.unwrap()
    );
}

pub(super) async fn a_person_is_disabled_enabled_and_deleted_with_everything_theirs(
    store: &dyn Store,
) {
    let grant = seeded_grant(store, "g-1").await;
    let user_id = grant.user_id.clone();
    assert!(
        store
            .set_user_disabled(&user_id, Some(at(5)))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_user(&user_id).await.unwrap().unwrap().disabled_at,
        Some(at(5))
    );
    assert!(store.set_user_disabled(&user_id, None).await.unwrap());
    assert_eq!(
        store.get_user(&user_id).await.unwrap().unwrap().disabled_at,
        None
    );
    assert!(
        !store
            .set_user_disabled("nobody", Some(at(5)))
            .await
            .unwrap()
    );

    assert_eq!(store.active_grants_of(&user_id).await.unwrap(), ["g-1"]);
    store
        .add_user_role(&user_id, "engineer", t0())
        .await
        .unwrap();
    assert!(store.delete_user(&user_id).await.unwrap());
    assert!(!store.delete_user(&user_id).await.unwrap());
    assert_eq!(store.get_user(&user_id).await.unwrap(), None);
    assert_eq!(store.get_grant("g-1").await.unwrap(), None);
    assert!(store.identities_of(&user_id).await.unwrap().is_empty());
    assert!(store.find_identity("dev", "g-1").await.unwrap().is_none());
}

pub(super) async fn the_most_recent_identity_at_a_provider_is_the_persons(store: &dyn Store) {
    let user = store
        .record_sign_in(&signed_in("corp", "old", None), &Attach::NewUser, t0())
        .await
        .unwrap();
    store
        .record_sign_in(
            &signed_in("corp", "new", None),
            &Attach::To(user.id.clone()),
            at(10),
        )
        .await
        .unwrap();
    let person = store.person(&user.id, "corp").await.unwrap().unwrap();
    assert_eq!(person.identity.unwrap().subject, "new");
    assert_eq!(
        store
            .person(&user.id, "other")
            .await
            .unwrap()
            .unwrap()
            .identity,
        None
    );
}

pub(super) async fn grants_and_clients_are_listed_and_clients_deleted(store: &dyn Store) {
    let first = seeded_grant(store, "g-a").await;
    let second = seeded_grant(store, "g-b").await;
    store.revoke_grant("g-a", at(1)).await.unwrap();
    let active = store.list_grants(&GrantFilter::default()).await.unwrap();
    assert_eq!(
        active.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["g-b"]
    );
    let all = store
        .list_grants(&GrantFilter {
            include_revoked: true,
            ..GrantFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let of_first = store
        .list_grants(&GrantFilter {
            user_id: Some(first.user_id.clone()),
            include_revoked: true,
            ..GrantFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        of_first.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["g-a"]
    );
    let of_client = store
        .list_grants(&GrantFilter {
            client_id: Some(second.client_id.clone()),
            ..GrantFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(of_client.len(), 1);

    store.insert_client(&client("client-x")).await.unwrap();
    let listed = store.list_clients().await.unwrap();
    assert_eq!(listed, [client("client-x")]);
    assert!(store.delete_client("client-x").await.unwrap());
    assert!(!store.delete_client("client-x").await.unwrap());
    assert!(store.list_clients().await.unwrap().is_empty());
}

pub(super) async fn concurrent_first_sign_ins_of_one_identity_make_one_person(store: &dyn Store) {
    let sign_in = signed_in("corp", "twin", Some("twin@example.com"));
    let (a, b) = tokio::join!(
        store.record_sign_in(&sign_in, &Attach::NewUser, t0()),
        store.record_sign_in(&sign_in, &Attach::NewUser, t0()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let identity = store.find_identity("corp", "twin").await.unwrap().unwrap();
    assert_eq!(a.id, identity.user_id);
    assert_eq!(b.id, identity.user_id);
}
