//! The real MCP client: `scripts/mcp/client.mjs`, built on the TypeScript MCP SDK, which does the
//! whole OAuth dance itself (discovery, registration, PKCE, `resource`, code exchange, refresh,
//! step-up) while the script plays the person through Portcullis' pages with the development
//! provider.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

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
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mcp");
    let script = format!("{dir}/client.mjs");
    prereq::require(&[Need::Mcp]);
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .args(["--server", server_url, "--email", email])
        .arg("--steps")
        .arg(steps.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting node {script}: {e}"));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = match tokio::time::timeout(TIMEOUT, child.wait()).await {
        Ok(status) => status.unwrap_or_else(|e| panic!("waiting for {script}: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            let stdout = stdout.await.unwrap_or_default();
            let stderr = stderr.await.unwrap_or_default();
            panic!(
                "{script} did not finish within {TIMEOUT:?}; killed.\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
    };
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    // Shown by the test runner when the test fails later.
    eprintln!("--- {script} stderr ---\n{stderr}");
    assert!(
        status.success(),
        "{script} exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{script} printed a line that is not JSON ({e}): {line}\n--- stderr ---\n{stderr}")
            })
        })
        .collect()
}

/// The line of step `index` (0-based, in the order given) among [`run_client`]'s lines.
pub fn step(lines: &[Value], index: i64) -> &Value {
    lines
        .iter()
        .find(|line| line["index"].as_i64() == Some(index))
        .unwrap_or_else(|| panic!("no line for step {index} in {lines:#?}"))
}

fn read_all(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
