//! `/mcp/{backend}` for Streamable HTTP backends: a streaming reverse proxy that reads each
//! JSON-RPC request (bounded) to check scopes before anything reaches the backend, swaps the
//! client's credentials for the caller's identity, and relays the answer: a JSON response is
//! read (bounded) and passed on, an SSE stream is relayed event by event as it arrives.
//! `Mcp-Session-Id` passes through both ways, so backend sessions work unchanged.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::Backend;
use super::audit::{CallRecord, Outcome};
use super::auth::{Caller, insufficient_scope, unauthorized};
use super::forward::{self, ForwardError};
use super::jsonrpc::{
    self, BACKEND_TIMEOUT, BACKEND_UNAVAILABLE, REQUEST_TOO_LARGE, RESPONSE_TOO_LARGE,
};
use crate::oauth::upstream_tokens::UpstreamRefreshError;
use crate::state::AppState;

/// Request headers a backend may see from the client (never `Authorization` or cookies).
const PASSED_TO_BACKEND: [HeaderName; 4] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("last-event-id"),
];
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// Response headers the client may see from the backend.
const PASSED_TO_CLIENT: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("mcp-protocol-version"),
];

/// The state of one proxied backend route.
#[derive(Clone)]
pub struct ProxyContext {
    pub state: AppState,
    pub backend: Arc<Backend>,
    /// The backend's Streamable HTTP endpoint.
    pub url: url::Url,
}

fn rpc_response(status: StatusCode, message: Value) -> Response {
    (status, axum::Json(message)).into_response()
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&forward::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Handles GET, POST and DELETE on `/mcp/{backend}`.
pub async fn forward(
    State(ctx): State<ProxyContext>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let ProxyContext {
        state,
        backend,
        url,
    } = ctx;
    let (parts, body) = request.into_parts();
    if !matches!(parts.method, Method::POST | Method::GET | Method::DELETE) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let request_id = request_id(&parts.headers);
    let mut record = CallRecord::new(&backend.settings.id, &caller, &request_id);

    let (body, inspected) = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, backend.settings.max_request_bytes).await else {
            record.finish(&state, Outcome::TooLarge, started, 0);
            let message = jsonrpc::error(
                &Value::Null,
                REQUEST_TOO_LARGE,
                "the request is larger than this backend accepts",
            );
            return rpc_response(StatusCode::PAYLOAD_TOO_LARGE, message);
        };
        match jsonrpc::inspect(&bytes) {
            Ok(inspected) => (bytes, inspected),
            Err(message) => return rpc_response(StatusCode::BAD_REQUEST, message),
        }
    } else {
        (Bytes::new(), jsonrpc::Inspected::default())
    };

    // Scopes are checked before anything reaches the backend.
    for (tool, id) in &inspected.tool_calls {
        if !backend.policy.allows(tool, caller.scopes()) {
            let required = backend.policy.required_scope(tool).to_owned();
            record.tool = Some(tool.clone());
            record.deny(&state, &format!("missing scope {required}"));
            return insufficient_scope(&state, &backend.resource, &required, &caller, id);
        }
    }
    if let Some(denied) = super::check_other_uses(&state, &backend, &caller, &inspected) {
        return denied;
    }
    record.tool = inspected.tool_calls.first().map(|(tool, _)| tool.clone());

    let now = state.now();
    let mut headers = match forward::caller_headers(
        &state,
        &backend.settings,
        &caller,
        &request_id,
        now,
    )
    .await
    {
        Ok(headers) => headers,
        Err(ForwardError::Upstream(UpstreamRefreshError::Ended)) => {
            record.deny(&state, "the upstream sign-in has ended");
            return unauthorized(&state, &backend.resource, true);
        }
        Err(error) => {
            tracing::warn!(%error, backend = %backend.settings.id, "preparing the caller's identity failed");
            record.finish(&state, Outcome::Unavailable, started, 0);
            let id = inspected
                .request_ids
                .first()
                .cloned()
                .unwrap_or(Value::Null);
            let message = jsonrpc::error(
                &id,
                BACKEND_UNAVAILABLE,
                "the caller's identity could not be prepared for this backend",
            );
            return rpc_response(StatusCode::BAD_GATEWAY, message);
        }
    };
    for name in PASSED_TO_BACKEND.iter().chain([&PROTOCOL_VERSION]) {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name.clone(), value.clone());
        }
    }

    // A call has a deadline; a GET stream of server messages lives as long as the client wants.
    let deadline = (!inspected.request_ids.is_empty())
        .then(|| started + Duration::from_secs(backend.settings.timeout_secs));
    let upstream = state
        .gateway
        .http
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(body)
        .send();
    let first_id = inspected
        .request_ids
        .first()
        .cloned()
        .unwrap_or(Value::Null);
    let sent = match deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline, upstream).await {
            Ok(result) => result,
            Err(_) => {
                record.finish(&state, Outcome::Timeout, started, 0);
                let message = jsonrpc::error(
                    &first_id,
                    BACKEND_TIMEOUT,
                    "the backend did not answer in time",
                );
                return rpc_response(StatusCode::GATEWAY_TIMEOUT, message);
            }
        },
        None => upstream.await,
    };
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, backend = %backend.settings.id, "the backend is unreachable");
            record.finish(&state, Outcome::Unavailable, started, 0);
            let message =
                jsonrpc::error(&first_id, BACKEND_UNAVAILABLE, "the backend is unavailable");
            return rpc_response(StatusCode::BAD_GATEWAY, message);
        }
    };

    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        // The backend refused Portcullis' credentials: its challenge means nothing to the client.
        tracing::warn!(backend = %backend.settings.id, %status, "the backend refused the forwarded identity");
        record.finish(&state, Outcome::Error, started, 0);
        let message = jsonrpc::error(
            &first_id,
            BACKEND_UNAVAILABLE,
            "the backend refused the gateway's credentials",
        );
        return rpc_response(StatusCode::BAD_GATEWAY, message);
    }
    let mut out_headers = HeaderMap::new();
    for name in &PASSED_TO_CLIENT {
        if let Some(value) = response.headers().get(name) {
            out_headers.insert(name.clone(), value.clone());
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        out_headers.insert(forward::REQUEST_ID, value);
    }
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let relay = Relay {
        state,
        backend,
        caller,
        inspected,
        record,
        started,
        deadline,
    };
    if is_sse {
        let body = relay.stream(response);
        (status, out_headers, body).into_response()
    } else {
        match relay.buffered(response).await {
            Ok(bytes) => (status, out_headers, bytes).into_response(),
            Err(failure) => failure,
        }
    }
}

/// Everything needed to pass a backend's answer on.
struct Relay {
    state: AppState,
    backend: Arc<Backend>,
    caller: Caller,
    inspected: jsonrpc::Inspected,
    record: CallRecord,
    started: Instant,
    deadline: Option<Instant>,
}

impl Relay {
    /// Filters a `tools/list` answer down to what the caller may call. Returns whether it
    /// changed; `message` is any JSON-RPC message of the response.
    fn filter(&self, message: &mut Value) -> bool {
        let is_list_answer =
            jsonrpc::response_id(message).is_some_and(|id| self.inspected.tool_lists.contains(id));
        is_list_answer
            && jsonrpc::filter_tools(message, &|tool| {
                self.backend.policy.allows(tool, self.caller.scopes())
            })
    }

    /// A JSON (or empty) response: read it whole, within the size limit and the deadline.
    async fn buffered(self, response: reqwest::Response) -> Result<Bytes, Response> {
        let limit = self.backend.settings.max_response_bytes;
        let first_id = self
            .inspected
            .request_ids
            .first()
            .cloned()
            .unwrap_or(Value::Null);
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            self.record
                .finish(&self.state, Outcome::TooLarge, self.started, 0);
            let message = jsonrpc::error(
                &first_id,
                RESPONSE_TOO_LARGE,
                "the backend's response is larger than allowed",
            );
            return Err(rpc_response(StatusCode::BAD_GATEWAY, message));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        loop {
            let next = match self.deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.record
                            .finish(&self.state, Outcome::Timeout, self.started, body.len());
                        let message = jsonrpc::error(
                            &first_id,
                            BACKEND_TIMEOUT,
                            "the backend did not answer in time",
                        );
                        return Err(rpc_response(StatusCode::GATEWAY_TIMEOUT, message));
                    }
                },
                None => stream.next().await,
            };
            match next {
                None => break,
                Some(Ok(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        self.record.finish(
                            &self.state,
                            Outcome::TooLarge,
                            self.started,
                            body.len(),
                        );
                        let message = jsonrpc::error(
                            &first_id,
                            RESPONSE_TOO_LARGE,
                            "the backend's response is larger than allowed",
                        );
                        return Err(rpc_response(StatusCode::BAD_GATEWAY, message));
                    }
                    body.extend_from_slice(&chunk);
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, backend = %self.backend.settings.id, "the backend's response broke off");
                    self.record
                        .finish(&self.state, Outcome::Unavailable, self.started, body.len());
                    let message = jsonrpc::error(
                        &first_id,
                        BACKEND_UNAVAILABLE,
                        "the backend stopped answering mid-response",
                    );
                    return Err(rpc_response(StatusCode::BAD_GATEWAY, message));
                }
            }
        }
        let mut failed = None;
        if let Ok(mut message) = serde_json::from_slice::<Value>(&body) {
            failed = Some(jsonrpc::is_failure(&message));
            if self.filter(&mut message) {
                body = message.to_string().into_bytes();
            }
        }
        let outcome = if failed == Some(true) {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        self.record
            .finish(&self.state, outcome, self.started, body.len());
        Ok(Bytes::from(body))
    }

    /// An SSE response: relayed event by event by a task, so nothing waits for the whole
    /// stream. When the backend dies, times out or sends too much, the requests still unanswered
    /// get a JSON-RPC error event instead of a hang.
    fn stream(self, response: reqwest::Response) -> Body {
        let (mut tx, rx) =
            futures::channel::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(16);
        tokio::spawn(async move {
            let this = self;
            let mut pending: Vec<Value> = this.inspected.request_ids.clone();
            let mut upstream = response.bytes_stream();
            let mut buffer = Vec::new();
            let mut sent = 0usize;
            let mut failed = None;
            let limit = this.backend.settings.max_response_bytes;
            let outcome = 'relay: loop {
                let next = match this.deadline {
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline, upstream.next()).await {
                            Ok(next) => next,
                            Err(_) => break 'relay Outcome::Timeout,
                        }
                    }
                    None => upstream.next().await,
                };
                let chunk = match next {
                    None => {
                        break 'relay if pending.is_empty() {
                            Outcome::Ok
                        } else {
                            Outcome::Unavailable
                        };
                    }
                    Some(Err(_)) => break 'relay Outcome::Unavailable,
                    Some(Ok(chunk)) => chunk,
                };
                buffer.extend_from_slice(&chunk);
                for event in jsonrpc::take_events(&mut buffer) {
                    let mut out = event;
                    if let Some(mut message) = jsonrpc::event_message(&out) {
                        if let Some(id) = jsonrpc::response_id(&message) {
                            pending.retain(|p| p != id);
                            failed = Some(failed.unwrap_or(false) || jsonrpc::is_failure(&message));
                        }
                        if this.filter(&mut message) {
                            out = jsonrpc::rewrite_event(&out, &message);
                        }
                    }
                    sent += out.len();
                    if sent > limit {
                        break 'relay Outcome::TooLarge;
                    }
                    if tx.send(Ok(Bytes::from(out))).await.is_err() {
                        break 'relay Outcome::Cancelled;
                    }
                }
                // A backend that never ends an event still may not exceed the limit.
                if buffer.len() > limit {
                    break 'relay Outcome::TooLarge;
                }
                if this.deadline.is_some() && pending.is_empty() {
                    break 'relay Outcome::Ok;
                }
            };
            let (code, text) = match outcome {
                Outcome::Timeout => (BACKEND_TIMEOUT, "the backend did not answer in time"),
                Outcome::TooLarge => (
                    RESPONSE_TOO_LARGE,
                    "the backend's response is larger than allowed",
                ),
                _ => (
                    BACKEND_UNAVAILABLE,
                    "the backend stopped answering mid-response",
                ),
            };
            if outcome != Outcome::Cancelled {
                for id in &pending {
                    let _ = tx
                        .send(Ok(Bytes::from(jsonrpc::sse_event(&jsonrpc::error(
                            id, code, text,
                        )))))
                        .await;
                }
            }
            let outcome = if outcome == Outcome::Ok && failed == Some(true) {
                Outcome::Error
            } else {
                outcome
            };
            this.record.finish(&this.state, outcome, this.started, sent);
        });
        Body::from_stream(rx)
    }
}
