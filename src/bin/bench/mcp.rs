//! An MCP client over Streamable HTTP, as the SDKs speak it: one keep-alive connection per
//! session, `initialize` first, then requests with the session's id (when the server gave one)
//! and the protocol version; answers as JSON or as an SSE stream. And the load loop that drives
//! many sessions at once, bounded in count and in time.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// An HTTP client for one session: no redirects, no proxy, its own connection pool.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(client_builder().build()?)
}

/// Like [`http_client`], but a request for `host` goes to `addr` (on the URL's port): one
/// instance of several behind a shared public URL, asked with that URL's `Host`, as a load
/// balancer would.
pub fn http_client_to(host: &str, addr: SocketAddr) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder().resolve(host, addr).build()?)
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
}

/// One MCP session with one endpoint.
pub struct Session {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    id: Option<String>,
}

impl Session {
    /// `initialize` and `notifications/initialized`, keeping the `Mcp-Session-Id` if any.
    pub async fn open(url: &str, token: Option<&str>) -> anyhow::Result<Session> {
        Self::open_with(http_client()?, url, token).await
    }

    /// [`Session::open`] over `http`.
    pub async fn open_with(
        http: reqwest::Client,
        url: &str,
        token: Option<&str>,
    ) -> anyhow::Result<Session> {
        let mut session = Session {
            http,
            url: url.to_owned(),
            token: token.map(str::to_owned),
            id: None,
        };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "portcullis-bench", "version": "0"}}});
        let response = session.post(None, init.to_string()).send().await?;
        if response.status() != reqwest::StatusCode::OK {
            bail!("initialize at {url} answered {}", response.status());
        }
        session.id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = rpc_answer(&response.text().await?, 0)?;
        if answer.get("result").is_none() {
            bail!("initialize at {url} failed: {answer}");
        }
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = session.post(None, initialized.to_string()).send().await?;
        if !response.status().is_success() {
            bail!(
                "notifications/initialized at {url} answered {}",
                response.status()
            );
        }
        response.bytes().await?;
        Ok(session)
    }

    fn post(&self, token: Option<&str>, body: String) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .body(body);
        if let Some(token) = token.or(self.token.as_deref()) {
            request = request.bearer_auth(token);
        }
        if let Some(id) = &self.id {
            request = request.header("mcp-session-id", id);
        }
        request
    }

    /// `tools/call` of `tool` with `arguments` (a JSON object, already serialized), with the
    /// session's token or `token`. Checks the answer is a 200 whose body contains `expect`;
    /// with `check_fully` it also parses the answer and requires a result that is no error.
    pub async fn call_tool(
        &self,
        token: Option<&str>,
        id: usize,
        tool: &str,
        arguments: &str,
        expect: &str,
        check_fully: bool,
    ) -> anyhow::Result<()> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
        );
        let response = self.post(token, body).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if status != reqwest::StatusCode::OK || !contains(&body, expect.as_bytes()) {
            bail!(
                "tools/call {tool} at {} answered {status}: {}",
                self.url,
                String::from_utf8_lossy(&body[..body.len().min(500)])
            );
        }
        if check_fully {
            let answer = rpc_answer(std::str::from_utf8(&body)?, id as u64)?;
            if answer["result"].is_null() || answer["result"]["isError"] == true {
                bail!("tools/call {tool} at {} failed: {answer}", self.url);
            }
        }
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The JSON-RPC answer to request `id` in a JSON or SSE body.
fn rpc_answer(text: &str, id: u64) -> anyhow::Result<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v["id"] == id)
        .with_context(|| format!("no answer to request {id} in {text:.500}"))
}

/// What a load run did: calls made, how long it took, each call's latency.
#[derive(Debug, Default)]
pub struct Load {
    pub calls: usize,
    pub wall: Duration,
    pub latencies: Vec<Duration>,
    /// True when the time limit cut the run short.
    pub cut_short: bool,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Adds another run of the same kind.
    pub fn absorb(&mut self, other: Load) {
        self.calls += other.calls;
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self.cut_short |= other.cut_short;
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        match sorted.len() {
            0 => Duration::ZERO,
            n => sorted[((n - 1) as f64 * q).round() as usize],
        }
    }
}

/// Runs `sessions` loops at once, loop `s` making up to `calls(s)` calls `call(s, i)` one after
/// the other, stopping early at `deadline`.
pub async fn drive<N, F, Fut>(
    sessions: usize,
    calls: N,
    deadline: Instant,
    call: F,
) -> anyhow::Result<Load>
where
    N: Fn(usize) -> usize,
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let (call, calls) = (&call, &calls);
    let loops = (0..sessions).map(|session| async move {
        let mut latencies = Vec::with_capacity(calls(session));
        for i in 0..calls(session) {
            if Instant::now() >= deadline {
                return Ok::<_, anyhow::Error>((latencies, true));
            }
            let sent = Instant::now();
            call(session, i).await?;
            latencies.push(sent.elapsed());
        }
        Ok((latencies, false))
    });
    let results = futures::future::try_join_all(loops).await?;
    let wall = started.elapsed();
    let mut load = Load {
        wall,
        ..Load::default()
    };
    for (latencies, cut_short) in results {
        load.calls += latencies.len();
        load.latencies.extend(latencies);
        load.cut_short |= cut_short;
    }
    Ok(load)
}

/// `calls` calls of the built-in `whoami` in each of `sessions` at once, each with its session's
/// token.
pub async fn whoami(sessions: &[Session], calls: usize, deadline: Instant) -> anyhow::Result<Load> {
    drive(
        sessions.len(),
        |_| calls,
        deadline,
        |s, i| sessions[s].call_tool(None, i + 1, "whoami", "{}", "structuredContent", i == 0),
    )
    .await
}
