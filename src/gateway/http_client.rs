//! The gateway as an MCP client of a Streamable HTTP backend, for the aggregate `/mcp`: one
//! backend session per grant (initialized on first use, re-initialized when the backend forgets
//! it), each request a POST carrying that caller's identity and request id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::connection::{CallContext, CallError, Connection, Notifications};
use super::forward;
use super::jsonrpc;
use crate::config::BackendSettings;
use crate::state::{AppState, WeakState};

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const CLIENT_PROTOCOL: &str = "2025-06-18";
/// Sessions unused this long are forgotten (the backend may keep them; it will expire them).
const SESSION_IDLE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Session {
    id: Option<String>,
    protocol: String,
    last_used: Instant,
}

/// An HTTP backend reached as an MCP client.
pub struct HttpConnection {
    state: std::sync::OnceLock<WeakState>,
    settings: BackendSettings,
    url: Url,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for HttpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnection")
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
}

impl HttpConnection {
    pub fn new(settings: &BackendSettings, url: Url, http: reqwest::Client) -> Arc<Self> {
        Arc::new(Self {
            state: std::sync::OnceLock::new(),
            settings: settings.clone(),
            url,
            http,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The state is built after the gateway that owns this connection; it is handed in once at
    /// start-up, weakly, so the two do not keep each other alive.
    pub fn attach(&self, state: &AppState) {
        let _ = self.state.set(state.downgrade());
    }

    fn state(&self) -> Result<AppState, CallError> {
        self.state
            .get()
            .and_then(WeakState::upgrade)
            .ok_or_else(|| CallError::Unavailable("the gateway is not running".into()))
    }

    /// POSTs one message; returns the answer to `id` (if it has one), passing notifications on.
    async fn post(
        &self,
        ctx: &CallContext,
        session: Option<&Session>,
        message: &Value,
        notifications: Option<&Notifications>,
    ) -> Result<Option<Answer>, CallError> {
        let state = self.state()?;
        let mut headers = forward::caller_headers(
            &state,
            &self.settings,
            &ctx.caller,
            &ctx.request_id,
            state.now(),
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
        let send = self
            .http
            .post(self.url.clone())
            .headers(headers)
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
            return Err(CallError::Unavailable(format!(
                "the backend answered HTTP {status}"
            )));
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
        let mut buffer = Vec::new();
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
            buffer.extend_from_slice(&chunk);
            if !is_sse {
                continue;
            }
            for event in jsonrpc::take_events(&mut buffer) {
                let Some(message) = jsonrpc::event_message(&event) else {
                    continue;
                };
                if let Some(answer) = self.route(message, wanted.as_ref(), notifications)? {
                    return Ok(Some(Answer::Result {
                        message: answer,
                        session: session_header,
                    }));
                }
            }
        }
        if is_sse {
            return Err(CallError::Unavailable(
                "the backend ended the stream without an answer".into(),
            ));
        }
        let message: Value = serde_json::from_slice(&buffer)
            .map_err(|_| CallError::Unavailable("the backend's answer is not JSON".into()))?;
        match self.route(message, wanted.as_ref(), notifications)? {
            Some(answer) => Ok(Some(Answer::Result {
                message: answer,
                session: session_header,
            })),
            None => Err(CallError::Unavailable(
                "the backend's answer has no result".into(),
            )),
        }
    }

    /// A notification goes on; the response to `wanted` is the answer.
    fn route(
        &self,
        message: Value,
        wanted: Option<&Value>,
        notifications: Option<&Notifications>,
    ) -> Result<Option<Value>, CallError> {
        if jsonrpc::response_id(&message).is_some_and(|id| Some(id) == wanted) {
            if let Some(error) = message.get("error") {
                return Err(CallError::from_rpc(error));
            }
            return Ok(Some(message));
        }
        if message.get("method").is_some()
            && message.get("id").is_none()
            && let Some(sink) = notifications
        {
            let _ = sink.send(message);
        }
        Ok(None)
    }

    /// The grant's session, initializing one when there is none.
    async fn session(&self, ctx: &CallContext) -> Result<Session, CallError> {
        let key = ctx.caller.claims.sid.clone();
        let mut sessions = self.sessions.lock().await;
        sessions.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
        if let Some(session) = sessions.get_mut(&key) {
            session.last_used = Instant::now();
            return Ok(session.clone());
        }
        drop(sessions);
        let initialize = json!({
            "jsonrpc": "2.0",
            "id": self.next_id.fetch_add(1, Ordering::Relaxed),
            "method": "initialize",
            "params": {
                "protocolVersion": CLIENT_PROTOCOL,
                "capabilities": {},
                "clientInfo": { "name": "portcullis", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let answer = self.post(ctx, None, &initialize, None).await?;
        let Some(Answer::Result {
            message: result,
            session: id,
        }) = answer
        else {
            return Err(CallError::Unavailable(
                "the backend did not answer initialize".into(),
            ));
        };
        let session = Session {
            id,
            protocol: result
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(CLIENT_PROTOCOL)
                .to_owned(),
            last_used: Instant::now(),
        };
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        self.post(ctx, Some(&session), &initialized, None).await?;
        self.sessions.lock().await.insert(key, session.clone());
        Ok(session)
    }
}

#[async_trait]
impl Connection for HttpConnection {
    async fn request(
        &self,
        ctx: &CallContext,
        method: &str,
        params: Option<Value>,
        notifications: Option<Notifications>,
    ) -> Result<Value, CallError> {
        for attempt in 0..2 {
            let session = self.session(ctx).await?;
            let mut message = json!({ "jsonrpc": "2.0", "id": self.next_id.fetch_add(1, Ordering::Relaxed), "method": method });
            if let (Some(params), Some(object)) = (params.clone(), message.as_object_mut()) {
                object.insert("params".into(), params);
            }
            match self
                .post(ctx, Some(&session), &message, notifications.as_ref())
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
                    self.sessions.lock().await.remove(&ctx.caller.claims.sid);
                }
                _ => break,
            }
        }
        Err(CallError::Unavailable("the backend did not answer".into()))
    }
}
