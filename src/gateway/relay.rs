//! Relaying a proxied backend's answer: a JSON response is read (bounded, within the deadline)
//! and passed on; an SSE stream is relayed event by event as it arrives. `tools/list` answers
//! are filtered to what the caller may call, in JSON and SSE alike, and requests a broken,
//! slow or oversized answer leaves unanswered get a JSON-RPC error instead of a hang.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::audit::{CallRecord, Outcome};
use super::backend::Backend;
use super::caller::Caller;
use super::error::GatewayError;
use super::{jsonrpc, respond, sse};

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
}

impl Relay {
    /// Filters a `tools/list` answer down to what the caller may call. Returns whether it
    /// changed; `message` is any JSON-RPC message of the response.
    fn filter(&self, message: &mut Value) -> bool {
        let is_list_answer =
            jsonrpc::response_id(message).is_some_and(|id| self.tool_lists.contains(id));
        is_list_answer
            && jsonrpc::filter_tools(message, &|tool| {
                self.backend.policy.allows(tool, self.caller.scopes())
            })
    }

    fn first_id(&self) -> Value {
        self.pending.first().cloned().unwrap_or(Value::Null)
    }

    fn fail(&self, error: GatewayError, sent: usize) -> Response {
        self.record.finish(error.outcome(), self.started, sent);
        respond::error(&error, &self.first_id(), true, &self.backend.resource, None)
    }

    /// The next chunk of `stream`, or `Err` when the deadline passed first.
    async fn next<S: futures::Stream + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<Option<S::Item>, ()> {
        match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, stream.next())
                .await
                .map_err(|_| ()),
            None => Ok(stream.next().await),
        }
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
        let mut failed = false;
        if let Ok(mut message) = serde_json::from_slice::<Value>(&body) {
            failed = jsonrpc::is_failure(&message);
            if self.filter(&mut message) {
                body = message.to_string().into_bytes();
            }
        }
        let outcome = if failed { Outcome::Error } else { Outcome::Ok };
        self.record.finish(outcome, self.started, body.len());
        Ok(Bytes::from(body))
    }

    /// An SSE response: relayed event by event by a task, so nothing waits for the whole
    /// stream.
    pub fn stream(self, response: reqwest::Response) -> Body {
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(16);
        tokio::spawn(async move {
            let mut pending = self.pending.clone();
            let mut upstream = response.bytes_stream();
            let mut buffer = Vec::new();
            let mut sent = 0usize;
            let mut failed = false;
            let limit = self.backend.settings.max_response_bytes;
            let ended = 'relay: loop {
                let chunk = match self.next(&mut upstream).await {
                    Err(()) => break 'relay Some(GatewayError::Timeout),
                    Ok(None) if pending.is_empty() => break 'relay None,
                    Ok(None) | Ok(Some(Err(_))) => {
                        break 'relay Some(GatewayError::Unavailable(
                            "the backend stopped answering mid-response",
                        ));
                    }
                    Ok(Some(Ok(chunk))) => chunk,
                };
                buffer.extend_from_slice(&chunk);
                for mut event in sse::take_events(&mut buffer) {
                    if let Some(mut message) = sse::event_message(&event) {
                        if let Some(id) = jsonrpc::response_id(&message) {
                            pending.retain(|p| p != id);
                            failed = failed || jsonrpc::is_failure(&message);
                        }
                        if self.filter(&mut message) {
                            event = sse::rewrite_event(&event, &message);
                        }
                    }
                    sent += event.len();
                    if sent > limit {
                        break 'relay Some(GatewayError::ResponseTooLarge);
                    }
                    if tx.send(Ok(Bytes::from(event))).await.is_err() {
                        self.record.finish(Outcome::Cancelled, self.started, sent);
                        return;
                    }
                }
                // A backend that never ends an event still may not exceed the limit.
                if buffer.len() > limit {
                    break 'relay Some(GatewayError::ResponseTooLarge);
                }
                if self.deadline.is_some() && pending.is_empty() {
                    break 'relay None;
                }
            };
            let outcome = match &ended {
                Some(error) => {
                    for id in &pending {
                        let event = sse::sse_event(&error.to_message(id));
                        let _ = tx.send(Ok(Bytes::from(event))).await;
                    }
                    error.outcome()
                }
                None if failed => Outcome::Error,
                None => Outcome::Ok,
            };
            self.record.finish(outcome, self.started, sent);
        });
        Body::from_stream(rx)
    }
}
