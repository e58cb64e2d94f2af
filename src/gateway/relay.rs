//! Relaying a proxied backend's answer: a JSON response is read (bounded, within the deadline)
//! and passed on; an SSE stream is relayed event by event as it arrives, the client's
//! connection pulling the backend's. Each message is peeked at (which request it answers,
//! whether it failed); only `tools/list` answers are parsed whole, to filter them to what the
//! caller may call. Requests a broken, slow or oversized answer leaves unanswered get a
//! JSON-RPC error instead of a hang.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use super::audit::{CallRecord, Outcome};
use super::backend::Backend;
use super::caller::Caller;
use super::error::GatewayError;
use super::jsonrpc::{self, Peek};
use super::respond;
use super::sse::{self, EventSplitter};

/// Everything needed to pass a backend's answer on.
pub struct Relay {
    pub backend: Arc<Backend>,
    pub caller: Caller,
    /// The ids of the requests the answer must answer.
    pub pending: Vec<Value>,
    /// The ids of `tools/list` requests, whose answers are filtered.
    pub tool_lists: Vec<Value>,
    pub record: CallRecord,
    pub started: Instant,
    pub deadline: Option<Instant>,
    /// A stream without a deadline (a GET stream of server messages) ends after this long
    /// without a byte from the backend.
    pub idle: std::time::Duration,
    /// The caller's place among its open streams, given back when the relay ends or is dropped
    /// (the client went away: the backend's response, and so its connection, is dropped too).
    pub slot: Option<StreamSlot>,
}

/// How many server streams each person holds open.
#[derive(Debug, Clone, Default)]
pub struct StreamSlots {
    open: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl StreamSlots {
    /// A place for one more stream of `person`, unless they hold `max` already.
    pub fn take(&self, person: &str, max: usize) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(person.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: self.clone(),
            person: person.to_owned(),
        })
    }
}

/// One open stream of a person; dropping it gives the place back.
#[derive(Debug)]
pub struct StreamSlot {
    slots: StreamSlots,
    person: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.person) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.person);
            }
        }
    }
}

impl Relay {
    /// A `tools/list` answer filtered down to what the caller may call, serialized again;
    /// `None` when `json` is no such answer or nothing was filtered out.
    fn filtered(&self, peek: &Peek, json: &[u8]) -> Option<Value> {
        let id = peek.response_id()?;
        if !self.tool_lists.contains(id) {
            return None;
        }
        let mut message: Value = serde_json::from_slice(json).ok()?;
        jsonrpc::filter_tools(&mut message, &|tool| {
            self.backend.policy.allows(tool, self.caller.scopes())
        })
        .then_some(message)
    }

    fn first_id(&self) -> Value {
        self.pending.first().cloned().unwrap_or(Value::Null)
    }

    fn fail(&self, error: GatewayError, sent: usize) -> Response {
        self.record.finish(error.outcome(), self.started, sent);
        respond::error(&error, &self.first_id(), true, &self.backend.resource, None)
    }

    /// The next chunk of `stream`, or `Err` when the deadline (or, without one, the idle
    /// timeout) passed first.
    async fn next<S: futures::Stream + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<Option<S::Item>, ()> {
        match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, stream.next()).await,
            None => tokio::time::timeout(self.idle, stream.next()).await,
        }
        .map_err(|_| ())
    }

    /// A JSON (or empty) response: read it whole, within the size limit and the deadline.
    pub async fn buffered(self, response: reqwest::Response) -> Result<Bytes, Response> {
        let limit = self.backend.settings.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(self.fail(GatewayError::ResponseTooLarge, 0));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        loop {
            match self.next(&mut stream).await {
                Err(()) => return Err(self.fail(GatewayError::Timeout, body.len())),
                Ok(None) => break,
                Ok(Some(Ok(chunk))) => {
                    if body.len() + chunk.len() > limit {
                        return Err(self.fail(GatewayError::ResponseTooLarge, body.len()));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, backend = %self.backend.id(), "the backend's response broke off");
                    let error =
                        GatewayError::Unavailable("the backend stopped answering mid-response");
                    return Err(self.fail(error, body.len()));
                }
            }
        }
        let peek = Peek::read(&body).unwrap_or_default();
        if let Some(message) = self.filtered(&peek, &body) {
            body = message.to_string().into_bytes();
        }
        let outcome = if peek.failed() {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        self.record.finish(outcome, self.started, body.len());
        Ok(Bytes::from(body))
    }

    /// An SSE response, relayed as it arrives: the client's connection pulls the backend's, so
    /// nothing waits for the whole stream and no task sits between them.
    pub fn stream(self, response: reqwest::Response) -> Body {
        let relaying = Relaying {
            pending: self.pending.clone(),
            relay: self,
            upstream: Box::pin(response.bytes_stream()),
            events: EventSplitter::default(),
            sent: 0,
            failed: false,
            ended: false,
        };
        Body::from_stream(futures::stream::unfold(
            relaying,
            |mut relaying| async move {
                if relaying.ended {
                    return None;
                }
                let out = relaying.next_bytes().await;
                Some((Ok::<_, Infallible>(Bytes::from(out)), relaying))
            },
        ))
    }
}

/// An SSE relay in progress.
struct Relaying {
    relay: Relay,
    /// The requests still waiting for their answer.
    pending: Vec<Value>,
    upstream: Pin<Box<dyn futures::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    events: EventSplitter,
    sent: usize,
    failed: bool,
    ended: bool,
}

impl Relaying {
    /// The events that arrived next (at least one, unless the relay ends with this call).
    async fn next_bytes(&mut self) -> Vec<u8> {
        let limit = self.relay.backend.settings.max_response_bytes;
        let mut out = Vec::new();
        loop {
            let chunk = match self.relay.next(&mut self.upstream).await {
                Err(()) => return self.end(out, Some(GatewayError::Timeout)),
                Ok(None) => {
                    // The stream is over: a final CR completes the last event.
                    if let Some(event) = self.events.finish()
                        && self.pass_on(event, &mut out).is_err()
                    {
                        return self.end(out, Some(GatewayError::ResponseTooLarge));
                    }
                    if self.pending.is_empty() {
                        return self.end(out, None);
                    }
                    return self.stopped(out);
                }
                Ok(Some(Err(_))) => return self.stopped(out),
                Ok(Some(Ok(chunk))) => chunk,
            };
            self.events.push(&chunk);
            while let Some(event) = self.events.next_event() {
                if self.pass_on(event, &mut out).is_err() {
                    return self.end(out, Some(GatewayError::ResponseTooLarge));
                }
            }
            // A backend that never ends an event still may not exceed the limit.
            if self.events.pending().len() > limit {
                return self.end(out, Some(GatewayError::ResponseTooLarge));
            }
            if self.relay.deadline.is_some() && self.pending.is_empty() {
                return self.end(out, None);
            }
            if !out.is_empty() {
                return out;
            }
        }
    }

    /// Inspects `event` and adds it to `out`; `Err` when the response grew past its limit.
    fn pass_on(&mut self, event: Vec<u8>, out: &mut Vec<u8>) -> Result<(), ()> {
        let event = self.inspect(event);
        self.sent += event.len();
        if self.sent > self.relay.backend.settings.max_response_bytes {
            return Err(());
        }
        out.extend_from_slice(&event);
        Ok(())
    }

    /// The backend's stream broke off before every request was answered.
    fn stopped(&mut self, out: Vec<u8>) -> Vec<u8> {
        let error = GatewayError::Unavailable("the backend stopped answering mid-response");
        self.end(out, Some(error))
    }

    /// Notes what `event` answers, and filters it when it is a `tools/list` answer.
    fn inspect(&mut self, event: Vec<u8>) -> Vec<u8> {
        let Some(data) = sse::event_data(&event) else {
            return event;
        };
        let Some(peek) = Peek::read(&data) else {
            return event;
        };
        if let Some(id) = peek.response_id() {
            self.pending.retain(|p| p != id);
            self.failed = self.failed || peek.failed();
        }
        match self.relay.filtered(&peek, &data) {
            Some(message) => sse::rewrite_event(&event, &message),
            None => event,
        }
    }

    /// Ends the relay: requests left unanswered get `error`, and the call is recorded.
    fn end(&mut self, mut out: Vec<u8>, error: Option<GatewayError>) -> Vec<u8> {
        let outcome = match &error {
            Some(error) => {
                for id in &self.pending {
                    out.extend_from_slice(&sse::sse_event(&error.to_message(id)));
                }
                error.outcome()
            }
            None if self.failed => Outcome::Error,
            None => Outcome::Ok,
        };
        self.relay
            .record
            .finish(outcome, self.relay.started, self.sent);
        // The stream is over: the person may open another.
        self.relay.slot.take();
        self.ended = true;
        out
    }
}

impl Drop for Relaying {
    /// The client went away before the answer was complete.
    fn drop(&mut self) {
        if !self.ended {
            self.relay
                .record
                .finish(Outcome::Cancelled, self.relay.started, self.sent);
        }
    }
}
