//! The MCP servers behind the gateway, each with its tool policy, its protected resource and
//! the way the gateway reaches it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use super::connection::Connection;
use super::mcp_client::McpHttpClient;
use super::openapi::OpenApiBackend;
use super::policy::ToolPolicy;
use super::stdio::StdioPool;
use crate::config::BackendSettings;
use crate::oauth::resource::Resource;

/// One MCP server behind the gateway.
#[derive(Debug)]
pub struct Backend {
    pub settings: BackendSettings,
    pub policy: ToolPolicy,
    /// `/mcp/{id}`: the audience of tokens for this backend.
    pub resource: Resource,
    pub transport: Transport,
}

/// How the gateway reaches a backend.
#[derive(Debug)]
pub enum Transport {
    /// Streamable HTTP: proxied as-is on `/mcp/{id}`, spoken to as a client for `/mcp`.
    Http {
        url: Url,
        client: Arc<McpHttpClient>,
    },
    /// stdio: the gateway runs the processes and serves `/mcp/{id}` itself.
    Stdio(Arc<StdioPool>),
    /// A REST API described by OpenAPI: the gateway serves its operations as tools.
    OpenApi(Arc<OpenApiBackend>),
}

impl Backend {
    /// The backend as an MCP peer of the gateway.
    pub fn connection(&self) -> Arc<dyn Connection> {
        match &self.transport {
            Transport::Http { client, .. } => client.clone(),
            Transport::Stdio(pool) => pool.clone(),
            Transport::OpenApi(api) => api.clone(),
        }
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// How long one call may take.
    pub fn timeout(&self) -> std::time::Duration {
        self.settings.timeout
    }

    /// Whether the backend can be reached now, for the operator. An HTTP backend is reachable
    /// when it answers anything at all (an MCP endpoint refuses a bare GET, which is fine), as
    /// is an OpenAPI backend's base URL; a stdio backend's state is its processes, which start
    /// on the first call.
    pub async fn probe(&self, http: &reqwest::Client) -> Probe {
        let started = Instant::now();
        let (transport, state) = match &self.transport {
            Transport::Http { url, .. } => ("http", reachability(http, url).await),
            Transport::OpenApi(api) => ("openapi", reachability(http, api.base_url()).await),
            Transport::Stdio(pool) => {
                let running = pool.process_count();
                let error = (running == 0)
                    .then(|| "no process is running: one starts on the first call".to_owned());
                ("stdio", ((running > 0).then_some(true), error))
            }
        };
        let (reachable, error) = state;
        Probe {
            id: self.id().to_owned(),
            transport,
            reachable,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
        }
    }
}

/// Whether an HTTP server answers at `url` at all, and if not, why, in words for the operator.
async fn reachability(http: &reqwest::Client, url: &Url) -> (Option<bool>, Option<String>) {
    match http.get(url.clone()).timeout(PROBE_TIMEOUT).send().await {
        Ok(_) => (Some(true), None),
        Err(error) if error.is_timeout() => (
            Some(false),
            Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        ),
        Err(error) if error.is_connect() => (Some(false), Some("the connection failed".to_owned())),
        Err(_) => (Some(false), Some("the request failed".to_owned())),
    }
}

/// How long the operator's reachability check waits for an HTTP backend.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One backend's reachability, as `/health/backends` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Probe {
    pub id: String,
    pub transport: &'static str,
    /// `null` for a stdio backend with no process running.
    pub reachable: Option<bool>,
    pub latency_ms: u64,
    pub error: Option<String>,
}
