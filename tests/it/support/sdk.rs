//! The real MCP client: `scripts/mcp/client.mjs`, built on the TypeScript MCP SDK, which does the
//! whole OAuth dance itself (discovery, registration, PKCE, `resource`, code exchange, refresh,
//! step-up) while the script plays the person through Portcullis' pages with the development
//! provider.

use std::time::Duration;

use serde_json::Value;

use super::clients::run_json_lines;
use super::prereq::{self, Need};

/// How long one run of the client may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `node scripts/mcp/client.mjs --server <server_url> --email <email> --steps <steps>` and
/// returns its JSON lines: first `{"step":"connect","index":-1,…}` (the first connection, with
/// its sign-in), then one line per step, in order (`index` 0, 1, …). Each line has `ok` and
/// either `result` or `error`, plus `auth`, what the SDK did for OAuth during it (see the
/// script's header comment).
///
/// `steps` is a JSON array, e.g. `[{"listTools": {}}, {"callTool": {"name": "whoami"}}]`.
/// Panics, with the client's stderr, when it exits non-zero, prints a line that is not JSON, or
/// runs longer than 60 s (it is killed then). Without node or the node modules of `scripts/mcp`
/// the test process stops with one message (see `prereq`).
pub async fn run_client(server_url: &str, email: &str, steps: Value) -> Vec<Value> {
    run_client_with(server_url, email, steps, &[]).await
}

/// [`run_client`] with more of the script's options, e.g. `["--sdk", "2"]` for the TypeScript
/// SDK 2.x (`@modelcontextprotocol/client` from `scripts/clients`) or
/// `["--client-metadata-url", URL]` for CIMD.
pub async fn run_client_with(
    server_url: &str,
    email: &str,
    steps: Value,
    options: &[&str],
) -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mcp");
    prereq::require(&[Need::Mcp]);
    if options.windows(2).any(|w| w == ["--sdk", "2"]) {
        prereq::require(&[Need::Clients]);
    }
    let mut command = tokio::process::Command::new("node");
    command
        .arg(format!("{dir}/client.mjs"))
        .args(["--server", server_url, "--email", email])
        .arg("--steps")
        .arg(steps.to_string())
        .args(options);
    run_json_lines(command, TIMEOUT).await
}

/// The line of step `index` (0-based, in the order given) among [`run_client`]'s lines.
pub fn step(lines: &[Value], index: i64) -> &Value {
    lines
        .iter()
        .find(|line| line["index"].as_i64() == Some(index))
        .unwrap_or_else(|| panic!("no line for step {index} in {lines:#?}"))
}
