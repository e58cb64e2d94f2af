//! `/mcp/{backend}` for Streamable HTTP backends: a streaming reverse proxy. The request was
//! read (bounded), parsed and authorized by the gate before anything reaches the backend; here
//! the client's credentials are swapped for the caller's identity and the request is sent on.
//! The answer is relayed by [`super::relay`]. `Mcp-Session-Id` passes through both ways, so
//! backend sessions work unchanged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::audit::CallRecord;
use super::backend::{Backend, Transport};
use super::caller::Caller;
use super::connection::{CallContext, CallError};
use super::era::{self, Era};
use super::error::GatewayError;
use super::identity::REQUEST_ID;
use super::message::{Incoming, Method as McpMethod};
use super::relay::Relay;
use super::{Gateway, respond, sessions};

/// Request headers a backend may see from the client (never `Authorization` or cookies). The
/// session id, and with it `Last-Event-ID`, pass only once the session is the caller's own;
/// the `Mcp-Param-*` ones pass too (checked by the backend, which knows its tools' schemas).
const PASSED_TO_BACKEND: [HeaderName; 5] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    era::headers::PROTOCOL_VERSION,
    era::headers::METHOD,
    era::headers::NAME,
];

/// Response headers the client may see from the backend (the session id, tagged, besides).
const PASSED_TO_CLIENT: [HeaderName; 2] = [
    header::CONTENT_TYPE,
    HeaderName::from_static("mcp-protocol-version"),
];

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The era `backend` speaks, probed on behalf of `caller` when not known yet.
pub async fn backend_era(
    backend: &Backend,
    caller: &Caller,
    request_id: &str,
) -> Result<Era, CallError> {
    let Transport::Http { client, .. } = &backend.transport else {
        return Ok(Era::Legacy);
    };
    let deadline = Instant::now() + backend.timeout();
    let ctx = CallContext::new(caller.clone(), request_id, deadline);
    client.backend_era(&ctx).await
}

/// One authorized HTTP exchange with a proxied backend.
pub struct Exchange {
    gateway: Arc<Gateway>,
    backend: Arc<Backend>,
    caller: Caller,
    request_id: String,
    record: CallRecord,
    started: Instant,
}

impl Exchange {
    pub fn new(
        gateway: &Arc<Gateway>,
        backend: &Arc<Backend>,
        caller: Caller,
        request_id: String,
    ) -> Self {
        let record = gateway.gate.record(backend.id(), &caller, &request_id);
        Self {
            gateway: gateway.clone(),
            backend: backend.clone(),
            caller,
            request_id,
            record,
            started: Instant::now(),
        }
    }

    /// A failure before the backend answered, recorded and answered with `error`.
    fn fail(&self, error: GatewayError, id: &Value) -> Response {
        self.record.finish(error.outcome(), self.started, 0);
        respond::error(&error, id, true, &self.backend.resource, Some(&self.caller))
    }

    /// Sends the request on and relays the answer.
    pub async fn forward(mut self, parts: Parts, body: Bytes, incoming: Incoming) -> Response {
        let Transport::Http { url, .. } = &self.backend.transport else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let url = url.clone();
        let pending: Vec<Value> = incoming.requests().map(|r| r.id.clone()).collect();
        let tool_lists: Vec<Value> = incoming
            .requests()
            .filter(|r| r.method == McpMethod::ToolsList)
            .map(|r| r.id.clone())
            .collect();
        self.record.tool = incoming.uses().find_map(|r| match &r.method {
            McpMethod::ToolsCall { name } => Some(name.clone()),
            _ => None,
        });
        let first_id = pending.first().cloned().unwrap_or(Value::Null);

        let now = self.gateway.clock.now();
        let identity = self
            .gateway
            .identity
            .headers(&self.backend.settings, &self.caller, &self.request_id, now)
            .await;
        let mut headers = match identity.map_err(GatewayError::from) {
            Ok(headers) => headers,
            Err(GatewayError::SignInEnded) => {
                self.record.deny("the upstream sign-in has ended");
                return respond::error(
                    &GatewayError::SignInEnded,
                    &first_id,
                    true,
                    &self.backend.resource,
                    Some(&self.caller),
                );
            }
            Err(error) => return self.fail(error, &first_id),
        };
        for name in &PASSED_TO_BACKEND {
            if let Some(value) = parts.headers.get(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(presented) = parts.headers.get(MCP_SESSION_ID) {
            let owner = &self.caller.claims.sub;
            let secrets = &self.gateway.secrets;
            let Some(session) =
                sessions::unbind(secrets, self.backend.id(), owner, presented.as_bytes())
            else {
                tracing::warn!(target: "security", event = "session.foreign", backend = %self.backend.id());
                self.record.deny("a session id that is not the caller's");
                return respond::error(
                    &GatewayError::SessionNotFound,
                    &first_id,
                    true,
                    &self.backend.resource,
                    None,
                );
            };
            if let Ok(value) = HeaderValue::from_str(&session) {
                headers.insert(MCP_SESSION_ID, value);
            }
            if let Some(last_event) = parts.headers.get(LAST_EVENT_ID) {
                headers.insert(LAST_EVENT_ID, last_event.clone());
            }
        }
        for (name, value) in &parts.headers {
            if name.as_str().starts_with(era::headers::PARAM_PREFIX) {
                headers.append(name.clone(), value.clone());
            }
        }

        // A call has a deadline; a GET stream of server messages lives as long as the client
        // wants.
        let deadline = (!pending.is_empty()).then(|| self.started + self.backend.timeout());
        // A server stream holds a connection to the backend as long as it lasts: each person
        // may hold only so many.
        let slot = match deadline {
            None if parts.method == axum::http::Method::GET => {
                let person = &self.caller.claims.sub;
                let max = self.gateway.max_streams_per_person;
                let Some(slot) = self.gateway.streams.take(person, max) else {
                    self.record.deny("too many open streams");
                    return respond::error(
                        &GatewayError::TooManyStreams,
                        &first_id,
                        true,
                        &self.backend.resource,
                        None,
                    );
                };
                Some(slot)
            }
            _ => None,
        };
        let sent = self
            .gateway
            .http
            .request(parts.method.clone(), url)
            .headers(headers)
            .body(body)
            .send();
        let sent = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, sent).await {
                Ok(sent) => sent,
                Err(_) => return self.fail(GatewayError::Timeout, &first_id),
            },
            None => sent.await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%error, backend = %self.backend.id(), "the backend is unreachable");
                return self.fail(
                    GatewayError::Unavailable("the backend is unavailable"),
                    &first_id,
                );
            }
        };

        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            // The backend refused Portcullis' credentials: its challenge means nothing to the
            // client.
            tracing::warn!(backend = %self.backend.id(), %status, "the backend refused the forwarded identity");
            self.record
                .finish(super::audit::Outcome::Error, self.started, 0);
            let error = GatewayError::Unavailable("the backend refused the gateway's credentials");
            return respond::error(&error, &first_id, true, &self.backend.resource, None);
        }
        let mut out_headers = HeaderMap::new();
        for name in &PASSED_TO_CLIENT {
            if let Some(value) = response.headers().get(name) {
                out_headers.insert(name.clone(), value.clone());
            }
        }
        let opened = response
            .headers()
            .get(MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok());
        if let Some(bound) = opened.and_then(|session| {
            let owner = &self.caller.claims.sub;
            sessions::bind(&self.gateway.secrets, self.backend.id(), owner, session)
        }) {
            out_headers.insert(MCP_SESSION_ID, bound);
        }
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            out_headers.insert(REQUEST_ID, value);
        }
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let relay = Relay {
            backend: self.backend,
            caller: self.caller,
            pending,
            tool_lists,
            record: self.record,
            started: self.started,
            deadline,
            idle: self.gateway.sse_idle_timeout,
            slot,
        };
        if is_sse {
            return (status, out_headers, relay.stream(response)).into_response();
        }
        match relay.buffered(response).await {
            Ok(bytes) => (status, out_headers, bytes).into_response(),
            Err(failure) => failure,
        }
    }
}
