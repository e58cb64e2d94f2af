//! The MCP servers behind the gateway, each with its tool policy, its protected resource and
//! the way the gateway reaches it.

use std::sync::Arc;

use url::Url;

use super::connection::Connection;
use super::mcp_client::McpHttpClient;
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
}

impl Backend {
    /// The backend as an MCP peer of the gateway.
    pub fn connection(&self) -> Arc<dyn Connection> {
        match &self.transport {
            Transport::Http { client, .. } => client.clone(),
            Transport::Stdio(pool) => pool.clone(),
        }
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// How long one call may take.
    pub fn timeout(&self) -> std::time::Duration {
        self.settings.timeout
    }
}
