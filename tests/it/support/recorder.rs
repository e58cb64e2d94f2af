//! A small Streamable HTTP MCP backend that records every request it receives (headers and
//! body), to prove what the gateway forwards, and that can be slow, stream, break or be large
//! on demand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: Value,
}

/// A running recorder.
pub struct Recorder {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// Every request body the backend received.
    pub fn bodies(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.body.clone())
            .collect()
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the backend received a request")
    }
}

pub const TOOLS: [&str; 6] = ["echo", "add", "admin-reset", "slow", "stream", "die"];

fn tool_list() -> Value {
    let tools: Vec<Value> = TOOLS
        .iter()
        .map(|name| json!({"name": name, "description": format!("the {name} tool"), "inputSchema": {"type": "object"}}))
        .collect();
    json!({ "tools": tools })
}

fn sse(events: Vec<Value>) -> Vec<u8> {
    events
        .iter()
        .map(|e| format!("event: message\ndata: {e}\n\n"))
        .collect::<String>()
        .into_bytes()
}

async fn handle(body: Value) -> Response {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reply = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    match method {
        "initialize" => (
            [("mcp-session-id", "session-from-backend"), ("content-type", "application/json")],
            reply(json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "recorder", "version": "1"}})).to_string(),
        )
            .into_response(),
        "tools/list" => axum::Json(reply(tool_list())).into_response(),
        "tools/call" => {
            let name = body.pointer("/params/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let text = |t: String| reply(json!({"content": [{"type": "text", "text": t}]}));
            match name.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    axum::Json(text("late".into())).into_response()
                }
                "stream" => {
                    // Like a real server: progress only for a request that carries a token.
                    let token = body.pointer("/params/_meta/progressToken").cloned();
                    let progress = |p: u32| json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": p, "total": 3}});
                    let mut messages = if token.is_some() { vec![progress(1), progress(2), progress(3)] } else { Vec::new() };
                    messages.push(text("streamed".into()));
                    let events = sse(messages);
                    ([("content-type", "text/event-stream")], events).into_response()
                }
                "die" => {
                    // One progress event, then the connection breaks mid-stream.
                    let first = sse(vec![json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}})]);
                    let stream = futures::stream::iter(vec![
                        Ok::<Bytes, std::io::Error>(Bytes::from(first)),
                        Err(std::io::Error::other("backend crashed")),
                    ]);
                    ([("content-type", "text/event-stream")], Body::from_stream(stream)).into_response()
                }
                "big" => axum::Json(text("x".repeat(256 * 1024))).into_response(),
                other => axum::Json(text(format!("{other}: {}", body.pointer("/params/arguments").cloned().unwrap_or(Value::Null)))).into_response(),
            }
        }
        _ if body.get("id").is_none() => StatusCode::ACCEPTED.into_response(),
        _ => axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}})).into_response(),
    }
}

/// Starts a recorder on 127.0.0.1:0; its MCP endpoint is `url`.
pub async fn spawn() -> Recorder {
    serve(|_, body| handle(body)).await
}

/// Starts a backend on 127.0.0.1:0 that records every POST and DELETE to `url` (its MCP
/// endpoint) and answers it with `answer`.
pub async fn serve<F, A>(answer: F) -> Recorder
where
    F: Fn(HeaderMap, Value) -> A + Clone + Send + Sync + 'static,
    A: Future<Output = Response> + Send + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = seen.clone();
    let record = move |headers: HeaderMap, body: Bytes| {
        let state = state.clone();
        let answer = answer.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            state.lock().unwrap().push(Seen {
                headers: headers.clone(),
                body: body.clone(),
            });
            answer(headers, body).await
        }
    };
    // POST and DELETE (a session's end); no GET stream: 405, as servers without one answer.
    let app = Router::new().route("/mcp", post(record.clone()).delete(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Recorder { url, seen, task }
}
