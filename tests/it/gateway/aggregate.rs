//! The aggregate `/mcp`: every backend's tools under `{backend}__{tool}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{call, gateway, gateway_on, token_for_aggregate};
use crate::support::app::{Db, rpc_body};

#[tokio::test]
async fn the_aggregate_endpoint_lists_every_backends_tools_namespaced_and_filtered() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_aggregate(&app, "aggregate").await;
    let names = app.tool_names(&app.mcp_url(), &token).await;
    assert_eq!(
        names,
        [
            "whoami",
            "rec__echo",
            "rec__add",
            "rec__slow",
            "rec__stream",
            "rec__die"
        ],
        "{names:?}"
    );
}

#[tokio::test]
async fn an_aggregate_call_reaches_the_backend_under_its_own_name_with_the_callers_identity() {
    aggregate_call(Db::Sqlite).await;
}

#[tokio::test]
async fn an_aggregate_call_reaches_the_backend_under_its_own_name_on_postgres() {
    aggregate_call(Db::Postgres).await;
}

async fn aggregate_call(db: Db) {
    let (app, backend) = gateway_on(db, r#"["identity-headers"]"#, "").await;
    let token = token_for_aggregate(&app, "agg-call").await;
    let response = app
        .http
        .post(app.mcp_url())
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("x-request-id", "agg-req-1")
        .json(&call(1, "rec__echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer = rpc_body(response).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], r#"echo: {"text":"hi"}"#,
        "{answer}"
    );
    let methods: Vec<String> = backend
        .bodies()
        .iter()
        .map(|b| b["method"].as_str().unwrap_or_default().to_owned())
        .collect();
    // The era probe first (a 2025-era backend refuses it), then a 2025 session.
    assert_eq!(
        methods,
        [
            "server/discover",
            "initialize",
            "notifications/initialized",
            "tools/call"
        ]
    );
    let seen = backend.last();
    assert_eq!(seen.body["params"]["name"], "echo");
    assert_eq!(seen.headers["x-request-id"], "agg-req-1");
    assert_eq!(seen.headers["x-portcullis-email"], "agg-call@example.com");
    assert_eq!(seen.headers["mcp-session-id"], "session-from-backend");

    // A second call reuses the backend session.
    rpc_body(
        app.mcp(&app.mcp_url(), Some(&token), call(2, "rec__add"))
            .await,
    )
    .await;
    assert_eq!(
        backend
            .bodies()
            .iter()
            .filter(|b| b["method"] == "initialize")
            .count(),
        1
    );
}

#[tokio::test]
async fn an_aggregate_call_without_its_scope_gets_a_step_up_challenge() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_aggregate(&app, "agg-step").await;
    let response = app
        .mcp(&app.mcp_url(), Some(&token), call(5, "rec__admin-reset"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"rec:admin:call rec:echo:call rec:tools:call\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&app.url("/.well-known/oauth-protected-resource/mcp")),
        "{challenge}"
    );
    assert!(backend.bodies().iter().all(|b| b["method"] != "tools/call"));
}

#[tokio::test]
async fn progress_and_failures_come_through_the_aggregate_as_mcp_expects() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_aggregate(&app, "agg-stream").await;
    let mut streamed = call(6, "rec__stream");
    streamed["params"]["_meta"] = json!({"progressToken": "agg-token"});
    let response = app.mcp(&app.mcp_url(), Some(&token), streamed).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{text}");
    assert_eq!(progress[0]["params"]["progressToken"], "agg-token");
    assert_eq!(
        messages.last().unwrap()["result"]["content"][0]["text"],
        "streamed"
    );

    let died = rpc_body(
        app.mcp(&app.mcp_url(), Some(&token), call(7, "rec__die"))
            .await,
    )
    .await;
    assert_eq!(
        (died["id"].clone(), died["error"]["code"].clone()),
        (json!(7), json!(-32001)),
        "{died}"
    );
    let unknown = rpc_body(
        app.mcp(&app.mcp_url(), Some(&token), call(8, "nope__x"))
            .await,
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602);
}
