//! Remembered approvals, and the redirect URI a grant keeps.

use chrono::Duration;
use portcullis::store::{Consent, Store};

use super::fixtures::{KEEP, seeded_grant, t0};

const RESOURCE: &str = "https://mcp.example/mcp";

fn consent(user_id: &str, browser: &str, redirect_uri: &str) -> Consent {
    Consent {
        browser_hash: browser.to_owned(),
        client_id: "client-1".to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        resource: RESOURCE.to_owned(),
        user_id: user_id.to_owned(),
        scope: "a:b:read".to_owned(),
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
    }
}

async fn found(
    store: &dyn Store,
    browser: &str,
    redirect_uri: &str,
    at_minutes: i64,
) -> Option<Consent> {
    store
        .remembered_consent(
            browser,
            "client-1",
            redirect_uri,
            RESOURCE,
            t0() + Duration::minutes(at_minutes),
        )
        .await
        .unwrap()
}

pub(super) async fn a_grant_keeps_the_redirect_uri_it_was_issued_through(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;

    let stored = store.get_grant("grant-1").await.unwrap().unwrap();

    assert_eq!(stored.redirect_uri.as_deref(), Some("http://127.0.0.1/cb"));
    assert_eq!(stored, grant);
}

pub(super) async fn a_consent_is_found_for_its_browser_client_redirect_and_resource_until_it_expires(
    store: &dyn Store,
) {
    let grant = seeded_grant(store, "grant-1").await;
    let mine = consent(&grant.user_id, "browser-a", "http://127.0.0.1/cb");
    store.remember_consent(&mine).await.unwrap();

    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/cb", 59).await,
        Some(mine.clone())
    );
    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/cb", 60).await,
        None,
        "expired"
    );
    assert_eq!(
        found(store, "browser-b", "http://127.0.0.1/cb", 1).await,
        None,
        "another browser"
    );
    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/other", 1).await,
        None,
        "another redirect"
    );
    let other_resource = store
        .remembered_consent(
            "browser-a",
            "client-1",
            "http://127.0.0.1/cb",
            "https://x/mcp",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(other_resource, None);

    // Approving again replaces the approval (new scopes, new expiry).
    let again = Consent {
        scope: "a:b:read a:b:write".to_owned(),
        expires_at: t0() + Duration::hours(2),
        ..mine
    };
    store.remember_consent(&again).await.unwrap();
    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/cb", 90).await,
        Some(again)
    );

    store
        .forget_consent("browser-a", "client-1", "http://127.0.0.1/cb", RESOURCE)
        .await
        .unwrap();
    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/cb", 1).await,
        None
    );
}

pub(super) async fn revoking_a_grant_forgets_the_consents_of_its_person_client_and_redirect(
    store: &dyn Store,
) {
    let grant = seeded_grant(store, "grant-1").await;
    let user = grant.user_id.clone();
    store
        .remember_consent(&consent(&user, "browser-a", "http://127.0.0.1/cb"))
        .await
        .unwrap();
    store
        .remember_consent(&consent(&user, "browser-b", "http://127.0.0.1/cb"))
        .await
        .unwrap();
    // Another installation of the same client (another redirect URI) is not this grant's.
    store
        .remember_consent(&consent(&user, "browser-a", "http://127.0.0.1/other"))
        .await
        .unwrap();

    store.revoke_grant("grant-1", t0()).await.unwrap();

    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/cb", 1).await,
        None
    );
    assert_eq!(
        found(store, "browser-b", "http://127.0.0.1/cb", 1).await,
        None
    );
    assert!(
        found(store, "browser-a", "http://127.0.0.1/other", 1)
            .await
            .is_some()
    );
}

pub(super) async fn purging_deletes_expired_consents(store: &dyn Store) {
    let grant = seeded_grant(store, "grant-1").await;
    store
        .remember_consent(&consent(&grant.user_id, "browser-a", "http://127.0.0.1/cb"))
        .await
        .unwrap();
    let before = store
        .purge_expired(t0() + Duration::minutes(59), &KEEP)
        .await
        .unwrap();
    assert!(
        found(store, "browser-a", "http://127.0.0.1/cb", 1)
            .await
            .is_some()
    );

    let after = store
        .purge_expired(t0() + Duration::hours(1), &KEEP)
        .await
        .unwrap();

    assert_eq!(after, before + 1, "the expired consent is counted");
    assert_eq!(
        found(store, "browser-a", "http://127.0.0.1/cb", 1).await,
        None
    );
}
