//! Route paths, used by both the router and the discovery documents, so they cannot disagree.

pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks.json";
pub const REGISTER: &str = "/register";
pub const AUTHORIZE: &str = "/authorize";
pub const AUTHORIZE_PROVIDER: &str = "/authorize/provider";
pub const AUTHORIZE_CONSENT: &str = "/authorize/consent";
pub const CALLBACK: &str = "/callback/{provider}";
pub const TOKEN: &str = "/token";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const MCP: &str = "/mcp";
pub const HEALTH_LIVE: &str = "/health/live";
pub const HEALTH_READY: &str = "/health/ready";
pub const STATIC: &str = "/static";

/// `/callback/{provider}` for one provider.
pub fn callback(provider: &str) -> String {
    CALLBACK.replace("{provider}", provider)
}
