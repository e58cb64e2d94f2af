//! The real MCP clients besides the TypeScript SDK 1.x (`support::sdk`), and the 2026-era
//! backend, from `scripts/clients`: each client runs unmodified, as its users run it, and its
//! driver prints JSON lines on stdout that the tests read.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::everything::{Everything, spawn_script};
use super::prereq::{self, Need};

/// `scripts/clients`, where the drivers and their node modules live.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/clients");

/// The 2026-07-28-era backend (`scripts/clients/modern-server.mjs`, built on the TypeScript SDK
/// 2.x server) over Streamable HTTP on 127.0.0.1: strictly modern, it refuses 2025-era requests.
/// Its tools mirror server-everything's (`echo`, `get-sum`, `trigger-long-running-operation`).
pub async fn spawn_modern_http() -> Everything {
    prereq::require(&[Need::Clients]);
    spawn_script(format!("{DIR}/modern-server.mjs")).await
}

/// The argv that runs the 2026-era backend over stdio.
pub fn modern_stdio_command() -> Vec<String> {
    prereq::require(&[Need::Clients]);
    vec![
        "node".to_owned(),
        format!("{DIR}/modern-server.mjs"),
        "--stdio".to_owned(),
    ]
}

/// Runs `command` to its end (killed after `timeout`) and returns its stdout's JSON lines.
/// Panics, with its output, when it exits non-zero, prints a line that is not JSON, or runs too
/// long. Its stderr is printed, for the test runner to show when the test fails later.
pub async fn run_json_lines(mut command: tokio::process::Command, timeout: Duration) -> Vec<Value> {
    let what = format!("{:?}", command.as_std().get_args().collect::<Vec<_>>());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            let stdout = stdout.await.unwrap_or_default();
            let stderr = stderr.await.unwrap_or_default();
            panic!(
                "{what} did not finish within {timeout:?}; killed.\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
    };
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    eprintln!("--- {what} stderr ---\n{stderr}");
    assert!(
        status.success(),
        "{what} exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "{what} printed a line that is not JSON ({e}): {line}\n--- stderr ---\n{stderr}"
                )
            })
        })
        .collect()
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

/// How long one run of a client driver may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(90);

/// Runs the Python MCP SDK 2.x client (`scripts/clients/py/client.py`, in its virtualenv) with
/// `steps` against `server_url`, signing in as `email`; returns the same JSON lines as
/// `support::sdk::run_client`. `options` are more of the script's options, e.g.
/// `["--client-metadata-url", URL]`.
pub async fn run_python(
    server_url: &str,
    email: &str,
    steps: Value,
    options: &[&str],
) -> Vec<Value> {
    prereq::require(&[Need::Clients]);
    let mut command = tokio::process::Command::new(format!("{DIR}/py/.venv/bin/python"));
    command
        .arg(format!("{DIR}/py/client.py"))
        .args(["--server", server_url, "--email", email])
        .arg("--steps")
        .arg(steps.to_string())
        .args(options);
    run_json_lines(command, TIMEOUT).await
}

/// Runs the MCP Inspector CLI (`scripts/clients/inspector.mjs`, driving `mcpdo`) with `steps`
/// against `server_url`; returns its JSON lines (see the script). Its daemon takes the OAuth
/// redirect on the fixed port 6276, so only one run may be under way on the machine: this
/// holds an exclusive lock on `$TMPDIR/portcullis-mcpdo-6276.lock` for the run, which
/// serializes runs across test processes and across checkouts.
pub async fn run_inspector(server_url: &str, email: &str, steps: Value) -> Vec<Value> {
    prereq::require(&[Need::Clients]);
    let lock_path = std::env::temp_dir().join("portcullis-mcpdo-6276.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    let lock = tokio::task::spawn_blocking(move || {
        lock.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
        lock
    })
    .await
    .unwrap();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(format!("{DIR}/inspector.mjs"))
        .args(["--server", server_url, "--email", email])
        .arg("--steps")
        .arg(steps.to_string());
    let lines = run_json_lines(command, TIMEOUT).await;
    drop(lock);
    lines
}

/// Runs the conformance suite's authorization-server scenarios (`scripts/clients/conformance.mjs`)
/// against the issuer `url` with the registered public client `client_id`, whose redirect URI
/// is `http://127.0.0.1:{port}/callback`; returns one JSON line per check, then `{"exit": …}`.
pub async fn run_conformance(url: &str, client_id: &str, port: u16, resource: &str) -> Vec<Value> {
    prereq::require(&[Need::Clients]);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(format!("{DIR}/conformance.mjs"))
        // `--option=value`: a generated client id may begin with `-`, which `parseArgs`
        // would otherwise take for an option.
        .arg(format!("--url={url}"))
        .arg(format!("--client-id={client_id}"))
        .arg(format!("--resource={resource}"))
        .arg(format!("--port={port}"));
    run_json_lines(command, TIMEOUT).await
}
