//! A REST API behind Portcullis as MCP tools: the FastAPI app of `scripts/openapi`, whose
//! OpenAPI document FastAPI generates and serves, configured as backend `inventory` with
//! `openapi = "<its /openapi.json URL>"`, so Portcullis fetches the document at start-up.

/// The response cache: per person and arguments, in memory or in Redis, audited as a hit.
mod cache;
/// Tool calls: parameters, validation, API errors, the timeout, the size cap.
mod calls;
/// `check-config` and start-up reading the live document.
mod check;
/// Credentials to the API: none, a static secret, the assertion, the upstream token.
mod credentials;
/// What a client is shown, and what its scopes let it call.
mod listing;
/// The TypeScript SDK client through `/mcp/inventory` and `/mcp`.
mod sdk;

use portcullis::store::{AuditEvent, AuditFilter, AuditKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{Options, TestApp, rpc_body, spawn};
use crate::support::openapi::{self, Api};

/// The backend's own endpoint.
const PATH: &str = "/mcp/inventory";
/// Every scope the inventory's tools need (the defaults: `inventory:{tag}:{read|write}`).
const EVERY_SCOPE: &str = r#"["inventory:*:read", "inventory:*:write"]"#;

/// The `[[backends]]` table for the app's document, with `base_url` when given, then `keys`
/// (more keys of the table), then `tables` (`[backends.cache]`, `[backends.tools]`).
fn backend_toml(api: &Api, base_url: Option<&str>, keys: &str, tables: &str) -> String {
    let base_url = base_url
        .map(|url| format!("base_url = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        "[[backends]]\nid = \"inventory\"\nopenapi = \"{document}\"\n{base_url}{keys}\n{tables}\n",
        document = api.document_url()
    )
}

/// The app, and Portcullis (signing people in at the test IdP, each with `grant_scopes`) with
/// it as backend `inventory` at its own address, plus `keys` and `tables`.
async fn start(keys: &str, tables: &str, grant_scopes: &'static str) -> (TestApp, Api) {
    let api = openapi::spawn().await;
    let toml = backend_toml(&api, Some(&api.base), keys, tables);
    (start_with(toml, grant_scopes).await, api)
}

/// Portcullis with `backend_toml` as its backends.
async fn start_with(backend_toml: String, grant_scopes: &'static str) -> TestApp {
    spawn(Options {
        grant_scopes,
        extra_toml: backend_toml,
        ..Options::default()
    })
    .await
}

/// An access token of `login` (signed in at the test IdP) for the endpoint at `path`.
async fn sign_in(app: &TestApp, login: &str, path: &str) -> String {
    let resource = (path != "/mcp").then(|| app.url(path));
    let (_, tokens) = app.tokens_for_resource(login, None, resource).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// `tools/call` of `name` on the endpoint at `path`: the JSON-RPC response, which must come
/// with 200.
async fn call(app: &TestApp, token: &str, path: &str, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments}});
    let response = app.mcp(&app.url(path), Some(token), body).await;
    assert_eq!(response.status(), StatusCode::OK, "calling {name}");
    rpc_body(response).await
}

/// The result of a call that must have one.
fn result(response: &Value) -> &Value {
    response
        .get("result")
        .unwrap_or_else(|| panic!("no result in {response:#}"))
}

/// The text of a tool result.
fn text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result:#}"))
}

/// The `tool_call` audit rows of `user` (login or email), oldest first.
async fn tool_calls(app: &TestApp, user: &str) -> Vec<AuditEvent> {
    app.state.auditor.flush().await;
    let filter = AuditFilter {
        user: Some(user.to_owned()),
        kind: Some(AuditKind::ToolCall),
        limit: 100,
        ..AuditFilter::default()
    };
    let mut rows = app.state.store.audit_events(&filter).await.unwrap();
    rows.sort_by_key(|row| row.time);
    rows
}

/// The one audit row of `tool` among `rows`.
fn row<'a>(rows: &'a [AuditEvent], tool: &str) -> &'a AuditEvent {
    let found: Vec<&AuditEvent> = rows
        .iter()
        .filter(|r| r.tool.as_deref() == Some(tool))
        .collect();
    assert_eq!(found.len(), 1, "one row of {tool} in {rows:#?}");
    found[0]
}

#[tokio::test]
async fn the_fastapi_app_serves_the_document_it_generates() {
    let api = openapi::spawn().await;
    let document: Value = reqwest::get(api.document_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{document:#}"
    );
    assert_eq!(
        document["paths"]["/items/{item_id}"]["get"]["operationId"],
        "read_item_items__item_id__get"
    );
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["HTTPBearer"]["scheme"], "bearer", "{schemes:#}");
    assert_eq!(schemes["APIKeyHeader"]["name"], "X-API-Key", "{schemes:#}");
    assert_eq!(schemes["APIKeyQuery"]["in"], "query", "{schemes:#}");
    // What reached it is counted per path.
    assert_eq!(api.calls("/calls/harness").await, 0);
    assert_eq!(api.get("/calls/harness").await["calls"], 1);
    assert_eq!(api.calls("/calls/harness").await, 1);
}
