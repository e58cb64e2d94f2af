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
