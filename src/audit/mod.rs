//! The audit trail: every tool call, sign-in, token issued, refreshed or revoked, and every
//! refused request becomes one [`AuditEvent`], handed to [`Auditor::record`] on the request path
//! and written off it, in batches, to every configured [`AuditSink`] (the database, the log).
//!
//! `record` never waits: events go through a bounded queue to one background task. The queue
//! bounds memory when a sink is slow or down; when it is full, events are dropped and counted
//! ([`Auditor::dropped`]) rather than slowing tool calls. [`Auditor::flush`] waits until what was
//! recorded before it has been written, for tests and graceful shutdown.

/// `portcullis audit`: the trail as a table or JSON lines.
pub mod cli;
/// The auditor and its sinks.
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::store::{AuditEvent, AuditKind, Decision, DynStore};

/// Events queued between the request path and the writer: at a few hundred bytes each, a few
/// MB at most, and at 500 events per batch enough to ride out a sink stalling for seconds.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Events written to the sinks at once, at most.
pub const MAX_BATCH: usize = 500;
/// A sink write taking longer than this counts as failed, so one hung sink cannot stall the
/// trail for ever (the queue would fill and every later event would be dropped).
const SINK_TIMEOUT: Duration = Duration::from_secs(10);

impl AuditEvent {
    /// An event of `kind` at `now` with a fresh id; the setters below fill in what the caller
    /// knows. Recorded while serving a request, it carries that request's id and trace id
    /// (every path that audits gets them, refusals included).
    pub fn new(kind: AuditKind, decision: Decision, now: DateTime<Utc>) -> Self {
        let mut event = Self::detached(kind, decision, now);
        if let Some((request_id, trace_id)) = crate::telemetry::trace::current_ids() {
            event.request_id = request_id;
            event.trace_id = Some(trace_id);
        }
        event
    }

    /// As [`AuditEvent::new`], without the request's ids: for an event whose recorder kept
    /// them itself (a call that may end outside the request's task).
    pub fn detached(kind: AuditKind, decision: Decision, now: DateTime<Utc>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            time: now,
            kind,
            request_id: None,
            trace_id: None,
            user_id: None,
            user_email: None,
            client_id: None,
            backend: None,
            tool: None,
            decision,
            reason: None,
            outcome: None,
            latency_ms: None,
            response_bytes: None,
        }
    }

    /// The user's id (the token's `sub`) and, when known, their email.
    pub fn user(mut self, id: impl Into<String>, email: Option<&str>) -> Self {
        self.user_id = Some(id.into());
        self.user_email = email.map(str::to_owned);
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The backend that serves the tool (the gateway's name for built-in tools) and the tool.
    pub fn tool(mut self, backend: impl Into<String>, tool: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self.tool = Some(tool.into());
        self
    }

    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// The W3C trace id (32 hex digits).
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Why the request was denied, or a short detail. A fixed word or phrase chosen by
    /// Portcullis: never a token, and never text copied from the request.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// `ok`, `error`, `timeout`, `unavailable`, `too_large`, ...
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }

    pub fn latency_ms(mut self, latency_ms: i64) -> Self {
        self.latency_ms = Some(latency_ms);
        self
    }

    /// [`AuditEvent::latency_ms`] from a measured duration (e.g. `Instant::elapsed`).
    pub fn latency(self, latency: Duration) -> Self {
        self.latency_ms(i64::try_from(latency.as_millis()).unwrap_or(i64::MAX))
    }

    pub fn response_bytes(mut self, bytes: u64) -> Self {
        self.response_bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        self
    }
}

/// Somewhere audit events are written. Implementations are called from one background task,
/// one batch at a time, never from the request path.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// A short name for log lines about this sink.
    fn name(&self) -> &'static str;
    /// Writes the batch, oldest first. An error is logged and the batch retried once with the
    /// next one; it must say what failed without carrying a secret.
    async fn record(&self, events: &[AuditEvent]) -> Result<(), String>;
}

/// Writes the events to the database (`audit_events`), one transaction per batch.
pub struct StoreSink(pub DynStore);

#[async_trait]
impl AuditSink for StoreSink {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn record(&self, events: &[AuditEvent]) -> Result<(), String> {
        self.0
            .insert_audit_events(events)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Emits each event as one structured log line on the `audit` target (JSON when the log format
/// is JSON). Carries ids, names and numbers only: no token and no email.
pub struct LogSink;

#[async_trait]
impl AuditSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn record(&self, events: &[AuditEvent]) -> Result<(), String> {
        for event in events {
            tracing::info!(
                target: "audit",
                id = %event.id,
                kind = event.kind.as_str(),
                decision = event.decision.as_str(),
                user_id = event.user_id.as_deref(),
                client_id = event.client_id.as_deref(),
                backend = event.backend.as_deref(),
                tool = event.tool.as_deref(),
                reason = event.reason.as_deref(),
                outcome = event.outcome.as_deref(),
                latency_ms = event.latency_ms,
                response_bytes = event.response_bytes,
                request_id = event.request_id.as_deref(),
                trace_id = event.trace_id.as_deref(),
                "audit event"
            );
        }
        Ok(())
    }
}

enum Message {
    Event(Box<AuditEvent>),
    /// Answered once every event queued before it has been handed to every sink.
    Flush(oneshot::Sender<()>),
}

/// The request path's handle on the audit trail. Cheap to clone; every clone feeds the same
/// background writer.
#[derive(Clone)]
pub struct Auditor {
    queue: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Auditor {
    /// Spawns the writer on the current Tokio runtime, with a queue of [`QUEUE_CAPACITY`].
    /// The writer stops once every `Auditor` clone is dropped and the queue is written out.
    pub fn start(sinks: Vec<Arc<dyn AuditSink>>) -> Auditor {
        Self::start_with_capacity(sinks, QUEUE_CAPACITY)
    }

    /// As [`Auditor::start`], with a queue of `capacity` events (at least 1).
    pub fn start_with_capacity(sinks: Vec<Arc<dyn AuditSink>>, capacity: usize) -> Auditor {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_loop(receiver, sinks));
        Auditor {
            queue,
            dropped: Arc::default(),
        }
    }

    /// Queues the event for the sinks. Never waits and never fails: when the queue is full the
    /// event is dropped, counted and warned about.
    ///
    /// Dropping beats blocking here: a tool call must not wait on (or fail because of) a slow
    /// audit database, and a queue that grows without bound would turn a sink outage into the
    /// whole gateway running out of memory. The count makes the loss visible; the queue is
    /// deep enough that only a sink outage of many seconds under load reaches it.
    pub fn record(&self, event: AuditEvent) {
        if let Err(error) = self.queue.try_send(Message::Event(Box::new(event))) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let why = match error {
                mpsc::error::TrySendError::Full(_) => "the audit queue is full",
                mpsc::error::TrySendError::Closed(_) => "the audit writer has stopped",
            };
            // The first drop and then one line per thousand: a flood of warnings would bury
            // the rest of the log when the sink is down.
            if dropped == 1 || dropped.is_multiple_of(1000) {
                tracing::warn!(target: "security", dropped, "{why}: audit events are being dropped");
            }
        }
    }

    /// Waits until every event recorded before this call has been handed to every sink: written,
    /// or failed and kept for one retry with the next batch (a second `flush` makes that retry).
    /// Returns at once when the writer has stopped.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        // Unlike `record`, this may wait for room in the queue: it is never on a request path.
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Events dropped so far because the queue was full (or the writer had stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events queued and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// One sink and the batch it failed to write last time, if any.
struct SinkState {
    sink: Arc<dyn AuditSink>,
    retry: Vec<AuditEvent>,
}

async fn write_loop(mut receiver: mpsc::Receiver<Message>, sinks: Vec<Arc<dyn AuditSink>>) {
    let mut sinks: Vec<SinkState> = sinks
        .into_iter()
        .map(|sink| SinkState {
            sink,
            retry: Vec::new(),
        })
        .collect();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        // Take what is queued already, without waiting: a busy gateway gets big batches, a
        // quiet one gets each event written at once.
        while let Some(message) = next {
            match message {
                Message::Event(event) => batch.push(*event),
                Message::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        for state in &mut sinks {
            write_to(state, &batch).await;
        }
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
    // Every `Auditor` is gone: nothing more will come, and the queue is written out.
    for state in &mut sinks {
        if !state.retry.is_empty() {
            write_to(state, &[]).await;
        }
    }
}

/// Writes the sink's pending retry and `batch` as one call. On failure the retried events are
/// given up on (they have had their two attempts) and `batch` is kept for the next round.
async fn write_to(state: &mut SinkState, batch: &[AuditEvent]) {
    if batch.is_empty() && state.retry.is_empty() {
        return;
    }
    let retried = state.retry.len();
    let events: std::borrow::Cow<'_, [AuditEvent]> = if retried == 0 {
        batch.into()
    } else {
        state.retry.extend_from_slice(batch);
        std::mem::take(&mut state.retry).into()
    };
    let attempt = AssertUnwindSafe(state.sink.record(&events)).catch_unwind();
    let error = match tokio::time::timeout(SINK_TIMEOUT, attempt).await {
        Ok(Ok(Ok(()))) => return,
        Ok(Ok(Err(error))) => error,
        Ok(Err(_panic)) => "the sink panicked".to_owned(),
        Err(_elapsed) => format!("no answer within {} s", SINK_TIMEOUT.as_secs()),
    };
    let sink = state.sink.name();
    if retried > 0 {
        tracing::warn!(
            target: "audit",
            sink,
            %error,
            lost = retried,
            will_retry = batch.len(),
            "writing audit events failed again: giving up on the earlier batch"
        );
    } else {
        tracing::warn!(
            target: "audit",
            sink,
            %error,
            will_retry = batch.len(),
            "writing audit events failed: retrying with the next batch"
        );
    }
    state.retry = events[retried..].to_vec();
}
