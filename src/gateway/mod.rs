//! The gateway: `/mcp` with the built-in tools, and `/mcp/{backend}` for each MCP server behind
//! Portcullis, each a protected resource with its own audience, every call checked against the
//! caller's scopes, audited, and relayed with the caller's identity (never the client's token).

mod audit;
pub mod auth;
mod builtin;
pub mod connection;
pub mod forward;
pub mod jsonrpc;
pub mod policy;
mod proxy;
/// Stdio backends: per-user (or shared) server processes that Portcullis starts and supervises.
pub mod stdio;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use url::Url;

use crate::config::{BackendSettings, Settings};
use crate::oauth::resource::{Resource, Resources};
use crate::paths;
use crate::state::AppState;
use policy::ToolPolicy;

/// One MCP server behind the gateway.
#[derive(Debug)]
pub struct Backend {
    pub settings: BackendSettings,
    pub policy: ToolPolicy,
    /// `/mcp/{id}`: the audience of tokens for this backend.
    pub resource: Resource,
    /// The Streamable HTTP endpoint.
    pub url: Url,
}

/// The backends and the HTTP client that reaches them.
#[derive(Debug)]
pub struct Gateway {
    pub backends: Vec<Arc<Backend>>,
    /// No overall timeout (each call has its own deadline, streams may be long), no redirects.
    pub http: reqwest::Client,
}

/// `/mcp/{id}` for a backend.
pub fn backend_path(id: &str) -> String {
    format!("{}/{id}", paths::MCP)
}

/// The protected resources: `/mcp` (advertising every backend's scopes), then one per backend.
pub fn resources(base: &Url, settings: &Settings) -> Resources {
    let policies: Vec<(String, Vec<String>)> = settings
        .backends
        .iter()
        .map(|b| (backend_path(&b.id), ToolPolicy::new(b).scopes()))
        .collect();
    let mut all: Vec<String> = policies
        .iter()
        .flat_map(|(_, scopes)| scopes.iter().cloned())
        .collect();
    all.sort();
    all.dedup();
    Resources::new(
        base,
        std::iter::once((paths::MCP.to_owned(), all)).chain(policies),
    )
}

impl Gateway {
    pub fn new(settings: &Settings, resources: &Resources) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let mut backends = Vec::new();
        for backend in &settings.backends {
            let path = backend_path(&backend.id);
            let resource = resources
                .all()
                .iter()
                .find(|r| r.path == path)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no resource for backend {}", backend.id))?;
            let Some(url) = backend.url.clone() else {
                anyhow::bail!(
                    "`backends` `{}`: stdio backends (command = …) are not served yet; run it behind a Streamable HTTP endpoint and set url",
                    backend.id
                );
            };
            backends.push(Arc::new(Backend {
                settings: backend.clone(),
                policy: ToolPolicy::new(backend),
                resource,
                url,
            }));
        }
        Ok(Self { backends, http })
    }
}

fn builtin_service(
    state: &AppState,
) -> StreamableHttpService<builtin::BuiltinTools, NeverSessionManager> {
    let mut hosts = vec![];
    if let Some(host) = state.base.host_str() {
        hosts.push(host.to_owned());
        if let Some(port) = state.base.port() {
            hosts.push(format!("{host}:{port}"));
        }
    }
    let bind = state.settings.bind;
    hosts.push(bind.ip().to_string());
    hosts.push(bind.to_string());
    // Stateless: any instance can answer any request, and no session outlives a request.
    let mut config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    config.legacy_session_mode = false;
    config.json_response = true;
    config.max_request_body_bytes = state.settings.limits.max_mcp_body_bytes;
    StreamableHttpService::new(
        || Ok(builtin::BuiltinTools),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The MCP routes, each behind the token check for its own audience.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if let Some(resource) = state.resources.by_uri(&state.url(paths::MCP)) {
        let layer = axum::middleware::from_fn_with_state(
            (state.clone(), resource.clone()),
            auth::require_token,
        );
        router = router.route_service(
            paths::MCP,
            tower::ServiceBuilder::new()
                .layer(layer)
                .service(builtin_service(state)),
        );
    }
    for backend in &state.gateway.backends {
        let layer = axum::middleware::from_fn_with_state(
            (state.clone(), backend.resource.clone()),
            auth::require_token,
        );
        let context = proxy::ProxyContext {
            state: state.clone(),
            backend: backend.clone(),
        };
        let route = Router::new()
            .route(&backend.resource.path, any(proxy::forward))
            .with_state(context)
            .layer(layer);
        router = router.merge(route);
    }
    router
}
