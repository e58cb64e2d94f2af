use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use chrono::TimeZone;
use tokio::sync::{Notify, Semaphore};

use super::*;

/// Remembers every batch it is given; can be told to fail, or to hold its first batch until
/// released.
#[derive(Default)]
struct MemorySink {
    batches: Mutex<Vec<Vec<AuditEvent>>>,
    /// Calls still to fail; `usize::MAX` fails them all.
    failures: AtomicUsize,
    gate: Option<Gate>,
    /// Notified after each batch written.
    written: Notify,
}

struct Gate {
    entered: Notify,
    release: Semaphore,
}

impl MemorySink {
    fn failing(calls: usize) -> Self {
        Self {
            failures: AtomicUsize::new(calls),
            ..Self::default()
        }
    }

    fn gated() -> Self {
        Self {
            gate: Some(Gate {
                entered: Notify::new(),
                release: Semaphore::new(0),
            }),
            ..Self::default()
        }
    }

    fn batches(&self) -> Vec<Vec<AuditEvent>> {
        self.batches.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.batches().concat()
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn record(&self, events: &[AuditEvent]) -> Result<(), String> {
        if let Some(gate) = &self.gate {
            gate.entered.notify_one();
            gate.release.acquire().await.unwrap().forget();
        }
        let failures = self.failures.load(Ordering::SeqCst);
        if failures > 0 {
            if failures != usize::MAX {
                self.failures.store(failures - 1, Ordering::SeqCst);
            }
            return Err("the memory sink is told to fail".to_owned());
        }
        self.batches.lock().unwrap().push(events.to_vec());
        self.written.notify_one();
        Ok(())
    }
}

fn event(n: i64) -> AuditEvent {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    AuditEvent::new(
        AuditKind::ToolCall,
        Decision::Allowed,
        t0 + chrono::Duration::seconds(n),
    )
    .tool("builtin", format!("tool-{n}"))
}

fn events(range: std::ops::Range<i64>) -> Vec<AuditEvent> {
    range.map(event).collect()
}

fn sinks(sinks: &[&Arc<MemorySink>]) -> Vec<Arc<dyn AuditSink>> {
    sinks
        .iter()
        .map(|&sink| Arc::clone(sink) as Arc<dyn AuditSink>)
        .collect()
}

#[test]
fn the_builder_sets_what_it_is_given_and_nothing_else() {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();

    let bare = AuditEvent::new(AuditKind::SignIn, Decision::Denied, now);
    let full = AuditEvent::new(AuditKind::ToolCall, Decision::Allowed, now)
        .user("user-1", Some("ada@example.com"))
        .client("client-1")
        .tool("orders", "list_orders")
        .request_id("req-1")
        .reason("scope ok")
        .outcome("ok")
        .latency(Duration::from_micros(12_900))
        .response_bytes(2048);

    assert_eq!(
        uuid::Uuid::parse_str(&bare.id).unwrap().get_version_num(),
        4
    );
    assert_ne!(bare.id, full.id);
    assert_eq!(
        bare,
        AuditEvent {
            id: bare.id.clone(),
            time: now,
            kind: AuditKind::SignIn,
            request_id: None,
            trace_id: None,
            user_id: None,
            user_email: None,
            client_id: None,
            backend: None,
            tool: None,
            decision: Decision::Denied,
            reason: None,
            outcome: None,
            latency_ms: None,
            response_bytes: None,
        }
    );
    assert_eq!(
        full,
        AuditEvent {
            id: full.id.clone(),
            time: now,
            kind: AuditKind::ToolCall,
            request_id: Some("req-1".to_owned()),
            trace_id: None,
            user_id: Some("user-1".to_owned()),
            user_email: Some("ada@example.com".to_owned()),
            client_id: Some("client-1".to_owned()),
            backend: Some("orders".to_owned()),
            tool: Some("list_orders".to_owned()),
            decision: Decision::Allowed,
            reason: Some("scope ok".to_owned()),
            outcome: Some("ok".to_owned()),
            latency_ms: Some(12),
            response_bytes: Some(2048),
        }
    );
}

#[test]
fn kinds_and_decisions_read_back_from_their_names() {
    for kind in AuditKind::ALL {
        assert_eq!(kind.as_str().parse::<AuditKind>(), Ok(kind));
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            serde_json::json!(kind.as_str())
        );
    }
    assert_eq!(AuditKind::TokenRefreshed.as_str(), "token_refreshed");
    assert!("ToolCall".parse::<AuditKind>().is_err());
    for decision in [Decision::Allowed, Decision::Denied] {
        assert_eq!(decision.as_str().parse::<Decision>(), Ok(decision));
    }
}

#[tokio::test]
async fn recorded_events_reach_the_sink_in_order_by_the_time_flush_returns() {
    let sink = Arc::new(MemorySink::default());
    let auditor = Auditor::start(sinks(&[&sink]));
    let recorded = events(0..4);

    for e in &recorded[..3] {
        auditor.record(e.clone());
    }
    auditor.flush().await;
    assert_eq!(sink.events(), recorded[..3]);

    auditor.record(recorded[3].clone());
    auditor.flush().await;
    assert_eq!(sink.events(), recorded);
    assert_eq!(auditor.dropped(), 0);
}

#[tokio::test]
async fn a_clone_feeds_the_same_writer() {
    let sink = Arc::new(MemorySink::default());
    let auditor = Auditor::start(sinks(&[&sink]));
    let clone = auditor.clone();
    let recorded = events(0..2);

    auditor.record(recorded[0].clone());
    clone.record(recorded[1].clone());
    clone.flush().await;

    assert_eq!(sink.events(), recorded);
}

#[tokio::test]
async fn what_is_queued_is_written_in_batches_of_at_most_max_batch() {
    let sink = Arc::new(MemorySink::default());
    let auditor = Auditor::start(sinks(&[&sink]));
    let recorded = events(0..1200);

    // The test runtime has one thread: the writer runs only once this test awaits, so all of
    // these are queued when it wakes.
    for e in &recorded {
        auditor.record(e.clone());
    }
    auditor.flush().await;

    let sizes: Vec<usize> = sink.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![MAX_BATCH, MAX_BATCH, 200]);
    assert_eq!(sink.events(), recorded);
}

#[tokio::test]
async fn a_failing_sink_does_not_stop_the_others_or_the_writer() {
    let broken = Arc::new(MemorySink::failing(usize::MAX));
    let working = Arc::new(MemorySink::default());
    let auditor = Auditor::start(sinks(&[&broken, &working]));
    let recorded = events(0..5);

    for e in &recorded[..3] {
        auditor.record(e.clone());
    }
    auditor.flush().await;
    for e in &recorded[3..] {
        auditor.record(e.clone());
    }
    auditor.flush().await;
    auditor.flush().await;

    assert_eq!(working.events(), recorded);
    assert!(broken.events().is_empty());
    assert_eq!(auditor.dropped(), 0);
}

#[tokio::test]
async fn a_failed_batch_is_retried_once_with_the_next_one() {
    let flaky = Arc::new(MemorySink::failing(1));
    let auditor = Auditor::start(sinks(&[&flaky]));
    let recorded = events(0..3);

    auditor.record(recorded[0].clone());
    auditor.flush().await;
    assert!(flaky.events().is_empty(), "the first write failed");
    auditor.record(recorded[1].clone());
    auditor.record(recorded[2].clone());
    auditor.flush().await;

    assert_eq!(flaky.batches(), vec![recorded]);
}

#[tokio::test]
async fn a_batch_that_fails_twice_is_given_up_and_the_next_one_kept() {
    let flaky = Arc::new(MemorySink::failing(2));
    let auditor = Auditor::start(sinks(&[&flaky]));
    let recorded = events(0..3);

    auditor.record(recorded[0].clone());
    auditor.flush().await; // fails: kept for one retry
    auditor.record(recorded[1].clone());
    auditor.flush().await; // fails again: event 0 is lost, event 1 kept
    auditor.record(recorded[2].clone());
    auditor.flush().await;

    assert_eq!(flaky.batches(), vec![recorded[1..].to_vec()]);
}

#[tokio::test]
async fn a_flush_with_nothing_new_retries_what_failed() {
    let flaky = Arc::new(MemorySink::failing(1));
    let auditor = Auditor::start(sinks(&[&flaky]));
    let recorded = events(0..1);

    auditor.record(recorded[0].clone());
    auditor.flush().await;
    auditor.flush().await;

    assert_eq!(flaky.events(), recorded);
}

#[tokio::test]
async fn when_the_queue_is_full_events_are_dropped_and_counted_without_waiting() {
    let slow = Arc::new(MemorySink::gated());
    let auditor = Auditor::start_with_capacity(sinks(&[&slow]), 2);
    let recorded = events(0..6);
    let gate = slow.gate.as_ref().unwrap();

    // The writer takes the first event and is held inside the sink...
    auditor.record(recorded[0].clone());
    gate.entered.notified().await;
    // ...so two more fill the queue and the rest are dropped.
    for e in &recorded[1..] {
        auditor.record(e.clone());
    }
    assert_eq!(auditor.dropped(), 3);

    gate.release.add_permits(usize::MAX >> 4);
    auditor.flush().await;
    assert_eq!(slow.events(), recorded[..3]);
    assert_eq!(auditor.dropped(), 3);
}

#[tokio::test]
async fn the_writer_writes_out_the_queue_when_the_last_auditor_is_dropped() {
    let sink = Arc::new(MemorySink::gated());
    let auditor = Auditor::start(sinks(&[&sink]));
    let recorded = events(0..3);
    let gate = sink.gate.as_ref().unwrap();

    auditor.record(recorded[0].clone());
    gate.entered.notified().await;
    auditor.record(recorded[1].clone());
    auditor.record(recorded[2].clone());
    drop(auditor);
    gate.release.add_permits(2);
    let all_written = async {
        while sink.events().len() < recorded.len() {
            sink.written.notified().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), all_written)
        .await
        .expect("the writer wrote out the queue");

    assert_eq!(sink.events(), recorded);
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_sink_writes_one_line_per_event_on_the_audit_target_without_the_email() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let call = AuditEvent::new(AuditKind::ToolCall, Decision::Denied, now)
        .user("user-1", Some("ada@example.com"))
        .client("client-1")
        .tool("orders", "cancel_order")
        .request_id("req-1")
        .reason("insufficient_scope")
        .latency_ms(3);
    let sign_in = AuditEvent::new(AuditKind::SignIn, Decision::Allowed, now);

    LogSink.record(&[call.clone(), sign_in]).await.unwrap();

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!output.contains("ada@example.com"), "{output}");
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert_eq!(lines[0]["target"], "audit");
    assert_eq!(
        lines[0]["fields"],
        serde_json::json!({
            "message": "audit event",
            "id": call.id,
            "kind": "tool_call",
            "decision": "denied",
            "user_id": "user-1",
            "client_id": "client-1",
            "backend": "orders",
            "tool": "cancel_order",
            "reason": "insufficient_scope",
            "latency_ms": 3,
            "request_id": "req-1",
        })
    );
    assert_eq!(lines[1]["fields"]["kind"], "sign_in");
    assert_eq!(lines[1]["fields"].get("user_id"), None);
}
