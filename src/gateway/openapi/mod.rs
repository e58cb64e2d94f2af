//! OpenAPI backends: a REST API's operations served as tools. The gateway is their MCP
//! server (as for stdio backends): it lists the operations the caller may call, and runs a
//! call by validating its arguments against the tool's schema, building the HTTP request the
//! document describes, adding the credential the operator chose, and turning the answer into a
//! tool result, bounded in time and size. Answers of read-only operations can be cached per
//! person.

/// Answers of read-only operations, per person and arguments.
pub mod cache;
/// Reading the documents at start-up.
pub mod document;
/// HTTP answers as tool results.
pub mod result;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::{self, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use url::Url;

use super::audit::Outcome;
use super::connection::{CallContext, CallError, Connection, Notifications, ToolAnswer};
use super::era::{self, Era, ServerFacts};
use super::error::GatewayError;
use super::identity::IdentityForwarder;
use crate::clock::Clock;
use crate::config::{ApiAuth, BackendSettings, OpenApiSettings};
use crate::openapi::{OpenApiTool, request};
use crate::telemetry::metrics;
pub use cache::ResponseCache;
pub use document::{Apis, LoadedApi};
use result::Answer;

/// A call's tool error for the model, and how it ended for the audit.
fn failed(outcome: Outcome, text: String) -> ToolAnswer {
    ToolAnswer {
        result: result::failure(text),
        outcome: Some(outcome),
        detail: None,
    }
}

/// The audit detail of a call the response cache answered.
const CACHE_HIT: &str = "cache hit";

/// One OpenAPI backend, ready to call.
pub struct OpenApiBackend {
    settings: BackendSettings,
    api_settings: OpenApiSettings,
    api: Arc<LoadedApi>,
    /// Tool name to its index in the catalog.
    by_name: HashMap<String, usize>,
    /// The tool definitions `tools/list` shows, in the document's order.
    listed: Vec<Value>,
    http: reqwest::Client,
    identity: Arc<IdentityForwarder>,
    cache: ResponseCache,
    clock: Clock,
}

impl std::fmt::Debug for OpenApiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApiBackend")
            .field("id", &self.settings.id)
            .field("base_url", &self.api.base_url.as_str())
            .field("tools", &self.listed.len())
            .finish_non_exhaustive()
    }
}

impl OpenApiBackend {
    pub fn new(
        settings: &BackendSettings,
        api_settings: &OpenApiSettings,
        api: Arc<LoadedApi>,
        http: reqwest::Client,
        identity: Arc<IdentityForwarder>,
        cache: ResponseCache,
        clock: Clock,
    ) -> Self {
        let by_name = api
            .catalog
            .tools
            .iter()
            .enumerate()
            .map(|(index, tool)| (tool.name.clone(), index))
            .collect();
        let listed = api.catalog.tools.iter().map(definition).collect();
        Self {
            settings: settings.clone(),
            api_settings: api_settings.clone(),
            api,
            by_name,
            listed,
            http,
            identity,
            cache,
            clock,
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.api.base_url
    }

    fn tool(&self, name: &str) -> Option<&OpenApiTool> {
        self.by_name.get(name).map(|&i| &self.api.catalog.tools[i])
    }

    /// How long `tool`'s answers are reused; zero when they are not (only safe methods are
    /// cached: a write must always reach the API).
    fn cache_ttl(&self, tool: &OpenApiTool) -> Duration {
        let safe = matches!(tool.plan.method, http::Method::GET | http::Method::HEAD);
        if safe {
            self.api_settings.cache_ttl_for(&tool.name)
        } else {
            Duration::ZERO
        }
    }

    /// Calls `name` with `arguments` for `ctx.caller`. Arguments that do not fit the tool's
    /// schema are refused before any request; everything the API does (an error status, no
    /// answer in time, no connection) is a tool error for the model to read.
    async fn call(
        &self,
        ctx: &CallContext,
        name: &str,
        arguments: Option<&Value>,
    ) -> Result<ToolAnswer, GatewayError> {
        let tool = self
            .tool(name)
            .ok_or_else(|| GatewayError::InvalidParams(format!("unknown tool: {name}")))?;
        let empty = Value::Object(Map::new());
        let arguments = match arguments {
            None | Some(Value::Null) => &empty,
            Some(arguments) => arguments,
        };
        let Value::Object(fields) = arguments else {
            return Err(GatewayError::InvalidParams(
                "invalid arguments: arguments must be an object".into(),
            ));
        };
        tool.validator.validate(arguments).map_err(|invalid| {
            GatewayError::InvalidParams(format!("invalid arguments: {invalid}"))
        })?;
        let ttl = self.cache_ttl(tool);
        let claims = &ctx.caller.claims;
        let key = (!ttl.is_zero())
            .then(|| cache::key(self.id(), name, &claims.iss, &claims.sub, arguments));
        if let Some(key) = &key {
            let hit = self.cache.get(key, self.clock.now()).await;
            metrics::openapi_cache(self.id(), hit.is_some());
            if let Some((result, left)) = hit {
                return Ok(ToolAnswer {
                    result: with_freshness(result, left),
                    outcome: Some(Outcome::Ok),
                    detail: Some(CACHE_HIT),
                });
            }
        }
        let mut built = request::build(&tool.plan, fields)
            .map_err(|error| GatewayError::InvalidParams(format!("invalid arguments: {error}")))?;
        if let ApiAuth::Static { secret, .. } = &self.api_settings.auth {
            for placement in &tool.plan.security {
                request::place_secret(&mut built, placement, secret.expose_secret());
            }
        }
        let called = self.send(ctx, built).await?;
        if let Some(key) = key
            && called.outcome == Some(Outcome::Ok)
        {
            self.cache
                .put(key, called.result.clone(), ttl, self.clock.now())
                .await;
            return Ok(ToolAnswer {
                result: with_freshness(called.result, ttl),
                ..called
            });
        }
        Ok(called)
    }

    /// Sends the request with the caller's identity, and reads the answer within the call's
    /// deadline and the backend's size limits.
    async fn send(
        &self,
        ctx: &CallContext,
        built: request::HttpRequest,
    ) -> Result<ToolAnswer, GatewayError> {
        let url = self.url(&built.path_and_query)?;
        let mut headers = self
            .identity
            .headers(
                &self.settings,
                &ctx.caller,
                &ctx.request_id,
                self.clock.now(),
            )
            .await?;
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*;q=0.8"),
        );
        // The operation's own header parameters, and a static secret placed in a header, come
        // last: they are what the document asks for.
        for (name, value) in &built.headers {
            headers.insert(name.clone(), value.clone());
        }
        let mut sending = self.http.request(built.method, url).headers(headers);
        if let Some(body) = built.body {
            sending = sending
                .header(header::CONTENT_TYPE, body.content_type)
                .body(body.bytes);
        }
        let deadline = ctx.deadline.min(Instant::now() + self.settings.timeout);
        let waited = deadline.saturating_duration_since(Instant::now());
        let late = || {
            let seconds = waited.as_secs_f64().ceil();
            failed(
                Outcome::Timeout,
                format!("The API did not answer within {seconds} s."),
            )
        };
        match tokio::time::timeout_at(deadline, self.read(sending)).await {
            Err(_) => Ok(late()),
            Ok(Err(error)) if error.is_timeout() => Ok(late()),
            Ok(Err(error)) => {
                tracing::info!(backend = %self.id(), error = %error.without_url(), "an OpenAPI request failed");
                Ok(failed(
                    Outcome::Unavailable,
                    "The API could not be reached.".into(),
                ))
            }
            Ok(Ok(answer)) => {
                let result = result::tool_result(&answer);
                let outcome = if answer.status.is_success() {
                    Outcome::Ok
                } else {
                    Outcome::Error
                };
                Ok(ToolAnswer {
                    result,
                    outcome: Some(outcome),
                    detail: None,
                })
            }
        }
    }

    /// The base URL with the operation's path and query after it.
    fn url(&self, path_and_query: &str) -> Result<Url, GatewayError> {
        join(&self.api.base_url, path_and_query)
    }

    /// Reads the answer: the first `max_result_bytes` are kept, the rest only counted, up to the
    /// backend's `max_response_bytes`, where reading stops.
    async fn read(&self, sending: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        let mut response = sending.send().await?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = response.status();
        let cap = self.api_settings.max_result_bytes;
        let mut body = Vec::new();
        let mut total = 0usize;
        let mut complete = true;
        while let Some(chunk) = response.chunk().await? {
            total += chunk.len();
            let room = cap.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if total > self.settings.max_response_bytes {
                complete = false;
                break;
            }
        }
        Ok(Answer {
            status,
            content_type,
            body,
            total,
            complete,
        })
    }

    fn id(&self) -> &str {
        &self.settings.id
    }

    /// What the backend says about itself: the document's title, version and description.
    fn facts(&self) -> ServerFacts {
        ServerFacts {
            era: Era::Modern,
            version: era::MODERN_VERSIONS[0].to_owned(),
            server_info: self.api.server_info.clone(),
            capabilities: json!({ "tools": {} }),
            instructions: self.api.description.clone(),
        }
    }

    /// Each tool's default scope (`{id}:{tag}:{read|write}`), for its policy.
    pub fn default_scopes(api: &LoadedApi) -> impl Iterator<Item = (&str, &str)> {
        api.catalog
            .tools
            .iter()
            .map(|tool| (tool.name.as_str(), tool.scope.as_str()))
    }
}

/// `base` with `path_and_query` after its path. A path argument may not be a dot segment
/// (`..`, or `%2e%2e`, which URL parsers resolve the same): it would move the request to
/// another operation, or out of the base path, past the tool's own scope.
fn join(base: &Url, path_and_query: &str) -> Result<Url, GatewayError> {
    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    let dot = |segment: &str| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    };
    if path.split('/').any(dot) {
        return Err(GatewayError::InvalidParams(
            "invalid arguments: a path argument may not be `.` or `..`".into(),
        ));
    }
    let base = base.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}{path_and_query}"))
        .map_err(|_| GatewayError::InvalidParams("the arguments make no valid URL".into()))
}

/// A cached tool's result with its freshness, as MCP 2026-07-28 states it: what is left of its
/// time, for this caller only (a legacy client's result loses both).
fn with_freshness(mut result: Value, left: Duration) -> Value {
    if let Some(object) = result.as_object_mut() {
        let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        object.insert("ttlMs".into(), json!(millis));
        object.insert("cacheScope".into(), json!("private"));
    }
    result
}

/// A tool as `tools/list` shows it.
fn definition(tool: &OpenApiTool) -> Value {
    let mut definition = json!({
        "name": tool.name,
        "inputSchema": Value::Object(tool.input_schema.clone()),
    });
    let Some(object) = definition.as_object_mut() else {
        return definition;
    };
    if let Some(description) = &tool.description {
        object.insert("description".into(), json!(description));
    }
    let mut annotations = Map::new();
    if let Some(read_only) = tool.annotations.read_only_hint {
        annotations.insert("readOnlyHint".into(), json!(read_only));
    }
    if let Some(destructive) = tool.annotations.destructive_hint {
        annotations.insert("destructiveHint".into(), json!(destructive));
    }
    if !annotations.is_empty() {
        object.insert("annotations".into(), Value::Object(annotations));
    }
    definition
}

#[async_trait]
impl Connection for OpenApiBackend {
    /// Lists and pings; tool calls go through [`Connection::call_tool`].
    async fn request(
        &self,
        _ctx: &CallContext,
        method: &str,
        _params: Option<Value>,
        _notifications: Option<Notifications>,
    ) -> Result<Value, CallError> {
        match method {
            "tools/list" => Ok(json!({ "tools": self.listed })),
            "ping" => Ok(json!({})),
            other => Err(CallError::Rpc {
                code: super::error::code::METHOD_NOT_FOUND,
                message: format!("{other} is not offered here"),
                data: None,
            }),
        }
    }

    async fn facts(&self, _ctx: &CallContext) -> Result<ServerFacts, CallError> {
        Ok(self.facts())
    }

    async fn call_tool(
        &self,
        ctx: &CallContext,
        params: Value,
        _notifications: Option<Notifications>,
    ) -> Result<ToolAnswer, GatewayError> {
        let name = params.get("name").and_then(Value::as_str).unwrap_or("");
        self.call(ctx, name, params.get("arguments")).await
    }
}

/// Paths joined to the base URL, dot segments refused.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_the_base_and_dot_segments_are_refused() {
        let base = Url::parse("https://api.example.com/v1/").unwrap();
        assert_eq!(
            join(&base, "/items/7?tag=a%2Fb").unwrap().as_str(),
            "https://api.example.com/v1/items/7?tag=a%2Fb"
        );
        assert_eq!(
            join(&base, "/items/..%2F?x=..").unwrap().path(),
            "/v1/items/..%2F",
            "an encoded slash keeps the segment one segment"
        );
        for escape in [
            "/items/..",
            "/items/.",
            "/items/%2E%2e",
            "/items/.%2E/x",
            "/%2e",
        ] {
            assert_eq!(
                join(&base, escape).unwrap_err().rpc_code(),
                -32602,
                "{escape}"
            );
        }
    }
}
