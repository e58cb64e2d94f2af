//! A small MCP backend that speaks only the 2026-07-28 revision, over Streamable HTTP: stateless,
//! no `initialize` (refused, naming the versions it speaks, as the revision asks), no GET, no
//! sessions; every request must carry the `_meta` fields and the `Mcp-*` headers, every result
//! a `resultType`, lists their caching hints. Its `ask` tool asks for input the MRTR way. It
//! records what it received, as the recorder does.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::recorder::{self, Recorder, Seen};

pub const VERSION: &str = "2026-07-28";
pub const INSTRUCTIONS: &str = "Modern fake: echo repeats, ask asks.";

/// The last request with `method` that `backend` received.
pub fn last(backend: &Recorder, method: &str) -> Seen {
    backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s.body["method"] == method)
        .cloned()
        .unwrap_or_else(|| panic!("the backend received no {method}"))
}

fn rpc_error(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    (
        status,
        axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": error })),
    )
        .into_response()
}

fn tools() -> Value {
    json!([
        { "name": "echo", "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } } },
        { "name": "ask", "inputSchema": { "type": "object" } },
        { "name": "admin-reset", "inputSchema": { "type": "object" } },
    ])
}

fn handle(headers: &HeaderMap, body: &Value) -> Response {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = body.get("method").and_then(Value::as_str) else {
        return rpc_error(StatusCode::BAD_REQUEST, &id, -32600, "not a request", None);
    };
    if method == "initialize" {
        // What a modern-only server answers a legacy client.
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32022,
            "Unsupported protocol version: this server speaks 2026-07-28",
            Some(
                json!({ "supported": [VERSION], "requested": body.pointer("/params/protocolVersion") }),
            ),
        );
    }
    let meta = body.pointer("/params/_meta");
    let claimed = meta
        .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
        .and_then(Value::as_str);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(claimed) = claimed else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32602,
            "_meta protocolVersion is required",
            None,
        );
    };
    if claimed != VERSION {
        let data = json!({ "supported": [VERSION], "requested": claimed });
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32022,
            "Unsupported protocol version",
            Some(data),
        );
    }
    let capabilities = meta.and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"));
    if capabilities.is_none() {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32602,
            "_meta clientCapabilities is required",
            None,
        );
    }
    let name = body
        .pointer(if method == "resources/read" {
            "/params/uri"
        } else {
            "/params/name"
        })
        .and_then(Value::as_str);
    let named = matches!(method, "tools/call" | "resources/read" | "prompts/get");
    if header("mcp-protocol-version") != Some(claimed)
        || header("mcp-method") != Some(method)
        || (named && header("mcp-name") != name)
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32020,
            "Header mismatch",
            None,
        );
    }
    if body.get("id").is_none() {
        return StatusCode::ACCEPTED.into_response();
    }
    let reply = |result: Value| {
        axum::Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
    };
    match method {
        "server/discover" => reply(json!({
            "resultType": "complete",
            "supportedVersions": [VERSION],
            "capabilities": { "tools": {} },
            "_meta": { "io.modelcontextprotocol/serverInfo": { "name": "modern-fake", "version": "2.0.0" } },
            "instructions": INSTRUCTIONS,
            "ttlMs": 60000,
            "cacheScope": "public",
        })),
        "tools/list" => reply(
            json!({ "resultType": "complete", "tools": tools(), "ttlMs": 30000, "cacheScope": "public" }),
        ),
        "tools/call" => {
            let args = body
                .pointer("/params/arguments")
                .cloned()
                .unwrap_or(json!({}));
            let text = |t: String| json!({ "resultType": "complete", "content": [{ "type": "text", "text": t }] });
            match name.unwrap_or_default() {
                "echo" => reply(text(format!(
                    "modern echo: {}",
                    args["text"].as_str().unwrap_or_default()
                ))),
                "admin-reset" => reply(text("reset".into())),
                "ask" => {
                    let answer = body
                        .pointer("/params/inputResponses/color/content/color")
                        .and_then(Value::as_str);
                    let state = body.pointer("/params/requestState").and_then(Value::as_str);
                    match (answer, state) {
                        (Some(color), Some("asked-color")) => {
                            reply(text(format!("you chose {color}")))
                        }
                        _ if capabilities.and_then(|c| c.get("elicitation")).is_none() => {
                            rpc_error(
                                StatusCode::BAD_REQUEST,
                                &id,
                                -32021,
                                "Missing required client capability",
                                Some(json!({ "requiredCapabilities": { "elicitation": {} } })),
                            )
                        }
                        _ => reply(json!({
                            "resultType": "input_required",
                            "inputRequests": { "color": { "method": "elicitation/create", "params": {
                                "mode": "form",
                                "message": "Which color?",
                                "requestedSchema": { "type": "object", "properties": { "color": { "type": "string" } }, "required": ["color"] },
                            }}},
                            "requestState": "asked-color",
                        })),
                    }
                }
                other => reply(
                    json!({ "resultType": "complete", "isError": true, "content": [{ "type": "text", "text": format!("unknown tool {other}") }] }),
                ),
            }
        }
        other => rpc_error(
            StatusCode::NOT_FOUND,
            &id,
            -32601,
            &format!("{other} not found"),
            None,
        ),
    }
}

/// Starts the modern backend on 127.0.0.1:0; its MCP endpoint is `url`.
pub async fn spawn() -> Recorder {
    recorder::serve(|headers, body| async move { handle(&headers, &body) }).await
}
