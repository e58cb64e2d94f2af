//! The TypeScript MCP SDK client through the gateway to a real backend (server-everything over
//! Streamable HTTP): its own sign-in with the basic scope the 401 names, tools listed and called
//! through `/mcp/{id}` and `/mcp`, a streamed result, a denied call answered by step-up (the
//! SDK refreshing first, as it does), and a refresh. No hand-made OAuth: the SDK does all of it.

use serde_json::{Value, json};

use crate::support::app::spawn_dev;
use crate::support::everything;
use crate::support::sdk::{run_client, step};

fn tool_names(line: &Value) -> Vec<String> {
    line["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_sdk_client_uses_a_real_backend_through_the_gateway() {
    let backend = everything::spawn_http().await;
    // Least privilege: the SDK asks for the basic scope the 401 names, and steps up.
    let toml = format!(
        r#"
grant = "requested"
[[backends]]
id = "ev"
url = "{url}"
scope = "ev:tools:call"
forward = ["identity-headers"]
[backends.tools]
"trigger-*" = "ev:admin:call"
"#,
        url = backend.url,
    );
    let app = spawn_dev(&toml).await;
    let ev = app.url("/mcp/ev");
    let mcp = app.mcp_url();

    let lines = run_client(
        &ev,
        "sdk-gw@example.com",
        json!([
            {"listTools": {}},
            {"callTool": {"name": "echo", "arguments": {"message": "through the gateway"}}},
            {"callTool": {"name": "trigger-long-running-operation", "arguments": {"duration": 0.6, "steps": 3}},
             "progress": true, "expectStepUp": true},
            {"forceRefresh": {}},
            {"callTool": {"name": "echo", "arguments": {"message": "after a refresh"}}},
            {"listTools": {}, "server": mcp},
            {"callTool": {"name": "ev__echo", "arguments": {"message": "aggregated"}}, "server": mcp},
        ]),
    )
    .await;

    // The SDK signs in for /mcp/ev asking for the basic scope the 401 named.
    let connect = step(&lines, -1);
    assert_eq!(connect["ok"], true, "{connect:#}");
    let authorizations = connect["auth"]["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{connect:#}");
    assert_eq!(authorizations[0]["resource"], ev.as_str());
    assert_eq!(authorizations[0]["scope"], "ev:tools:call");

    // Only what the basic scope allows is listed, under the backend's own names.
    let listed = tool_names(step(&lines, 0));
    assert!(listed.contains(&"echo".to_owned()), "{listed:?}");
    assert!(
        !listed.iter().any(|t| t.starts_with("trigger-")),
        "{listed:?}"
    );
    let echo = step(&lines, 1);
    assert_eq!(
        echo["result"]["content"][0]["text"], "Echo: through the gateway",
        "{echo:#}"
    );

    // A call that needs more: 403 insufficient_scope. The SDK, unmodified and holding its
    // refresh token, refreshes first; that refresh is refused (`invalid_grant`), so it signs in
    // again asking for what it had plus what the call needs, and the retried call streams its
    // progress through.
    let stepped = step(&lines, 2);
    assert_eq!(stepped["ok"], true, "{stepped:#}");
    let step_up = &stepped["stepUp"];
    assert_eq!(step_up["challenged"], true, "{stepped:#}");
    assert_eq!(step_up["refreshTried"], true, "{stepped:#}");
    assert_eq!(step_up["reauthorized"], true, "{stepped:#}");
    assert_eq!(
        step_up["requestedScope"], "ev:admin:call ev:tools:call",
        "{stepped:#}"
    );
    assert_eq!(stepped["progress"]["count"], 3, "{stepped:#}");
    assert!(
        stepped["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Long running operation completed")
    );

    // A refresh behind the client's back keeps it working.
    let refreshed = step(&lines, 4);
    assert_eq!(refreshed["ok"], true, "{refreshed:#}");
    assert_eq!(refreshed["auth"]["refreshed"], true, "{refreshed:#}");
    assert_eq!(
        refreshed["result"]["content"][0]["text"],
        "Echo: after a refresh"
    );

    // The aggregate endpoint: its own sign-in, the built-in tools and the backend's, namespaced.
    let aggregate = tool_names(step(&lines, 5));
    assert!(
        aggregate.contains(&"whoami".to_owned()) && aggregate.contains(&"ev__echo".to_owned()),
        "{aggregate:?}"
    );
    let aggregated = step(&lines, 6);
    assert_eq!(
        aggregated["result"]["content"][0]["text"], "Echo: aggregated",
        "{aggregated:#}"
    );

    // Every call is in the audit trail, with the person's email.
    app.state.auditor.flush().await;
    let filter = portcullis::store::AuditFilter {
        user: Some("sdk-gw@example.com".into()),
        kind: Some(portcullis::store::AuditKind::ToolCall),
        limit: 50,
        ..Default::default()
    };
    let calls = app.state.store.audit_events(&filter).await.unwrap();
    assert!(
        calls.iter().all(|c| c.tool.is_some()),
        "initialize and lists are not tool calls: {calls:#?}"
    );
    let tools: Vec<&str> = calls
        .iter()
        .rev()
        .filter_map(|c| c.tool.as_deref())
        .collect();
    assert!(
        tools.contains(&"trigger-long-running-operation") && tools.contains(&"echo"),
        "{calls:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.decision == portcullis::store::Decision::Denied),
        "the step-up's first attempt"
    );
}
