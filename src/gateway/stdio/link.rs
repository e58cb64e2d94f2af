//! The JSON-RPC traffic of one backend process, which many callers' requests share: Portcullis
//! assigns the request ids and progress tokens on the wire and maps answers and progress back
//! to whoever asked; the backend's own requests to its client are answered here.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, timeout_at};

use super::framing::{Oversized, classify_oversized};
use super::lock;
use crate::gateway::connection::{
    CLIENT_REQUESTS, CallError, FromBackend, Notifications, answer_for_backend,
};

pub(super) const PROCESS_EXITED: &str = "the backend process exited";
const METHOD_NOT_FOUND: i64 = -32601;
const TOKEN_PREFIX: &str = "portcullis-";

struct Pending {
    reply: oneshot::Sender<Result<Value, CallError>>,
    notifications: Option<Notifications>,
    /// The caller's own progress token; the backend sees `portcullis-{id}` instead.
    progress_token: Option<Value>,
}

#[derive(Default)]
struct State {
    /// By id, so the newest request is the last one.
    pending: BTreeMap<u64, Pending>,
    closed: bool,
}

pub(super) struct Link {
    backend: String,
    /// Whether callers other than one user share the process: decides where notifications
    /// that name no request may go.
    shared: bool,
    /// Lines for the writer task; `None` once stdin is to be closed.
    outbox: Mutex<Option<mpsc::Sender<String>>>,
    state: Mutex<State>,
    next_id: AtomicU64,
    closed: watch::Sender<bool>,
}

fn refusal(id: &Value, why: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": METHOD_NOT_FOUND, "message": why } })
}

impl Link {
    pub(super) fn new(backend: &str, shared: bool, outbox: mpsc::Sender<String>) -> Self {
        Self {
            backend: backend.to_owned(),
            shared,
            outbox: Mutex::new(Some(outbox)),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            closed: watch::channel(false).0,
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub(super) async fn wait_closed(&self) {
        let mut closed = self.closed.subscribe();
        // An error means the sender is gone, which only happens once the link is dropped.
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Fails every request in flight at once: nobody waits for a process that is gone.
    pub(super) fn close(&self, reason: &str) {
        let pending = {
            let mut state = lock(&self.state);
            state.closed = true;
            std::mem::take(&mut state.pending)
        };
        self.close_input();
        for (_, request) in pending {
            let _ = request
                .reply
                .send(Err(CallError::Unavailable(reason.to_owned())));
        }
        self.closed.send_replace(true);
    }

    /// Lets the writer finish what is queued and close stdin: the MCP stdio way to ask a server
    /// to exit.
    pub(super) fn close_input(&self) {
        lock(&self.outbox).take();
    }

    /// Sends `method` and waits for its result until `deadline`. A request given up on (timed
    /// out, or its caller gone) is cancelled at the backend, except `initialize`, which the
    /// protocol does not let a client cancel.
    pub(super) async fn call(
        &self,
        method: &str,
        params: Option<Value>,
        notifications: Option<Notifications>,
        deadline: Instant,
    ) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut params = params;
        let progress_token = params
            .as_mut()
            .and_then(|p| p.get_mut("_meta"))
            .and_then(|meta| meta.get_mut("progressToken"))
            .map(|token| std::mem::replace(token, json!(format!("{TOKEN_PREFIX}{id}"))));
        let (reply, answer) = oneshot::channel();
        {
            let mut state = lock(&self.state);
            if state.closed {
                return Err(CallError::Unavailable(PROCESS_EXITED.into()));
            }
            state.pending.insert(
                id,
                Pending {
                    reply,
                    notifications,
                    progress_token,
                },
            );
        }
        let mut guard = InFlight {
            link: self,
            id,
            reason: "the client went away",
            // Neither may be cancelled: before the handshake ends there is nothing to cancel.
            cancellable: method != "initialize" && method != "server/discover",
        };
        let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(&message, deadline).await?;
        match timeout_at(deadline, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(CallError::Unavailable(PROCESS_EXITED.into())),
            Err(_) => {
                guard.reason = "the request timed out";
                Err(CallError::Timeout)
            }
        }
    }

    pub(super) async fn notify(&self, method: &str, deadline: Instant) -> Result<(), CallError> {
        self.send(&json!({ "jsonrpc": "2.0", "method": method }), deadline)
            .await
    }

    async fn send(&self, message: &Value, deadline: Instant) -> Result<(), CallError> {
        let outbox = lock(&self.outbox).clone();
        let Some(outbox) = outbox else {
            return Err(CallError::Unavailable(PROCESS_EXITED.into()));
        };
        // Compact JSON escapes every newline inside strings, so a message is exactly one line.
        let line = format!("{message}\n");
        match timeout_at(deadline, outbox.send(line)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(CallError::Unavailable(PROCESS_EXITED.into())),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// For messages sent from places that cannot wait (the reader, a drop): a backend too busy
    /// to read its stdin loses them rather than stalling the gateway.
    fn try_send(&self, message: &Value) {
        let outbox = lock(&self.outbox).clone();
        if let Some(outbox) = outbox
            && outbox.try_send(format!("{message}\n")).is_err()
        {
            tracing::warn!(backend = %self.backend, "the backend is not reading its input; a message to it was dropped");
        }
    }

    /// Routes one line the backend wrote.
    pub(super) fn receive(&self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            tracing::warn!(backend = %self.backend, "the backend wrote a line that is not JSON; ignored");
            return;
        };
        let method = message.get("method").and_then(Value::as_str);
        match (method, message.get("id")) {
            (Some(method), Some(id)) => self.answer_backend_request(method, id, &message),
            (Some(method), None) => self.route_notification(method, &message),
            (None, Some(id)) => self.resolve(id, &message),
            (None, None) => {
                tracing::debug!(backend = %self.backend, "ignored a message with neither method nor id");
            }
        }
    }

    fn resolve(&self, id: &Value, message: &Value) {
        let id = id
            .as_u64()
            .or_else(|| id.as_str().and_then(|s| s.parse().ok()));
        let pending = id.and_then(|id| lock(&self.state).pending.remove(&id));
        let Some(pending) = pending else {
            // Typically the answer to a request that timed out.
            tracing::debug!(backend = %self.backend, ?id, "an answer to no waiting request; dropped");
            return;
        };
        let outcome = match message.get("error") {
            Some(error) => Err(CallError::from_rpc(error)),
            None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = pending.reply.send(outcome);
    }

    /// A request from the backend to its client. `ping` is answered here. Sampling,
    /// elicitation and roots go to the client of the call they are about, when one can be told:
    /// in a user's own process, the newest call that listens; in a shared process nothing says
    /// whose call it is, so they are refused, as is anything else, at once rather than leave
    /// the backend waiting.
    fn answer_backend_request(&self, method: &str, id: &Value, message: &Value) {
        if method == "ping" {
            self.try_send(&json!({ "jsonrpc": "2.0", "id": id, "result": {} }));
            return;
        }
        if CLIENT_REQUESTS.contains(&method) && !self.shared {
            let (reply, answer) = oneshot::channel();
            let asked = {
                let state = lock(&self.state);
                state
                    .pending
                    .values()
                    .rev()
                    .find_map(|pending| pending.notifications.as_ref())
                    .map(|to| {
                        to.send(FromBackend::Request {
                            message: message.clone(),
                            reply,
                        })
                    })
            };
            let outbox = lock(&self.outbox).clone();
            if let (Some(Ok(())), Some(outbox)) = (asked, outbox) {
                let id = id.clone();
                tokio::spawn(async move {
                    let response = match answer.await {
                        Ok(response) => answer_for_backend(&id, &response),
                        Err(_) => refusal(&id, "the client could not be asked"),
                    };
                    // Best effort, as for any message sent from a place that cannot wait.
                    let _ = outbox.try_send(format!("{response}\n"));
                });
                return;
            }
        }
        tracing::debug!(backend = %self.backend, method, "refused a request from the backend");
        let why = format!("{method} is not supported through the Portcullis gateway here");
        self.try_send(&refusal(id, &why));
    }

    fn route_notification(&self, method: &str, message: &Value) {
        let state = lock(&self.state);
        let target = if method == "notifications/progress" {
            let request = message
                .pointer("/params/progressToken")
                .and_then(Value::as_str)
                .and_then(|token| token.strip_prefix(TOKEN_PREFIX))
                .and_then(|id| id.parse::<u64>().ok())
                .and_then(|id| state.pending.get(&id));
            request.and_then(|pending| {
                let token = pending.progress_token.clone()?;
                let mut message = message.clone();
                message["params"]["progressToken"] = token;
                Some((pending.notifications.as_ref()?, message))
            })
        } else if self.shared {
            // Nothing says whose call it is about; in a shared process it may be anyone's.
            None
        } else {
            // One user's process: the newest call of that user is where a client listens.
            state
                .pending
                .values()
                .rev()
                .find_map(|pending| pending.notifications.as_ref())
                .map(|to| (to, message.clone()))
        };
        match target {
            Some((to, message)) => {
                let _ = to.send(FromBackend::Notification(message));
            }
            None => {
                tracing::debug!(backend = %self.backend, method, "a notification no caller waits for; dropped");
            }
        }
    }

    /// A message longer than `max_response_bytes` was dropped: the request it answered fails
    /// instead of waiting for its deadline. When the message cannot be attributed, the one
    /// request in flight must be its addressee; with several, they run to their deadlines.
    pub(super) fn too_large(&self, head: &[u8], tail: &[u8]) {
        tracing::warn!(backend = %self.backend, "the backend sent a message larger than max_response_bytes; dropped");
        let pending = {
            let mut state = lock(&self.state);
            let id = match classify_oversized(head, tail) {
                Oversized::Response(id) => Some(id),
                Oversized::FromBackend => None,
                Oversized::Unknown if state.pending.len() == 1 => {
                    state.pending.keys().next().copied()
                }
                Oversized::Unknown => None,
            };
            id.and_then(|id| state.pending.remove(&id))
        };
        if let Some(pending) = pending {
            let _ = pending.reply.send(Err(CallError::TooLarge));
        }
    }
}

/// A request on the wire. Dropped before its answer came, it is withdrawn and cancelled.
struct InFlight<'a> {
    link: &'a Link,
    id: u64,
    reason: &'static str,
    cancellable: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let waiting = lock(&self.link.state).pending.remove(&self.id).is_some();
        if waiting && self.cancellable {
            self.link.try_send(&json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": { "requestId": self.id, "reason": self.reason },
            }));
        }
    }
}

/// Requests and answers matched on one process's link.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn link(shared: bool) -> (Link, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(16);
        (Link::new("test", shared, tx), rx)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    async fn sent(rx: &mut mpsc::Receiver<String>) -> Value {
        let line = rx.recv().await.unwrap();
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        serde_json::from_str(&line).unwrap()
    }

    #[tokio::test]
    async fn answers_and_progress_find_their_caller_under_the_callers_own_token() {
        let (link, mut wire) = link(false);
        let (notes, mut received) = tokio::sync::mpsc::unbounded_channel();
        let params = json!({ "name": "x", "_meta": { "progressToken": 1 } });
        let call = link.call("tools/call", Some(params), Some(notes), soon());
        let backend = async {
            let request = sent(&mut wire).await;
            let token = request["params"]["_meta"]["progressToken"].clone();
            assert_ne!(token, json!(1));
            let progress = json!({ "jsonrpc": "2.0", "method": "notifications/progress",
                                   "params": { "progressToken": token, "progress": 1 } });
            link.receive(progress.to_string().as_bytes());
            let answer = json!({ "jsonrpc": "2.0", "id": request["id"], "result": { "ok": true } });
            link.receive(answer.to_string().as_bytes());
        };
        let (result, ()) = tokio::join!(call, backend);
        assert_eq!(result.unwrap(), json!({ "ok": true }));
        let Ok(FromBackend::Notification(note)) = received.try_recv() else {
            panic!("the progress notification reached the caller");
        };
        assert_eq!(note["params"]["progressToken"], json!(1));
    }

    #[tokio::test]
    async fn errors_pass_through_and_backend_requests_are_answered() {
        let (link, mut wire) = link(true);
        let call = link.call("tools/call", None, None, soon());
        let backend = async {
            let request = sent(&mut wire).await;
            link.receive(br#"{"jsonrpc":"2.0","id":"s","method":"roots/list"}"#);
            link.receive(br#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#);
            let answer = json!({ "jsonrpc": "2.0", "id": request["id"],
                                 "error": { "code": -32602, "message": "bad", "data": [1] } });
            link.receive(answer.to_string().as_bytes());
        };
        let (result, ()) = tokio::join!(call, backend);
        assert_eq!(
            result.unwrap_err(),
            CallError::Rpc {
                code: -32602,
                message: "bad".into(),
                data: Some(json!([1]))
            }
        );
        let refused = sent(&mut wire).await;
        assert_eq!(refused["id"], "s");
        assert_eq!(refused["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(
            sent(&mut wire).await,
            json!({ "jsonrpc": "2.0", "id": "p", "result": {} })
        );
    }

    #[tokio::test]
    async fn a_timeout_cancels_the_request_and_closing_fails_the_rest() {
        let (link, mut wire) = link(false);
        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            link.call("tools/call", None, None, deadline).await,
            Err(CallError::Timeout)
        );
        let request = sent(&mut wire).await;
        let cancelled = sent(&mut wire).await;
        assert_eq!(cancelled["method"], "notifications/cancelled");
        assert_eq!(cancelled["params"]["requestId"], request["id"]);

        let call = link.call("tools/call", None, None, soon());
        let close = async {
            sent(&mut wire).await;
            link.close(PROCESS_EXITED);
        };
        let (result, ()) = tokio::join!(call, close);
        assert_eq!(result, Err(CallError::Unavailable(PROCESS_EXITED.into())));
        assert!(link.is_closed());
        assert!(link.call("ping", None, None, soon()).await.is_err());
    }
}
