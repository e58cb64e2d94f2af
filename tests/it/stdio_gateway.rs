//! stdio backends behind the gateway: server-everything run by Portcullis, one process per
//! user, reached through `/mcp/{id}` and `/mcp`, with scopes, and supervised: a process killed
//! mid-call gives the caller an error, and the next call gets a new process.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{Options, TestApp, rpc_body, spawn};
use crate::support::everything::stdio_command;
use portcullis::gateway::Transport;

/// The issue's own configuration, with server-everything from the test's node_modules.
async fn gateway(grant_scopes: &'static str) -> TestApp {
    let command = serde_json::to_string(&stdio_command()).unwrap();
    let toml = format!(
        r#"
[[backends]]
id = "everything"
command = {command}
scope = "everything:tools:call"
forward = ["identity-headers"]
timeout_secs = 20
[backends.tools]
"echo" = "everything:echo:call"
"trigger-*" = "everything:admin:call"
"#
    );
    spawn(Options {
        grant_scopes,
        extra_toml: toml,
        ..Options::default()
    })
    .await
}

fn pool(app: &TestApp) -> std::sync::Arc<portcullis::gateway::stdio::StdioPool> {
    match &app.state.gateway.backends[0].transport {
        Transport::Stdio(pool) => pool.clone(),
        _ => panic!("a stdio backend"),
    }
}

fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

async fn token(app: &TestApp, login: &str) -> (String, String) {
    let (_, tokens) = app
        .tokens_for_resource(login, None, Some(app.url("/mcp/everything")))
        .await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let user = crate::negative::claims_of(&token).sub;
    (token, user)
}

#[tokio::test]
async fn each_user_gets_their_own_stdio_process_and_only_the_tools_they_may_call() {
    let app = gateway(r#"["everything:tools:call", "everything:echo:call"]"#).await;
    let everything = app.url("/mcp/everything");
    let (alice, alice_id) = token(&app, "alice-stdio").await;
    let (bob, bob_id) = token(&app, "bob-stdio").await;

    for (token, who) in [(&alice, "alice"), (&bob, "bob")] {
        let answer = rpc_body(
            app.mcp(
                &everything,
                Some(token),
                call(1, "echo", json!({"message": who})),
            )
            .await,
        )
        .await;
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!("Echo: {who}"),
            "{answer}"
        );
    }
    let pool = pool(&app);
    assert_eq!(pool.process_count(), 2);
    let (alice_pid, bob_pid) = (
        pool.pid_for(Some(&alice_id)).unwrap(),
        pool.pid_for(Some(&bob_id)).unwrap(),
    );
    assert_ne!(alice_pid, bob_pid);

    // A per-user process knows whom it serves, from its environment.
    let env = rpc_body(
        app.mcp(&everything, Some(&bob), call(5, "get-env", json!({})))
            .await,
    )
    .await;
    let env = env["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        env.contains("bob-stdio@example.com") && env.contains(&bob_id),
        "{env}"
    );
    assert!(!env.contains("alice-stdio"), "{env}");

    let names = app.tool_names(&everything, &alice).await;
    assert!(
        names.iter().any(|n| n == "echo") && names.iter().any(|n| n == "get-sum"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("trigger-")),
        "{names:?}"
    );

    let denied = app
        .mcp(
            &everything,
            Some(&alice),
            call(3, "trigger-long-running-operation", json!({})),
        )
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(
        denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("everything:admin:call")
    );

    // Through the aggregate endpoint the same process answers, under the namespaced name.
    let (_, tokens) = app.tokens_for("alice-stdio", None).await;
    let aggregate = tokens["access_token"].as_str().unwrap();
    let sum = rpc_body(
        app.mcp(
            &app.mcp_url(),
            Some(aggregate),
            call(4, "everything__get-sum", json!({"a": 2, "b": 3})),
        )
        .await,
    )
    .await;
    assert!(
        sum["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains('5'),
        "{sum}"
    );
    assert_eq!(pool.pid_for(Some(&alice_id)), Some(alice_pid));
}

#[tokio::test]
async fn a_stdio_process_killed_mid_call_gives_an_error_and_the_next_call_a_new_process() {
    let app = gateway(r#"["everything:*:*"]"#).await;
    let everything = app.url("/mcp/everything");
    let (token, user) = token(&app, "crash-stdio").await;
    let warm = rpc_body(
        app.mcp(
            &everything,
            Some(&token),
            call(1, "echo", json!({"message": "up"})),
        )
        .await,
    )
    .await;
    assert_eq!(warm["result"]["content"][0]["text"], "Echo: up");
    let pool = pool(&app);
    let pid = pool.pid_for(Some(&user)).unwrap();

    // A long call that reports progress: once the first progress event is here, the call is
    // certainly in flight in the process. Then the process is killed.
    let mut slow = call(
        2,
        "trigger-long-running-operation",
        json!({"duration": 15, "steps": 15}),
    );
    slow["params"]["_meta"] = json!({"progressToken": "p"});
    let mut response = app.mcp(&everything, Some(&token), slow).await;
    let mut text = String::new();
    while !text.contains("notifications/progress") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("progress before the end of the stream");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let answer: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in {text}"));
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "{answer}");

    let again = rpc_body(
        app.mcp(
            &everything,
            Some(&token),
            call(3, "echo", json!({"message": "back"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        again["result"]["content"][0]["text"], "Echo: back",
        "{again}"
    );
    let new_pid = pool.pid_for(Some(&user)).unwrap();
    assert_ne!(new_pid, pid, "a new process serves the next call");

    app.state.auditor.flush().await;
    let filter = portcullis::store::AuditFilter {
        tool: Some("trigger-long-running-operation".into()),
        limit: 10,
        ..Default::default()
    };
    let rows = app.state.store.audit_events(&filter).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome.as_deref(), Some("unavailable"));
}

/// server-everything over Streamable HTTP behind `/mcp`: when it restarts and forgets the
/// gateway's session, the next call opens a new one instead of failing.
#[tokio::test]
async fn the_aggregate_endpoint_survives_an_http_backend_restart() {
    let mut backend = crate::support::everything::spawn_http().await;
    let toml = format!("[[backends]]\nid = \"ev\"\nurl = \"{}\"\n", backend.url);
    let app = spawn(Options {
        grant_scopes: r#"["ev:*:*"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let (_, tokens) = app.tokens_for("restarts", None).await;
    let token = tokens["access_token"].as_str().unwrap();
    let echo = |id: u64, message: &str| call(id, "ev__echo", json!({"message": message}));

    let before = rpc_body(
        app.mcp(&app.mcp_url(), Some(token), echo(1, "before"))
            .await,
    )
    .await;
    assert_eq!(
        before["result"]["content"][0]["text"], "Echo: before",
        "{before}"
    );

    backend.kill();
    let down = rpc_body(app.mcp(&app.mcp_url(), Some(token), echo(2, "down")).await).await;
    assert_eq!(
        down["error"]["code"], -32001,
        "a clear error while it is down: {down}"
    );

    backend.restart().await;
    let after = rpc_body(app.mcp(&app.mcp_url(), Some(token), echo(3, "after")).await).await;
    assert_eq!(
        after["result"]["content"][0]["text"], "Echo: after",
        "{after}"
    );
}

#[tokio::test]
async fn a_stdio_backends_request_limit_applies_on_its_endpoint_and_on_the_aggregate() {
    let command = serde_json::to_string(&stdio_command()).unwrap();
    let toml = format!(
        "[[backends]]\nid = \"everything\"\ncommand = {command}\nmax_request_bytes = 1024\n"
    );
    let app = spawn(Options {
        grant_scopes: r#"["everything:*:*"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let (token, _) = token(&app, "limits-stdio").await;
    let big = json!({"message": "z".repeat(4096)});
    let response = app
        .mcp(
            &app.url("/mcp/everything"),
            Some(&token),
            call(1, "echo", big.clone()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32005
    );
    let (_, tokens) = app.tokens_for("limits-stdio", None).await;
    let aggregate = app
        .mcp(
            &app.mcp_url(),
            tokens["access_token"].as_str(),
            call(2, "everything__echo", big),
        )
        .await;
    assert_eq!(aggregate.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        pool(&app).process_count(),
        0,
        "nothing was started for a refused request"
    );
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[tokio::test]
async fn a_stdio_backends_prompts_and_resources_pass_through_for_holders_of_its_default_scope() {
    let app = gateway(r#"["everything:tools:call"]"#).await;
    let everything = app.url("/mcp/everything");
    let (token, _) = token(&app, "resources-stdio").await;
    let prompts = rpc_body(
        app.mcp(
            &everything,
            Some(&token),
            request(1, "prompts/list", json!({})),
        )
        .await,
    )
    .await;
    assert!(
        !prompts["result"]["prompts"].as_array().unwrap().is_empty(),
        "{prompts}"
    );
    let resources = rpc_body(
        app.mcp(
            &everything,
            Some(&token),
            request(2, "resources/list", json!({})),
        )
        .await,
    )
    .await;
    let first = resources["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = rpc_body(
        app.mcp(
            &everything,
            Some(&token),
            request(3, "resources/read", json!({"uri": first})),
        )
        .await,
    )
    .await;
    assert_eq!(
        read["result"]["contents"][0]["uri"],
        first.as_str(),
        "{read}"
    );
}

#[tokio::test]
async fn using_a_backend_beyond_its_tools_needs_its_default_scope() {
    let app = gateway(r#"["everything:echo:call"]"#).await;
    let everything = app.url("/mcp/everything");
    let (token, _) = token(&app, "narrow-stdio").await;
    let echo = rpc_body(
        app.mcp(
            &everything,
            Some(&token),
            call(1, "echo", json!({"message": "ok"})),
        )
        .await,
    )
    .await;
    assert_eq!(echo["result"]["content"][0]["text"], "Echo: ok", "{echo}");
    let denied = app
        .mcp(
            &everything,
            Some(&token),
            request(2, "resources/list", json!({})),
        )
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let challenge = denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"scope="everything:echo:call everything:tools:call""#),
        "{challenge}"
    );
}
