//! The MCP endpoints, each a protected resource: what each serves, how a request's target is
//! resolved, and the one handler every request goes through: authenticate → read and parse the
//! body once → the gate → dispatch (relay to an HTTP backend, or answer as an MCP server).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use serde_json::{Value, json};

use super::audit::Outcome;
use super::backend::Backend;
use super::builtin;
use super::caller::Caller;
use super::connection::{FromBackend, Notifications};
use super::era::Era;
use super::error::GatewayError;
use super::facade::Dispatched;
use super::gate::Route;
use super::identity::REQUEST_ID;
use super::message::{Incoming, Message, Method, Request};
use super::mrtr::{Call, Next, Resumed};
use super::{Gateway, era, jsonrpc, proxy, respond, sse};
use crate::oauth::resource::Resource;

use relayed::Relayed;

/// What a backend's stream passes on to the client.
mod relayed;

/// What an endpoint serves.
#[derive(Debug)]
pub enum Serves {
    /// `/mcp`: the built-in tools and every backend's tools, named
    /// `{backend}{separator}{tool}`.
    Aggregate {
        backends: Vec<Arc<Backend>>,
        separator: String,
    },
    /// `/mcp/{id}` of a Streamable HTTP backend: relayed as it is.
    Proxy(Arc<Backend>),
    /// `/mcp/{id}` of a stdio or OpenAPI backend: the gateway is its MCP server.
    Facade(Arc<Backend>),
}

/// One MCP endpoint.
#[derive(Debug)]
pub struct Endpoint {
    pub resource: Resource,
    pub serves: Serves,
}

impl Endpoint {
    /// The backends behind this endpoint.
    pub fn backends(&self) -> &[Arc<Backend>] {
        match &self.serves {
            Serves::Aggregate { backends, .. } => backends,
            Serves::Proxy(backend) | Serves::Facade(backend) => std::slice::from_ref(backend),
        }
    }

    /// A backend's tool as clients of this endpoint see it.
    pub fn tool_name(&self, backend: &Backend, tool: &str) -> String {
        match &self.serves {
            Serves::Aggregate { separator, .. } => format!("{}{separator}{tool}", backend.id()),
            _ => tool.to_owned(),
        }
    }

    /// Where `request` goes.
    pub fn route<'a>(&'a self, request: &'a Request) -> Route<'a> {
        match (&self.serves, &request.method) {
            (_, Method::Initialize | Method::Discover | Method::Ping | Method::ToolsList) => {
                Route::Endpoint
            }
            (Serves::Aggregate { .. }, Method::ToolsCall { name }) if builtin::is_builtin(name) => {
                Route::Builtin(name)
            }
            (
                Serves::Aggregate {
                    backends,
                    separator,
                },
                Method::ToolsCall { name },
            ) => name
                .split_once(separator.as_str())
                .and_then(|(id, tool)| {
                    let backend = backends.iter().find(|b| b.id() == id)?;
                    Some(Route::Backend {
                        backend,
                        tool: Some(tool),
                    })
                })
                .unwrap_or_else(|| {
                    Route::Nowhere(GatewayError::InvalidParams(format!("unknown tool: {name}")))
                }),
            (Serves::Aggregate { .. }, Method::Other(method)) => {
                Route::Nowhere(GatewayError::MethodNotFound(method.clone()))
            }
            (Serves::Proxy(backend) | Serves::Facade(backend), Method::ToolsCall { name }) => {
                Route::Backend {
                    backend,
                    tool: Some(name),
                }
            }
            (Serves::Proxy(backend) | Serves::Facade(backend), Method::Other(_)) => {
                Route::Backend {
                    backend,
                    tool: None,
                }
            }
        }
    }

    fn relays(&self) -> bool {
        matches!(self.serves, Serves::Proxy(_))
    }
}

/// The state of one endpoint's route.
#[derive(Clone)]
pub struct Served {
    pub gateway: Arc<Gateway>,
    pub endpoint: Arc<Endpoint>,
}

/// The request id the caller sent (already vetted by the HTTP layer), or a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Every request to an MCP endpoint: the caller, then the body parsed once, then the gate for
/// each request in it, then the endpoint's own dispatch.
pub async fn handle(State(served): State<Served>, request: HttpRequest) -> Response {
    let Served { gateway, endpoint } = served;
    let (parts, body) = request.into_parts();
    if !gateway.host_allowed(&parts.headers) {
        // DNS rebinding protection: a page on another site must not reach a local gateway.
        let refusal = (
            StatusCode::FORBIDDEN,
            "Forbidden: Host header is not allowed",
        );
        return refusal.into_response();
    }
    if !gateway.origin_allowed(&parts.headers) {
        // MCP transports §Security: a foreign Origin gets 403, with an error that has no id.
        let error = json!({ "jsonrpc": "2.0", "error": {
            "code": super::error::code::INVALID_REQUEST,
            "message": "Forbidden: the Origin is not allowed",
        }});
        return (StatusCode::FORBIDDEN, axum::Json(error)).into_response();
    }
    let now = gateway.clock.now();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let source = gateway.limits.client_address(peer, &parts.headers);
    let caller = match gateway
        .verifier
        .authenticate(&parts.headers, &endpoint.resource, source, now)
        .await
    {
        Ok(caller) => caller,
        Err(why) => return respond::unauthorized(&endpoint.resource, why),
    };
    if let Err(limited) = gateway.within_limits(&caller).await {
        return respond::rate_limited(limited);
    }
    let request_id = request_id(&parts.headers);
    match (&endpoint.serves, &parts.method) {
        (_, &HttpMethod::POST) => {}
        // A relayed backend's own server stream and session end.
        (Serves::Proxy(backend), &HttpMethod::GET | &HttpMethod::DELETE) => {
            return proxy::Exchange::new(&gateway, backend, caller, request_id)
                .forward(parts, Bytes::new(), Incoming::default())
                .await;
        }
        _ => return method_not_allowed(endpoint.relays()),
    }
    let admitted = admit(
        &gateway,
        &endpoint,
        &caller,
        &request_id,
        &parts.headers,
        body,
    )
    .await;
    let (bytes, incoming) = match admitted {
        Ok(admitted) => admitted,
        Err((error, id)) => {
            let relayed = endpoint.relays();
            return respond::error(&error, &id, relayed, &endpoint.resource, Some(&caller));
        }
    };
    if let Serves::Proxy(backend) = &endpoint.serves {
        // A backend of the client's era is relayed as it is; one of the other era is spoken to
        // by the gateway, which answers the client in its own.
        match proxy::backend_era(backend, &caller, &request_id).await {
            Ok(backend_era) if backend_era == client_era(&incoming) => {
                return proxy::Exchange::new(&gateway, backend, caller, request_id)
                    .forward(parts, bytes, incoming)
                    .await;
            }
            Ok(_) => {}
            Err(error) => {
                let error = GatewayError::from(error);
                let id = incoming.first_id();
                return respond::error(&error, &id, true, &endpoint.resource, Some(&caller));
            }
        }
    }
    serve_message(gateway, endpoint, caller, incoming, request_id).await
}

/// The era a body was sent in: modern when its one request claims a modern version; anything
/// else (`initialize`, a batch, a legacy notification or response) is legacy.
fn client_era(incoming: &Incoming) -> Era {
    match incoming.messages.as_slice() {
        [Message::Request(request)] if !incoming.batch => request.era(),
        _ => Era::Legacy,
    }
}

/// The endpoints the gateway serves itself are stateless: no server stream, no session to end.
fn method_not_allowed(relayed: bool) -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    let allow = if relayed { "GET, POST, DELETE" } else { "POST" };
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Reads the body (bounded) and parses it once; then every request in it must pass the gate
/// (and, where the gateway serves the backend itself, the backend's own request limit, as the
/// proxy applies it). A refusal names the request it answers.
async fn admit(
    gateway: &Gateway,
    endpoint: &Endpoint,
    caller: &Caller,
    request_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Incoming), (GatewayError, Value)> {
    let relayed = endpoint.relays();
    let limit = match &endpoint.serves {
        Serves::Proxy(backend) => backend.settings.max_request_bytes,
        _ => gateway.max_body_bytes,
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| (GatewayError::RequestTooLarge, Value::Null))?;
    let incoming = Incoming::parse(&bytes).map_err(|rejected| (rejected.error, rejected.id))?;
    // What the headers say is what the gate judges: they must say what the body says.
    era::check_request_headers(headers, &incoming)?;
    for request in incoming.uses() {
        let route = endpoint.route(request);
        if let Route::Backend {
            backend,
            tool: Some(_),
        } = route
            && !relayed
            && bytes.len() > backend.settings.max_request_bytes
        {
            return Err((GatewayError::RequestTooLarge, request.id.clone()));
        }
        gateway
            .gate
            .authorize(caller, request, &route, request_id)
            .await
            .map_err(|error| (error, request.id.clone()))?;
    }
    Ok((bytes, incoming))
}

/// Answers one message as the MCP server of the endpoint: JSON for a plain answer, SSE when
/// the backend reports progress before its result (notifications first, the result last).
async fn serve_message(
    gateway: Arc<Gateway>,
    endpoint: Arc<Endpoint>,
    caller: Caller,
    mut incoming: Incoming,
    request_id: String,
) -> Response {
    if incoming.batch {
        let error = GatewayError::InvalidRequest("batches are not supported on this endpoint");
        return respond::error(
            &error,
            &Value::Null,
            false,
            &endpoint.resource,
            Some(&caller),
        );
    }
    let request = match incoming.messages.pop() {
        Some(Message::Request(request)) if !request.notification => request,
        // The client's answer to what a backend asked it mid-call.
        Some(Message::Response(response)) => {
            if !gateway.asks.answer(&caller.claims.sub, &response) {
                tracing::debug!("a response to nothing this caller was asked; dropped");
            }
            return StatusCode::ACCEPTED.into_response();
        }
        // Notifications: accepted, nothing to answer. A use of the server sent as a
        // notification passed the gate, but asks for nothing back.
        _ => return StatusCode::ACCEPTED.into_response(),
    };
    let owner = caller.claims.sub.clone();
    let era = request.era();
    let relayed = Relayed::for_request(&request);
    let id = request.id.clone();
    if !matches!(request.method, Method::ToolsCall { .. }) {
        let dispatched = dispatch(&gateway, &endpoint, &caller, &request, &request_id, None).await;
        let status = status_of(era, &dispatched);
        return (status, json_response(finish(&id, dispatched))).into_response();
    }
    // A tool call may report progress, log, and ask the client things before its result.
    let mut call = match gateway.parking.resume(&owner, &request) {
        Some(Ok(call)) => call,
        Some(Err(Resumed::AskAgain(asked))) => {
            return json_response(finish(&id, Ok(asked).into()));
        }
        Some(Err(Resumed::Unknown)) => {
            let error = GatewayError::InvalidParams(
                "requestState names no call waiting for this caller's input".into(),
            );
            return respond::error(&error, &id, false, &endpoint.resource, Some(&caller));
        }
        None => {
            let (sender, messages) = tokio::sync::mpsc::unbounded_channel();
            let (gateway, endpoint, request) = (gateway.clone(), endpoint.clone(), request.clone());
            let task = tokio::spawn(crate::telemetry::trace::carried(async move {
                let sink = Some(sender);
                dispatch(&gateway, &endpoint, &caller, &request, &request_id, sink).await
            }));
            Call { task, messages }
        }
    };
    let first = match call.next().await {
        Next::Done(dispatched) => {
            let status = status_of(era, &dispatched);
            return (status, json_response(finish(&id, *dispatched))).into_response();
        }
        Next::Message(FromBackend::Request { message, reply })
            if relayed.asks_as_mrtr(&request, &message) =>
        {
            let asked = gateway
                .parking
                .park(&owner, &request, call, &message, reply);
            return json_response(finish(&id, Ok(asked).into()));
        }
        Next::Message(first) => first,
    };
    let (mut events, body) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let asks = &gateway.asks;
        // A client that went away stops the relay, not the call: it still ends and is recorded.
        let mut open = relayed.send(&mut events, asks, &owner, first).await.is_ok();
        let dispatched = loop {
            match call.next().await {
                Next::Done(dispatched) => break *dispatched,
                Next::Message(FromBackend::Request { message, reply })
                    if relayed.asks_as_mrtr(&request, &message) =>
                {
                    let asked = gateway
                        .parking
                        .park(&owner, &request, call, &message, reply);
                    break Ok(asked).into();
                }
                Next::Message(message) => {
                    open = open
                        && relayed
                            .send(&mut events, asks, &owner, message)
                            .await
                            .is_ok();
                }
            }
        };
        let body = finish(&id, dispatched);
        if open {
            let _ = events.send(Ok(Bytes::from(sse::data_event(&body)))).await;
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The endpoint's answer to an authorized request, shaped for the client's era.
async fn dispatch(
    gateway: &Gateway,
    endpoint: &Endpoint,
    caller: &Caller,
    request: &Request,
    request_id: &str,
    sink: Option<Notifications>,
) -> Dispatched {
    let mut dispatched = endpoint
        .answer(&gateway.gate, caller, request, request_id, sink)
        .await;
    let (era, method) = (request.era(), request.method.as_str());
    dispatched.result = dispatched
        .result
        .and_then(|result| era::for_client(era, method, result));
    dispatched
}

/// The HTTP status of an answer the gateway gives itself: 200, except that a modern client is
/// told of a method the endpoint does not offer with 404 (MCP 2026-07-28 Streamable HTTP).
fn status_of(era: Era, dispatched: &Dispatched) -> StatusCode {
    match (&dispatched.result, era) {
        (Err(GatewayError::MethodNotFound(_)), Era::Modern) => StatusCode::NOT_FOUND,
        (Err(error), _) => error.status(false),
        (Ok(_), _) => StatusCode::OK,
    }
}

/// The JSON-RPC response to request `id`, serialized once; a tool call is recorded with its
/// size.
fn finish(id: &Value, dispatched: Dispatched) -> Vec<u8> {
    let message = match &dispatched.result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => error.to_message(id),
    };
    let body = serde_json::to_vec(&message).unwrap_or_default();
    if let Some((record, started)) = dispatched.call {
        let outcome = match (&dispatched.result, dispatched.outcome) {
            (_, Some(outcome)) => outcome,
            (Ok(result), None) if jsonrpc::is_tool_error(result) => Outcome::Error,
            (Ok(_), None) => Outcome::Ok,
            (Err(error), None) => error.outcome(),
        };
        record.finish(outcome, started, body.len());
    }
    body
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
