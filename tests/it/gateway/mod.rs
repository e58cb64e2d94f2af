//! `/mcp/{backend}`: each backend a protected resource of its own; scopes checked before the
//! backend sees anything; the caller's identity forwarded, never the client's token; sessions,
//! streams, deadlines and limits relayed as MCP clients expect.

/// The aggregate `/mcp`: every backend's tools, namespaced, through the same gate.
mod aggregate;
/// Every tool call recorded, allowed or denied; uses beyond tools need the default scope.
mod audit;
/// Both eras of MCP, bridged, on every endpoint.
mod era;
/// The gateway as the MCP server of stdio backends: their requests to the client.
mod facade;
/// Messages shaped to slip past the gate.
mod hardening;
/// `/mcp/{id}` relayed to a Streamable HTTP backend.
mod proxy;
/// Relayed server streams: a cap per person, an idle timeout, closed when the client leaves.
mod streams;

use serde_json::{Value, json};

use crate::support::app::{Db, Options, TestApp, spawn};
use crate::support::recorder::{self, Recorder};

/// A gateway with the recorder as backend `rec`; the person may call `rec` tools and `echo`,
/// but not the `admin-*` tools.
pub(crate) async fn gateway(forward: &str, extra: &str) -> (TestApp, Recorder) {
    gateway_on(Db::Sqlite, forward, extra).await
}

pub(super) async fn gateway_on(db: Db, forward: &str, extra: &str) -> (TestApp, Recorder) {
    let backend = recorder::spawn().await;
    let toml = format!(
        r#"
[[backends]]
id = "rec"
url = "{url}"
scope = "rec:tools:call"
forward = {forward}
timeout_secs = 2
max_response_bytes = 65536
{extra}
[backends.tools]
"echo" = "rec:echo:call"
"admin-*" = "rec:admin:call"
"#,
        url = backend.url
    );
    let app = spawn(Options {
        db,
        grant_scopes: r#"["rec:tools:call", "rec:echo:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    (app, backend)
}

pub(crate) fn rec_url(app: &TestApp) -> String {
    app.url("/mcp/rec")
}

pub(super) async fn token_for_rec(app: &TestApp, login: &str) -> String {
    let (_, tokens) = app
        .tokens_for_resource(login, None, Some(rec_url(app)))
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

pub(super) fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"text": "hi"}}})
}

pub(super) async fn token_for_aggregate(app: &TestApp, login: &str) -> String {
    let (_, tokens) = app.tokens_for(login, None).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}
