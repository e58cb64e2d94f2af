//! Messages that try to slip past the gate: uses of a backend sent as notifications, methods
//! that are not strings.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{gateway, rec_url, token_for_aggregate, token_for_rec};

fn notified_call(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

#[tokio::test]
async fn a_tool_call_sent_as_a_notification_passes_the_same_scope_check() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "notifier").await;

    let refused = app
        .mcp(&rec_url(&app), Some(&token), notified_call("admin-reset"))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(
        backend.bodies().iter().all(|b| b["method"] != "tools/call"),
        "nothing reached the backend"
    );

    let allowed = app
        .mcp(&rec_url(&app), Some(&token), notified_call("echo"))
        .await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(backend.last().body["params"]["name"], "echo");

    // The aggregate checks it too, and answers nothing to a notification.
    let token = token_for_aggregate(&app, "notifier2").await;
    let refused = app
        .mcp(
            &app.mcp_url(),
            Some(&token),
            notified_call("rec__admin-reset"),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let accepted = app
        .mcp(&app.mcp_url(), Some(&token), notified_call("whoami"))
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_message_whose_method_is_not_a_string_is_refused() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "oddity").await;
    let before = backend.bodies().len();
    for body in [
        json!({"jsonrpc": "2.0", "id": 4, "method": ["tools/call"], "params": {"name": "admin-reset"}}),
        json!({"jsonrpc": "2.0", "id": 5, "method": null}),
        json!({"jsonrpc": "2.0", "id": 6}),
    ] {
        let response = app.mcp(&rec_url(&app), Some(&token), body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], -32600, "{body}");
    }
    assert_eq!(
        backend.bodies().len(),
        before,
        "nothing reached the backend"
    );
}

#[tokio::test]
async fn a_backend_session_serves_only_the_person_who_opened_it() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let alice = token_for_rec(&app, "session-alice").await;
    let mallory = token_for_rec(&app, "session-mallory").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}});
    let opened = app.mcp(&rec_url(&app), Some(&alice), init).await;
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let with_session = |method: reqwest::Method, token: &str, session: &str| {
        app.http
            .request(method, rec_url(&app))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .header("mcp-session-id", session)
    };
    let before = backend.bodies().len();
    let stolen_call = with_session(reqwest::Method::POST, &mallory, &session)
        .json(&super::call(2, "echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen_call.status(), StatusCode::NOT_FOUND);
    let body: Value = stolen_call.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Session not found");
    let replay = with_session(reqwest::Method::GET, &mallory, &session)
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::NOT_FOUND);
    let ended = with_session(reqwest::Method::DELETE, &mallory, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NOT_FOUND);
    let made_up = with_session(reqwest::Method::POST, &alice, "never-issued")
        .json(&super::call(3, "echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        backend.bodies().len(),
        before,
        "nothing reached the backend"
    );

    let own = with_session(reqwest::Method::POST, &alice, &session)
        .json(&super::call(4, "echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(backend.last().headers["mcp-session-id"], session.as_str());
}
