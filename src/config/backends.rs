//! The MCP servers behind the gateway (`[[backends]]`) and the gateway's own settings
//! (`[gateway]`), parsed into what each transport needs.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{ConfigError, check_identifier, is_loopback_url, positive_seconds};
use crate::oauth::scope::Scopes;

/// What a backend learns about the caller. The client's own bearer token is never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMode {
    /// `X-Portcullis-User`, `-Email`, `-Client`, `-Scopes` and `X-Request-ID` headers.
    IdentityHeaders,
    /// A short-lived JWT signed by Portcullis for this backend's audience, in
    /// `X-Portcullis-Assertion`.
    Assertion,
    /// The caller's upstream access token (refreshed upstream when expired), as
    /// `Authorization: Bearer`.
    UpstreamToken,
}

/// One MCP server behind the gateway.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Appears in `/mcp/{id}` and, by default, in namespaced tool names.
    pub id: String,
    pub transport: BackendTransport,
    /// The scope every tool without a rule in `tools` requires (default `{id}:tools:call`).
    pub scope: String,
    /// Per-tool scopes: a tool name or glob pattern, and the one scope it requires.
    pub tools: Vec<(ToolPattern, String)>,
    pub forward: Vec<ForwardMode>,
    /// The `aud` of assertions for this backend (default `urn:portcullis:backend:{id}`).
    pub assertion_audience: String,
    /// How long one call may take.
    pub timeout: Duration,
    /// The largest request the gateway forwards to this backend.
    pub max_request_bytes: usize,
    /// The largest response the gateway passes back from this backend.
    pub max_response_bytes: usize,
    /// What a sign-in for `/mcp/{id}` grants (default: the global `grant`).
    pub grant: Option<super::GrantMode>,
}

/// How the gateway reaches a backend.
#[derive(Debug, Clone)]
pub enum BackendTransport {
    /// A Streamable HTTP MCP endpoint.
    Http { url: Url },
    /// A stdio MCP server the gateway runs.
    Stdio(StdioSettings),
    /// A REST API described by an OpenAPI document: its operations served as tools.
    OpenApi(Box<super::openapi::OpenApiSettings>),
}

/// A stdio server's process.
#[derive(Debug, Clone)]
pub struct StdioSettings {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// One process for everybody instead of one per user.
    pub shared: bool,
    /// How long an unused per-user process lives.
    pub idle_timeout: Duration,
    /// The most per-user processes at once.
    pub max_processes: NonZeroUsize,
}

/// The tools a `[backends.tools]` rule names.
#[derive(Debug, Clone)]
pub enum ToolPattern {
    Exact(String),
    /// A glob; `literal` counts its literal characters (more is more specific).
    Glob {
        pattern: String,
        matcher: GlobMatcher,
        literal: usize,
    },
}

impl ToolPattern {
    fn parse(pattern: &str) -> Result<Self, globset::Error> {
        if !pattern.contains(['*', '?', '[', '{']) {
            return Ok(Self::Exact(pattern.to_owned()));
        }
        Ok(Self::Glob {
            pattern: pattern.to_owned(),
            matcher: Glob::new(pattern)?.compile_matcher(),
            literal: pattern.chars().filter(|c| !"*?[]{}".contains(*c)).count(),
        })
    }

    /// The pattern written at configuration key `key`.
    pub(super) fn parse_at(key: &str, pattern: &str) -> Result<Self, ConfigError> {
        Self::parse(pattern).map_err(|_| {
            ConfigError::invalid(key, format!("`{pattern}` is not a valid tool pattern"))
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exact(name) | Self::Glob { pattern: name, .. } => name,
        }
    }
}

impl BackendSettings {
    pub fn forwards(&self, mode: ForwardMode) -> bool {
        self.forward.contains(&mode)
    }

    /// The scope a tool's rule names, by the pattern as written.
    pub fn tool_scope(&self, pattern: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|(p, _)| p.as_str() == pattern)
            .map(|(_, scope)| scope.as_str())
    }
}

/// `[gateway]`: how the aggregate endpoint names tools, and assertion lifetimes.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Between the backend id and the tool name on `/mcp`: `{backend}{separator}{tool}`.
    pub tool_separator: String,
    pub assertion_ttl: Duration,
    /// Browser origins (`scheme://host[:port]`) besides the public URL's that may call the MCP
    /// endpoints; a request from any other `Origin` gets 403 (MCP transports §Security).
    pub allowed_origins: Vec<String>,
    /// A relayed server stream (SSE) that carries nothing, not even a keep-alive comment, for
    /// this long is closed (`sse_idle_timeout_secs`).
    pub sse_idle_timeout: Duration,
    /// Server streams one person may hold open at once; the next is refused with 429.
    pub max_streams_per_person: usize,
}

/// `[[backends]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    pub(super) id: String,
    #[serde(default)]
    pub(super) url: Option<Url>,
    #[serde(default)]
    pub(super) command: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) shared: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    tools: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) forward: Vec<ForwardMode>,
    #[serde(default)]
    assertion_audience: Option<String>,
    #[serde(default = "default_timeout_secs")]
    timeout_secs: u64,
    #[serde(default = "default_max_request_bytes")]
    max_request_bytes: usize,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: usize,
    #[serde(default = "default_idle_secs")]
    idle_timeout_secs: u64,
    #[serde(default = "default_max_processes")]
    max_processes: usize,
    #[serde(default)]
    grant: Option<super::GrantMode>,
    #[serde(default)]
    pub(super) openapi: Option<String>,
    #[serde(default)]
    pub(super) base_url: Option<Url>,
    #[serde(default)]
    pub(super) include: Vec<String>,
    #[serde(default)]
    pub(super) exclude: Vec<String>,
    #[serde(default)]
    pub(super) allow_remote_refs: bool,
    #[serde(default)]
    pub(super) auth: Option<super::openapi::RawAuth>,
    #[serde(default)]
    pub(super) secret_env: Option<String>,
    #[serde(default)]
    pub(super) max_result_bytes: Option<usize>,
    #[serde(default)]
    pub(super) cache_ttl_secs: u64,
    #[serde(default)]
    pub(super) cache: BTreeMap<String, u64>,
}

fn default_timeout_secs() -> u64 {
    60
}
fn default_max_request_bytes() -> usize {
    1024 * 1024
}
fn default_max_response_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_idle_secs() -> u64 {
    600
}
fn default_max_processes() -> usize {
    32
}

/// `[gateway]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    tool_separator: String,
    assertion_ttl_secs: u64,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default = "default_sse_idle_timeout_secs")]
    sse_idle_timeout_secs: u64,
    #[serde(default = "default_max_streams_per_person")]
    max_streams_per_person: usize,
}

fn default_sse_idle_timeout_secs() -> u64 {
    300
}

fn default_max_streams_per_person() -> usize {
    8
}

impl Default for RawGateway {
    fn default() -> Self {
        Self {
            tool_separator: "__".into(),
            assertion_ttl_secs: 60,
            allowed_origins: Vec::new(),
            sse_idle_timeout_secs: default_sse_idle_timeout_secs(),
            max_streams_per_person: default_max_streams_per_person(),
        }
    }
}

pub(super) fn parse_gateway(raw: RawGateway) -> Result<GatewaySettings, ConfigError> {
    if raw.tool_separator.is_empty() || raw.tool_separator.len() > 8 {
        return Err(ConfigError::invalid(
            "gateway.tool_separator",
            "use 1-8 characters",
        ));
    }
    if raw.assertion_ttl_secs == 0 || raw.assertion_ttl_secs > 3600 {
        return Err(ConfigError::invalid(
            "gateway.assertion_ttl_secs",
            "use 1 to 3600 seconds",
        ));
    }
    if raw.sse_idle_timeout_secs == 0 || raw.sse_idle_timeout_secs > 86_400 {
        return Err(ConfigError::invalid(
            "gateway.sse_idle_timeout_secs",
            "use 1 to 86400 seconds",
        ));
    }
    if raw.max_streams_per_person == 0 || raw.max_streams_per_person > 1000 {
        return Err(ConfigError::invalid(
            "gateway.max_streams_per_person",
            "use 1 to 1000",
        ));
    }
    let mut allowed_origins = Vec::with_capacity(raw.allowed_origins.len());
    for (index, origin) in raw.allowed_origins.iter().enumerate() {
        allowed_origins.push(parse_origin(origin).ok_or_else(|| {
            ConfigError::invalid(
                format!("gateway.allowed_origins[{index}]"),
                "use an origin such as https://app.example.com (scheme, host and port only)",
            )
        })?);
    }
    Ok(GatewaySettings {
        tool_separator: raw.tool_separator,
        assertion_ttl: Duration::from_secs(raw.assertion_ttl_secs),
        allowed_origins,
        sse_idle_timeout: Duration::from_secs(raw.sse_idle_timeout_secs),
        max_streams_per_person: raw.max_streams_per_person,
    })
}

/// An origin as browsers send it in `Origin`: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Option<String> {
    let url = Url::parse(origin).ok()?;
    let serialized = url.origin().ascii_serialization();
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    (bare && url.origin().is_tuple() && origin.trim_end_matches('/') == serialized)
        .then_some(serialized)
}

pub(super) fn parse(
    raw: Vec<RawBackend>,
    gateway: &GatewaySettings,
) -> Result<Vec<BackendSettings>, ConfigError> {
    let mut seen = HashSet::new();
    let mut backends = Vec::with_capacity(raw.len());
    for (index, backend) in raw.iter().enumerate() {
        let key = |field: &str| format!("backends[{index}].{field}");
        check_identifier(&key("id"), &backend.id, &mut seen)?;
        if backend.id.contains(&gateway.tool_separator) {
            return Err(ConfigError::invalid(
                key("id"),
                "must not contain gateway.tool_separator",
            ));
        }
        let forwards = |mode| backend.forward.contains(&mode);
        if backend.openapi.is_none() {
            super::openapi::reject_on_other_backends(&key, backend)?;
        }
        let transport = match (&backend.url, &backend.command, &backend.openapi) {
            (None, None, None) => {
                return Err(ConfigError::invalid(
                    key("url"),
                    "set url (Streamable HTTP), command (stdio) or openapi (a REST API's OpenAPI document)",
                ));
            }
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    key("url"),
                    "set one of url, command and openapi, not both",
                ));
            }
            (None, None, Some(document)) => {
                BackendTransport::OpenApi(Box::new(super::openapi::parse(&key, document, backend)?))
            }
            (Some(url), None, None) => {
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::invalid(
                        key("url"),
                        "must be an http or https URL",
                    ));
                }
                if forwards(ForwardMode::UpstreamToken)
                    && url.scheme() != "https"
                    && !is_loopback_url(url)
                {
                    return Err(ConfigError::invalid(
                        key("forward"),
                        "upstream tokens are only sent over https (or to loopback)",
                    ));
                }
                BackendTransport::Http { url: url.clone() }
            }
            (None, Some(command), None) => {
                // A stdio process has no request headers: it learns the person it serves from
                // its environment, so only a per-user process can be told.
                let per_request =
                    forwards(ForwardMode::Assertion) || forwards(ForwardMode::UpstreamToken);
                if per_request || (backend.shared && !backend.forward.is_empty()) {
                    return Err(ConfigError::invalid(
                        key("forward"),
                        "a stdio backend can only receive identity-headers (as PORTCULLIS_USER and PORTCULLIS_EMAIL in a per-user process's environment)",
                    ));
                }
                let Some((program, args)) = command
                    .split_first()
                    .filter(|(program, _)| !program.trim().is_empty())
                else {
                    return Err(ConfigError::invalid(
                        key("command"),
                        "name the program to run",
                    ));
                };
                let max_processes = NonZeroUsize::new(backend.max_processes).ok_or_else(|| {
                    ConfigError::invalid(key("max_processes"), "must be greater than zero")
                })?;
                BackendTransport::Stdio(StdioSettings {
                    program: program.clone(),
                    args: args.to_vec(),
                    env: backend.env.clone(),
                    shared: backend.shared,
                    idle_timeout: positive_seconds(
                        &key("idle_timeout_secs"),
                        backend.idle_timeout_secs,
                    )?,
                    max_processes,
                })
            }
        };
        let mut forward = backend.forward.clone();
        if let BackendTransport::OpenApi(api) = &transport
            && let Some(mode) = api.auth.forward_mode()
            && !forward.contains(&mode)
        {
            forward.push(mode);
        }
        let timeout = positive_seconds(&key("timeout_secs"), backend.timeout_secs)?;
        if backend.max_request_bytes == 0 || backend.max_response_bytes == 0 {
            return Err(ConfigError::invalid(
                key("max_request_bytes"),
                "limits must be greater than zero",
            ));
        }
        let scope = backend
            .scope
            .clone()
            .unwrap_or_else(|| format!("{}:tools:call", backend.id));
        for scope in std::iter::once(&scope).chain(backend.tools.values()) {
            let parsed = Scopes::parse(scope).ok().filter(|s| s.iter().count() == 1);
            if parsed.is_none() {
                return Err(ConfigError::invalid(
                    key("tools"),
                    format!("`{scope}` is not one scope"),
                ));
            }
        }
        let mut tools = Vec::with_capacity(backend.tools.len());
        for (pattern, required) in &backend.tools {
            tools.push((
                ToolPattern::parse_at(&key("tools"), pattern)?,
                required.clone(),
            ));
        }
        backends.push(BackendSettings {
            id: backend.id.clone(),
            transport,
            scope,
            tools,
            forward,
            assertion_audience: backend
                .assertion_audience
                .clone()
                .unwrap_or_else(|| format!("urn:portcullis:backend:{}", backend.id)),
            timeout,
            max_request_bytes: backend.max_request_bytes,
            max_response_bytes: backend.max_response_bytes,
            grant: backend.grant,
        });
    }
    Ok(backends)
}

/// The `[[backends]]` table: what is accepted and what is refused, with its message.
#[cfg(test)]
mod tests;
