//! The MCP endpoint: token check, then MCP over Streamable HTTP with the built-in tools.

pub mod auth;
mod builtin;

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::state::AppState;

/// `/mcp` (and, later, one route per backend), each behind the token check for its audience.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for resource in state.resources.all() {
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
        let service = StreamableHttpService::new(
            || Ok(builtin::BuiltinTools),
            Arc::new(NeverSessionManager::default()),
            config,
        );
        let layer = axum::middleware::from_fn_with_state(
            (state.clone(), resource.clone()),
            auth::require_token,
        );
        router = router.route_service(
            &resource.path,
            tower::ServiceBuilder::new().layer(layer).service(service),
        );
    }
    router
}
