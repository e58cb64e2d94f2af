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
/// Prometheus metrics, for operators (`[metrics]`).
pub const METRICS: &str = "/metrics";
/// Each backend's reachability, for operators (`[metrics]`).
pub const HEALTH_BACKENDS: &str = "/health/backends";
pub const STATIC: &str = "/static";

/// `/callback/{provider}` for one provider.
pub fn callback(provider: &str) -> String {
    CALLBACK.replace("{provider}", provider)
}

/// The public base URL (possibly with a path prefix) and the issuer identifier derived from it:
/// every advertised URL is built here, from configuration only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    base: url::Url,
    issuer: String,
}

impl PublicUrl {
    pub fn new(base: url::Url) -> Self {
        // RFC 8414 §2: the issuer is the base URL without a trailing slash.
        let issuer = base.as_str().trim_end_matches('/').to_owned();
        Self { base, issuer }
    }

    /// The issuer identifier (RFC 8414 §2, RFC 9207 `iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `{issuer}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    /// The path prefix below the origin (`""` at the root).
    pub fn prefix(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }

    /// True when served over https: cookies get `Secure` and the `__Host-` prefix.
    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }
}
