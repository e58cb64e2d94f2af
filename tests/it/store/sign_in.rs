//! Clients, users, flows and signing keys: what a sign-in reads and writes before any token.

use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis::store::{Attach, Client, SigningKeyRecord, Store, StoreError, UpstreamLeg};
use serde_json::json;

use super::fixtures::{at, client, flow, signed_in, signing_key, t0};

pub(super) async fn a_registered_client_reads_back_as_stored(store: &dyn Store) {
    let confidential = client("client-1");
    let public = Client {
        client_id: "https://app.example/client.json".to_owned(),
        secret_hash: None,
        token_endpoint_auth_method: "none".to_owned(),
        client_name: None,
        redirect_uris: vec![],
        grant_types: vec![],
        response_types: vec![],
        scope: None,
        metadata: json!({}),
        created_at: at(1),
    };

    store.insert_client(&confidential).await.unwrap();
    store.insert_client(&public).await.unwrap();

    assert_eq!(
        store.get_client("client-1").await.unwrap(),
        Some(confidential)
    );
    assert_eq!(
        store.get_client(&public.client_id).await.unwrap(),
        Some(public)
    );
}

pub(super) async fn registering_an_existing_client_id_is_a_conflict(store: &dyn Store) {
    let original = client("client-1");
    store.insert_client(&original).await.unwrap();
    let impostor = Client {
        client_name: Some("impostor".to_owned()),
        ..client("client-1")
    };

    let error = store.insert_client(&impostor).await.unwrap_err();

    assert!(matches!(error, StoreError::Conflict(_)), "got {error:?}");
    assert_eq!(store.get_client("client-1").await.unwrap(), Some(original));
}

pub(super) async fn unknown_ids_read_as_none(store: &dyn Store) {
    assert_eq!(store.get_client("nope").await.unwrap(), None);
    assert_eq!(store.get_user("nope").await.unwrap(), None);
    assert_eq!(store.get_flow("nope", t0()).await.unwrap(), None);
    assert_eq!(store.get_grant("nope").await.unwrap(), None);
    assert_eq!(store.get_refresh_token("nope").await.unwrap(), None);
    assert!(store.signing_keys().await.unwrap().is_empty());
}

pub(super) async fn a_user_keeps_its_id_across_sign_ins_and_takes_the_new_email(store: &dyn Store) {
    let first = store
        .record_sign_in(
            &signed_in("github", "42", Some("old@example.com")),
            &Attach::NewUser,
            t0(),
        )
        .await
        .unwrap();
    let mut again = signed_in("github", "42", Some("new@example.com"));
    again.name = None;
    again.claims = serde_json::json!({"groups": ["ops"]});

    // A known identity stays with its person, whatever `attach` says.
    let second = store
        .record_sign_in(&again, &Attach::NewUser, at(60))
        .await
        .unwrap();

    assert!(
        uuid::Uuid::parse_str(&first.id).is_ok(),
        "id {} is not a UUID",
        first.id
    );
    assert_eq!(second.id, first.id);
    assert_eq!(second.email.as_deref(), Some("new@example.com"));
    assert_eq!(
        second.name.as_deref(),
        Some("Ada"),
        "a name not sent is kept"
    );
    assert_eq!(second.created_at, t0());
    assert_eq!(second.last_login_at, at(60));
    assert_eq!(second.disabled_at, None);
    assert_eq!(
        store.get_user(&first.id).await.unwrap(),
        Some(second.clone())
    );
    let identity = store.find_identity("github", "42").await.unwrap().unwrap();
    assert_eq!(identity.user_id, first.id);
    assert_eq!(identity.email.as_deref(), Some("new@example.com"));
    assert_eq!(identity.claims, serde_json::json!({"groups": ["ops"]}));
    assert_eq!(
        (identity.created_at, identity.last_login_at),
        (t0(), at(60))
    );

    // A sign-in without a verified email clears the identity's, keeps the person's.
    let unverified = signed_in("github", "42", None);
    let third = store
        .record_sign_in(&unverified, &Attach::NewUser, at(120))
        .await
        .unwrap();
    assert_eq!(third.email.as_deref(), Some("new@example.com"));
    let identity = store.find_identity("github", "42").await.unwrap().unwrap();
    assert_eq!(identity.email, None);
}

pub(super) async fn identities_are_people_by_provider_and_subject_not_by_email(store: &dyn Store) {
    let at_corp = store
        .record_sign_in(
            &signed_in("corp", "ada", Some("ada@example.com")),
            &Attach::NewUser,
            t0(),
        )
        .await
        .unwrap();
    // Same email, another provider: another person unless the caller attaches it.
    let at_other = store
        .record_sign_in(
            &signed_in("other", "ada", Some("ada@example.com")),
            &Attach::NewUser,
            at(1),
        )
        .await
        .unwrap();
    assert_ne!(at_corp.id, at_other.id);
    assert_eq!(
        store
            .users_by_email("ADA@example.com")
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect::<Vec<_>>(),
        [at_corp.id.clone(), at_other.id.clone()]
    );
    // Attached to an existing person: one person, two identities.
    let linked = store
        .record_sign_in(
            &signed_in("third", "a-1", Some("ada@example.com")),
            &Attach::To(at_corp.id.clone()),
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(linked.id, at_corp.id);
    let identities = store.identities_of(&at_corp.id).await.unwrap();
    assert_eq!(
        identities
            .iter()
            .map(|i| (i.provider.as_str(), i.subject.as_str()))
            .collect::<Vec<_>>(),
        [("corp", "ada"), ("third", "a-1")]
    );
}

pub(super) async fn a_flow_reads_back_updates_and_is_taken_once(store: &dyn Store) {
    let mut stored = flow("flow-1", at(600));
    store.insert_flow(&stored).await.unwrap();
    assert_eq!(
        store.get_flow("flow-1", t0()).await.unwrap(),
        Some(stored.clone())
    );

    stored.data.provider = Some("github".to_owned());
    stored.data.upstream = Some(UpstreamLeg {
        nonce: "n-1".to_owned(),
        pkce_verifier_enc: "gAAAAA-verifier".to_owned(),
    });
    assert!(store.update_flow(&stored, at(1)).await.unwrap());
    assert_eq!(
        store.get_flow("flow-1", at(1)).await.unwrap(),
        Some(stored.clone())
    );

    assert_eq!(
        store.take_flow("flow-1", at(2)).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.take_flow("flow-1", at(2)).await.unwrap(), None);
    assert_eq!(store.get_flow("flow-1", at(2)).await.unwrap(), None);
    assert!(!store.update_flow(&stored, at(2)).await.unwrap());
}

pub(super) async fn a_callback_takes_only_a_flow_sent_upstream_by_its_browser(store: &dyn Store) {
    let browser = "b".repeat(64);
    let mut before_consent = flow("upstream-1", at(600));
    before_consent.data.provider = Some("github".to_owned());
    store.insert_flow(&before_consent).await.unwrap();
    // Not yet sent upstream: nothing is taken.
    assert_eq!(
        store
            .take_upstream_flow("upstream-1", &browser, "github", t0())
            .await
            .unwrap(),
        None
    );

    let mut sent = before_consent.clone();
    sent.data.upstream = Some(UpstreamLeg {
        nonce: "n-1".to_owned(),
        pkce_verifier_enc: "gAAAAA-verifier".to_owned(),
    });
    assert!(store.update_flow(&sent, t0()).await.unwrap());
    for (id, browser_hash, provider, now) in [
        ("upstream-2", browser.as_str(), "github", t0()),
        ("upstream-1", &*"c".repeat(64), "github", t0()),
        ("upstream-1", browser.as_str(), "google", t0()),
        ("upstream-1", browser.as_str(), "github", at(600)),
    ] {
        assert_eq!(
            store
                .take_upstream_flow(id, browser_hash, provider, now)
                .await
                .unwrap(),
            None,
            "{id} {browser_hash} {provider} {now}"
        );
    }
    // Each refusal left the flow as it was.
    assert_eq!(
        store.get_flow("upstream-1", t0()).await.unwrap(),
        Some(sent.clone())
    );

    assert_eq!(
        store
            .take_upstream_flow("upstream-1", &browser, "github", at(1))
            .await
            .unwrap(),
        Some(sent)
    );
    assert_eq!(
        store
            .take_upstream_flow("upstream-1", &browser, "github", at(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_flow("upstream-1", at(1)).await.unwrap(), None);
}

pub(super) async fn an_expired_flow_is_invisible_and_taking_it_deletes_it(store: &dyn Store) {
    let stored = flow("flow-1", at(600));
    store.insert_flow(&stored).await.unwrap();

    // Expiry is exclusive: at `expires_at` the flow is already gone.
    assert_eq!(store.get_flow("flow-1", at(600)).await.unwrap(), None);
    assert!(!store.update_flow(&stored, at(601)).await.unwrap());
    assert_eq!(store.take_flow("flow-1", at(601)).await.unwrap(), None);

    // Deleted, not just hidden: it is gone even for a clock before its expiry.
    assert_eq!(store.get_flow("flow-1", t0()).await.unwrap(), None);
}

pub(super) async fn inserting_an_existing_flow_id_is_a_conflict(store: &dyn Store) {
    store.insert_flow(&flow("flow-1", at(600))).await.unwrap();

    let error = store
        .insert_flow(&flow("flow-1", at(900)))
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Conflict(_)), "got {error:?}");
}

pub(super) async fn concurrent_takes_hand_a_flow_to_one_caller(store: &dyn Store) {
    store.insert_flow(&flow("flow-1", at(600))).await.unwrap();

    let takes = futures::future::join_all((0..8).map(|_| store.take_flow("flow-1", t0()))).await;

    let winners = takes
        .into_iter()
        .map(Result::unwrap)
        .filter(Option::is_some)
        .count();
    assert_eq!(winners, 1);
}

pub(super) async fn a_flow_moves_to_a_new_id_once_and_only_while_unexpired(store: &dyn Store) {
    store.insert_flow(&flow("flow-1", at(600))).await.unwrap();
    let mut moved = flow("upstream-1", at(600));
    moved.data.upstream = Some(UpstreamLeg {
        nonce: "n".to_owned(),
        pkce_verifier_enc: "gAAAAA-verifier".to_owned(),
    });
    assert!(store.rekey_flow("flow-1", &moved, t0()).await.unwrap());
    assert_eq!(store.get_flow("flow-1", t0()).await.unwrap(), None);
    assert_eq!(
        store.get_flow("upstream-1", t0()).await.unwrap(),
        Some(moved.clone())
    );
    assert!(
        !store
            .rekey_flow("flow-1", &flow("upstream-2", at(600)), t0())
            .await
            .unwrap()
    );

    // Of concurrent moves of one flow, one wins.
    store.insert_flow(&flow("flow-2", at(600))).await.unwrap();
    let targets: Vec<_> = (0..8)
        .map(|i| flow(&format!("target-{i}"), at(600)))
        .collect();
    let moves =
        futures::future::join_all(targets.iter().map(|t| store.rekey_flow("flow-2", t, t0())))
            .await;
    assert_eq!(
        moves.into_iter().filter(|m| *m.as_ref().unwrap()).count(),
        1
    );

    // An expired flow does not move.
    store.insert_flow(&flow("flow-3", at(10))).await.unwrap();
    assert!(
        !store
            .rekey_flow("flow-3", &flow("upstream-3", at(600)), at(11))
            .await
            .unwrap()
    );
}

pub(super) async fn a_signing_key_inserted_twice_is_kept_once_and_keys_list_newest_first(
    store: &dyn Store,
) {
    let old = signing_key("kid-old", t0());
    let new = signing_key("kid-new", at(86_400));
    let middle = signing_key("kid-middle", at(3600));
    store.insert_signing_key(&old).await.unwrap();
    store.insert_signing_key(&new).await.unwrap();
    store.insert_signing_key(&middle).await.unwrap();

    // Another instance generating the same kid at start-up must not replace the stored key.
    let racer = SigningKeyRecord {
        private_key_enc: "gAAAAA-other".to_owned(),
        ..signing_key("kid-old", at(5))
    };
    store.insert_signing_key(&racer).await.unwrap();

    assert_eq!(store.signing_keys().await.unwrap(), vec![new, middle, old]);
}

pub(super) async fn timestamps_round_trip_to_the_microsecond(store: &dyn Store) {
    // Both databases keep microseconds (Postgres' precision) and drop anything finer.
    let with_nanos =
        Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap() + Duration::nanoseconds(987_654_321);
    let truncated =
        Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap() + Duration::microseconds(987_654);
    let whole_second = Utc.with_ymd_and_hms(2099, 12, 31, 23, 59, 59).unwrap();

    store
        .insert_signing_key(&signing_key("kid-nanos", with_nanos))
        .await
        .unwrap();
    store
        .insert_signing_key(&signing_key("kid-whole", whole_second))
        .await
        .unwrap();

    let keys = store.signing_keys().await.unwrap();
    let created: Vec<DateTime<Utc>> = keys.iter().map(|k| k.created_at).collect();
    assert_eq!(created, vec![whole_second, truncated]);

    // Ordering holds across differently "round" values: one microsecond apart still compares.
    store
        .revoke_access_token("jti-a", at(300), whole_second)
        .await
        .unwrap();
    store
        .revoke_access_token("jti-b", at(300), whole_second + Duration::microseconds(1))
        .await
        .unwrap();
    let since = store
        .access_tokens_revoked_since(whole_second + Duration::microseconds(1))
        .await
        .unwrap();
    assert_eq!(
        since,
        vec![("jti-b".to_owned(), whole_second + Duration::microseconds(1))]
    );
}
