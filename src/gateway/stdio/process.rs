//! One backend process: started, initialized as an MCP client would, watched, and stopped. Its
//! tasks: a writer (the only one touching stdin, so messages never interleave), a reader that
//! routes what arrives on stdout, a forwarder of stderr to the log, and a supervisor that owns the
//! child and notices when it exits.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, timeout};

use super::framing::{Line, LineReader};
use super::link::{Link, PROCESS_EXITED};
use crate::gateway::connection::{CallError, Notifications, relayed_client_capabilities};
use crate::gateway::era::{self, Era, ServerFacts};
use crate::telemetry::metrics;

/// How long a process has to answer `initialize`: generous, since `npx -y` may first download
/// the server.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process that closed its stdout gets to exit on its own before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// How long a process asked to stop (stdin closed, then SIGTERM) gets before the next step.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Messages queued for stdin before senders wait.
const OUTBOX: usize = 256;
/// The longest stderr line logged whole.
const STDERR_LINE: usize = 8 * 1024;
/// The legacy MCP revision Portcullis speaks to backends that do not speak a modern one.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long the `server/discover` probe waits before taking the server for a legacy one that
/// stays silent about unknown requests (it is asked to `initialize` then, and a late answer to
/// the probe is dropped).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Variables a server's runtime needs (`npx` and `node` find themselves, their cache, the
/// locale, a proxy, extra CA certificates). Everything else in Portcullis' environment (database
/// URLs, encryption keys, client secrets) stays out of third-party processes.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "SYSTEMROOT",
    "SystemRoot",
    "windir",
    "COMSPEC",
    "PATHEXT",
    "APPDATA",
    "LOCALAPPDATA",
    "USERPROFILE",
    "PROGRAMDATA",
];
const INHERITED_PREFIXES: &[&str] = &["LC_", "XDG_"];

/// What is needed to start a backend's processes.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub backend: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub shared: bool,
    pub max_line: usize,
    /// The server's era once a process has told it: later processes skip the probe (the spec
    /// has clients cache the era for the server).
    pub era: Arc<OnceLock<Era>>,
}

pub(super) struct Process {
    link: Arc<Link>,
    pid: Option<u32>,
    /// The answer to the handshake (`initialize` or `server/discover`), as the backend sent it.
    server_info: Value,
    facts: ServerFacts,
    kill: Arc<Notify>,
    /// Set when Portcullis itself stops the process, so its exit is not reported as a failure.
    stopping: Arc<AtomicBool>,
    exited: watch::Receiver<bool>,
}

/// Why a handshake failed.
enum Handshake {
    /// The process exited on the `server/discover` probe: some legacy servers end on any
    /// request before `initialize`.
    ExitedOnProbe,
    Failed(CallError),
}

impl Process {
    /// Starts the program and completes the MCP handshake with it: the era probe first (MCP
    /// 2026-07-28 stdio §Backward Compatibility), unless the server's era is known already.
    pub(super) async fn start(spec: &Spec) -> Result<Self, CallError> {
        let probe = spec.era.get() != Some(&Era::Legacy);
        match Self::launch(spec, probe).await {
            Err(Handshake::ExitedOnProbe) => {
                tracing::info!(backend = %spec.backend, "the backend process exited on the era probe; starting it again for initialize");
                let _ = spec.era.set(Era::Legacy);
                Self::launch(spec, false)
                    .await
                    .map_err(|failed| match failed {
                        Handshake::Failed(error) => error,
                        Handshake::ExitedOnProbe => CallError::Unavailable(
                            "the backend process exited during start-up".into(),
                        ),
                    })
            }
            Err(Handshake::Failed(error)) => Err(error),
            Ok(process) => {
                let _ = spec.era.set(process.facts.era);
                Ok(process)
            }
        }
    }

    async fn launch(spec: &Spec, probe: bool) -> Result<Self, Handshake> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(inherited_env())
            .envs(&spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so stopping it also stops what it started (`npx` runs the
        // server as a grandchild, which would otherwise outlive it holding the pipes open).
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|error| {
            tracing::warn!(backend = %spec.backend, program = %spec.program, %error, "could not start the backend process");
            // The reason reaches clients, so it names no path; the log line above does.
            CallError::Unavailable(match error.kind() {
                std::io::ErrorKind::NotFound => "the backend program was not found".into(),
                std::io::ErrorKind::PermissionDenied => {
                    "the backend program is not executable".into()
                }
                _ => "the backend process could not be started".into(),
            })
        })
        .map_err(Handshake::Failed)?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Handshake::Failed(CallError::Unavailable(
                "the backend process has no pipes".into(),
            )));
        };
        tracing::info!(backend = %spec.backend, ?pid, "started a backend process");
        let (outbox, lines) = mpsc::channel(OUTBOX);
        let link = Arc::new(Link::new(&spec.backend, spec.shared, outbox));
        tokio::spawn(write(stdin, lines));
        tokio::spawn(read(link.clone(), stdout, spec.max_line));
        tokio::spawn(forward_stderr(spec.backend.clone(), pid, stderr));
        let kill = Arc::new(Notify::new());
        let stopping = Arc::new(AtomicBool::new(false));
        let (exited_tx, exited) = watch::channel(false);
        let supervisor = Supervisor {
            backend: spec.backend.clone(),
            pid,
            link: link.clone(),
            kill: kill.clone(),
            stopping: stopping.clone(),
            exited: exited_tx,
        };
        tokio::spawn(supervisor.run(child));
        // Dropped on any early return below, which kills the process.
        let mut process = Self {
            link,
            pid,
            server_info: Value::Null,
            facts: ServerFacts::from_initialize(&Value::Null),
            kill,
            stopping,
            exited,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let (info, facts) = process.handshake(&spec.backend, probe, deadline).await?;
        process.server_info = info;
        process.facts = facts;
        Ok(process)
    }

    /// The era probe (when `probe`), then `initialize` for a legacy server. A server that
    /// refuses `initialize` may be a modern one whose answer to the probe came too late: it is
    /// asked once more.
    async fn handshake(
        &self,
        backend: &str,
        probe: bool,
        deadline: Instant,
    ) -> Result<(Value, ServerFacts), Handshake> {
        if probe {
            match self
                .discover((Instant::now() + PROBE_TIMEOUT).min(deadline))
                .await
            {
                Ok(found) => return Ok(found),
                Err(CallError::Unavailable(_)) if self.link.is_closed() => {
                    return Err(Handshake::ExitedOnProbe);
                }
                // Any other answer, or none: a legacy server.
                Err(_) => {}
            }
        }
        match self.initialize(backend, deadline).await {
            Ok(info) => {
                let facts = ServerFacts::from_initialize(&info);
                Ok((info, facts))
            }
            Err(refused @ CallError::Unavailable(_)) if probe && !self.link.is_closed() => {
                match self.discover(deadline).await {
                    Ok(found) => Ok(found),
                    Err(_) => Err(Handshake::Failed(refused)),
                }
            }
            Err(error) => Err(Handshake::Failed(error)),
        }
    }

    /// `server/discover`: a `DiscoverResult` offering a version the gateway speaks makes the
    /// server a modern one.
    async fn discover(&self, deadline: Instant) -> Result<(Value, ServerFacts), CallError> {
        let params = era::with_modern_meta(None, era::MODERN_VERSIONS[0], &json!({}));
        let result = self
            .link
            .call("server/discover", Some(params), None, deadline)
            .await?;
        let facts = ServerFacts::from_discover(&result).ok_or_else(|| {
            CallError::Unavailable("the backend speaks no revision Portcullis speaks".into())
        })?;
        Ok((result, facts))
    }

    /// <https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle#initialization>
    async fn initialize(&self, backend: &str, deadline: Instant) -> Result<Value, CallError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": relayed_client_capabilities(),
            "clientInfo": { "name": "portcullis", "version": env!("CARGO_PKG_VERSION") },
        });
        let started = self
            .link
            .call("initialize", Some(params), None, deadline)
            .await;
        let info = started.map_err(|error| {
            tracing::warn!(backend, pid = ?self.pid, %error, "the backend process did not initialize");
            CallError::Unavailable(match error {
                CallError::Timeout => "the backend did not answer initialize in time".into(),
                CallError::Rpc { message, .. } => format!("the backend refused initialize: {message}"),
                CallError::TooLarge => "the backend's initialize answer is too large".into(),
                CallError::Unavailable(_) | CallError::AtCapacity => {
                    "the backend process exited during start-up".into()
                }
            })
        })?;
        self.link
            .notify("notifications/initialized", deadline)
            .await
            .map_err(|_| CallError::Unavailable(PROCESS_EXITED.into()))?;
        Ok(info)
    }

    /// Sends a request; to a modern server with the `_meta` its revision requires, declaring
    /// `capabilities` for the client.
    pub(super) async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        capabilities: &Value,
        notifications: Option<Notifications>,
        deadline: Instant,
    ) -> Result<Value, CallError> {
        let params = match self.facts.era {
            Era::Modern => Some(era::with_modern_meta(
                params,
                &self.facts.version,
                capabilities,
            )),
            Era::Legacy => params,
        };
        self.link
            .call(method, params, notifications, deadline)
            .await
    }

    /// The backend's answer to the handshake (`initialize`, or `server/discover`).
    pub(super) fn server_info(&self) -> &Value {
        &self.server_info
    }

    /// What the backend said about itself in the handshake.
    pub(super) fn facts(&self) -> &ServerFacts {
        &self.facts
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub(super) fn is_alive(&self) -> bool {
        !self.link.is_closed()
    }

    /// The link, to learn when the process is gone without keeping it alive.
    pub(super) fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    pub(super) fn kill(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// The MCP stdio shutdown: close stdin, wait, SIGTERM, wait, SIGKILL.
    pub(super) async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.link.close_input();
        if self.wait_exited(STOP_GRACE).await {
            return;
        }
        signal_group(self.pid, Signal::Terminate);
        if !self.wait_exited(STOP_GRACE).await {
            self.kill();
            self.wait_exited(STOP_GRACE).await;
        }
    }

    async fn wait_exited(&self, limit: Duration) -> bool {
        let mut exited = self.exited.clone();
        // An error means the supervisor is gone, and the child (kill_on_drop) with it.
        timeout(limit, exited.wait_for(|exited| *exited))
            .await
            .is_ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Supervisor {
    backend: String,
    pid: Option<u32>,
    link: Arc<Link>,
    kill: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    exited: watch::Sender<bool>,
}

impl Supervisor {
    async fn run(self, mut child: Child) {
        metrics::stdio_started(&self.backend);
        let status = tokio::select! {
            status = child.wait() => status,
            () = self.kill.notified() => self.kill_now(&mut child).await,
            () = self.link.wait_closed() => {
                // Stdout closed: usually the process is exiting; let it report its own status.
                match timeout(EXIT_GRACE, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => self.kill_now(&mut child).await,
                }
            }
        };
        // Whatever it started dies with it.
        signal_group(self.pid, Signal::Kill);
        self.link.close(PROCESS_EXITED);
        self.exited.send_replace(true);
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        metrics::stdio_exited(&self.backend, self.stopping.load(Ordering::Relaxed));
        if self.stopping.load(Ordering::Relaxed) {
            tracing::debug!(backend = %self.backend, pid = ?self.pid, %status, "stopped a backend process");
        } else {
            tracing::warn!(backend = %self.backend, pid = ?self.pid, %status, "the backend process exited");
        }
    }

    async fn kill_now(&self, child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
        signal_group(self.pid, Signal::Kill);
        let _ = child.start_kill();
        child.wait().await
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Terminate,
    Kill,
}

/// Signals the process group led by `pid` (see `process_group(0)` above).
#[cfg(unix)]
fn signal_group(pid: Option<u32>, signal: Signal) {
    use rustix::process::{Pid, Signal as Sig, kill_process_group};
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    let signal = match signal {
        Signal::Terminate => Sig::TERM,
        Signal::Kill => Sig::KILL,
    };
    // No such group any more is the usual, harmless outcome.
    let _ = kill_process_group(pid, signal);
}

#[cfg(not(unix))]
fn signal_group(_pid: Option<u32>, _signal: Signal) {}

fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(key, value)| {
        let key = key.into_string().ok()?;
        let keep = INHERITED.contains(&key.as_str())
            || INHERITED_PREFIXES.iter().any(|p| key.starts_with(p));
        if !keep {
            return None;
        }
        Some((key, value.into_string().ok()?))
    })
}

async fn write(mut stdin: ChildStdin, mut lines: mpsc::Receiver<String>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            // The process is going away; the reader and the supervisor report it.
            return;
        }
    }
}

async fn read(link: Arc<Link>, stdout: ChildStdout, max_line: usize) {
    let mut lines = LineReader::new(BufReader::new(stdout), max_line);
    loop {
        match lines.next().await {
            Ok(Some(Line::Message(line))) => link.receive(&line),
            Ok(Some(Line::TooLong { head, tail })) => link.too_large(&head, &tail),
            Ok(None) | Err(_) => break,
        }
    }
    link.close(PROCESS_EXITED);
}

/// A server's stderr is its log. It goes to Portcullis' log, never to a client; lines that
/// look like trouble are warnings, the rest debug.
async fn forward_stderr(backend: String, pid: Option<u32>, stderr: ChildStderr) {
    let mut lines = LineReader::new(BufReader::new(stderr), STDERR_LINE);
    while let Ok(Some(line)) = lines.next().await {
        let (text, truncated) = match &line {
            Line::Message(line) => (String::from_utf8_lossy(line), false),
            Line::TooLong { head, .. } => (String::from_utf8_lossy(head), true),
        };
        let lower = text.to_ascii_lowercase();
        let trouble = ["error", "warn", "fatal", "panic", "exception"];
        if trouble.iter().any(|word| lower.contains(word)) {
            tracing::warn!(backend = %backend, ?pid, truncated, "backend stderr: {text}");
        } else {
            tracing::debug!(backend = %backend, ?pid, truncated, "backend stderr: {text}");
        }
    }
}

/// The environment a backend process inherits.
#[cfg(test)]
mod tests {
    #[test]
    fn only_the_basics_of_the_environment_are_inherited() {
        let kept: Vec<String> = super::inherited_env().map(|(key, _)| key).collect();
        assert!(kept.iter().any(|key| key == "PATH"));
        assert!(!kept.iter().any(|key| key.starts_with("CARGO")));
    }
}
