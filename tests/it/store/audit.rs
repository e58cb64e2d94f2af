//! The audit trail: events read back whole, filtered, newest first.

use chrono::{Duration, TimeZone, Utc};
use portcullis::store::{AuditEvent, AuditFilter, AuditKind, Decision, Store, StoreError};

use super::fixtures::at;

/// A tool call at `at(seconds)` with every field set.
fn tool_call(id: &str, seconds: i64, user: &str, email: &str, tool: &str) -> AuditEvent {
    AuditEvent {
        id: id.to_owned(),
        time: at(seconds),
        kind: AuditKind::ToolCall,
        request_id: Some(format!("req-{id}")),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
        user_id: Some(user.to_owned()),
        user_email: Some(email.to_owned()),
        client_id: Some("client-1".to_owned()),
        backend: Some("orders".to_owned()),
        tool: Some(tool.to_owned()),
        decision: Decision::Allowed,
        reason: None,
        outcome: Some("ok".to_owned()),
        latency_ms: Some(12),
        response_bytes: Some(2048),
    }
}

/// An event with nothing but what every event has.
fn bare(id: &str, seconds: i64, kind: AuditKind) -> AuditEvent {
    AuditEvent {
        id: id.to_owned(),
        time: at(seconds),
        kind,
        request_id: None,
        trace_id: None,
        user_id: None,
        user_email: None,
        client_id: None,
        backend: None,
        tool: None,
        decision: Decision::Denied,
        reason: Some("invalid_token".to_owned()),
        outcome: None,
        latency_ms: None,
        response_bytes: None,
    }
}

fn everything() -> AuditFilter {
    AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }
}

fn ids(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

/// The trail of the filter cases: two users, two tools, a sign-in and a refused request.
async fn seed(store: &dyn Store) {
    let mut sign_in = bare("e-sign-in", 0, AuditKind::SignIn);
    sign_in.decision = Decision::Allowed;
    sign_in.reason = None;
    sign_in.user_id = Some("user-ada".to_owned());
    sign_in.user_email = Some("ada@example.com".to_owned());
    let mut other_backend = tool_call("e-4", 40, "user-bob", "bob@example.com", "list_orders");
    other_backend.backend = Some("billing".to_owned());
    store
        .insert_audit_events(&[
            sign_in,
            tool_call("e-1", 10, "user-ada", "ada@example.com", "list_orders"),
            tool_call("e-2", 20, "user-bob", "bob@example.com", "list_orders"),
            tool_call("e-3", 30, "user-ada", "ada@example.com", "cancel_order"),
            other_backend,
            bare("e-denied", 50, AuditKind::RequestDenied),
        ])
        .await
        .unwrap();
}

pub(super) async fn an_audit_event_reads_back_with_every_field(store: &dyn Store) {
    let full = tool_call("e-full", 0, "user-1", "zoë@example.com", "list_orders");
    let mut denied = bare("e-bare", 1, AuditKind::TokenRevoked);
    denied.reason = None;
    // Both databases keep microseconds and drop anything finer.
    denied.time =
        Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap() + Duration::nanoseconds(987_654_321);

    store
        .insert_audit_events(&[full.clone(), denied.clone()])
        .await
        .unwrap();

    let stored = store.audit_events(&everything()).await.unwrap();
    denied.time =
        Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap() + Duration::microseconds(987_654);
    assert_eq!(stored, vec![denied, full]);
}

pub(super) async fn every_audit_kind_and_decision_round_trips(store: &dyn Store) {
    let events: Vec<AuditEvent> = AuditKind::ALL
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut event = bare(&format!("e-{i}"), i as i64, kind);
            if i % 2 == 0 {
                event.decision = Decision::Allowed;
            }
            event
        })
        .collect();

    store.insert_audit_events(&events).await.unwrap();

    let mut stored = store.audit_events(&everything()).await.unwrap();
    stored.reverse();
    assert_eq!(stored, events);
}

pub(super) async fn audit_events_filter_by_user_id_or_email(store: &dyn Store) {
    seed(store).await;

    let by_id = AuditFilter {
        user: Some("user-ada".to_owned()),
        ..everything()
    };
    let by_email = AuditFilter {
        user: Some("ada@example.com".to_owned()),
        ..everything()
    };
    let nobody = AuditFilter {
        user: Some("ADA@example.com".to_owned()),
        ..everything()
    };

    let expected = vec!["e-3", "e-1", "e-sign-in"];
    assert_eq!(ids(&store.audit_events(&by_id).await.unwrap()), expected);
    assert_eq!(ids(&store.audit_events(&by_email).await.unwrap()), expected);
    assert!(store.audit_events(&nobody).await.unwrap().is_empty());
}

pub(super) async fn audit_events_filter_by_tool_backend_and_kind(store: &dyn Store) {
    seed(store).await;

    let tool = AuditFilter {
        tool: Some("list_orders".to_owned()),
        ..everything()
    };
    let backend = AuditFilter {
        backend: Some("billing".to_owned()),
        ..everything()
    };
    let kind = AuditFilter {
        kind: Some(AuditKind::RequestDenied),
        ..everything()
    };
    let combined = AuditFilter {
        user: Some("bob@example.com".to_owned()),
        tool: Some("list_orders".to_owned()),
        backend: Some("orders".to_owned()),
        kind: Some(AuditKind::ToolCall),
        ..everything()
    };

    assert_eq!(
        ids(&store.audit_events(&tool).await.unwrap()),
        vec!["e-4", "e-2", "e-1"]
    );
    assert_eq!(
        ids(&store.audit_events(&backend).await.unwrap()),
        vec!["e-4"]
    );
    assert_eq!(
        ids(&store.audit_events(&kind).await.unwrap()),
        vec!["e-denied"]
    );
    assert_eq!(
        ids(&store.audit_events(&combined).await.unwrap()),
        vec!["e-2"]
    );
}

pub(super) async fn audit_events_since_a_time_include_that_time(store: &dyn Store) {
    seed(store).await;

    let since = |time| AuditFilter {
        since: Some(time),
        ..everything()
    };

    assert_eq!(
        ids(&store.audit_events(&since(at(30))).await.unwrap()),
        vec!["e-denied", "e-4", "e-3"]
    );
    // One microsecond later is after e-3.
    assert_eq!(
        ids(&store
            .audit_events(&since(at(30) + Duration::microseconds(1)))
            .await
            .unwrap()),
        vec!["e-denied", "e-4"]
    );
    assert!(store.audit_events(&since(at(51))).await.unwrap().is_empty());
}

pub(super) async fn audit_events_list_newest_first_up_to_the_limit(store: &dyn Store) {
    seed(store).await;
    // Same time as e-3: the id breaks the tie, descending.
    store
        .insert_audit_events(&[bare("e-3a", 30, AuditKind::TokenIssued)])
        .await
        .unwrap();

    let newest = |limit| AuditFilter {
        limit,
        ..AuditFilter::default()
    };

    assert_eq!(
        ids(&store.audit_events(&newest(3)).await.unwrap()),
        vec!["e-denied", "e-4", "e-3a"]
    );
    assert_eq!(
        ids(&store.audit_events(&newest(100)).await.unwrap()),
        vec!["e-denied", "e-4", "e-3a", "e-3", "e-2", "e-1", "e-sign-in"]
    );
    assert!(store.audit_events(&newest(0)).await.unwrap().is_empty());
}

pub(super) async fn batches_of_500_and_more_audit_events_are_inserted(store: &dyn Store) {
    let events: Vec<AuditEvent> = (0..1201)
        .map(|i| {
            tool_call(
                &format!("e-{i:04}"),
                i,
                "user-1",
                "ada@example.com",
                "list_orders",
            )
        })
        .collect();

    store.insert_audit_events(&events[..500]).await.unwrap();
    // More than one statement's worth, in one transaction.
    store.insert_audit_events(&events[500..]).await.unwrap();
    store.insert_audit_events(&[]).await.unwrap();

    let all = AuditFilter {
        limit: 5000,
        ..AuditFilter::default()
    };
    let mut stored = store.audit_events(&all).await.unwrap();
    stored.reverse();
    assert_eq!(stored, events);
}

pub(super) async fn a_batch_with_a_duplicate_id_inserts_nothing(store: &dyn Store) {
    store
        .insert_audit_events(&[bare("e-1", 0, AuditKind::SignIn)])
        .await
        .unwrap();

    let error = store
        .insert_audit_events(&[
            bare("e-2", 1, AuditKind::SignIn),
            bare("e-1", 2, AuditKind::SignIn),
        ])
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Conflict(_)), "got {error:?}");
    assert_eq!(
        ids(&store.audit_events(&everything()).await.unwrap()),
        vec!["e-1"]
    );
}

pub(super) async fn audit_events_older_than_the_retention_are_purged(store: &dyn Store) {
    let events = [
        bare("old", 0, AuditKind::SignIn),
        bare("edge", 50, AuditKind::SignIn),
        bare("young", 100, AuditKind::SignIn),
    ];
    store.insert_audit_events(&events).await.unwrap();
    let ids = || async {
        let all = AuditFilter {
            limit: 10,
            ..Default::default()
        };
        let mut ids: Vec<String> = store
            .audit_events(&all)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        ids.sort();
        ids
    };

    // Kept for ever when no retention is set.
    let forever = super::fixtures::KEEP;
    assert_eq!(store.purge_expired(at(10_000), &forever).await.unwrap(), 0);
    assert_eq!(ids().await, ["edge", "old", "young"]);

    // 150 s of retention at 200 s: what happened at 50 s or before goes.
    let keep = portcullis::store::Retention {
        audit: Some(Duration::seconds(150)),
        ..forever
    };
    assert_eq!(store.purge_expired(at(200), &keep).await.unwrap(), 2);
    assert_eq!(ids().await, ["young"]);
}
