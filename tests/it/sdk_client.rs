//! The TypeScript MCP SDK's client against Portcullis: it discovers, registers, authorizes
//! (the person's part scripted through the development sign-in), exchanges, calls tools and
//! refreshes, all by itself.

use serde_json::{Value, json};

use crate::support::app::spawn_dev;
use crate::support::sdk::{run_client, step};

#[tokio::test]
async fn the_sdk_client_signs_in_calls_whoami_and_refreshes() {
    let app = spawn_dev("").await;
    let mcp = app.mcp_url();

    let lines = run_client(
        &mcp,
        "sdk@example.com",
        json!([
            {"listTools": {}},
            {"callTool": {"name": "whoami", "arguments": {}}},
            {"forceRefresh": {}},
            {"callTool": {"name": "whoami", "arguments": {}}},
            {"tokens": {}},
        ]),
    )
    .await;
    assert_eq!(lines.len(), 6, "connect + 5 steps: {lines:#?}");

    // The first connection: a 401, discovery, registration, one authorization, one code exchange.
    let connect = step(&lines, -1);
    assert_eq!(connect["step"], "connect");
    assert_eq!(connect["ok"], true, "{connect:#}");
    assert_eq!(connect["result"]["serverVersion"]["name"], "portcullis");
    let client_id = connect["result"]["client_id"].as_str().unwrap().to_owned();
    let auth = &connect["auth"];
    assert_eq!(auth["unauthorized"], 1, "{auth:#}");
    assert_eq!(auth["registrations"], json!([{"status": 201}]));
    let authorizations = auth["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{auth:#}");
    assert_eq!(authorizations[0]["resource"], mcp.as_str());
    assert_eq!(
        authorizations[0]["iss"],
        app.base.as_str(),
        "the redirect carries iss"
    );
    assert_eq!(
        auth["tokenRequests"],
        json!([{"grant_type": "authorization_code", "status": 200}])
    );

    let list = step(&lines, 0);
    assert_eq!(list["ok"], true, "{list:#}");
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"whoami"), "{names:?}");

    let whoami = |value: &Value| {
        assert_eq!(value["ok"], true, "{value:#}");
        let me = &value["result"]["structuredContent"];
        assert_eq!(me["email"], "sdk@example.com", "{value:#}");
        assert_eq!(me["client_id"], client_id.as_str());
        assert_eq!(me["audience"], mcp.as_str());
        assert_eq!(value["result"]["isError"], false);
    };
    let first = step(&lines, 1);
    whoami(first);
    assert_eq!(first["auth"]["tokenRequests"], json!([]), "no OAuth needed");

    let force = step(&lines, 2);
    assert_eq!(force["ok"], true, "{force:#}");
    assert_eq!(force["result"]["hasRefreshToken"], true);

    // The corrupted access token gets a 401; the SDK refreshes and retries.
    let second = step(&lines, 3);
    whoami(second);
    assert_eq!(second["auth"]["unauthorized"], 1, "{second:#}");
    assert_eq!(
        second["auth"]["tokenRequests"],
        json!([{"grant_type": "refresh_token", "status": 200}])
    );
    assert_eq!(second["auth"]["refreshed"], true);
    assert_eq!(
        second["auth"]["authorizations"],
        json!([]),
        "no new sign-in"
    );

    let tokens = step(&lines, 4);
    assert_eq!(tokens["ok"], true, "{tokens:#}");
    assert_eq!(
        tokens["result"]["has_refresh_token"], true,
        "a rotated refresh token"
    );
    assert_eq!(tokens["result"]["token_type"], "Bearer");
    let claims = &tokens["result"]["claims"];
    assert_eq!(claims["aud"], mcp.as_str());
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["email"], "sdk@example.com");
    // The refreshed access token works outside the SDK too.
    let token = tokens["result"]["access_token"].as_str().unwrap();
    let direct = app.call_tool(token, "whoami").await;
    assert_eq!(
        direct["result"]["structuredContent"]["email"],
        "sdk@example.com"
    );

    app.stop().await;
}

/// The same client, straight at server-everything (no OAuth there): a streamed tool call whose
/// progress notifications the SDK hands to `onprogress` before the result.
#[tokio::test]
async fn the_sdk_client_receives_streamed_progress_from_server_everything() {
    let server = crate::support::everything::spawn_http().await;
    let lines = run_client(
        &server.url,
        "sdk@example.com",
        json!([
            {"callTool": {"name": "trigger-long-running-operation",
                          "arguments": {"duration": 0.6, "steps": 3}},
             "progress": true},
            {"callTool": {"name": "echo", "arguments": {"message": "hello"}}},
        ]),
    )
    .await;
    let connect = step(&lines, -1);
    assert_eq!(connect["ok"], true, "{connect:#}");
    assert_eq!(
        connect["result"]["serverVersion"]["name"],
        "mcp-servers/everything"
    );
    assert_eq!(connect["auth"]["authorizations"], json!([]));

    let slow = step(&lines, 0);
    assert_eq!(slow["ok"], true, "{slow:#}");
    assert_eq!(slow["progress"]["count"], 3, "{slow:#}");
    assert_eq!(
        slow["progress"]["notifications"][2],
        json!({"progress": 3, "total": 3})
    );
    assert!(
        slow["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Long running operation completed"),
        "{slow:#}"
    );
    let echo = step(&lines, 1);
    assert_eq!(
        echo["result"]["content"][0]["text"], "Echo: hello",
        "{echo:#}"
    );
}
