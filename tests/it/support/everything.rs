//! The real MCP backend: `@modelcontextprotocol/server-everything`, from `scripts/mcp`'s node
//! modules, over Streamable HTTP (on 127.0.0.1 only) or over stdio.
//!
//! Its tools include `echo` (`{"message"}` → text `Echo: <message>`), `get-sum`,
//! `get-structured-content`, and `trigger-long-running-operation` (`{"duration": seconds,
//! "steps": n}`, default 10 s and 5 steps), which sleeps and, when the request carries
//! `_meta.progressToken`, sends one `notifications/progress` per step on the request's SSE stream
//! before the result. The HTTP server is stateful: `initialize` answers with an
//! `mcp-session-id` that later requests must carry, and it answers POSTs as SSE streams.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::prereq::{self, Need};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mcp");

/// A running HTTP server-everything; killed when dropped.
#[derive(Debug)]
pub struct Everything {
    /// The MCP endpoint: `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    pub port: u16,
    script: String,
    child: Option<Child>,
    // Kept open: closing the pipe's reading end would break a later write to stdout.
    _stdout: Option<Lines<BufReader<ChildStdout>>>,
}

/// Starts server-everything's Streamable HTTP mode on a free 127.0.0.1 port and waits until it
/// listens.
///
/// It runs `node scripts/mcp/everything-http.mjs --port 0 --exit-with-parent`: the package's own
/// launcher (`dist/index.js streamableHttp`, port from `PORT`) listens on every interface, so
/// that wrapper binds its listening socket to 127.0.0.1 and prints `READY <url>` once it listens.
pub async fn spawn_http() -> Everything {
    spawn_script(format!("{DIR}/everything-http.mjs")).await
}

/// Starts another HTTP MCP server script that takes `--port N --exit-with-parent` and prints
/// `READY <url>` once it listens, the way [`spawn_http`] starts server-everything; e.g. the
/// 2026-era backend (`support::clients::spawn_modern_http`).
pub async fn spawn_script(script: String) -> Everything {
    let (child, stdout, url, port) = start(&script, 0).await;
    Everything {
        url,
        port,
        script,
        child: Some(child),
        _stdout: Some(stdout),
    }
}

impl Everything {
    /// Kills the server (SIGKILL) and returns once the process is gone, its port closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self._stdout = None;
    }

    /// Kills the server if it runs, and starts a fresh one (no sessions) on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, stdout, url, port) = start(&self.script, self.port).await;
        assert_eq!(port, self.port, "restarted on another port");
        self.url = url;
        self.child = Some(child);
        self._stdout = Some(stdout);
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

impl Drop for Everything {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn start(script: &str, port: u16) -> (Child, Lines<BufReader<ChildStdout>>, String, u16) {
    prereq::require(&[Need::Mcp]);
    // A port just released may be refused for a moment: try a few times.
    for attempt in 0..20 {
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .args(["--port", &port.to_string(), "--exit-with-parent"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {script}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{script} did not print READY within 30 s"))
            .unwrap_or_else(|e| panic!("reading {script}'s stdout: {e}"));
        match ready.as_deref().and_then(|l| l.strip_prefix("READY ")) {
            Some(url) => {
                let url = url.to_owned();
                let port = url::Url::parse(&url)
                    .ok()
                    .and_then(|u| u.port())
                    .unwrap_or_else(|| panic!("{script} reported {url}"));
                return (child, lines, url, port);
            }
            None if port != 0 && attempt < 19 => {
                // It exited (the port is still held); wait a moment and try again.
                let _ = child.wait().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => panic!("{script} exited or printed {ready:?} instead of `READY <url>`"),
        }
    }
    unreachable!()
}

/// The argv that runs server-everything over stdio from the local node modules:
/// `["node", "<repo>/scripts/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"]`.
/// It speaks newline-delimited JSON-RPC on stdin/stdout and logs to stderr.
pub fn stdio_command() -> Vec<String> {
    prereq::require(&[Need::Mcp]);
    let package = format!("{DIR}/node_modules/@modelcontextprotocol/server-everything");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{package}/package.json")).unwrap_or_else(|e| {
            panic!(
                "{package}/package.json: {e}: run scripts/test.sh (it runs npm ci in scripts/mcp)"
            )
        }),
    )
    .unwrap_or_else(|e| panic!("{package}/package.json: {e}"));
    let bin = match &manifest["bin"] {
        serde_json::Value::String(bin) => bin.clone(),
        serde_json::Value::Object(bins) => bins
            .values()
            .find_map(|v| v.as_str())
            .unwrap_or_else(|| panic!("no bin in {package}/package.json"))
            .to_owned(),
        other => panic!("unexpected bin {other} in {package}/package.json"),
    };
    vec![
        "node".to_owned(),
        format!("{package}/{bin}"),
        "stdio".to_owned(),
    ]
}
