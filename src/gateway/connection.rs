//! How the gateway talks to a backend when it speaks MCP itself (the aggregate `/mcp`, and
//! `/mcp/{id}` for stdio backends): one JSON-RPC request at a time on behalf of a caller, with
//! the notifications the backend sends while answering passed on as they arrive.

use async_trait::async_trait;
use serde_json::Value;
use tokio::time::Instant;

use super::audit::Outcome;
use super::caller::Caller;
use super::era::ServerFacts;
use super::error::GatewayError;

/// Who is asking, and by when the answer must be there.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub caller: Caller,
    pub request_id: String,
    pub deadline: Instant,
    /// What the client can do (elicitation, sampling, roots), declared to a modern backend on
    /// the client's behalf: a backend may then ask for it (MRTR), and the client answers.
    /// Empty for a legacy client, whose requests the gateway cannot carry back to it.
    pub client_capabilities: Value,
}

impl CallContext {
    pub fn new(caller: Caller, request_id: &str, deadline: Instant) -> Self {
        Self {
            caller,
            request_id: request_id.to_owned(),
            deadline,
            client_capabilities: Value::Object(serde_json::Map::new()),
        }
    }
}

/// What the backend sent while answering a request: notifications (`notifications/progress`,
/// `notifications/message`, …) as raw JSON-RPC messages, progress tokens the caller's own again;
/// and requests to the client (sampling, elicitation, roots), which the client answers.
pub type Notifications = tokio::sync::mpsc::UnboundedSender<FromBackend>;

/// One message a backend sent about a request in flight.
#[derive(Debug)]
pub enum FromBackend {
    Notification(Value),
    /// A request to the client (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`). The client's JSON-RPC response to it goes to `reply`; dropping `reply`
    /// tells the backend the client could not be asked.
    Request {
        message: Value,
        reply: tokio::sync::oneshot::Sender<Value>,
    },
}

/// The client's response to a backend's request (its `result` or `error`) as the answer to the
/// backend's own request `id`.
pub fn answer_for_backend(id: &Value, response: &Value) -> Value {
    match (response.get("result"), response.get("error")) {
        (Some(result), _) => serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        (None, Some(error)) => serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        (None, None) => serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": {
            "code": -32603, "message": "the client's answer is not a JSON-RPC response" }}),
    }
}

/// What the gateway tells a 2025-era backend its client can do, at `initialize`: what it can
/// pass on to the client of a call (which may still decline). Roots are left out: a backend
/// asks for them when it likes, outside any call, when there is no client to ask.
pub fn relayed_client_capabilities() -> Value {
    serde_json::json!({ "sampling": {}, "elicitation": {} })
}

/// What a backend may ask of the client while a request is in flight.
pub const CLIENT_REQUESTS: [&str; 3] =
    ["sampling/createMessage", "elicitation/create", "roots/list"];

/// Why a request got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The backend answered with a JSON-RPC error: passed on as it is.
    #[error("backend error {code}: {message}")]
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    #[error("the backend did not answer in time")]
    Timeout,
    /// The backend cannot be reached, could not start, or went away mid-call.
    #[error("the backend is unavailable: {0}")]
    Unavailable(String),
    /// The backend's answer is larger than its limit allows.
    #[error("the backend's response is larger than allowed")]
    TooLarge,
    /// Too many per-user processes are running for this backend.
    #[error("the backend is at capacity; try again later")]
    AtCapacity,
}

impl CallError {
    /// The error of a JSON-RPC error response (`error` member), as the backend sent it.
    pub fn from_rpc(error: &Value) -> Self {
        Self::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("backend error")
                .to_owned(),
            data: error.get("data").cloned(),
        }
    }
}

/// A way to send requests to one backend.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Sends `method` with `params` for `ctx.caller` and returns the `result`. Notifications the
    /// backend sends about this request go to `notifications` while it runs.
    async fn request(
        &self,
        ctx: &CallContext,
        method: &str,
        params: Option<Value>,
        notifications: Option<Notifications>,
    ) -> Result<Value, CallError>;

    /// What the backend says about itself (its era, identity, capabilities and instructions),
    /// as it told the caller's session or process.
    async fn facts(&self, ctx: &CallContext) -> Result<ServerFacts, CallError>;

    /// Calls a tool with `params` (a `tools/call`'s). By default a `tools/call` request; a
    /// backend whose answer does not say everything about the call (an OpenAPI call that timed
    /// out is a tool error for the model, and a timeout for the audit) says it here.
    async fn call_tool(
        &self,
        ctx: &CallContext,
        params: Value,
        notifications: Option<Notifications>,
    ) -> Result<ToolAnswer, GatewayError> {
        let result = self
            .request(ctx, "tools/call", Some(params), notifications)
            .await?;
        Ok(ToolAnswer::from(result))
    }
}

/// A tool call's `CallToolResult`, and what the audit records of it beyond the result.
#[derive(Debug)]
pub struct ToolAnswer {
    pub result: Value,
    /// How the call ended, when the result alone does not say.
    pub outcome: Option<Outcome>,
    /// A short note for the audit record (`cache hit`).
    pub detail: Option<&'static str>,
}

impl From<Value> for ToolAnswer {
    fn from(result: Value) -> Self {
        Self {
            result,
            outcome: None,
            detail: None,
        }
    }
}
