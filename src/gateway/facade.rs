//! MCP served by the gateway itself: the aggregate `/mcp` (the built-in tools plus every
//! backend's tools, named `{backend}{separator}{tool}`), `/mcp/{id}` for stdio backends, and
//! `/mcp/{id}` for an HTTP backend whose client speaks the other era (that backend's tools under
//! their own names, and its prompts and resources). Requests arrive here parsed and authorized by
//! the gate; lists show only what the caller may call. Each answer is in the era of the request:
//! `initialize` or `server/discover` tell what the backends told the gateway, and results are
//! shaped by [`era::for_client`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::audit::{CallRecord, Outcome};
use super::backend::Backend;
use super::builtin;
use super::caller::Caller;
use super::connection::{
    CallContext, FromBackend, Notifications, ToolAnswer, relayed_client_capabilities,
};
use super::endpoint::{Endpoint, Serves};
use super::era::{self, Era, ServerFacts};
use super::error::GatewayError;
use super::gate::{Gate, Route};
use super::message::{Method, Request};

/// How long a `tools/list` may wait for one backend before the list goes out without it.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_LIST_PAGES: usize = 20;

/// What the aggregate endpoint says it is for.
const AGGREGATE_INSTRUCTIONS: &str = "Tools behind the Portcullis gateway.";

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
    /// How the call ended, when the result alone does not say (an OpenAPI call that timed out
    /// is a tool error for the model, and a timeout for the audit).
    pub outcome: Option<Outcome>,
}

impl From<Result<Value, GatewayError>> for Dispatched {
    fn from(result: Result<Value, GatewayError>) -> Self {
        Self {
            result,
            call: None,
            outcome: None,
        }
    }
}

impl Endpoint {
    /// Answers an authorized request (in the backend's era: [`era::for_client`] shapes it for
    /// the client's).
    pub async fn answer(
        &self,
        gate: &Gate,
        caller: &Caller,
        request: &Request,
        request_id: &str,
        notifications: Option<Notifications>,
    ) -> Dispatched {
        let ctx = |timeout: Duration| {
            let mut ctx = CallContext::new(caller.clone(), request_id, Instant::now() + timeout);
            ctx.client_capabilities = match request.client_capabilities() {
                Some(capabilities) => capabilities.clone(),
                // A legacy client of a tool call is asked on its call's stream.
                None if notifications.is_some() => relayed_client_capabilities(),
                None => json!({}),
            };
            ctx
        };
        match &request.method {
            Method::Initialize => {
                let facts = self.backend_facts(&ctx(LIST_TIMEOUT)).await;
                Ok(self.initialize(request.params.as_ref(), &facts)).into()
            }
            Method::Discover => {
                let facts = self.backend_facts(&ctx(LIST_TIMEOUT)).await;
                Ok(self.discover(&facts)).into()
            }
            Method::Ping => Ok(json!({})).into(),
            Method::ToolsList => Ok(self.list_tools(caller, request, request_id).await).into(),
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
                    let ctx = ctx(backend.timeout());
                    let (result, outcome) =
                        match call_tool(backend, &ctx, request, tool, notifications).await {
                            Ok(answer) => {
                                record.detail = answer.detail;
                                (Ok(answer.result), answer.outcome)
                            }
                            Err(error) => (Err(error), None),
                        };
                    Dispatched {
                        result,
                        call: Some((record, started)),
                        outcome,
                    }
                }
                Route::Nowhere(error) => Err(error).into(),
                Route::Backend { tool: None, .. } | Route::Endpoint => Err(
                    GatewayError::InvalidParams("tools/call needs params.name".into()),
                )
                .into(),
            },
            Method::Other(method) => match (&self.serves, self.route(request)) {
                (Serves::Facade(backend) | Serves::Proxy(backend), Route::Backend { .. })
                    if PASSED_THROUGH.contains(&method.as_str()) =>
                {
                    pass_through(backend, &ctx(backend.timeout()), method, request)
                        .await
                        .into()
                }
                _ => Err(GatewayError::MethodNotFound(method.clone())).into(),
            },
        }
    }

    /// What each backend behind this endpoint says about itself; one that cannot say is left
    /// out (and logged), as it is from lists.
    async fn backend_facts(&self, ctx: &CallContext) -> Vec<(&Backend, ServerFacts)> {
        // Only backends the caller may use at all: asking the others would start their
        // processes for nothing.
        let backends: Vec<&Arc<Backend>> = self
            .backends()
            .iter()
            .filter(|backend| {
                backend
                    .policy
                    .scopes()
                    .iter()
                    .any(|scope| ctx.caller.holds(scope))
            })
            .collect();
        let facts = futures::future::join_all(
            backends
                .iter()
                .map(|backend| async move { backend.connection().facts(ctx).await }),
        )
        .await;
        backends
            .into_iter()
            .zip(facts)
            .filter_map(|(backend, facts)| match facts {
                Ok(facts) => Some((backend.as_ref(), facts)),
                Err(error) => {
                    tracing::warn!(backend = %backend.id(), %error, "a backend could not say what it is");
                    None
                }
            })
            .collect()
    }

    /// Who answers here, what it offers and what it is for. One backend's endpoint is that
    /// backend, as it described itself; the aggregate is Portcullis, with every backend's
    /// instructions under its name.
    fn describe(&self, facts: &[(&Backend, ServerFacts)]) -> (Value, Value, Option<String>) {
        let portcullis = json!({ "name": "portcullis", "version": env!("CARGO_PKG_VERSION") });
        let mut capabilities = json!({ "tools": {} });
        match (&self.serves, facts) {
            (Serves::Aggregate { separator, .. }, _) => {
                let mut instructions = vec![format!(
                    "{AGGREGATE_INSTRUCTIONS} Each backend's tools are named {{backend}}{separator}{{tool}}."
                )];
                for (backend, facts) in facts {
                    if let Some(text) = &facts.instructions {
                        instructions.push(format!("Backend {}: {text}", backend.id()));
                    }
                }
                (portcullis, capabilities, Some(instructions.join("\n\n")))
            }
            (_, [(_, facts)]) => {
                // Its prompts and resources pass through too, when it has them.
                for feature in ["prompts", "resources"] {
                    if facts.capabilities.get(feature).is_some()
                        && let Some(object) = capabilities.as_object_mut()
                    {
                        object.insert(feature.into(), json!({}));
                    }
                }
                let info = if facts.server_info.is_object() {
                    facts.server_info.clone()
                } else {
                    portcullis
                };
                (info, capabilities, facts.instructions.clone())
            }
            _ => (portcullis, capabilities, None),
        }
    }

    /// The `initialize` result: the client's protocol version when this server speaks it, else
    /// the newest legacy one it does.
    fn initialize(&self, params: Option<&Value>, facts: &[(&Backend, ServerFacts)]) -> Value {
        let asked = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        let version = asked
            .filter(|v| era::LEGACY_VERSIONS.contains(v))
            .unwrap_or(era::LEGACY_VERSIONS[0]);
        let (info, capabilities, instructions) = self.describe(facts);
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": info,
        });
        if let (Some(text), Some(object)) = (instructions, result.as_object_mut()) {
            object.insert("instructions".into(), json!(text));
        }
        result
    }

    /// The `server/discover` result (MCP 2026-07-28): every version the gateway speaks, since
    /// it bridges either era to any backend.
    fn discover(&self, facts: &[(&Backend, ServerFacts)]) -> Value {
        let (info, capabilities, instructions) = self.describe(facts);
        let mut result = json!({
            "supportedVersions": era::supported_versions(),
            "capabilities": capabilities,
            "_meta": { era::meta::SERVER_INFO: info },
        });
        if let (Some(text), Some(object)) = (instructions, result.as_object_mut()) {
            object.insert("instructions".into(), json!(text));
        }
        result
    }

    /// Every tool the caller may call here; one broken backend does not hide the others'.
    async fn list_tools(&self, caller: &Caller, request: &Request, request_id: &str) -> Value {
        let mut tools = match self.serves {
            Serves::Aggregate { .. } => builtin::tools(),
            _ => Vec::new(),
        };
        let backends = self.backends();
        let lists = futures::future::join_all(
            backends
                .iter()
                .map(|backend| self.backend_tools(backend, caller, request, request_id)),
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
        request: &Request,
        request_id: &str,
    ) -> Result<Vec<Value>, GatewayError> {
        let connection = backend.connection();
        let deadline = Instant::now() + LIST_TIMEOUT.min(backend.timeout());
        let mut ctx = CallContext::new(caller.clone(), request_id, deadline);
        if let Some(capabilities) = request.client_capabilities() {
            ctx.client_capabilities = capabilities.clone();
        }
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

/// Calls `tool` at `backend`, passing on the caller's progress token (so the backend can report
/// progress) and a modern client's answers to what the backend asked of it (MRTR); the rest of
/// `_meta` is about this hop. A modern backend that asks a legacy client for input has the
/// client asked on its call's stream, and the call retried with the answers (MRTR, played out
/// by the gateway), a few rounds at most.
async fn call_tool(
    backend: &Arc<Backend>,
    ctx: &CallContext,
    request: &Request,
    tool: &str,
    notifications: Option<Notifications>,
) -> Result<ToolAnswer, GatewayError> {
    let params = request.params.as_ref();
    let arguments = params
        .and_then(|p| p.get("arguments"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut call = json!({ "name": tool, "arguments": arguments });
    let Some(object) = call.as_object_mut() else {
        return Err(GatewayError::Malformed);
    };
    let progress_token = params.and_then(|p| p.pointer("/_meta/progressToken"));
    if let Some(token) = progress_token {
        object.insert("_meta".into(), json!({ "progressToken": token }));
    }
    for key in ["inputResponses", "requestState"] {
        if let Some(value) = params.and_then(|p| p.get(key)) {
            object.insert(key.into(), value.clone());
        }
    }
    for _ in 0..MAX_INPUT_ROUNDS {
        let answer = backend
            .connection()
            .call_tool(ctx, call.clone(), notifications.clone())
            .await
            .inspect_err(
                |error| tracing::info!(backend = %backend.id(), %error, "a tool call failed"),
            )?;
        let result = &answer.result;
        // A CallToolResult carries its content (MCP 2025-06-18 §tools); a modern backend may
        // ask for input instead (MRTR), which carries none.
        let asks = result.get("resultType").and_then(Value::as_str) == Some("input_required");
        let sink = notifications
            .as_ref()
            .filter(|_| request.era() == Era::Legacy);
        match (asks, sink) {
            (true, Some(sink)) => {
                let responses = ask_legacy_client(sink, result, ctx).await?;
                if let Some(object) = call.as_object_mut() {
                    object.insert("inputResponses".into(), responses);
                    match result.get("requestState") {
                        Some(state) => object.insert("requestState".into(), state.clone()),
                        None => object.remove("requestState"),
                    };
                }
            }
            (true, None) => return Ok(answer),
            (false, _) if result.get("content").is_some_and(Value::is_array) => return Ok(answer),
            (false, _) => return Err(GatewayError::Malformed),
        }
    }
    Err(GatewayError::InputRequired)
}

/// How many times a modern backend may ask a legacy client for input during one call.
const MAX_INPUT_ROUNDS: usize = 4;

/// Puts a modern backend's `inputRequests` to a legacy client (as requests on its call's
/// stream) and gathers its answers as `inputResponses`. A request the client declines, or does
/// not answer in time, ends the call with an error that says so.
async fn ask_legacy_client(
    sink: &Notifications,
    asked: &Value,
    ctx: &CallContext,
) -> Result<Value, GatewayError> {
    let requests = asked
        .get("inputRequests")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut waiting = Vec::with_capacity(requests.len());
    for (key, request) in requests {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let mut message = json!({ "jsonrpc": "2.0", "id": Value::Null });
        for field in ["method", "params"] {
            if let Some(value) = request.get(field) {
                message[field] = value.clone();
            }
        }
        sink.send(FromBackend::Request { message, reply })
            .map_err(|_| GatewayError::InputRequired)?;
        waiting.push((key, answer));
    }
    let mut responses = Map::new();
    for (key, answer) in waiting {
        let response = tokio::time::timeout_at(ctx.deadline, answer)
            .await
            .map_err(|_| GatewayError::Timeout)?
            .map_err(|_| GatewayError::InputRequired)?;
        let result = response
            .get("result")
            .cloned()
            .ok_or(GatewayError::InputRequired)?;
        responses.insert(key, result);
    }
    Ok(Value::Object(responses))
}

/// Sends a request other than a tool call to the one backend of the endpoint.
async fn pass_through(
    backend: &Backend,
    ctx: &CallContext,
    method: &str,
    request: &Request,
) -> Result<Value, GatewayError> {
    let params = era::without_protocol_meta(request.params.clone().filter(|p| !p.is_null()));
    let result = backend
        .connection()
        .request(ctx, method, params, None)
        .await?;
    if result.is_object() {
        Ok(result)
    } else {
        Err(GatewayError::Malformed)
    }
}
