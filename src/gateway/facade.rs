//! The MCP server clients see when the gateway speaks MCP itself: the aggregate `/mcp` (the
//! built-in tools plus every backend's tools, named `{backend}{separator}{tool}`), and
//! `/mcp/{id}` for stdio backends (that backend's tools under their own names). Scopes are
//! checked by [`guard`] before a request gets here (so a refusal can be an HTTP 403 with a
//! step-up challenge) and again here; lists show only what the caller may call.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorCode, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, PromptsCapability, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ResourcesCapability, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Backend;
use super::audit::{CallRecord, Outcome};
use super::auth::{Caller, insufficient_scope};
use super::builtin;
use super::connection::{CallContext, CallError};
use super::forward;
use super::jsonrpc::{
    self, BACKEND_TIMEOUT, BACKEND_UNAVAILABLE, FORBIDDEN, REQUEST_TOO_LARGE, RESPONSE_TOO_LARGE,
};
use crate::oauth::resource::Resource;
use crate::state::AppState;

/// How long a `tools/list` may wait for one backend before the list goes out without it.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_LIST_PAGES: usize = 20;

/// One MCP endpoint served by the gateway itself.
#[derive(Clone)]
pub struct Facade {
    inner: Arc<Inner>,
}

struct Inner {
    state: AppState,
    backends: Vec<Arc<Backend>>,
    /// Tool names carry the backend id (the aggregate endpoint).
    namespaced: bool,
    /// The built-in tools are listed too.
    builtin: bool,
    resource: Resource,
}

impl Facade {
    pub fn new(
        state: AppState,
        backends: Vec<Arc<Backend>>,
        namespaced: bool,
        builtin: bool,
        resource: Resource,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                state,
                backends,
                namespaced,
                builtin,
                resource,
            }),
        }
    }

    /// The backend and its own tool name for a tool name as the client sees it.
    pub fn resolve<'a>(&self, name: &'a str) -> Option<(&Arc<Backend>, &'a str)> {
        if !self.inner.namespaced {
            return self.inner.backends.first().map(|b| (b, name));
        }
        let separator = &self.inner.state.settings.gateway.tool_separator;
        let (id, tool) = name.split_once(separator.as_str())?;
        self.inner
            .backends
            .iter()
            .find(|b| b.settings.id == id)
            .map(|b| (b, tool))
    }

    fn client_name(&self, backend: &Backend, tool: &str) -> String {
        if self.inner.namespaced {
            format!(
                "{}{}{tool}",
                backend.settings.id, self.inner.state.settings.gateway.tool_separator
            )
        } else {
            tool.to_owned()
        }
    }

    /// Every tool of `backend` the caller may call, following pagination.
    async fn backend_tools(
        &self,
        backend: &Backend,
        caller: &Caller,
        request_id: &str,
    ) -> Result<Vec<Tool>, CallError> {
        let connection = backend.connection();
        let ctx = CallContext {
            caller: caller.clone(),
            request_id: request_id.to_owned(),
            deadline: Instant::now()
                + LIST_TIMEOUT.min(Duration::from_secs(backend.settings.timeout_secs)),
        };
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor.take().map(|c| json!({ "cursor": c }));
            let result = connection.request(&ctx, "tools/list", params, None).await?;
            for tool in result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Ok(mut tool) = serde_json::from_value::<Tool>(tool.clone()) else {
                    continue;
                };
                if backend.policy.allows(&tool.name, caller.scopes()) {
                    tool.name = self.client_name(backend, &tool.name).into();
                    tools.push(tool);
                }
            }
            match result.get("nextCursor") {
                Some(next) if !next.is_null() => cursor = Some(next.clone()),
                _ => break,
            }
        }
        Ok(tools)
    }
}

fn request_parts(context: &RequestContext<RoleServer>) -> Option<&axum::http::request::Parts> {
    context.extensions.get::<axum::http::request::Parts>()
}

fn caller_of(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    request_parts(context)
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the caller is not authenticated", None))
}

fn request_id_of(context: &RequestContext<RoleServer>) -> String {
    request_parts(context)
        .and_then(|parts| parts.headers.get(&forward::REQUEST_ID))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn to_error_data(error: CallError) -> ErrorData {
    let (code, message, data) = match error {
        CallError::Rpc {
            code,
            message,
            data,
        } => (code, message, data),
        CallError::Timeout => (
            BACKEND_TIMEOUT,
            "the backend did not answer in time".to_owned(),
            None,
        ),
        CallError::TooLarge => (
            RESPONSE_TOO_LARGE,
            "the backend's response is larger than allowed".to_owned(),
            None,
        ),
        CallError::Unavailable(_) => (
            BACKEND_UNAVAILABLE,
            "the backend is unavailable".to_owned(),
            None,
        ),
        CallError::AtCapacity => (
            BACKEND_UNAVAILABLE,
            "the backend is at capacity; try again later".to_owned(),
            None,
        ),
    };
    ErrorData::new(
        ErrorCode(i32::try_from(code).unwrap_or(-32603)),
        message,
        data,
    )
}

fn outcome_of(error: &CallError) -> Outcome {
    match error {
        CallError::Rpc { .. } => Outcome::Error,
        CallError::Timeout => Outcome::Timeout,
        CallError::TooLarge => Outcome::TooLarge,
        CallError::Unavailable(_) | CallError::AtCapacity => Outcome::Unavailable,
    }
}

impl Facade {
    /// Sends a request other than a tool call to the one backend of this endpoint and returns
    /// its typed result. Requires the backend's default scope (the guard already answered a
    /// caller without it with a step-up challenge; this is the second check).
    async fn pass_through<T: serde::de::DeserializeOwned>(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        params: Option<impl serde::Serialize>,
    ) -> Result<T, ErrorData> {
        let (false, Some(backend)) = (self.inner.namespaced, self.inner.backends.first()) else {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("{method} is not offered here"),
                None,
            ));
        };
        let caller = caller_of(context)?;
        let required = backend.policy.default_scope();
        if !caller
            .scopes()
            .any(|held| crate::oauth::scope::pattern_covers(held, required))
        {
            return Err(ErrorData::new(
                ErrorCode(FORBIDDEN as i32),
                format!("forbidden: this requires the scope {required}"),
                None,
            ));
        }
        let ctx = CallContext {
            caller,
            request_id: request_id_of(context),
            deadline: Instant::now() + Duration::from_secs(backend.settings.timeout_secs),
        };
        let params = params
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .filter(|p| !p.is_null());
        let result = backend
            .connection()
            .request(&ctx, method, params, None)
            .await
            .map_err(to_error_data)?;
        serde_json::from_value(result)
            .map_err(|_| ErrorData::internal_error("the backend's answer is malformed", None))
    }
}

/// Relays the backend's progress notifications to the client while a call runs. (Log
/// messages are not relayed: MCP deprecated them, SEP-2577.)
async fn relay_notifications(
    peer: Peer<RoleServer>,
    mut notifications: tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    while let Some(message) = notifications.recv().await {
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let sent = match message.get("method").and_then(Value::as_str) {
            Some("notifications/progress") => {
                match serde_json::from_value::<ProgressNotificationParam>(params) {
                    Ok(param) => peer.notify_progress(param).await,
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        if sent.is_err() {
            break;
        }
    }
}

impl ServerHandler for Facade {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        // One backend's endpoint passes its prompts and resources through too; the aggregate
        // endpoint offers tools only (names of resources do not namespace cleanly).
        if !self.inner.namespaced {
            capabilities.prompts = Some(PromptsCapability::default());
            capabilities.resources = Some(ResourcesCapability::default());
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("portcullis", env!("CARGO_PKG_VERSION")))
            .with_instructions("Tools behind the Portcullis gateway.")
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.pass_through(&context, "prompts/list", request).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.pass_through::<GetPromptResult>(&context, "prompts/get", Some(request))
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.pass_through(&context, "resources/list", request).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.pass_through(&context, "resources/templates/list", request)
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.pass_through::<ReadResourceResult>(&context, "resources/read", Some(request))
            .await
            .map(Into::into)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller_of(&context)?;
        let request_id = request_id_of(&context);
        let mut tools = if self.inner.builtin {
            builtin::tools()
        } else {
            Vec::new()
        };
        let lists = futures::future::join_all(
            self.inner
                .backends
                .iter()
                .map(|backend| self.backend_tools(backend, &caller, &request_id)),
        )
        .await;
        for (backend, list) in self.inner.backends.iter().zip(lists) {
            match list {
                Ok(list) => tools.extend(list),
                // One broken backend does not hide the others' tools.
                Err(error) => {
                    tracing::warn!(backend = %backend.settings.id, %error, "listing a backend's tools failed")
                }
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller_of(&context)?;
        if self.inner.builtin
            && let Some(result) = builtin::call(&request.name, &caller)
        {
            return result;
        }
        let Some((backend, tool)) = self.resolve(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {}", request.name),
                None,
            ));
        };
        let state = &self.inner.state;
        let request_id = request_id_of(&context);
        let mut record = CallRecord::new(&backend.settings.id, &caller, &request_id);
        record.tool = Some(tool.to_owned());
        if !backend.policy.allows(tool, caller.scopes()) {
            let required = backend.policy.required_scope(tool);
            record.deny(state, &format!("missing scope {required}"));
            return Err(ErrorData::new(
                ErrorCode(FORBIDDEN as i32),
                format!("forbidden: this call requires the scope {required}"),
                None,
            ));
        }
        let connection = backend.connection();
        let started = Instant::now();
        let ctx = CallContext {
            caller,
            request_id,
            deadline: started + Duration::from_secs(backend.settings.timeout_secs),
        };
        let mut params =
            json!({ "name": tool, "arguments": request.arguments.unwrap_or_default() });
        // rmcp moves the request's `_meta` into the context; the backend needs the caller's
        // progress token to report progress (the rest of `_meta` is about this hop).
        let progress_token = context
            .meta
            .get_progress_token()
            .or_else(|| request.meta.as_ref().and_then(|m| m.get_progress_token()));
        if let (Some(token), Some(object)) = (progress_token, params.as_object_mut()) {
            object.insert("_meta".into(), json!({ "progressToken": token }));
        }
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let relay = tokio::spawn(relay_notifications(context.peer.clone(), receiver));
        let answer = connection
            .request(&ctx, "tools/call", Some(params), Some(sender))
            .await;
        // Every notification goes out before the result does.
        let _ = relay.await;
        match answer {
            Ok(value) => {
                let size = value.to_string().len();
                let result = serde_json::from_value::<CallToolResult>(value).map_err(|_| {
                    record.finish(state, Outcome::Error, started, size);
                    ErrorData::internal_error("the backend's tool result is malformed", None)
                })?;
                let failed = result.is_error == Some(true);
                record.finish(
                    state,
                    if failed { Outcome::Error } else { Outcome::Ok },
                    started,
                    size,
                );
                Ok(result.into())
            }
            Err(error) => {
                tracing::info!(backend = %backend.settings.id, %error, "a tool call failed");
                record.finish(state, outcome_of(&error), started, 0);
                Err(to_error_data(error))
            }
        }
    }
}

/// Middleware in front of a facade: reads the request (bounded), refuses a `tools/call` larger
/// than its backend accepts, and one the caller's scopes do not cover with 403
/// `insufficient_scope`, so a client can step up.
pub async fn guard(State(facade): State<Facade>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limit = facade.inner.state.settings.limits.max_mcp_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let message = jsonrpc::error(&Value::Null, REQUEST_TOO_LARGE, "the request is too large");
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(message),
        )
            .into_response();
    };
    if parts.method == axum::http::Method::POST
        && let Ok(inspected) = jsonrpc::inspect(&bytes)
    {
        let caller = parts.extensions.get::<Caller>();
        // Resources and prompts are served for one backend only (its own endpoint).
        if let (Some(caller), false, Some(backend)) = (
            caller,
            facade.inner.namespaced,
            facade.inner.backends.first(),
        ) && let Some(denied) =
            super::check_other_uses(&facade.inner.state, backend, caller, &inspected)
        {
            return denied;
        }
        for (name, id) in &inspected.tool_calls {
            let (Some(caller), Some((backend, tool))) = (caller, facade.resolve(name)) else {
                continue;
            };
            // The backend's own request limit applies here too, as on the proxy.
            if bytes.len() > backend.settings.max_request_bytes {
                let message = jsonrpc::error(
                    id,
                    REQUEST_TOO_LARGE,
                    "the request is larger than this backend accepts",
                );
                return (
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    axum::Json(message),
                )
                    .into_response();
            }
            if !backend.policy.allows(tool, caller.scopes()) {
                let required = backend.policy.required_scope(tool).to_owned();
                let request_id = parts
                    .headers
                    .get(&forward::REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let mut record = CallRecord::new(&backend.settings.id, caller, request_id);
                record.tool = Some(tool.to_owned());
                record.deny(&facade.inner.state, &format!("missing scope {required}"));
                return insufficient_scope(
                    &facade.inner.state,
                    &facade.inner.resource,
                    &required,
                    caller,
                    id,
                );
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
