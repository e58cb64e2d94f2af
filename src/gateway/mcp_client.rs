//! The gateway as an MCP client of a Streamable HTTP backend, for the aggregate `/mcp` and for
//! clients of `/mcp/{id}` that speak another era than the backend. The backend's era is probed
//! once (a modern `server/discover`; anything but a modern answer makes it a legacy server, as
//! MCP 2026-07-28 §Backward Compatibility has clients decide) and re-probed when it stops
//! fitting. A legacy backend gets one session per grant (initialized once on first use, even
//! under concurrent calls, and again when the backend forgets it); a modern one gets stateless
//! requests carrying their `_meta` and `Mcp-*` headers. Each request is a POST carrying the
//! caller's identity and request id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use futures::StreamExt;
use serde_json::{Value, json};
use url::Url;

use super::connection::{
    CLIENT_REQUESTS, CallContext, CallError, Connection, FromBackend, Notifications,
    answer_for_backend,
};
use super::era::{self, Era, ServerFacts, headers as mcp_headers};
use super::identity::IdentityForwarder;
use super::{jsonrpc, sse};
use crate::clock::Clock;
use crate::config::BackendSettings;

/// The probe, modern requests, and a legacy session's handshake.
mod handshake;

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const CLIENT_PROTOCOL: &str = "2025-06-18";
/// Sessions unused this long are forgotten (the backend may keep them; it will expire them).
const SESSION_IDLE: Duration = Duration::from_secs(600);
/// How long the backend's era (and a modern backend's facts) is trusted before a new probe.
const ERA_TTL: Duration = Duration::from_secs(600);
/// The most of a refusal's body read for its JSON-RPC error.
const REFUSAL_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone)]
struct Session {
    id: Option<String>,
    protocol: String,
    facts: ServerFacts,
}

/// How long a backend's request waits for the client's answer.
const ASK_WAIT: Duration = Duration::from_secs(300);

/// The answer to a backend's request: at once, or once the client has answered.
enum BackendAnswer {
    Now(Value),
    Later(Value, tokio::sync::oneshot::Receiver<Value>),
}

/// What the probe found the backend to be.
#[derive(Debug, Clone)]
enum Probed {
    Legacy,
    Modern(ServerFacts),
}

/// An HTTP backend reached as an MCP client.
pub struct McpHttpClient {
    identity: Arc<IdentityForwarder>,
    clock: Clock,
    settings: BackendSettings,
    url: Url,
    http: reqwest::Client,
    /// By grant id; lock-free reads, forgotten after idling.
    sessions: moka::future::Cache<String, Session>,
    /// The backend's era: one entry, probed once even under concurrent first calls.
    era: moka::future::Cache<(), Probed>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for McpHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHttpClient")
            .field("backend", &self.settings.id)
            .finish_non_exhaustive()
    }
}

/// How a POST was answered.
enum Answer {
    /// The response message, with the `Mcp-Session-Id` the backend sent along, if any.
    Result {
        message: Value,
        session: Option<String>,
    },
    /// The backend no longer knows the session (HTTP 404 with a session id).
    SessionGone,
    /// An HTTP error status without a JSON-RPC error in the body.
    Refused(StatusCode),
}

impl McpHttpClient {
    pub fn new(
        settings: &BackendSettings,
        url: Url,
        http: reqwest::Client,
        identity: Arc<IdentityForwarder>,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            identity,
            clock,
            settings: settings.clone(),
            url,
            http,
            sessions: moka::future::Cache::builder()
                .time_to_idle(SESSION_IDLE)
                .build(),
            era: moka::future::Cache::builder().time_to_live(ERA_TTL).build(),
            next_id: AtomicU64::new(1),
        })
    }

    /// POSTs one message; returns the answer to `id` (if it has one), passing notifications on.
    /// `modern`: the message is a modern request of that version, whose headers mirror it.
    async fn post(
        &self,
        ctx: &CallContext,
        session: Option<&Session>,
        modern: Option<&str>,
        message: &Value,
        notifications: Option<&Notifications>,
    ) -> Result<Option<Answer>, CallError> {
        let mut headers = self
            .identity
            .headers(
                &self.settings,
                &ctx.caller,
                &ctx.request_id,
                self.clock.now(),
            )
            .await
            .map_err(|e| CallError::Unavailable(e.to_string()))?;
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(session) = session {
            if let Some(id) = session
                .id
                .as_deref()
                .and_then(|id| HeaderValue::from_str(id).ok())
            {
                headers.insert(SESSION_ID, id);
            }
            if let Ok(version) = HeaderValue::from_str(&session.protocol) {
                headers.insert(PROTOCOL_VERSION, version);
            }
        }
        if let Some(version) = modern {
            headers.extend(modern_headers(version, message));
        }
        let send = self
            .http
            .post(self.url.clone())
            .headers(headers.clone())
            .json(message)
            .send();
        let response = tokio::time::timeout_at(ctx.deadline, send)
            .await
            .map_err(|_| CallError::Timeout)?
            .map_err(|e| CallError::Unavailable(format!("the backend is unreachable: {e}")))?;
        let status = response.status();
        // The spec says 404 for a session the server no longer knows; some servers (among them
        // the reference server-everything) answer 400. Either way: a new session, once.
        let forgotten = status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST;
        if forgotten && session.is_some_and(|s| s.id.is_some()) {
            return Ok(Some(Answer::SessionGone));
        }
        if status == StatusCode::ACCEPTED {
            return Ok(None);
        }
        if !status.is_success() {
            // A modern server answers refusals (unknown method, version, headers) with a
            // JSON-RPC error in the body.
            let body = read_bounded(response, REFUSAL_LIMIT, ctx).await;
            let error = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|m| m.get("error").cloned());
            return match error {
                Some(error) => Err(CallError::from_rpc(&error)),
                None => Ok(Some(Answer::Refused(status))),
            };
        }
        let session_header = response
            .headers()
            .get(&SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let wanted = message.get("id").cloned();
        let mut body = response.bytes_stream();
        let mut events = sse::EventSplitter::default();
        let limit = self.settings.max_response_bytes;
        let mut received = 0usize;
        while let Some(chunk) = tokio::time::timeout_at(ctx.deadline, body.next())
            .await
            .map_err(|_| CallError::Timeout)?
        {
            let chunk = chunk.map_err(|_| {
                CallError::Unavailable("the backend stopped answering mid-response".into())
            })?;
            received += chunk.len();
            if received > limit {
                return Err(CallError::TooLarge);
            }
            events.push(&chunk);
            if !is_sse {
                continue;
            }
            while let Some(event) = events.next_event() {
                let Some(message) = sse::event_message(&event) else {
                    continue;
                };
                if let Some(answer) =
                    self.route(message, wanted.as_ref(), notifications, &headers)?
                {
                    return Ok(Some(Answer::Result {
                        message: answer,
                        session: session_header,
                    }));
                }
            }
        }
        if is_sse {
            // A final CR completes the last event only now that the stream is over.
            let last = events.finish().and_then(|event| sse::event_message(&event));
            if let Some(message) = last
                && let Some(answer) =
                    self.route(message, wanted.as_ref(), notifications, &headers)?
            {
                return Ok(Some(Answer::Result {
                    message: answer,
                    session: session_header,
                }));
            }
            return Err(CallError::Unavailable(
                "the backend ended the stream without an answer".into(),
            ));
        }
        let message: Value = serde_json::from_slice(events.pending())
            .map_err(|_| CallError::Unavailable("the backend's answer is not JSON".into()))?;
        match self.route(message, wanted.as_ref(), notifications, &headers)? {
            Some(answer) => Ok(Some(Answer::Result {
                message: answer,
                session: session_header,
            })),
            None => Err(CallError::Unavailable(
                "the backend's answer has no result".into(),
            )),
        }
    }

    /// A notification goes on; a request to the client goes to the client of the call (or is
    /// refused); the response to `wanted` is the answer. `headers` reach the backend's session
    /// with the answer to its request.
    fn route(
        &self,
        message: Value,
        wanted: Option<&Value>,
        notifications: Option<&Notifications>,
        headers: &HeaderMap,
    ) -> Result<Option<Value>, CallError> {
        if jsonrpc::response_id(&message).is_some_and(|id| Some(id) == wanted) {
            if let Some(error) = message.get("error") {
                return Err(CallError::from_rpc(error));
            }
            return Ok(Some(message));
        }
        let method = message.get("method").and_then(Value::as_str);
        match (method, message.get("id").cloned(), notifications) {
            (Some(_), None, Some(sink)) => {
                let _ = sink.send(FromBackend::Notification(message));
            }
            (Some(method), Some(id), sink) => {
                let asked = (CLIENT_REQUESTS.contains(&method))
                    .then_some(sink)
                    .flatten()
                    .and_then(|sink| {
                        let (reply, answer) = tokio::sync::oneshot::channel();
                        let request = FromBackend::Request {
                            message: message.clone(),
                            reply,
                        };
                        sink.send(request).ok().map(|()| answer)
                    });
                let response = match (method, asked) {
                    ("ping", _) => {
                        BackendAnswer::Now(json!({ "jsonrpc": "2.0", "id": id, "result": {} }))
                    }
                    (_, Some(answer)) => BackendAnswer::Later(id, answer),
                    (method, None) => {
                        BackendAnswer::Now(json!({ "jsonrpc": "2.0", "id": id, "error": {
                            "code": -32601,
                            "message": format!("{method} is not supported through the Portcullis gateway here"),
                        }}))
                    }
                };
                self.answer_backend(headers.clone(), response);
            }
            _ => {}
        }
        Ok(None)
    }

    /// POSTs the answer to a request of the backend's, in the background: the call it came
    /// during goes on meanwhile.
    fn answer_backend(&self, headers: HeaderMap, response: BackendAnswer) {
        let (http, url) = (self.http.clone(), self.url.clone());
        tokio::spawn(async move {
            let message = match response {
                BackendAnswer::Now(message) => message,
                BackendAnswer::Later(id, answer) => {
                    let response = tokio::time::timeout(ASK_WAIT, answer).await;
                    match response {
                        Ok(Ok(response)) => answer_for_backend(&id, &response),
                        _ => json!({ "jsonrpc": "2.0", "id": id, "error": {
                            "code": -32603, "message": "the client could not be asked" }}),
                    }
                }
            };
            let sent = http.post(url).headers(headers).json(&message).send().await;
            if let Err(error) = sent {
                tracing::debug!(%error, "the answer to a backend's request could not be sent");
            }
        });
    }
}

#[async_trait]
impl Connection for McpHttpClient {
    async fn request(
        &self,
        ctx: &CallContext,
        method: &str,
        params: Option<Value>,
        notifications: Option<Notifications>,
    ) -> Result<Value, CallError> {
        if let Probed::Modern(facts) = self.probed(ctx).await? {
            return self
                .modern_request(ctx, &facts, method, params, notifications.as_ref())
                .await;
        }
        for attempt in 0..2 {
            let session = self.session(ctx).await?;
            let mut message = json!({ "jsonrpc": "2.0", "id": self.next_id.fetch_add(1, Ordering::Relaxed), "method": method });
            if let (Some(params), Some(object)) = (params.clone(), message.as_object_mut()) {
                object.insert("params".into(), params);
            }
            match self
                .post(ctx, Some(&session), None, &message, notifications.as_ref())
                .await?
            {
                Some(Answer::Result { mut message, .. }) => {
                    return Ok(message
                        .get_mut("result")
                        .map(Value::take)
                        .unwrap_or(Value::Null));
                }
                // The backend restarted or expired the session: start a new one, once.
                Some(Answer::SessionGone) if attempt == 0 => {
                    self.sessions.invalidate(&ctx.caller.claims.sid).await;
                }
                _ => break,
            }
        }
        Err(CallError::Unavailable("the backend did not answer".into()))
    }

    async fn facts(&self, ctx: &CallContext) -> Result<ServerFacts, CallError> {
        match self.probed(ctx).await? {
            Probed::Modern(facts) => Ok(facts),
            Probed::Legacy => Ok(self.session(ctx).await?.facts),
        }
    }
}

impl McpHttpClient {
    /// The backend's era as last probed for `ctx`'s caller (probing if need be).
    pub async fn backend_era(&self, ctx: &CallContext) -> Result<Era, CallError> {
        Ok(match self.probed(ctx).await? {
            Probed::Modern(_) => Era::Modern,
            Probed::Legacy => Era::Legacy,
        })
    }
}

/// The headers of a modern request that mirror its body: the version, `Mcp-Method`, and
/// `Mcp-Name` where the method names something.
pub fn modern_headers(version: &str, message: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(version) {
        headers.insert(mcp_headers::PROTOCOL_VERSION, value);
    }
    let method = message.get("method").and_then(Value::as_str);
    if let Some(value) = method.and_then(|m| HeaderValue::from_str(m).ok()) {
        headers.insert(mcp_headers::METHOD, value);
    }
    let key = if method == Some("resources/read") {
        "uri"
    } else {
        "name"
    };
    let named = matches!(
        method,
        Some("tools/call" | "resources/read" | "prompts/get")
    );
    let name = message
        .get("params")
        .and_then(|p| p.get(key))
        .and_then(Value::as_str);
    if let (true, Some(name)) = (named, name)
        && let Ok(value) = HeaderValue::from_str(&era::encode_header_value(name))
    {
        headers.insert(mcp_headers::NAME, value);
    }
    headers
}

/// Up to `limit` bytes of a response's body, within the call's deadline; less if it breaks.
async fn read_bounded(response: reqwest::Response, limit: usize, ctx: &CallContext) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(ctx.deadline, stream.next()).await {
        if body.len() + chunk.len() > limit {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}
