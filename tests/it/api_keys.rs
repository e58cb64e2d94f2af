//! API keys on the MCP endpoints: a machine acting for its owner, within the owner's
//! entitlement, refused when revoked, expired or its owner is switched off, and never accepted
//! by the OAuth endpoints. On SQLite and Postgres.

use chrono::{Duration, Utc};
use portcullis::oauth::api_keys;
use portcullis::store::{AuditFilter, NewUser};
use reqwest::StatusCode;

use crate::gateway::{call, rec_url};
use crate::people::{app_with, claims_of, tokens};
use crate::support::app::{Db, TestApp};

on_both!(
    a_key_acts_for_its_owner_within_the_owners_entitlement,
    a_revoked_or_expired_key_or_a_disabled_owner_is_refused,
);

/// A key for `user_id` with `scopes`, stored; returns the key and its id.
async fn key_for(
    app: &TestApp,
    user_id: &str,
    scopes: &str,
    expires_in: Option<Duration>,
) -> (String, String) {
    let now = Utc::now();
    let (record, key) =
        api_keys::issue(user_id, "ci-bot", scopes, expires_in.map(|d| now + d), now);
    app.state.store.insert_api_key(&record).await.unwrap();
    (key, record.id)
}

async fn a_key_acts_for_its_owner_within_the_owners_entitlement(db: Db) {
    let (app, _backend) = app_with(db, "default_role = \"reader\"\n", "", false).await;
    // The owner signs in once (a reader) so they have an identity; keys need no sign-in.
    let (_, signed) = tokens(&app, "corp", "gus").await;
    let owner = claims_of(&signed)["sub"].as_str().unwrap().to_owned();
    let (key, id) = key_for(&app, &owner, "rec:*:call", None).await;
    assert!(key.starts_with(api_keys::PREFIX), "{key}");

    // Within both the key's scopes and the owner's: allowed, and audited with the key.
    let allowed = app
        .mcp(&rec_url(&app), Some(&key), call(1, "anything"))
        .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    // The key says rec:*:call, but a reader may not call echo: refused, naming the role.
    let beyond = app.mcp(&rec_url(&app), Some(&key), call(2, "echo")).await;
    assert_eq!(beyond.status(), StatusCode::FORBIDDEN);
    let header = beyond.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("the role engineer grants it"), "{header}");

    app.state.auditor.flush().await;
    let events = app
        .state
        .store
        .audit_events(&AuditFilter {
            user: Some(owner.clone()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let tag = format!("api-key:{id}");
    assert!(
        events
            .iter()
            .any(|e| e.client_id.as_deref() == Some(tag.as_str())),
        "{events:#?}"
    );
    let listed = app.state.store.list_api_keys(Some(&owner)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "the use is recorded");
    assert!(key.starts_with(&listed[0].prefix));

    // Never on the OAuth endpoints: introspection wants client authentication, not a key.
    let introspect = app
        .http
        .post(app.url("/introspect"))
        .bearer_auth(&key)
        .form(&[("token", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(introspect.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = introspect.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_id")
    );
    app.stop().await;
}

async fn a_revoked_or_expired_key_or_a_disabled_owner_is_refused(db: Db) {
    let (app, _backend) = app_with(db, "default_role = \"engineer\"\n", "", false).await;
    let store = app.state.store.clone();
    let now = Utc::now();
    // An owner the operator provisioned, who never signed in: their roles alone count.
    let owner = store
        .create_user(
            &NewUser {
                email: Some("bot-owner@example.com".into()),
                name: None,
            },
            now,
        )
        .await
        .unwrap();
    let (good, _) = key_for(&app, &owner.id, "rec:echo:call", None).await;
    let ok = app.mcp(&rec_url(&app), Some(&good), call(1, "echo")).await;
    assert_eq!(ok.status(), StatusCode::OK);

    let (revoked, revoked_id) = key_for(&app, &owner.id, "rec:echo:call", None).await;
    assert!(store.revoke_api_key(&revoked_id, now).await.unwrap());
    let (expired, _) = key_for(
        &app,
        &owner.id,
        "rec:echo:call",
        Some(Duration::seconds(-1)),
    )
    .await;
    let unknown = format!("{}{}", api_keys::PREFIX, "x".repeat(43));
    for key in [&revoked, &expired, &unknown] {
        let refused = app.mcp(&rec_url(&app), Some(key), call(2, "echo")).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{key}");
    }

    let (fresh, _) = key_for(&app, &owner.id, "rec:echo:call", None).await;
    store.set_user_disabled(&owner.id, Some(now)).await.unwrap();
    let disabled = app.mcp(&rec_url(&app), Some(&fresh), call(3, "echo")).await;
    assert_eq!(disabled.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
