//! The gateway: `/mcp` with the built-in tools, and `/mcp/{backend}` for each MCP server behind
//! Portcullis, each a protected resource with its own audience, every call checked against the
//! caller's scopes, audited, and relayed with the caller's identity (never the client's token).

mod audit;
pub mod auth;
mod builtin;
pub mod connection;
mod facade;
pub mod forward;
mod http_client;
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
use connection::Connection;
use facade::Facade;
use http_client::HttpConnection;
use policy::ToolPolicy;

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
        client: Arc<HttpConnection>,
    },
    /// stdio: the gateway runs the processes and serves `/mcp/{id}` itself.
    Stdio(Arc<stdio::StdioPool>),
}

impl Backend {
    /// The backend as an MCP peer of the gateway.
    pub fn connection(&self) -> Arc<dyn Connection> {
        match &self.transport {
            Transport::Http { client, .. } => client.clone(),
            Transport::Stdio(pool) => pool.clone(),
        }
    }
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
/// Each backend's basic scope is its default scope; `/mcp`'s are all of those.
pub fn resources(base: &Url, settings: &Settings) -> Resources {
    let mut supported_everywhere = Vec::new();
    let mut basic_everywhere = Vec::new();
    let mut backends = Vec::new();
    for backend in &settings.backends {
        let supported = ToolPolicy::new(backend).scopes();
        supported_everywhere.extend(supported.iter().cloned());
        basic_everywhere.push(backend.default_scope());
        backends.push((
            backend_path(&backend.id),
            supported,
            vec![backend.default_scope()],
        ));
    }
    for list in [&mut supported_everywhere, &mut basic_everywhere] {
        list.sort();
        list.dedup();
    }
    let aggregate = (
        paths::MCP.to_owned(),
        supported_everywhere,
        basic_everywhere,
    );
    Resources::new(base, std::iter::once(aggregate).chain(backends))
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
            let transport = match backend.url.clone() {
                Some(url) => Transport::Http {
                    client: HttpConnection::new(backend, url.clone(), http.clone()),
                    url,
                },
                None => Transport::Stdio(Arc::new(stdio::StdioPool::new(backend))),
            };
            backends.push(Arc::new(Backend {
                settings: backend.clone(),
                policy: ToolPolicy::new(backend),
                resource,
                transport,
            }));
        }
        Ok(Self { backends, http })
    }
}

impl Gateway {
    /// Hands the running state to the connections that need it (weakly: no cycle).
    pub fn attach(&self, state: &AppState) {
        for backend in &self.backends {
            if let Transport::Http { client, .. } = &backend.transport {
                client.attach(state);
            }
        }
    }

    /// Stops the stdio processes: stdin closed, then a signal to any that linger.
    pub async fn shutdown(&self) {
        let pools = self.backends.iter().filter_map(|b| match &b.transport {
            Transport::Stdio(pool) => Some(pool.shutdown()),
            Transport::Http { .. } => None,
        });
        futures::future::join_all(pools).await;
    }
}

/// Refuses, with a step-up challenge, requests that use `backend` beyond its tools (resources,
/// prompts, completions…) when the caller lacks the backend's default scope.
fn check_other_uses(
    state: &AppState,
    backend: &Backend,
    caller: &auth::Caller,
    inspected: &jsonrpc::Inspected,
) -> Option<axum::response::Response> {
    let id = inspected.other_uses.first()?;
    let required = backend.policy.default_scope();
    if caller
        .scopes()
        .any(|held| crate::oauth::scope::pattern_covers(held, required))
    {
        return None;
    }
    state.auditor.record(
        state
            .audit_event(
                crate::store::AuditKind::RequestDenied,
                crate::store::Decision::Denied,
            )
            .user(caller.claims.sub.clone(), caller.claims.email.as_deref())
            .client(caller.claims.client_id.clone())
            .reason(format!(
                "missing scope {required} to use backend {}",
                backend.settings.id
            )),
    );
    Some(auth::insufficient_scope(
        state,
        &backend.resource,
        required,
        caller,
        id,
    ))
}

/// An MCP endpoint served by the gateway itself, stateless so any instance can answer.
fn mcp_service(
    state: &AppState,
    facade: Facade,
) -> StreamableHttpService<Facade, NeverSessionManager> {
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
    let mut config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    config.legacy_session_mode = false;
    // JSON for a plain answer; rmcp switches to SSE when notifications (progress) come first.
    config.json_response = true;
    config.max_request_body_bytes = state.settings.limits.max_mcp_body_bytes;
    StreamableHttpService::new(
        move || Ok(facade.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The MCP routes, each behind the token check for its own audience, then the scope guard.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if let Some(resource) = state.resources.by_uri(&state.url(paths::MCP)) {
        let facade = Facade::new(
            state.clone(),
            state.gateway.backends.clone(),
            true,
            true,
            resource.clone(),
        );
        router = router.route_service(paths::MCP, protected(state, resource, facade));
    }
    for backend in &state.gateway.backends {
        match &backend.transport {
            Transport::Http { url, .. } => {
                let layer = axum::middleware::from_fn_with_state(
                    (state.clone(), backend.resource.clone()),
                    auth::require_token,
                );
                let context = proxy::ProxyContext {
                    state: state.clone(),
                    backend: backend.clone(),
                    url: url.clone(),
                };
                let route = Router::new()
                    .route(&backend.resource.path, any(proxy::forward))
                    .with_state(context)
                    .layer(layer);
                router = router.merge(route);
            }
            Transport::Stdio(_) => {
                let facade = Facade::new(
                    state.clone(),
                    vec![backend.clone()],
                    false,
                    false,
                    backend.resource.clone(),
                );
                router = router.route_service(
                    &backend.resource.path,
                    protected(state, &backend.resource, facade),
                );
            }
        }
    }
    router
}

/// A facade behind the token check for `resource` and the scope guard.
fn protected(
    state: &AppState,
    resource: &Resource,
    facade: Facade,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let auth = axum::middleware::from_fn_with_state(
        (state.clone(), resource.clone()),
        auth::require_token,
    );
    let guard = axum::middleware::from_fn_with_state(facade.clone(), facade::guard);
    tower::ServiceBuilder::new()
        .layer(auth)
        .layer(guard)
        .service(mcp_service(state, facade))
}
