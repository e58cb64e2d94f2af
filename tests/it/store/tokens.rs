//! Grants and what they issue: codes and refresh tokens, spent once.

use portcullis::store::{
    AuthorizationCode, CodeExchange, CodeRedemption, Grant, RefreshToken, Store, StoreError,
    UpstreamTokens,
};

use super::fixtures::{at, code, refresh_token, seeded_grant, t0};

pub(super) async fn a_grant_reads_back_with_its_upstream_tokens(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;

    assert_eq!(store.get_grant("grant-1").await.unwrap(), Some(grant));
}

pub(super) async fn upstream_tokens_are_replaced_only_while_the_refresh_token_is_the_one_spent(
    store: &dyn Store,
) {
    let grant = seeded_grant(store, "grant-1").await;
    let spent = grant.upstream.refresh_token_enc.clone().unwrap();
    let first = UpstreamTokens {
        access_token_enc: Some("gAAAAA-access-first".to_owned()),
        refresh_token_enc: Some("gAAAAA-refresh-first".to_owned()),
        id_token_enc: None,
        expires_at: Some(at(7200)),
    };
    let second = UpstreamTokens {
        access_token_enc: Some("gAAAAA-access-second".to_owned()),
        ..first.clone()
    };
    assert!(
        store
            .replace_grant_upstream("grant-1", &spent, &first)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_grant_upstream("grant-1", &spent, &second)
            .await
            .unwrap(),
        "the token it spent is no longer the grant's"
    );
    assert!(
        !store
            .replace_grant_upstream("no-such-grant", &spent, &second)
            .await
            .unwrap()
    );
    let stored = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(stored.upstream, first);
}

pub(super) async fn replacing_upstream_tokens_round_trips(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;
    let refreshed = UpstreamTokens {
        access_token_enc: Some("gAAAAA-access-2".to_owned()),
        refresh_token_enc: None,
        id_token_enc: Some("gAAAAA-id-2".to_owned()),
        expires_at: Some(at(7200)),
    };

    store
        .update_grant_upstream("grant-1", &refreshed)
        .await
        .unwrap();
    let stored = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(
        stored,
        Grant {
            upstream: refreshed,
            ..grant.clone()
        }
    );

    store
        .update_grant_upstream("grant-1", &UpstreamTokens::default())
        .await
        .unwrap();
    let stored = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(
        stored,
        Grant {
            upstream: UpstreamTokens::default(),
            ..grant
        }
    );
}

pub(super) async fn a_grant_for_an_unknown_user_is_refused(store: &dyn Store) {
    let orphan = Grant {
        id: "grant-1".to_owned(),
        user_id: "no-such-user".to_owned(),
        client_id: "client-1".to_owned(),
        provider: "dev".to_owned(),
        scope: String::new(),
        resource: "https://mcp.example/mcp".to_owned(),
        redirect_uri: None,
        upstream: UpstreamTokens::default(),
        created_at: t0(),
        revoked_at: None,
    };

    let error = store.insert_grant(&orphan).await.unwrap_err();

    assert!(matches!(error, StoreError::Database(_)), "got {error:?}");
    assert_eq!(store.get_grant("grant-1").await.unwrap(), None);
}

pub(super) async fn duplicate_grants_codes_and_refresh_tokens_are_conflicts(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;
    store
        .insert_code(&code("code-1", "grant-1", at(60)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_token("rt-1", "grant-1", at(3600)))
        .await
        .unwrap();

    let errors = [
        store.insert_grant(&grant).await.unwrap_err(),
        store
            .insert_code(&code("code-1", "grant-1", at(60)))
            .await
            .unwrap_err(),
        store
            .insert_refresh_token(&refresh_token("rt-1", "grant-1", at(3600)))
            .await
            .unwrap_err(),
    ];

    for error in errors {
        assert!(matches!(error, StoreError::Conflict(_)), "got {error:?}");
    }
}

pub(super) async fn a_code_is_redeemed_once_then_reported_as_replayed(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    let issued = code("code-1", "grant-1", at(60));
    store.insert_code(&issued).await.unwrap();
    // Reading a code does not spend it.
    assert_eq!(
        store.get_code("code-1").await.unwrap(),
        Some(issued.clone())
    );
    assert_eq!(
        store.get_code("code-1").await.unwrap(),
        Some(issued.clone())
    );
    assert_eq!(store.get_code("nope").await.unwrap(), None);
    let spent = AuthorizationCode {
        redeemed_at: Some(at(5)),
        ..issued
    };

    assert_eq!(
        store.redeem_code("code-1", at(5), None).await.unwrap(),
        CodeRedemption::Redeemed(spent.clone())
    );
    // The replay reports the first redemption's time, and is still recognised after expiry.
    assert_eq!(
        store.redeem_code("code-1", at(6), None).await.unwrap(),
        CodeRedemption::Replayed(spent.clone())
    );
    assert_eq!(
        store.redeem_code("code-1", at(120), None).await.unwrap(),
        CodeRedemption::Replayed(spent.clone())
    );
    assert_eq!(store.get_code("code-1").await.unwrap(), Some(spent));
}

pub(super) async fn a_code_reads_with_its_grant_and_email_without_being_spent(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;
    let issued = code("code-1", "grant-1", at(60));
    store.insert_code(&issued).await.unwrap();
    let exchange = CodeExchange {
        code: issued.clone(),
        grant: grant.clone(),
        email: Some("ada@example.com".to_owned()),
    };

    // The code's redirect URI is not the grant's: each keeps its own.
    assert_ne!(Some(&issued.redirect_uri), grant.redirect_uri.as_ref());
    assert_eq!(
        store.get_code_exchange("code-1").await.unwrap(),
        Some(exchange.clone())
    );
    assert_eq!(
        store.get_code_exchange("code-1").await.unwrap(),
        Some(exchange.clone())
    );
    assert_eq!(store.get_code_exchange("nope").await.unwrap(), None);

    store.redeem_code("code-1", at(5), None).await.unwrap();
    store.revoke_grant("grant-1", at(6)).await.unwrap();
    let read = store.get_code_exchange("code-1").await.unwrap().unwrap();
    assert_eq!(read.code.redeemed_at, Some(at(5)));
    assert_eq!(read.grant.revoked_at, Some(at(6)));
}

pub(super) async fn an_unknown_code_is_unknown(store: &dyn Store) {
    assert_eq!(
        store.redeem_code("nope", t0(), None).await.unwrap(),
        CodeRedemption::Unknown
    );
}

pub(super) async fn an_expired_code_is_unknown(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    store
        .insert_code(&code("code-1", "grant-1", at(60)))
        .await
        .unwrap();

    assert_eq!(
        store.redeem_code("code-1", at(60), None).await.unwrap(),
        CodeRedemption::Unknown
    );
    assert_eq!(
        store.redeem_code("code-1", at(61), None).await.unwrap(),
        CodeRedemption::Unknown
    );
    // Refused, not spent: a clock before expiry still finds it unspent.
    assert!(matches!(
        store.redeem_code("code-1", at(59), None).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
}

pub(super) async fn concurrent_redemptions_spend_a_code_once(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    store
        .insert_code(&code("code-1", "grant-1", at(60)))
        .await
        .unwrap();

    let outcomes =
        futures::future::join_all((0..8).map(|_| store.redeem_code("code-1", t0(), None))).await;

    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    let redeemed = outcomes
        .iter()
        .filter(|o| matches!(o, CodeRedemption::Redeemed(_)))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| matches!(o, CodeRedemption::Replayed(_)))
        .count();
    assert_eq!((redeemed, replayed), (1, 7));
}

pub(super) async fn a_refresh_token_is_stored_with_the_code_it_spends_and_only_then(
    store: &dyn Store,
) {
    seeded_grant(store, "grant-1").await;
    store
        .insert_code(&code("code-1", "grant-1", at(60)))
        .await
        .unwrap();
    let first = refresh_token("refresh-1", "grant-1", at(3600));
    assert!(matches!(
        store
            .redeem_code("code-1", t0(), Some(&first))
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.get_refresh_token("refresh-1").await.unwrap(),
        Some(first)
    );
    // A replay stores nothing.
    let second = refresh_token("refresh-2", "grant-1", at(3600));
    assert!(matches!(
        store
            .redeem_code("code-1", at(1), Some(&second))
            .await
            .unwrap(),
        CodeRedemption::Replayed(_)
    ));
    assert_eq!(store.get_refresh_token("refresh-2").await.unwrap(), None);
}

pub(super) async fn a_grant_and_its_code_are_stored_together_or_not_at_all(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;
    store
        .insert_code(&code("code-taken", "grant-1", at(60)))
        .await
        .unwrap();
    let mut another = grant.clone();
    another.id = "grant-2".to_owned();
    // The code's hash exists already: neither row is written.
    assert!(matches!(
        store
            .insert_grant_with_code(&another, &code("code-taken", "grant-2", at(60)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_grant("grant-2").await.unwrap(), None);
    store
        .insert_grant_with_code(&another, &code("code-2", "grant-2", at(60)))
        .await
        .unwrap();
    assert_eq!(store.get_grant("grant-2").await.unwrap(), Some(another));
    assert!(store.get_code("code-2").await.unwrap().is_some());
}

pub(super) async fn a_refresh_token_rotates_once_and_remembers_its_successor(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    let issued = refresh_token("rt-1", "grant-1", at(3600));
    store.insert_refresh_token(&issued).await.unwrap();
    assert_eq!(
        store.get_refresh_token("rt-1").await.unwrap(),
        Some(issued.clone())
    );

    assert!(
        store
            .rotate_refresh_token("rt-1", "gAAAAA-successor", at(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh_token("rt-1", "gAAAAA-other", at(11))
            .await
            .unwrap()
    );

    let rotated = RefreshToken {
        rotated_at: Some(at(10)),
        successor_enc: Some("gAAAAA-successor".to_owned()),
        ..issued
    };
    assert_eq!(
        store.get_refresh_token("rt-1").await.unwrap(),
        Some(rotated)
    );
    assert!(
        !store
            .rotate_refresh_token("nope", "gAAAAA-other", at(11))
            .await
            .unwrap()
    );
}

pub(super) async fn concurrent_rotations_let_one_caller_win(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    store
        .insert_refresh_token(&refresh_token("rt-1", "grant-1", at(3600)))
        .await
        .unwrap();
    let successors: Vec<String> = (0..8).map(|i| format!("gAAAAA-successor-{i}")).collect();

    let outcomes = futures::future::join_all(
        successors
            .iter()
            .map(|s| store.rotate_refresh_token("rt-1", s, at(10))),
    )
    .await;

    let winners: Vec<&String> = outcomes
        .into_iter()
        .zip(&successors)
        .filter(|(won, _)| *won.as_ref().unwrap())
        .map(|(_, s)| s)
        .collect();
    assert_eq!(winners.len(), 1);
    let stored = store.get_refresh_token("rt-1").await.unwrap().unwrap();
    assert_eq!(
        stored.successor_enc.as_ref(),
        Some(winners[0]),
        "the winner's successor is kept"
    );
}

pub(super) async fn a_deleted_refresh_token_is_gone(store: &dyn Store) {
    seeded_grant(store, "grant-1").await;
    store
        .insert_refresh_token(&refresh_token("rt-1", "grant-1", at(3600)))
        .await
        .unwrap();

    store.delete_refresh_token("rt-1").await.unwrap();
    store.delete_refresh_token("rt-1").await.unwrap();

    assert_eq!(store.get_refresh_token("rt-1").await.unwrap(), None);
}
