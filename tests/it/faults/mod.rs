//! Faults, proved against the real binary: a `kill -9` under load, two instances on one
//! database behind a round-robin proxy, and the database stopped and started again. The
//! harness takes an optional `REDIS_URL`, so the Redis variants reuse it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{Options, TestApp, TestClient, config_toml, driving, rpc_body};
use crate::support::process::{Instance, Launch};

/// The database stopped, then started again: 503s while it is down, recovery without a restart.
mod database;
/// Two instances on one database behind a round-robin proxy.
mod instances;
/// `kill -9` under load, then a restart.
mod restart;

/// How to run Portcullis on `database_url`, reached at `public_base_url`: the suite's usual
/// configuration (the test IdP as `corp`), and a driver for the helpers that sends `http`'s
/// requests to `public_base_url`.
async fn launch(
    database_url: &str,
    public_base_url: &str,
    redis_url: Option<String>,
    http: reqwest::Client,
) -> (Launch, TestApp) {
    let config_toml = config_toml(&Options::default(), database_url);
    // Built, never served: the store and keys of the same database, for the driver.
    let settings = portcullis::config::Settings::from_toml(&config_toml).unwrap();
    let app = portcullis::startup::Application::build(settings)
        .await
        .unwrap();
    let driver = driving(public_base_url.to_owned(), http, app.state().clone());
    let launch = Launch {
        config_toml,
        database_url: database_url.to_owned(),
        public_base_url: public_base_url.to_owned(),
        redis_url,
    };
    (launch, driver)
}

/// One instance on its own port, reached directly, and its driver.
async fn single(database_url: &str) -> (Instance, TestApp) {
    let port = crate::support::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (launch, driver) = launch(
        database_url,
        &base,
        None,
        crate::support::app::http_client(),
    )
    .await;
    (Instance::start(launch, port).await, driver)
}

/// `whoami` on the MCP endpoint at `mcp_url` with `access`: the status and the JSON-RPC answer.
async fn whoami(http: &reqwest::Client, mcp_url: &str, access: &str) -> (StatusCode, Value) {
    let response = http
        .post(mcp_url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(access)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        (status, rpc_body(response).await)
    } else {
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Asserts a `whoami` answer names `login`'s person (the test IdP's `sub` is the login).
fn assert_whoami(answer: &Value) {
    assert!(
        answer["result"]["structuredContent"]["user"].is_string(),
        "whoami answered {answer}"
    );
}

/// A signed-in client: its registration and its current tokens.
#[derive(Debug, Clone)]
struct Session {
    client: TestClient,
    access: String,
    refresh: String,
}

impl Session {
    fn new(client: TestClient, tokens: &Value) -> Self {
        Self {
            client,
            access: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}
