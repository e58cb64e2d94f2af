//! The gateway as the MCP server of stdio backends: a backend's requests to its client
//! (sampling, elicitation, roots) reach the client of the call, on its stream (2025 era) or as
//! MRTR (2026-07-28), and the client's answer reaches the backend.

use futures::StreamExt;
use portcullis::gateway::sse::{EventSplitter, event_message};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::era::{modern_rpc, start, token};
use crate::support::app::rpc_body;

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

#[tokio::test]
async fn a_stdio_backends_request_reaches_a_modern_client_as_mrtr_and_the_retry_resumes_the_call() {
    let (app, _backends) = start("").await;
    let alice = token(&app, "mrtr-asked", "/mcp/fx").await;
    let mallory = token(&app, "mrtr-other", "/mcp/fx").await;
    let sample = json!({"name": "sample", "arguments": {}});
    let sampling = json!({"sampling": {}});

    let first = modern_rpc(
        &app,
        "/mcp/fx",
        &alice,
        "tools/call",
        sample.clone(),
        sampling.clone(),
    )
    .await;
    let first = rpc_body(first).await["result"].clone();
    assert_eq!(first["resultType"], "input_required", "{first}");
    let (key, asked) = first["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(asked["method"], "sampling/createMessage");
    assert_eq!(asked["params"]["maxTokens"], 10);
    let state = first["requestState"].clone();

    let mut retry = sample.clone();
    retry["requestState"] = state;
    retry["inputResponses"] = json!({ key: {
        "role": "assistant", "content": {"type": "text", "text": "hello back"}, "model": "m"} });
    // Another person cannot pick the call up.
    let stolen = modern_rpc(
        &app,
        "/mcp/fx",
        &mallory,
        "tools/call",
        retry.clone(),
        sampling.clone(),
    )
    .await;
    assert_eq!(rpc_body(stolen).await["error"]["code"], -32602);

    let done = modern_rpc(&app, "/mcp/fx", &alice, "tools/call", retry, sampling).await;
    let done = rpc_body(done).await["result"].clone();
    assert_eq!(done["resultType"], "complete", "{done}");
    let answers: Value =
        serde_json::from_str(done["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        answers["sampling"]["result"]["content"]["text"],
        "hello back"
    );

    // A client that declared no sampling is not asked: the backend hears it could not be.
    let unasked = modern_rpc(&app, "/mcp/fx", &alice, "tools/call", sample, json!({})).await;
    let unasked = rpc_body(unasked).await["result"].clone();
    assert_eq!(unasked["resultType"], "complete", "{unasked}");
    let answers: Value =
        serde_json::from_str(unasked["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(answers["sampling"]["error"].is_object(), "{answers}");
}
