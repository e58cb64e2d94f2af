//! The gateway as the MCP server of stdio backends: a backend's requests to its client
//! (sampling, elicitation, roots) reach the client of the call, on its stream (2025 era) or as
//! MRTR (2026-07-28), and the client's answer reaches the backend.

use futures::StreamExt;
use portcullis::gateway::sse::{EventSplitter, event_message};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::era::{modern_rpc, start, token};
use crate::support::app::{Options, rpc_body, spawn};

/// Reads the SSE answer to request 1: the backend's request to the client (answered by
/// `answer`), then the result. Returns both.
async fn answer_on_stream<F, A>(response: reqwest::Response, answer: F) -> (Value, Value)
where
    F: FnOnce(Value) -> A,
    A: std::future::Future<Output = ()>,
{
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut events = EventSplitter::default();
    let mut answer = Some(answer);
    let mut asked = Value::Null;
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
            .await
            .expect("the stream goes on")
            .expect("the stream did not end early")
            .unwrap();
        events.push(&chunk);
        while let Some(event) = events.next_event() {
            let Some(message) = event_message(&event) else {
                continue;
            };
            if message.get("method").is_some() && message.get("id").is_some() {
                let id = message["id"].as_str().unwrap();
                assert!(id.starts_with("portcullis-ask-"), "{id}");
                asked = message.clone();
                (answer.take().expect("asked once"))(message).await;
            } else if message["id"] == 1 {
                assert!(
                    asked.is_object(),
                    "the backend's request came on the call's stream"
                );
                return (asked, message);
            }
        }
    }
}

fn sampled(id: &Value, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "role": "assistant", "content": {"type": "text", "text": text}, "model": "m"}})
}

#[tokio::test]
async fn a_stdio_backends_request_reaches_a_legacy_client_on_the_calls_stream_and_is_answered() {
    let (app, _backends) = start("").await;
    let alice = token(&app, "asked", "/mcp/fx").await;
    let mallory = token(&app, "not-asked", "/mcp/fx").await;
    let url = app.url("/mcp/fx");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "sample", "arguments": {}}});
    let response = app.mcp(&url, Some(&alice), call).await;
    let (app_, url_, alice_, mallory_) = (&app, &url, &alice, &mallory);
    let (asked, result) = answer_on_stream(response, |asked| async move {
        let (app, url, alice, mallory) = (app_, url_, alice_, mallory_);
        // Only the person asked can answer.
        let wrong = app
            .mcp(url, Some(mallory), sampled(&asked["id"], "not yours"))
            .await;
        assert_eq!(wrong.status(), StatusCode::ACCEPTED);
        let right = app
            .mcp(url, Some(alice), sampled(&asked["id"], "hello back"))
            .await;
        assert_eq!(right.status(), StatusCode::ACCEPTED);
    })
    .await;
    assert_eq!(asked["method"], "sampling/createMessage");
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    let answers: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        answers["sampling"]["result"]["content"]["text"],
        "hello back"
    );
    assert_eq!(answers["ping"], json!({"result": {}}));
}

/// server-everything as backend `ev` (`transport`: its TOML line), a 2025-era client calling its
/// `trigger-sampling-request` at `path` and answering the sampling request on the call's stream.
async fn sampled_through(transport: &str, path: &str, tool: &str) {
    let toml = format!(
        "[[backends]]\nid = \"ev\"\n{transport}\nscope = \"ev:tools:call\"\ntimeout_secs = 20\n"
    );
    let app = spawn(Options {
        grant_scopes: r#"["ev:tools:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let token = token(&app, "sampled", path).await;
    let url = app.url(path);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": {"prompt": "hi", "maxTokens": 5}}});
    let response = app.mcp(&url, Some(&token), call).await;
    let (app_, url_, token_) = (&app, &url, &token);
    let (asked, result) = answer_on_stream(response, |asked| async move {
        let sent = app_
            .mcp(url_, Some(token_), sampled(&asked["id"], "sampled text"))
            .await;
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
    })
    .await;
    assert_eq!(asked["method"], "sampling/createMessage");
    assert!(
        result["result"].to_string().contains("sampled text"),
        "{result}"
    );
}

#[tokio::test]
async fn a_real_2025_servers_sampling_request_reaches_a_legacy_client_and_its_answer_returns() {
    let command = serde_json::to_string(&crate::support::everything::stdio_command()).unwrap();
    let transport = format!("command = {command}");
    sampled_through(&transport, "/mcp/ev", "trigger-sampling-request").await;
}

#[tokio::test]
async fn an_http_backends_sampling_request_reaches_a_legacy_client_of_the_aggregate() {
    let everything = crate::support::everything::spawn_http().await;
    let transport = format!("url = \"{}\"", everything.url);
    sampled_through(&transport, "/mcp", "ev__trigger-sampling-request").await;
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

#[tokio::test]
async fn a_modern_backends_question_reaches_a_legacy_client_on_its_stream_and_the_call_is_retried()
{
    let (app, backends) = start("").await;
    let token = token(&app, "asked-by-modern", "/mcp").await;
    let url = app.mcp_url();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "mod__ask", "arguments": {}}});
    let response = app.mcp(&url, Some(&token), call).await;
    let (app_, url_, token_) = (&app, &url, &token);
    let (asked, result) = answer_on_stream(response, |asked| async move {
        let answer = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "action": "accept", "content": {"color": "green"}}});
        let sent = app_.mcp(url_, Some(token_), answer).await;
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
    })
    .await;
    assert_eq!(asked["method"], "elicitation/create");
    assert_eq!(asked["params"]["message"], "Which color?");
    assert_eq!(result["result"]["content"][0]["text"], "you chose green");
    assert!(result["result"].get("resultType").is_none(), "{result}");
    // The backend was told the client can elicit, and got the answer on the retry.
    let retried = crate::support::modern::last(&backends.modern, "tools/call");
    assert_eq!(retried.body["params"]["requestState"], "asked-color");
    let declared = &retried.body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"];
    assert!(declared.get("elicitation").is_some(), "{declared}");
}
