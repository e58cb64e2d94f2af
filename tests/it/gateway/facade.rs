//! The gateway as the MCP server of stdio backends: a backend's requests to its client
//! (sampling, elicitation, roots) reach the client of the call on its stream, and the client's
//! answer reaches the backend.

use futures::StreamExt;
use portcullis::gateway::sse::{EventSplitter, event_message};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::era::{start, token};

#[tokio::test]
async fn a_stdio_backends_request_reaches_a_legacy_client_on_the_calls_stream_and_is_answered() {
    let (app, _backends) = start("").await;
    let alice = token(&app, "asked", "/mcp/fx").await;
    let mallory = token(&app, "not-asked", "/mcp/fx").await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "sample", "arguments": {}}});
    let response = app.mcp(&app.url("/mcp/fx"), Some(&alice), call).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    let mut body = response.bytes_stream();
    let mut events = EventSplitter::default();
    let mut asked = None;
    let result = 'stream: loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("the stream goes on")
            .expect("the stream did not end early")
            .unwrap();
        events.push(&chunk);
        while let Some(event) = events.next_event() {
            let Some(message) = event_message(&event) else {
                continue;
            };
            if message["method"] == "sampling/createMessage" {
                assert!(
                    message["id"]
                        .as_str()
                        .unwrap()
                        .starts_with("portcullis-ask-")
                );
                let answer = |id: &Value| {
                    json!({"jsonrpc": "2.0", "id": id, "result": {
                    "role": "assistant", "content": {"type": "text", "text": "hello back"}, "model": "m"}})
                };
                // Only the person asked can answer.
                let wrong = app
                    .mcp(&app.url("/mcp/fx"), Some(&mallory), answer(&message["id"]))
                    .await;
                assert_eq!(wrong.status(), StatusCode::ACCEPTED);
                let right = app
                    .mcp(&app.url("/mcp/fx"), Some(&alice), answer(&message["id"]))
                    .await;
                assert_eq!(right.status(), StatusCode::ACCEPTED);
                asked = Some(message);
            } else if message["id"] == 1 {
                break 'stream message;
            }
        }
    };
    assert!(
        asked.is_some(),
        "the backend's request came on the call's stream"
    );
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    let answers: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        answers["sampling"]["result"]["content"]["text"],
        "hello back"
    );
    assert_eq!(answers["ping"], json!({"result": {}}));
}
