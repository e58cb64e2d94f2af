//! MCP served by the gateway itself: the aggregate `/mcp` (the built-in tools plus every
//! backend's tools, named `{backend}{separator}{tool}`) and `/mcp/{id}` for stdio backends (that
//! backend's tools under their own names, and its prompts and resources). Requests arrive here
//! parsed and authorized by the gate; lists show only what the caller may call.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::audit::CallRecord;
use super::backend::Backend;
use super::builtin;
use super::caller::Caller;
use super::connection::{CallContext, Notifications};
use super::endpoint::{Endpoint, Serves};
use super::error::GatewayError;
use super::gate::{Gate, Route};
use super::message::{Method, Request};

/// How long a `tools/list` may wait for one backend before the list goes out without it.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_LIST_PAGES: usize = 20;

/// The protocol versions this server speaks, newest first (all with `initialize`).
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// What a stdio backend's endpoint passes through besides tools.
const PASSED_THROUGH: [&str; 5] = [
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// The answer to one request, and the tool call it made, to be recorded once the answer's
/// size is known.
pub struct Dispatched {
    pub result: Result<Value, GatewayError>,
    pub call: Option<(CallRecord, Instant)>,
}

impl From<Result<Value, GatewayError>> for Dispatched {
    fn from(result: Result<Value, GatewayError>) -> Self {
        Self { result, call: None }
    }
}

impl Endpoint {
    /// Answers an authorized request.
    pub async fn answer(
        &self,
        gate: &Gate,
        caller: &Caller,
        request: &Request,
        request_id: &str,
        notifications: Option<Notifications>,
    ) -> Dispatched {
        match &request.method {
            Method::Initialize => Ok(self.initialize(request.params.as_ref())).into(),
            Method::Ping => Ok(json!({})).into(),
            Method::ToolsList => Ok(self.list_tools(caller, request_id).await).into(),
            Method::ToolsCall { .. } => match self.route(request) {
                Route::Builtin(name) => builtin::call(name, caller)
                    .ok_or_else(|| GatewayError::InvalidParams(format!("unknown tool: {name}")))
                    .into(),
                Route::Backend {
                    backend,
                    tool: Some(tool),
                } => {
                    let mut record = gate.record(backend.id(), caller, request_id);
                    record.tool = Some(tool.to_owned());
                    let started = Instant::now();
                    let result =
                        call_tool(backend, caller, request, tool, request_id, notifications).await;
                    Dispatched {
                        result,
                        call: Some((record, started)),
                    }
                }
                Route::Nowhere(error) => Err(error).into(),
                Route::Backend { tool: None, .. } | Route::Endpoint => Err(
                    GatewayError::InvalidParams("tools/call needs params.name".into()),
                )
                .into(),
            },
            Method::Other(method) => match (&self.serves, self.route(request)) {
                (Serves::Stdio(backend), Route::Backend { .. })
                    if PASSED_THROUGH.contains(&method.as_str()) =>
                {
                    pass_through(backend, caller, method, request, request_id)
                        .await
                        .into()
                }
                _ => Err(GatewayError::MethodNotFound(method.clone())).into(),
            },
        }
    }

    /// The `initialize` result: the client's protocol version when this server speaks it, else
    /// the newest it does.
    fn initialize(&self, params: Option<&Value>) -> Value {
        let asked = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        let version = asked
            .filter(|v| PROTOCOL_VERSIONS.contains(v))
            .unwrap_or(PROTOCOL_VERSIONS[0]);
        let mut capabilities = json!({ "tools": {} });
        // One backend's endpoint passes its prompts and resources through too; the aggregate
        // endpoint offers tools only (names of resources do not namespace cleanly).
        if let (Serves::Stdio(_), Some(object)) = (&self.serves, capabilities.as_object_mut()) {
            object.insert("prompts".into(), json!({}));
            object.insert("resources".into(), json!({}));
        }
        json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": { "name": "portcullis", "version": env!("CARGO_PKG_VERSION") },
            "instructions": "Tools behind the Portcullis gateway.",
        })
    }

    /// Every tool the caller may call here; one broken backend does not hide the others'.
    async fn list_tools(&self, caller: &Caller, request_id: &str) -> Value {
        let mut tools = match self.serves {
            Serves::Aggregate { .. } => builtin::tools(),
            _ => Vec::new(),
        };
        let backends = self.backends();
        let lists = futures::future::join_all(
            backends
                .iter()
                .map(|backend| self.backend_tools(backend, caller, request_id)),
        )
        .await;
        for (backend, list) in backends.iter().zip(lists) {
            match list {
                Ok(list) => tools.extend(list),
                Err(error) => {
                    tracing::warn!(backend = %backend.id(), %error, "listing a backend's tools failed")
                }
            }
        }
        json!({ "tools": tools })
    }

    /// Every tool of `backend` the caller may call, following pagination, named as this
    /// endpoint names them.
    async fn backend_tools(
        &self,
        backend: &Backend,
        caller: &Caller,
        request_id: &str,
    ) -> Result<Vec<Value>, GatewayError> {
        let connection = backend.connection();
        let ctx = CallContext {
            caller: caller.clone(),
            request_id: request_id.to_owned(),
            deadline: Instant::now() + LIST_TIMEOUT.min(backend.timeout()),
        };
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor.take().map(|c| json!({ "cursor": c }));
            let mut result = connection.request(&ctx, "tools/list", params, None).await?;
            let listed = match result.get_mut("tools").map(Value::take) {
                Some(Value::Array(listed)) => listed,
                _ => Vec::new(),
            };
            for mut tool in listed {
                let Some(name) = tool.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if !backend.policy.allows(name, caller.scopes()) {
                    continue;
                }
                let shown = self.tool_name(backend, name);
                if let Some(object) = tool.as_object_mut() {
                    object.insert("name".into(), Value::String(shown));
                }
                tools.push(tool);
            }
            match result.get("nextCursor") {
                Some(next) if !next.is_null() => cursor = Some(next.clone()),
                _ => break,
            }
        }
        Ok(tools)
    }
}

/// Calls `tool` at `backend`, passing the caller's progress token on so the backend can report
/// progress (the rest of `_meta` is about this hop).
async fn call_tool(
    backend: &Arc<Backend>,
    caller: &Caller,
    request: &Request,
    tool: &str,
    request_id: &str,
    notifications: Option<Notifications>,
) -> Result<Value, GatewayError> {
    let params = request.params.as_ref();
    let arguments = params
        .and_then(|p| p.get("arguments"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut call = json!({ "name": tool, "arguments": arguments });
    let progress_token = params.and_then(|p| p.pointer("/_meta/progressToken"));
    if let (Some(token), Some(object)) = (progress_token, call.as_object_mut()) {
        object.insert("_meta".into(), json!({ "progressToken": token }));
    }
    let ctx = CallContext {
        caller: caller.clone(),
        request_id: request_id.to_owned(),
        deadline: Instant::now() + backend.timeout(),
    };
    let result = backend
        .connection()
        .request(&ctx, "tools/call", Some(call), notifications)
        .await
        .inspect_err(
            |error| tracing::info!(backend = %backend.id(), %error, "a tool call failed"),
        )?;
    // A CallToolResult carries its content (MCP 2025-06-18 §tools).
    if result.get("content").is_some_and(Value::is_array) {
        Ok(result)
    } else {
        Err(GatewayError::Malformed)
    }
}

/// Sends a request other than a tool call to the one backend of a stdio endpoint.
async fn pass_through(
    backend: &Backend,
    caller: &Caller,
    method: &str,
    request: &Request,
    request_id: &str,
) -> Result<Value, GatewayError> {
    let ctx = CallContext {
        caller: caller.clone(),
        request_id: request_id.to_owned(),
        deadline: Instant::now() + backend.timeout(),
    };
    let params = request.params.clone().filter(|p| !p.is_null());
    let result = backend
        .connection()
        .request(&ctx, method, params, None)
        .await?;
    if result.is_object() {
        Ok(result)
    } else {
        Err(GatewayError::Malformed)
    }
}
