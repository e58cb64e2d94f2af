//! The MCP side of a running app: JSON-RPC requests to its endpoints, as a client sends them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestApp;

impl TestApp {
    pub fn mcp_url(&self) -> String {
        self.url("/mcp")
    }

    /// One JSON-RPC request to an MCP endpoint.
    pub async fn mcp(&self, url: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The tool names `tools/list` on `url` shows the holder of `token`.
    pub async fn tool_names(&self, url: &str, token: &str) -> Vec<String> {
        let list = rpc_body(
            self.mcp(
                url,
                Some(token),
                json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}),
            )
            .await,
        )
        .await;
        let tools = list["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {list}"));
        tools
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `tools/call` of `name`; returns the JSON-RPC response.
    pub async fn call_tool(&self, token: &str, name: &str) -> Value {
        let response = self
            .mcp(&self.mcp_url(), Some(token), json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": name, "arguments": {}}}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        rpc_body(response).await
    }
}

/// The JSON-RPC message of a response that is JSON or a one-event SSE stream.
pub async fn rpc_body(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    if let Ok(value) = serde_json::from_str(&text) {
        return value;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {text}"))
}
