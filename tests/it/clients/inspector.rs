//! The MCP Inspector's CLI, `mcpdo` (@modelcontextprotocol/inspector 2.12.0), as a person or an
//! agent runs it (`scripts/clients/inspector.mjs`): connect, sign in through the browser,
//! complete the sign-in, list and call, on `/mcp/{id}` and `/mcp`. Its daemon takes the
//! redirect on the fixed port 6276: `run_inspector` holds a machine-wide lock, and
//! .config/nextest.toml runs these tests one at a time.

use serde_json::json;

use super::{Backend, Gateway, Grant, signed_in_once, text, tool_names};
use crate::support::clients::run_inspector;
use crate::support::sdk::step;

async fn signs_in_lists_and_calls(backend: Backend) {
    let gateway = Gateway::start(backend, Grant::Entitlement).await;
    let (ev, mcp) = (&gateway.ev, &gateway.mcp);
    let lines = run_inspector(
        ev,
        "inspector@example.com",
        json!([
            {"listTools": {}},
            {"callTool": {"name": "echo", "arguments": {"message": "from the inspector"}}},
            {"callTool": {"name": "ev__echo", "arguments": {"message": "aggregated"}}, "server": mcp},
        ]),
    )
    .await;

    signed_in_once(&lines, ev);
    let connect = step(&lines, -1);
    assert!(
        connect["result"]["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == "ev:tools:call"),
        "{connect:#}"
    );

    let listed = step(&lines, 0);
    assert_eq!(listed["ok"], true, "{listed:#}");
    assert!(tool_names(&listed["result"]).contains(&"echo".to_owned()));
    let echo = step(&lines, 1);
    assert_eq!(echo["ok"], true, "{echo:#}");
    assert_eq!(text(&echo["result"]), "Echo: from the inspector");

    let aggregated = step(&lines, 2);
    assert_eq!(aggregated["ok"], true, "{aggregated:#}");
    assert_eq!(text(&aggregated["result"]), "Echo: aggregated");
    assert_eq!(
        aggregated["auth"]["authorizations"][0]["resource"],
        mcp.as_str(),
        "its own sign-in for /mcp: {aggregated:#}"
    );
    gateway.app.stop().await;
}

#[tokio::test]
async fn signs_in_lists_and_calls_with_everything_over_http() {
    signs_in_lists_and_calls(Backend::EverythingHttp).await;
}

#[tokio::test]
async fn signs_in_lists_and_calls_with_a_2026_backend_over_http() {
    signs_in_lists_and_calls(Backend::ModernHttp).await;
}
