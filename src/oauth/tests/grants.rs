//! The code and refresh grants, with the clock moved by hand.

use chrono::Duration;

use super::*;
use crate::oauth::error::ErrorCode;
use crate::oauth::upstream_tokens::UpstreamRefreshError;
use crate::store::{Grant, UpstreamTokens};

/// `client`'s tokens after a sign-in at `t0()` asking for `orders:invoices:read`.
async fn signed_in(f: &Fixture, client: &str) -> serde_json::Value {
    let code = f.sign_in(client, "orders:invoices:read", t0()).await;
    f.token(&Fixture::code_body(client, &code, VERIFIER), t0())
        .await
        .unwrap()
}

fn refresh_body(client_id: &str, refresh_token: &str) -> String {
    format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh_token}")
}

#[tokio::test]
async fn a_code_is_checked_before_it_is_spent_and_a_replay_revokes_the_grant() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let code = f.sign_in(&client, "orders:invoices:read", t0()).await;

    let wrong = f
        .token(
            &Fixture::code_body(
                &client,
                &code,
                "a-wrong-verifier-that-is-long-enough-0123456789abcdef",
            ),
            t0(),
        )
        .await;
    assert_eq!(wrong.unwrap_err().code, ErrorCode::InvalidGrant);
    // The failed attempt changed nothing: the right verifier still works.
    let tokens = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let claims = f
        .server
        .keys
        .verify(access, BASE, &format!("{BASE}/mcp"), t0())
        .unwrap();
    assert_eq!(claims.client_id, client);
    assert_eq!(
        tokens["expires_in"],
        f.server.lifetimes.access.num_seconds()
    );

    let replay = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await;
    assert_eq!(replay.unwrap_err().code, ErrorCode::InvalidGrant);
    assert!(
        f.server.revocations.is_revoked("any", &claims.sid),
        "the replay revoked the grant"
    );
    let refresh = refresh_body(&client, tokens["refresh_token"].as_str().unwrap());
    assert_eq!(
        f.token(&refresh, t0()).await.unwrap_err().code,
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn a_code_expires_after_its_lifetime() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let code = f.sign_in(&client, "orders:invoices:read", t0()).await;
    let later = t0() + f.server.lifetimes.code + Duration::seconds(1);
    let late = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), later)
        .await;
    assert_eq!(late.unwrap_err().code, ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn refresh_rotates_a_duplicate_in_the_grace_window_gets_the_same_successor_and_reuse_after_it_revokes()
 {
    let f = Fixture::new().await;
    let client = f.register().await;
    let first = signed_in(&f, &client).await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();

    let at = t0() + Duration::minutes(5);
    let rotated = f.token(&refresh_body(&client, &old), at).await.unwrap();
    let successor = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(successor, old);
    let duplicate = f
        .token(&refresh_body(&client, &old), at + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        duplicate["refresh_token"],
        successor.as_str(),
        "a concurrent retry is not a theft"
    );

    let after_grace = at + f.server.lifetimes.refresh_grace + Duration::seconds(1);
    let reuse = f.token(&refresh_body(&client, &old), after_grace).await;
    assert_eq!(reuse.unwrap_err().code, ErrorCode::InvalidGrant);
    let revoked = f
        .token(&refresh_body(&client, &successor), after_grace)
        .await;
    assert_eq!(
        revoked.unwrap_err().code,
        ErrorCode::InvalidGrant,
        "the whole grant ended"
    );
}

#[tokio::test]
async fn a_refresh_can_narrow_the_scope_but_never_widen_it() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let code = f
        .sign_in(&client, "orders:invoices:read orders:invoices:write", t0())
        .await;
    let tokens = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let wider = format!(
        "{}&scope=orders%3Aall%3Adelete",
        refresh_body(&client, refresh)
    );
    assert_eq!(
        f.token(&wider, t0()).await.unwrap_err().code,
        ErrorCode::InvalidScope
    );
    let narrower = format!(
        "{}&scope=orders%3Ainvoices%3Aread",
        refresh_body(&client, refresh)
    );
    assert_eq!(
        f.token(&narrower, t0()).await.unwrap()["scope"],
        "orders:invoices:read"
    );
}

#[tokio::test]
async fn an_expired_upstream_token_is_refreshed_upstream_and_a_refused_one_ends_the_grant() {
    let f = Fixture::new().await;
    let client = f.register().await;
    // The upstream token expires an hour after sign-in.
    let code = f.sign_in(&client, "orders:invoices:read", t0()).await;
    let tokens = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    let soon = t0() + Duration::minutes(30);
    let still_fresh = f
        .token(&refresh_body(&client, &refresh), soon)
        .await
        .unwrap();
    assert_eq!(
        *f.provider.refreshes.lock().unwrap(),
        0,
        "not expired: no upstream call"
    );

    let later = t0() + Duration::hours(2);
    *f.provider.refresh.lock().unwrap() = Some(Ok(ProviderTokens {
        access_token: Some("upstream-access-2".into()),
        expires_at: Some(later + Duration::hours(1)),
        ..ProviderTokens::default()
    }));
    let next = still_fresh["refresh_token"].as_str().unwrap().to_owned();
    let renewed = f.token(&refresh_body(&client, &next), later).await.unwrap();
    assert_eq!(*f.provider.refreshes.lock().unwrap(), 1);
    let claims = f
        .server
        .keys
        .verify_any_audience(renewed["access_token"].as_str().unwrap(), BASE)
        .unwrap();
    let grant = f
        .server
        .store
        .get_grant(&claims.sid)
        .await
        .unwrap()
        .unwrap();
    let upstream = f
        .server
        .secrets
        .decrypt(grant.upstream.access_token_enc.as_deref().unwrap())
        .unwrap();
    assert_eq!(upstream, "upstream-access-2");
    let kept = f
        .server
        .secrets
        .decrypt(grant.upstream.refresh_token_enc.as_deref().unwrap())
        .unwrap();
    assert_eq!(
        kept, "upstream-refresh",
        "a provider that does not rotate keeps the old one valid"
    );

    let much_later = later + Duration::hours(2);
    *f.provider.refresh.lock().unwrap() = Some(Err(UpstreamError::InvalidGrant));
    let ended = f
        .token(
            &refresh_body(&client, renewed["refresh_token"].as_str().unwrap()),
            much_later,
        )
        .await;
    assert_eq!(ended.unwrap_err().code, ErrorCode::InvalidGrant);
    assert!(f.server.revocations.is_revoked("any", &claims.sid));
}

/// A signed-in grant whose upstream token has expired by `t0() + 2h`, as read then.
async fn expired_upstream_grant(f: &Fixture) -> Grant {
    let client = f.register().await;
    let tokens = signed_in(f, &client).await;
    let claims = f
        .server
        .keys
        .verify_any_audience(tokens["access_token"].as_str().unwrap(), BASE)
        .unwrap();
    f.server
        .store
        .get_grant(&claims.sid)
        .await
        .unwrap()
        .unwrap()
}

fn upstream_access(f: &Fixture, upstream: &UpstreamTokens) -> String {
    f.server
        .secrets
        .decrypt(upstream.access_token_enc.as_deref().unwrap())
        .unwrap()
}

fn fresh(access: &str, now: DateTime<Utc>) -> ProviderTokens {
    ProviderTokens {
        access_token: Some(access.into()),
        refresh_token: Some(format!("{access}-refresh")),
        expires_at: Some(now + Duration::hours(1)),
        ..ProviderTokens::default()
    }
}

#[tokio::test]
async fn only_invalid_grant_upstream_ends_a_grant_and_other_refusals_leave_it_alone() {
    let f = Fixture::new().await;
    let grant = expired_upstream_grant(&f).await;
    let later = t0() + Duration::hours(2);
    for refusal in [
        UpstreamError::Refused("invalid_client".into()),
        UpstreamError::Refused("temporarily_unavailable".into()),
        UpstreamError::Transport("connection refused".into()),
    ] {
        *f.provider.refresh.lock().unwrap() = Some(Err(refusal));
        let failed = f
            .server
            .upstream
            .refresh_if_expired(grant.clone(), later)
            .await;
        assert_eq!(failed.unwrap_err(), UpstreamRefreshError::Unavailable);
        assert!(!f.server.revocations.is_revoked("any", &grant.id));
        let stored = f.server.store.get_grant(&grant.id).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, None);
        assert_eq!(stored.upstream, grant.upstream, "nothing changed");
    }
    // Once the provider is back, the same grant refreshes.
    *f.provider.refresh.lock().unwrap() = Some(Ok(fresh("upstream-access-2", later)));
    let refreshed = f
        .server
        .upstream
        .refresh_if_expired(grant, later)
        .await
        .unwrap();
    assert_eq!(
        upstream_access(&f, &refreshed.upstream),
        "upstream-access-2"
    );
}

#[tokio::test]
async fn concurrent_callers_of_one_grant_share_one_upstream_refresh() {
    let f = Fixture::new().await;
    let grant = expired_upstream_grant(&f).await;
    let later = t0() + Duration::hours(2);
    // The provider answers once; a second refresh with the same token would fail.
    *f.provider.refresh.lock().unwrap() = Some(Ok(fresh("upstream-access-2", later)));
    let refreshed = futures::future::join_all(
        (0..5).map(|_| f.server.upstream.refresh_if_expired(grant.clone(), later)),
    )
    .await;
    for outcome in &refreshed {
        let grant = outcome.as_ref().unwrap();
        assert_eq!(upstream_access(&f, &grant.upstream), "upstream-access-2");
    }
    // A caller that read the grant before the refresh was stored gets the same answer.
    let straggler = f
        .server
        .upstream
        .refresh_if_expired(grant, later + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        upstream_access(&f, &straggler.upstream),
        "upstream-access-2"
    );
    assert_eq!(*f.provider.refreshes.lock().unwrap(), 1);
}

/// Refreshes a grant that another instance refreshed first (storing `theirs`), this instance
/// still holding the grant as read before, while the provider answers it `answer`: the tokens
/// this instance goes on with, and the grant as stored after.
async fn refresh_after_another_instance(
    f: &Fixture,
    answer: Result<ProviderTokens, UpstreamError>,
) -> (Grant, Grant) {
    let later = t0() + Duration::hours(2);
    let stale = expired_upstream_grant(f).await;
    let theirs = f.server.upstream.encrypt(&fresh("theirs", later));
    f.server
        .store
        .update_grant_upstream(&stale.id, &theirs)
        .await
        .unwrap();
    *f.provider.refresh.lock().unwrap() = Some(answer);
    let used = f
        .server
        .upstream
        .refresh_if_expired(stale.clone(), later)
        .await
        .unwrap();
    let stored = f.server.store.get_grant(&stale.id).await.unwrap().unwrap();
    (used, stored)
}

#[tokio::test]
async fn a_refresh_another_instance_stored_first_stands() {
    let f = Fixture::new().await;
    // The spent refresh token is refused (`invalid_grant`): the other instance's tokens are
    // used, and the grant stands.
    let (used, stored) = refresh_after_another_instance(&f, Err(UpstreamError::InvalidGrant)).await;
    assert_eq!(upstream_access(&f, &used.upstream), "theirs");
    assert_eq!(stored.revoked_at, None);
    assert!(!f.server.revocations.is_revoked("any", &stored.id));

    // The provider (not rotating, or slow to notice) answers this instance too: its tokens are
    // not stored over the other's.
    let later = t0() + Duration::hours(2);
    let (used, stored) = refresh_after_another_instance(&f, Ok(fresh("ours", later))).await;
    assert_eq!(upstream_access(&f, &used.upstream), "theirs");
    assert_eq!(upstream_access(&f, &stored.upstream), "theirs");
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime_however_often_it_is_refreshed() {
    let f = Fixture::new().await;
    let session = f.server.lifetimes.session;
    let client = f.register().await;
    let code = f.sign_in(&client, "orders:invoices:read", t0()).await;
    let mut tokens = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await
        .unwrap();
    // Refreshed every day (the upstream token, refreshed once, outlives the session).
    let mut day = t0();
    while day + Duration::days(1) < t0() + session - Duration::minutes(10) {
        day += Duration::days(1);
        *f.provider.refresh.lock().unwrap() = Some(Ok(ProviderTokens {
            access_token: Some("upstream-access".into()),
            expires_at: Some(t0() + session + Duration::days(1)),
            ..ProviderTokens::default()
        }));
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        tokens = f
            .token(&refresh_body(&client, &refresh), day)
            .await
            .unwrap();
    }
    // Ten minutes before the end, the access token lives ten minutes, not an hour.
    let near_end = t0() + session - Duration::minutes(10);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let last = f
        .token(&refresh_body(&client, &refresh), near_end)
        .await
        .unwrap();
    assert_eq!(last["expires_in"], 600);
    let refresh = last["refresh_token"].as_str().unwrap().to_owned();
    let over = f
        .token(&refresh_body(&client, &refresh), t0() + session)
        .await;
    assert_eq!(over.unwrap_err().code, ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn with_require_upstream_session_a_grant_ends_when_its_upstream_token_does() {
    for required in [false, true] {
        let f = Fixture::with(&format!("require_upstream_session = {required}\n")).await;
        let client = f.register().await;
        // A provider that issues no refresh token: the upstream session cannot be renewed.
        let mut once = identity("ada@example.com", t0() + Duration::hours(1));
        once.tokens.refresh_token = None;
        let code = f
            .sign_in_as(&client, "orders:invoices:read", once, t0())
            .await;
        let tokens = f
            .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
            .await
            .unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let later = f
            .token(&refresh_body(&client, refresh), t0() + Duration::hours(2))
            .await;
        if required {
            assert_eq!(later.unwrap_err().code, ErrorCode::InvalidGrant);
        } else {
            assert!(later.is_ok(), "without the setting the grant goes on");
        }
    }
}

/// An id_token-shaped string carrying `claims` (the scripted provider verifies nothing).
fn id_token_with(claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let encode = |value: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    format!(
        "{}.{}.sig",
        encode(serde_json::json!({"alg": "RS256"})),
        encode(claims)
    )
}

#[tokio::test]
async fn claims_a_refreshed_id_token_carries_decide_the_roles_from_then_on() {
    let f = Fixture::with(
        "[providers.claim_roles.groups]\nplatform = \"engineer\"\n[roles.engineer]\nscopes = [\"orders:*:*\"]\n",
    )
    .await;
    let client = f.register().await;
    let mut ada = identity("ada@example.com", t0() + Duration::hours(1));
    ada.claims = serde_json::json!({"groups": ["platform"]});
    let code = f
        .sign_in_as(
            &client,
            "orders:invoices:read orders:invoices:write",
            ada,
            t0(),
        )
        .await;
    let tokens = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await
        .unwrap();
    assert_eq!(
        tokens["scope"],
        "orders:invoices:read orders:invoices:write"
    );

    // A refreshed id_token without the claim keeps the last one seen…
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut at = t0();
    for (claims, scope) in [
        (
            serde_json::json!({"sub": "sub-ada@example.com"}),
            "orders:invoices:read orders:invoices:write",
        ),
        // …one that says the person left the group ends the role.
        (serde_json::json!({"groups": []}), ""),
    ] {
        at += Duration::hours(2);
        *f.provider.refresh.lock().unwrap() = Some(Ok(ProviderTokens {
            access_token: Some("upstream-access".into()),
            id_token: Some(id_token_with(claims)),
            expires_at: Some(at + Duration::hours(1)),
            ..ProviderTokens::default()
        }));
        let next = f.token(&refresh_body(&client, &refresh), at).await.unwrap();
        assert_eq!(next["scope"], scope);
        refresh = next["refresh_token"].as_str().unwrap().to_owned();
    }
}
