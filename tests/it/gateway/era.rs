//! Both eras of MCP on every endpoint: 2025-era clients (`initialize`, sessions) and 2026-07-28
//! clients (`server/discover`, `_meta` on every request, `Mcp-*` headers), each with backends of
//! either era, over HTTP and stdio, on `/mcp` and `/mcp/{id}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{Options, TestApp, rpc_body, spawn};
use crate::support::modern;
use crate::support::recorder::{self, Recorder};

const MODERN: &str = "2026-07-28";
const LEGACY_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/stdio_server.mjs"
);
const MODERN_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/support/modern_stdio.mjs"
);

/// The HTTP backends behind [`start`]'s gateway, alive as long as this is.
pub(super) struct Backends {
    pub legacy: Recorder,
    pub modern: Recorder,
}

/// A gateway in front of four backends, one of each era and transport: `rec` (2025, HTTP),
/// `mod` (2026, HTTP), `fx` (2025, stdio), `mfx` (2026, stdio). The person may call every
/// backend's tools but `mod`'s `admin-reset`.
pub(super) async fn start(extra: &str) -> (TestApp, Backends) {
    let legacy = recorder::spawn().await;
    let modern = modern::spawn().await;
    let toml = format!(
        r#"
{extra}
[[backends]]
id = "rec"
url = "{rec}"
scope = "rec:tools:call"
timeout_secs = 5

[[backends]]
id = "mod"
url = "{modern}"
scope = "mod:tools:call"
timeout_secs = 5
[backends.tools]
"admin-*" = "mod:admin:call"

[[backends]]
id = "fx"
command = ["node", "{LEGACY_FIXTURE}"]
scope = "fx:tools:call"
timeout_secs = 10

[[backends]]
id = "mfx"
command = ["node", "{MODERN_FIXTURE}"]
scope = "mfx:tools:call"
timeout_secs = 10
"#,
        rec = legacy.url,
        modern = modern.url,
    );
    let app = spawn(Options {
        grant_scopes: r#"["rec:tools:call", "mod:tools:call", "fx:tools:call", "mfx:tools:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    (app, Backends { legacy, modern })
}

pub(super) async fn token(app: &TestApp, login: &str, path: &str) -> String {
    let resource = (path != "/mcp").then(|| app.url(path));
    let (_, tokens) = app.tokens_for_resource(login, None, resource).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A 2026-07-28 request: `_meta` in the body, the headers that mirror it.
pub(super) async fn modern_rpc(
    app: &TestApp,
    path: &str,
    token: &str,
    method: &str,
    params: Value,
    capabilities: Value,
) -> reqwest::Response {
    let mut params = params;
    params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(MODERN);
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
    params["_meta"]["io.modelcontextprotocol/clientInfo"] =
        json!({"name": "raw-test", "version": "1"});
    let name = match method {
        "resources/read" => params["uri"].as_str(),
        _ => params["name"].as_str(),
    };
    let mut request = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    request
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
}

/// A modern request's result, which must have come with 200.
pub(super) async fn modern_result(
    app: &TestApp,
    path: &str,
    token: &str,
    method: &str,
    params: Value,
) -> Value {
    let response = modern_rpc(app, path, token, method, params, json!({})).await;
    result_of(response, &format!("{method} on {path}")).await
}

/// The result a response must carry, with 200.
async fn result_of(response: reqwest::Response, what: &str) -> Value {
    assert_eq!(response.status(), StatusCode::OK, "{what}");
    let body = rpc_body(response).await;
    assert!(body.get("result").is_some(), "{what}: {body}");
    body["result"].clone()
}

/// A legacy request's result (the suite's usual 2025-06-18 client).
async fn legacy_result(
    app: &TestApp,
    path: &str,
    token: &str,
    method: &str,
    params: Value,
) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
    let response = app.mcp(&app.url(path), Some(token), body).await;
    result_of(response, &format!("{method} on {path}")).await
}

/// A legacy `initialize` at `version`, which the gateway must accept as it is.
async fn initialize(app: &TestApp, path: &str, token: &str, version: &str) -> Value {
    let params = json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
    let initialized = legacy_result(app, path, token, "initialize", params).await;
    assert_eq!(initialized["protocolVersion"], version);
    initialized
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result}"))
}

fn names(list: &Value) -> Vec<&str> {
    list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// The modern backend's last tool call came as its revision wants it, and nothing asked it to
/// initialize.
fn spoken_to_as_modern(backend: &Recorder) {
    let seen = modern::last(backend, "tools/call");
    assert_eq!(seen.headers["mcp-protocol-version"], MODERN);
    assert_eq!(seen.headers["mcp-method"], "tools/call");
    assert_eq!(seen.headers["mcp-name"], "echo");
    let meta = &seen.body["params"]["_meta"];
    assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], MODERN);
    assert!(
        backend.bodies().iter().all(|b| b["method"] != "initialize"),
        "a modern backend is never asked to initialize"
    );
}

fn assert_legacy_shape(result: &Value) {
    for field in ["resultType", "ttlMs", "cacheScope"] {
        assert!(
            result.get(field).is_none(),
            "{field} in a legacy result: {result}"
        );
    }
}

#[tokio::test]
async fn a_modern_client_discovers_lists_and_calls_every_backend_through_the_aggregate() {
    let (app, backends) = start("").await;
    let token = token(&app, "modern-agg", "/mcp").await;

    let discovered = modern_result(&app, "/mcp", &token, "server/discover", json!({})).await;
    assert_eq!(discovered["resultType"], "complete");
    assert!(
        discovered["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!(MODERN))
    );
    assert!(
        discovered["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-06-18"))
    );
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "portcullis"
    );
    let instructions = discovered["instructions"].as_str().unwrap();
    assert!(
        instructions.contains(&format!("Backend mod: {}", modern::INSTRUCTIONS)),
        "{instructions}"
    );
    assert!(
        instructions.contains("Backend mfx: Modern stdio fixture"),
        "{instructions}"
    );
    assert!(discovered.get("ttlMs").is_some() && discovered["cacheScope"] == "private");

    let list = modern_result(&app, "/mcp", &token, "tools/list", json!({})).await;
    assert_eq!(
        (list["resultType"].clone(), list["cacheScope"].clone()),
        (json!("complete"), json!("private"))
    );
    let names = names(&list);
    for tool in [
        "whoami",
        "rec__echo",
        "mod__echo",
        "mod__ask",
        "fx__echo",
        "mfx__echo",
    ] {
        assert!(names.contains(&tool), "{tool} in {names:?}");
    }
    assert!(!names.contains(&"mod__admin-reset"), "needs mod:admin:call");

    for (tool, expected) in [
        ("rec__echo", "echo: {\"text\":\"hi\"}"),
        ("mod__echo", "modern echo: hi"),
        ("fx__echo", "hi"),
        ("mfx__echo", "modern stdio echo: hi"),
    ] {
        let call = json!({"name": tool, "arguments": {"text": "hi"}});
        let result = modern_result(&app, "/mcp", &token, "tools/call", call).await;
        assert_eq!(result["resultType"], "complete", "{tool}: {result}");
        assert_eq!(text(&result), expected, "{tool}");
    }
    spoken_to_as_modern(&backends.modern);
}

#[tokio::test]
async fn a_legacy_client_initializes_and_calls_modern_backends_through_the_aggregate() {
    let (app, _backends) = start("").await;
    let token = token(&app, "legacy-agg", "/mcp").await;

    let initialized = initialize(&app, "/mcp", &token, "2025-06-18").await;
    assert_eq!(initialized["serverInfo"]["name"], "portcullis");
    let instructions = initialized["instructions"].as_str().unwrap();
    assert!(instructions.contains("Backend mod:"), "{instructions}");
    assert_legacy_shape(&initialized);

    let list = legacy_result(&app, "/mcp", &token, "tools/list", json!({})).await;
    assert_legacy_shape(&list);
    for (tool, expected) in [
        ("mod__echo", "modern echo: hi"),
        ("mfx__echo", "modern stdio echo: hi"),
    ] {
        let call = json!({"name": tool, "arguments": {"text": "hi"}});
        let result = legacy_result(&app, "/mcp", &token, "tools/call", call).await;
        assert_legacy_shape(&result);
        assert_eq!(text(&result), expected);
    }
}

#[tokio::test]
async fn a_modern_client_is_relayed_to_a_modern_backend_and_its_headers_must_match_the_body() {
    let (app, backends) = start("").await;
    let token = token(&app, "modern-relay", "/mcp/mod").await;

    // The backend's list, filtered to what this caller may call, is no longer public.
    let list = modern_result(&app, "/mcp/mod", &token, "tools/list", json!({})).await;
    assert_eq!(names(&list), ["echo", "ask"]);
    assert_eq!(
        (list["cacheScope"].clone(), list["ttlMs"].clone()),
        (json!("private"), json!(30000))
    );

    let echo = json!({"name": "echo", "arguments": {"text": "hi"}});
    let result = modern_result(&app, "/mcp/mod", &token, "tools/call", echo).await;
    assert_eq!(text(&result), "modern echo: hi");
    assert_eq!(
        modern::last(&backends.modern, "tools/call").headers["mcp-name"],
        "echo"
    );

    // A body that names a tool the caller may not call, under a header that names one it may.
    let before = backends.modern.bodies().len();
    let sneaky = app
        .http
        .post(app.url("/mcp/mod"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
            "name": "admin-reset", "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(sneaky.status(), StatusCode::BAD_REQUEST);
    let body: Value = sneaky.json().await.unwrap();
    assert_eq!(
        (body["id"].clone(), body["error"]["code"].clone()),
        (json!(8), json!(-32020))
    );
    assert_eq!(
        backends.modern.bodies().len(),
        before,
        "nothing reached the backend"
    );

    // An unknown revision is refused with the ones the gateway speaks.
    let future = app
        .http
        .post(app.url("/mcp/mod"))
        .bearer_auth(&token)
        .header("mcp-protocol-version", "2099-01-01")
        .header("mcp-method", "tools/list")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}}
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(future.status(), StatusCode::BAD_REQUEST);
    let body: Value = future.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32022);
    assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!(MODERN))
    );

    // MRTR passes through: the backend asks, the client answers on its retry.
    let elicits = json!({"elicitation": {"form": {}}});
    let asked = modern_rpc(
        &app,
        "/mcp/mod",
        &token,
        "tools/call",
        json!({"name": "ask", "arguments": {}}),
        elicits.clone(),
    )
    .await;
    let asked = rpc_body(asked).await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"].clone();
    let retry = json!({"name": "ask", "arguments": {}, "requestState": state,
        "inputResponses": {"color": {"action": "accept", "content": {"color": "blue"}}}});
    let done =
        rpc_body(modern_rpc(&app, "/mcp/mod", &token, "tools/call", retry, elicits).await).await;
    assert_eq!(text(&done["result"]), "you chose blue");
}

/// Bridges between eras, stdio backends, `Origin`, and what the aggregate describes.
mod bridges;
