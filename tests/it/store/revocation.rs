//! Ending what was issued: grants and access tokens revoked, expired rows purged, step-up
//! requests taken once.

use chrono::Duration;
use portcullis::store::{CodeRedemption, Store};

use super::fixtures::{KEEP, at, code, flow, refresh_token, revoked_jtis, seeded_grant, t0};

pub(super) async fn revoking_a_grant_is_idempotent_and_removes_what_it_issued(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    seeded_grant(store, "grant-2").await;
    store
        .insert_refresh_token(&refresh_token("rt-1", "grant-1", at(3600)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rt-2", "grant-1", at(3600)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rt-other", "grant-2", at(3600)))
        .await
        .unwrap();
    store
        .insert_code(&code("code-spent", "grant-1", at(60)))
        .await
        .unwrap();
    store
        .insert_code(&code("code-unspent", "grant-1", at(60)))
        .await
        .unwrap();
    store.redeem_code("code-spent", at(1), None).await.unwrap();

    store.revoke_grant("grant-1", at(10)).await.unwrap();
    store.revoke_grant("grant-1", at(20)).await.unwrap();

    let revoked = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(at(10)),
        "the first revocation time stays"
    );
    assert_eq!(store.get_refresh_token("rt-1").await.unwrap(), None);
    assert_eq!(store.get_refresh_token("rt-2").await.unwrap(), None);
    assert_eq!(
        store
            .redeem_code("code-unspent", at(11), None)
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
    assert!(matches!(
        store.redeem_code("code-spent", at(11), None).await.unwrap(),
        CodeRedemption::Replayed(_)
    ));

    assert!(
        store.get_refresh_token("rt-other").await.unwrap().is_some(),
        "other grants are untouched"
    );
    assert_eq!(
        store
            .get_grant("grant-2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    store.revoke_grant("no-such-grant", at(10)).await.unwrap();
}

pub(super) async fn grants_revoked_since_lists_revocations_at_or_after_the_time(store: &dyn Store) {
    for id in ["grant-1", "grant-2", "grant-3"] {
        seeded_grant(store, id).await;
    }
    store.revoke_grant("grant-2", at(20)).await.unwrap();
    store.revoke_grant("grant-1", at(10)).await.unwrap();

    let all = vec![
        ("grant-1".to_owned(), at(10)),
        ("grant-2".to_owned(), at(20)),
    ];
    assert_eq!(store.grants_revoked_since(t0()).await.unwrap(), all);
    assert_eq!(store.grants_revoked_since(at(10)).await.unwrap(), all);
    assert_eq!(
        store
            .grants_revoked_since(at(10) + Duration::microseconds(1))
            .await
            .unwrap(),
        vec![("grant-2".to_owned(), at(20))]
    );
    assert_eq!(store.grants_revoked_since(at(21)).await.unwrap(), vec![]);
}

pub(super) async fn revoked_access_tokens_are_listed_since_a_time_and_keep_the_first_revocation(
    store: &dyn Store,
) {
    store
        .revoke_access_token("jti-1", at(300), at(10))
        .await
        .unwrap();
    store
        .revoke_access_token("jti-2", at(300), at(20))
        .await
        .unwrap();
    store
        .revoke_access_token("jti-1", at(300), at(30))
        .await
        .unwrap();

    assert_eq!(
        store.access_tokens_revoked_since(at(10)).await.unwrap(),
        vec![("jti-1".to_owned(), at(10)), ("jti-2".to_owned(), at(20))]
    );
    assert_eq!(
        store.access_tokens_revoked_since(at(11)).await.unwrap(),
        vec![("jti-2".to_owned(), at(20))]
    );
    assert_eq!(
        store.access_tokens_revoked_since(at(21)).await.unwrap(),
        vec![]
    );
}

pub(super) async fn purging_deletes_only_expired_rows_and_counts_them(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    let now = at(100);
    store
        .insert_flow(&flow("flow-expired", at(50)))
        .await
        .unwrap();
    store.insert_flow(&flow("flow-at-now", now)).await.unwrap();
    store
        .insert_flow(&flow("flow-live", at(101)))
        .await
        .unwrap();
    store
        .insert_code(&code("code-expired", "grant-1", at(50)))
        .await
        .unwrap();
    store
        .insert_code(&code("code-live", "grant-1", at(200)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rt-expired", "grant-1", at(50)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rt-live", "grant-1", at(200)))
        .await
        .unwrap();
    store
        .revoke_access_token("jti-expired", at(50), at(1))
        .await
        .unwrap();
    store
        .revoke_access_token("jti-live", at(200), at(1))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(now, &KEEP).await.unwrap(), 5);
    assert_eq!(store.purge_expired(now, &KEEP).await.unwrap(), 0);

    assert!(store.get_flow("flow-live", now).await.unwrap().is_some());
    assert_eq!(store.take_flow("flow-expired", t0()).await.unwrap(), None);
    assert_eq!(
        store.redeem_code("code-expired", t0(), None).await.unwrap(),
        CodeRedemption::Unknown
    );
    assert!(matches!(
        store.redeem_code("code-live", now, None).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(store.get_refresh_token("rt-expired").await.unwrap(), None);
    assert!(store.get_refresh_token("rt-live").await.unwrap().is_some());
    assert_eq!(revoked_jtis(store).await, vec!["jti-live".to_owned()]);
    assert!(
        store.get_grant("grant-1").await.unwrap().is_some(),
        "grants are not purged"
    );
}

pub(super) async fn purging_keeps_redeemed_codes_and_clears_successors_after_their_windows(
    store: &dyn Store,
) {
    seeded_grant(store, "grant-1").await;
    store
        .insert_code(&code("code-spent", "grant-1", at(60)))
        .await
        .unwrap();
    assert!(matches!(
        store.redeem_code("code-spent", at(10), None).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    store
        .insert_refresh_token(&refresh_token("rt-1", "grant-1", at(86_400)))
        .await
        .unwrap();
    assert!(
        store
            .rotate_refresh_token("rt-1", "gAAAAA-successor", at(10))
            .await
            .unwrap()
    );

    // Past the code's expiry but within the retention: a replay is still recognised, and the
    // successor still answers a duplicate within the grace window.
    assert_eq!(store.purge_expired(at(65), &KEEP).await.unwrap(), 0);
    assert!(matches!(
        store.redeem_code("code-spent", at(65), None).await.unwrap(),
        CodeRedemption::Replayed(code) if code.grant_id == "grant-1"
    ));
    let rotated = store.get_refresh_token("rt-1").await.unwrap().unwrap();
    assert_eq!(rotated.successor_enc.as_deref(), Some("gAAAAA-successor"));

    // After the grace window the successor's ciphertext is cleared; the rotation is kept, so a
    // reuse is still recognised as one.
    assert_eq!(store.purge_expired(at(71), &KEEP).await.unwrap(), 1);
    let rotated = store.get_refresh_token("rt-1").await.unwrap().unwrap();
    assert_eq!(
        (rotated.rotated_at, rotated.successor_enc),
        (Some(at(10)), None)
    );
    assert!(
        store.get_code("code-spent").await.unwrap().is_some(),
        "kept for an access token's life"
    );

    // An hour after redemption the code goes.
    assert_eq!(store.purge_expired(at(3610), &KEEP).await.unwrap(), 1);
    assert_eq!(store.get_code("code-spent").await.unwrap(), None);
}

pub(super) async fn a_step_up_request_is_taken_once_within_its_window(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    store
        .request_step_up("grant-1", "tools:read", at(10))
        .await
        .unwrap();
    store
        .request_step_up("grant-1", "tools:write", at(20))
        .await
        .unwrap();
    assert_eq!(
        store.take_step_up("grant-1", at(15)).await.unwrap(),
        Some("tools:write".to_owned()),
        "the latest request replaces the earlier"
    );
    assert_eq!(store.take_step_up("grant-1", at(0)).await.unwrap(), None);

    // Too old: taken but not answered.
    store
        .request_step_up("grant-1", "tools:write", at(30))
        .await
        .unwrap();
    assert_eq!(store.take_step_up("grant-1", at(31)).await.unwrap(), None);
    assert_eq!(store.take_step_up("grant-1", at(0)).await.unwrap(), None);

    // No grant, nothing recorded (and no error); a purge removes stale requests.
    store
        .request_step_up("no-such-grant", "tools:write", at(40))
        .await
        .unwrap();
    assert_eq!(
        store.take_step_up("no-such-grant", at(0)).await.unwrap(),
        None
    );
    store
        .request_step_up("grant-1", "tools:write", at(40))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(at(161), &KEEP).await.unwrap(), 1);
    assert_eq!(store.take_step_up("grant-1", at(0)).await.unwrap(), None);
}
