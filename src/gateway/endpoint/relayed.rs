//! What of a backend's stream reaches the client on a request's stream, by the client's era.

use std::convert::Infallible;

use axum::body::Bytes;
use futures::SinkExt;
use serde_json::{Value, json};

use crate::gateway::asks::Asks;
use crate::gateway::connection::FromBackend;
use crate::gateway::era::Era;
use crate::gateway::message::Request;
use crate::gateway::{mrtr, sse};

/// Which of a backend's notifications reach the client on a request's stream: progress always
/// (the token is the client's); log messages when a legacy client, or a modern one that asked for
/// them (`_meta` `logLevel`); list changes for a legacy client only, since a modern one hears of
/// them on a `subscriptions/listen` stream, never on a request's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Relayed {
    logs: bool,
    list_changes: bool,
    /// Requests from the backend (sampling, elicitation, roots) go to the client.
    client_requests: bool,
}

impl Relayed {
    /// True when the backend's request `message` is put to a modern client as MRTR: the
    /// client declared the capability it needs.
    pub(super) fn asks_as_mrtr(self, request: &Request, message: &Value) -> bool {
        let method = message.get("method").and_then(Value::as_str);
        let needed = method.and_then(mrtr::capability_for);
        !self.client_requests
            && needed.is_some_and(|needed| {
                request
                    .client_capabilities()
                    .is_some_and(|declared| declared.get(needed).is_some())
            })
    }

    pub(super) fn for_request(request: &Request) -> Self {
        let modern = request.era() == Era::Modern;
        let asked_for_logs = request
            .params
            .as_ref()
            .and_then(|p| p.pointer("/_meta/io.modelcontextprotocol~1logLevel"))
            .is_some();
        Self {
            logs: !modern || asked_for_logs,
            list_changes: !modern,
            client_requests: !modern,
        }
    }

    fn relays(self, method: &str) -> bool {
        match method {
            "notifications/progress" => true,
            "notifications/message" => self.logs,
            _ => self.list_changes && method.ends_with("/list_changed"),
        }
    }

    /// Sends a backend's message on when the client is to hear of it, rebuilt from its method
    /// and params (whatever else the backend put in it is about the gateway's hop). A request
    /// for the client goes to a legacy one under an id of the gateway's (its answer comes back
    /// through `asks`); a modern client takes no requests on a stream (MCP 2026-07-28 has MRTR
    /// instead), so the backend is told it could not be asked.
    pub(super) async fn send(
        self,
        events: &mut futures::channel::mpsc::Sender<Result<Bytes, Infallible>>,
        asks: &Asks,
        owner: &str,
        message: FromBackend,
    ) -> Result<(), ()> {
        let out = match message {
            FromBackend::Request { message, reply } if self.client_requests => {
                let mut request = json!({ "jsonrpc": "2.0", "id": Value::Null });
                for key in ["method", "params"] {
                    if let Some(value) = message.get(key) {
                        request[key] = value.clone();
                    }
                }
                asks.ask(owner, request, reply)
            }
            // Dropping the reply refuses it.
            FromBackend::Request { .. } => return Ok(()),
            FromBackend::Notification(message) => {
                let Some(method) = message.get("method").and_then(Value::as_str) else {
                    return Ok(());
                };
                if !self.relays(method) {
                    return Ok(());
                }
                let mut notification = json!({ "jsonrpc": "2.0", "method": method });
                if let Some(params) = message.get("params") {
                    notification["params"] = params.clone();
                }
                notification
            }
        };
        events
            .send(Ok(Bytes::from(sse::sse_event(&out))))
            .await
            .map_err(|_| ())
    }
}
