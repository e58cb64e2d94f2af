//! The MCP Inspector's CLI, `mcpdo` (@modelcontextprotocol/inspector 2.12.0), as a person or an
//! agent runs it (`scripts/clients/inspector.mjs`): connect, sign in through the browser,
//! complete the sign-in, list and call, on `/mcp/{id}` and `/mcp`, and a call after the access
//! token expired (the daemon refreshes). Its daemon takes the
//! redirect on the fixed port 6276: `run_inspector` holds a machine-wide lock, and
//! .config/nextest.toml runs these tests one at a time.

use serde_json::json;

use super::{Backend, Gateway, Grant, signed_in_once, text, tool_names};
use crate::support::clients::run_inspector;
use crate::support::sdk::step;

async fn signs_in_lists_calls_and_refreshes(backend: Backend) {
    let gateway = Gateway::start(backend, Grant::Entitlement).await;
    let (ev, mcp) = (&gateway.ev, &gateway.mcp);
    let inspector = run_inspector(
        ev,
        "inspector@example.com",
        json!([
            {"listTools": {}},
            {"callTool": {"name": "echo", "arguments": {"message": "from the inspector"}}},
            {"callTool": {"name": "ev__echo", "arguments": {"message": "aggregated"}}, "server": mcp},
            {"sleep": {"seconds": 4}},
            {"callTool": {"name": "echo", "arguments": {"message": "after a refresh"}}},
        ]),
    );
    // While it sleeps, its access tokens expire (the gateway's clock moves on): the next call
    // gets a 401 and the daemon refreshes.
    let expire = async {
        let app = &gateway.app;
        let echoes = portcullis::store::AuditFilter {
            tool: Some("echo".into()),
            kind: Some(portcullis::store::AuditKind::ToolCall),
            limit: 10,
            ..Default::default()
        };
        for _ in 0..600 {
            app.state.auditor.flush().await;
            if app.state.store.audit_events(&echoes).await.unwrap().len() >= 2 {
                app.clock.advance(chrono::Duration::hours(2));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the inspector never made its calls");
    };
    let (lines, ()) = tokio::join!(inspector, expire);

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

    // The token expired: the call goes through after a refresh, without a new sign-in.
    let refreshed = step(&lines, 4);
    assert_eq!(
        text(&refreshed["result"]),
        "Echo: after a refresh",
        "{refreshed:#}"
    );
    assert_eq!(
        refreshed["auth"]["authorizations"],
        json!([]),
        "{refreshed:#}"
    );
    let app = &gateway.app;
    app.state.auditor.flush().await;
    let refreshes = app
        .state
        .store
        .audit_events(&portcullis::store::AuditFilter {
            kind: Some(portcullis::store::AuditKind::TokenRefreshed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!refreshes.is_empty(), "a refresh_token grant was used");
    gateway.app.stop().await;
}

#[tokio::test]
async fn signs_in_lists_calls_and_refreshes_with_everything_over_http() {
    signs_in_lists_calls_and_refreshes(Backend::EverythingHttp).await;
}

#[tokio::test]
async fn signs_in_lists_calls_and_refreshes_with_a_2026_backend_over_http() {
    signs_in_lists_calls_and_refreshes(Backend::ModernHttp).await;
}
