//! The real MCP backend, server-everything, spoken to directly: proves the helpers in
//! `support::everything` before the gateway forwards to it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::everything::{self, Everything};

/// A Streamable HTTP session with server-everything.
struct Session {
    http: reqwest::Client,
    url: String,
    id: String,
}

/// The JSON-RPC messages of an SSE (or JSON) response body.
fn messages(text: &str) -> Vec<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return vec![value];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(id) = session {
        request = request
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request
}

impl Session {
    async fn open(server: &Everything) -> Session {
        let http = reqwest::Client::new();
        let response = post(
            &http,
            &server.url,
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "portcullis-tests", "version": "0"},
            }}),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let init = messages(&response.text().await.unwrap());
        let result = &init.iter().find(|m| m["id"] == 1).expect("an answer")["result"];
        assert_eq!(result["protocolVersion"], "2025-06-18", "{result}");
        assert_eq!(result["serverInfo"]["name"], "mcp-servers/everything");
        let accepted = post(
            &http,
            &server.url,
            Some(&id),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
        Session {
            http,
            url: server.url.clone(),
            id,
        }
    }

    /// One request; returns the JSON-RPC answer to it.
    async fn request(&self, id: u64, method: &str, params: Value) -> Value {
        let response = post(
            &self.http,
            &self.url,
            Some(&self.id),
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let all = messages(&response.text().await.unwrap());
        all.into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {method}"))
    }
}

#[tokio::test]
async fn server_everything_answers_over_streamable_http_and_streams_progress() {
    let mut server = everything::spawn_http().await;
    assert!(
        server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/mcp"),
        "{}",
        server.url
    );
    let session = Session::open(&server).await;

    let tools = session.request(2, "tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for expected in ["echo", "get-sum", "trigger-long-running-operation"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }

    let echo = session
        .request(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "through the gate"}}),
        )
        .await;
    assert_eq!(
        echo["result"]["content"][0]["text"], "Echo: through the gate",
        "{echo}"
    );

    // Progress notifications arrive on the request's SSE stream, one per step, as they happen,
    // before the result.
    let started = Instant::now();
    let mut response = post(
        &session.http,
        &session.url,
        Some(&session.id),
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 1, "steps": 4},
            "_meta": {"progressToken": "p-1"},
        }}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let mut arrivals = Vec::new(); // (time, message)
    while let Some(chunk) = response.chunk().await.unwrap() {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for message in messages(&event) {
                arrivals.push((started.elapsed(), message));
            }
        }
    }
    let progress: Vec<&(Duration, Value)> = arrivals
        .iter()
        .filter(|(_, m)| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 4, "{arrivals:?}");
    assert_eq!(progress[0].1["params"]["progressToken"], "p-1");
    assert_eq!(progress[3].1["params"]["progress"], 4);
    assert_eq!(progress[3].1["params"]["total"], 4);
    let (done_at, result) = arrivals.last().expect("the result");
    assert_eq!(result["id"], 4);
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Long running operation completed"),
        "{result}"
    );
    assert!(
        *done_at >= Duration::from_millis(900),
        "it took the requested second: {done_at:?}"
    );
    assert!(
        progress[0].0 + Duration::from_millis(400) < *done_at,
        "the first progress arrived while the operation ran, not with the result: {arrivals:?}"
    );

    // Killed, it refuses connections; restarted, it answers on the same URL with new sessions.
    let url = server.url.clone();
    server.kill();
    assert!(!server.is_running());
    let refused = reqwest::Client::new().post(&url).send().await;
    assert!(refused.is_err(), "{refused:?}");
    server.restart().await;
    assert_eq!(server.url, url);
    let stale = post(
        &reqwest::Client::new(),
        &url,
        Some(&session.id),
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::BAD_REQUEST,
        "the old session is gone"
    );
    let again = Session::open(&server).await;
    let echo = again
        .request(
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "again"}}),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "Echo: again");
}

#[tokio::test]
async fn server_everything_answers_over_stdio() {
    let argv = everything::stdio_command();
    assert_eq!(argv[0], "node");
    assert_eq!(argv.last().map(String::as_str), Some("stdio"));
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |message: Value| {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "portcullis-tests", "version": "0"},
        }}),
    )
    .await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"message": "over stdio"},
        }}),
    )
    .await;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .expect("stdout open");
        let message: Value = serde_json::from_str(&line).unwrap();
        if message.get("id").is_some() && message.get("method").is_none() {
            answers.push(message);
        }
    }
    assert_eq!(
        answers[0]["result"]["serverInfo"]["name"],
        "mcp-servers/everything"
    );
    assert_eq!(answers[1]["id"], 2);
    assert_eq!(
        answers[1]["result"]["content"][0]["text"],
        "Echo: over stdio"
    );
    child.kill().await.unwrap();
}
