//! Expiry compared with `now` as times, not as text: a stored time and a clock that fall in the
//! same second, one with a fraction and one without, must still order correctly everywhere a
//! statement compares them (`expires_at > now` on reads, `expires_at <= now` when purging).

use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis::store::{CodeRedemption, Store};

use super::fixtures::{KEEP, code, flow, refresh_token, revoked_jtis, seeded_grant, t0};

/// A whole second (no fraction at all), a minute after `t0()`.
fn whole() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 1, 0).unwrap()
}

/// Whether the flow can be read at `now`.
async fn visible(store: &dyn Store, id: &str, now: DateTime<Utc>) -> bool {
    store.get_flow(id, now).await.unwrap().is_some()
}

pub(super) async fn expiry_within_one_second_compares_as_time(store: &dyn Store) {
    let half_past = whole() + Duration::milliseconds(500);
    let between = whole() + Duration::milliseconds(250);
    let just_before = whole() - Duration::microseconds(1);
    seeded_grant(store, "grant-1").await;
    for (suffix, expires_at) in [("whole", whole()), ("half", half_past)] {
        store
            .insert_flow(&flow(&format!("flow-{suffix}"), expires_at))
            .await
            .unwrap();
        store
            .insert_code(&code(&format!("code-{suffix}"), "grant-1", expires_at))
            .await
            .unwrap();
        let token = refresh_token(&format!("rt-{suffix}"), "grant-1", expires_at);
        store.insert_refresh_token(&token).await.unwrap();
        store
            .revoke_access_token(&format!("jti-{suffix}"), expires_at, t0())
            .await
            .unwrap();
    }

    // A whole-second expiry against clocks just before, at, and a fraction after it.
    assert!(visible(store, "flow-whole", just_before).await);
    assert!(!visible(store, "flow-whole", whole()).await);
    assert!(!visible(store, "flow-whole", between).await);
    // An expiry with a fraction against a whole-second clock in the same second.
    assert!(visible(store, "flow-half", whole()).await);
    assert!(visible(store, "flow-half", between).await);
    assert!(!visible(store, "flow-half", half_past).await);
    let half = flow("flow-half", half_past);
    assert!(store.update_flow(&half, between).await.unwrap());
    assert!(!store.update_flow(&half, half_past).await.unwrap());

    assert_eq!(
        store
            .redeem_code("code-whole", between, None)
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
    assert!(matches!(
        store.redeem_code("code-half", whole(), None).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    // Purging a fraction after the whole second takes exactly the four whole-second rows.
    assert_eq!(store.purge_expired(just_before, &KEEP).await.unwrap(), 0);
    assert_eq!(store.purge_expired(between, &KEEP).await.unwrap(), 4);
    assert!(visible(store, "flow-half", between).await);
    assert_eq!(store.get_refresh_token("rt-whole").await.unwrap(), None);
    assert!(store.get_refresh_token("rt-half").await.unwrap().is_some());
    assert!(store.get_code("code-half").await.unwrap().is_some());
    assert_eq!(revoked_jtis(store).await, vec!["jti-half".to_owned()]);
}

/// Grants no token can come from any more, and registered clients left without a grant, are
/// purged; everything a token or a client could still use stays.
pub(super) async fn dead_grants_and_unused_clients_are_purged(store: &dyn Store) {
    use super::fixtures::{at, client};
    use portcullis::store::Retention;

    // Grants issued at t0: one revoked at 10 s, one with a refresh token good for a day, one
    // with an unredeemed code, one with nothing left.
    for id in ["revoked", "refreshable", "pending", "spent"] {
        seeded_grant(store, id).await;
    }
    store.revoke_grant("revoked", at(10)).await.unwrap();
    let token = refresh_token("rt", "refreshable", at(86_400));
    store.insert_refresh_token(&token).await.unwrap();
    store
        .insert_code(&code("code", "pending", at(86_400)))
        .await
        .unwrap();
    // Clients registered at t0: `client-1` holds the grants, `idle` none.
    for id in ["client-1", "idle"] {
        store.insert_client(&client(id)).await.unwrap();
    }
    let keep = Retention {
        dead_grants: Some(Duration::seconds(100)),
        unused_clients: Some(Duration::seconds(1000)),
        ..KEEP
    };
    let grants = || async {
        let mut ids: Vec<String> = ["revoked", "refreshable", "pending", "spent"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut kept = Vec::new();
        for id in ids.drain(..) {
            if store.get_grant(&id).await.unwrap().is_some() {
                kept.push(id);
            }
        }
        kept
    };

    // Before a token's life has passed, nothing goes.
    assert_eq!(store.purge_expired(at(99), &keep).await.unwrap(), 0);
    assert_eq!(grants().await.len(), 4);
    // After it: the revoked grant and the one with nothing left.
    assert_eq!(store.purge_expired(at(111), &keep).await.unwrap(), 2);
    assert_eq!(grants().await, ["refreshable", "pending"]);
    // The idle client goes after its time; the one holding grants stays.
    assert_eq!(store.purge_expired(at(999), &keep).await.unwrap(), 0);
    assert_eq!(store.purge_expired(at(1000), &keep).await.unwrap(), 1);
    assert!(store.get_client("idle").await.unwrap().is_none());
    assert!(store.get_client("client-1").await.unwrap().is_some());
}
