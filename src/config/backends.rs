//! The MCP servers behind the gateway (`[[backends]]`) and the gateway's own settings
//! (`[gateway]`).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use url::Url;

use super::{ConfigError, check_identifier, is_loopback_url};
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSettings {
    /// Appears in `/mcp/{id}` and, by default, in namespaced tool names.
    pub id: String,
    /// A Streamable HTTP MCP endpoint.
    #[serde(default)]
    pub url: Option<Url>,
    /// A stdio MCP server: the program and its arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Environment for a stdio server's process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// One stdio process for everybody instead of one per user.
    #[serde(default)]
    pub shared: bool,
    /// The scope every tool without a rule in `tools` requires. Defaults to `{id}:tools:call`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Per-tool scopes: tool name or glob pattern (`trigger-*`) → required scope.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    #[serde(default)]
    pub forward: Vec<ForwardMode>,
    /// The `aud` of assertions for this backend. Defaults to `urn:portcullis:backend:{id}`.
    #[serde(default)]
    pub assertion_audience: Option<String>,
    /// How long one call may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The largest request the gateway forwards to this backend.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// The largest response the gateway passes back from this backend.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// How long an unused per-user stdio process lives.
    #[serde(default = "default_idle_secs")]
    pub idle_timeout_secs: u64,
    /// The most per-user stdio processes at once.
    #[serde(default = "default_max_processes")]
    pub max_processes: usize,
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

impl BackendSettings {
    /// The scope a tool without its own rule requires.
    pub fn default_scope(&self) -> String {
        self.scope
            .clone()
            .unwrap_or_else(|| format!("{}:tools:call", self.id))
    }

    pub fn assertion_audience(&self) -> String {
        self.assertion_audience
            .clone()
            .unwrap_or_else(|| format!("urn:portcullis:backend:{}", self.id))
    }

    pub fn forwards(&self, mode: ForwardMode) -> bool {
        self.forward.contains(&mode)
    }
}

/// `[gateway]`: how the aggregate endpoint names tools, and assertion lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Between the backend id and the tool name on `/mcp`: `{backend}{separator}{tool}`.
    pub tool_separator: String,
    pub assertion_ttl_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            tool_separator: "__".into(),
            assertion_ttl_secs: 60,
        }
    }
}

pub(super) fn validate(
    backends: &[BackendSettings],
    gateway: &GatewaySettings,
) -> Result<(), ConfigError> {
    if gateway.tool_separator.is_empty() || gateway.tool_separator.len() > 8 {
        return Err(ConfigError::invalid(
            "gateway.tool_separator",
            "use 1-8 characters",
        ));
    }
    if gateway.assertion_ttl_secs == 0 || gateway.assertion_ttl_secs > 3600 {
        return Err(ConfigError::invalid(
            "gateway.assertion_ttl_secs",
            "use 1 to 3600 seconds",
        ));
    }
    let mut seen = HashSet::new();
    for (index, backend) in backends.iter().enumerate() {
        let key = |field: &str| format!("backends[{index}].{field}");
        check_identifier(&key("id"), &backend.id, &mut seen)?;
        if backend.id.contains(&gateway.tool_separator) {
            return Err(ConfigError::invalid(
                key("id"),
                "must not contain gateway.tool_separator",
            ));
        }
        match (&backend.url, &backend.command) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    key("url"),
                    "set url or command, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    key("url"),
                    "set url (Streamable HTTP) or command (stdio)",
                ));
            }
            (Some(url), None) => {
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::invalid(
                        key("url"),
                        "must be an http or https URL",
                    ));
                }
                if backend.forwards(ForwardMode::UpstreamToken)
                    && url.scheme() != "https"
                    && !is_loopback_url(url)
                {
                    return Err(ConfigError::invalid(
                        key("forward"),
                        "upstream tokens are only sent over https (or to loopback)",
                    ));
                }
            }
            (None, Some(command)) => {
                // A stdio process has no request headers: it learns the person it serves from
                // its environment, so only a per-user process can be told.
                let per_request = backend.forwards(ForwardMode::Assertion)
                    || backend.forwards(ForwardMode::UpstreamToken);
                if per_request || (backend.shared && !backend.forward.is_empty()) {
                    return Err(ConfigError::invalid(
                        key("forward"),
                        "a stdio backend can only receive identity-headers (as PORTCULLIS_USER and PORTCULLIS_EMAIL in a per-user process's environment)",
                    ));
                }
                if command
                    .first()
                    .is_none_or(|program| program.trim().is_empty())
                {
                    return Err(ConfigError::invalid(
                        key("command"),
                        "name the program to run",
                    ));
                }
            }
        }
        for (field, value) in [
            ("timeout_secs", backend.timeout_secs),
            ("idle_timeout_secs", backend.idle_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    key(field),
                    "must be greater than zero",
                ));
            }
        }
        if backend.max_request_bytes == 0
            || backend.max_response_bytes == 0
            || backend.max_processes == 0
        {
            return Err(ConfigError::invalid(
                key("max_request_bytes"),
                "limits must be greater than zero",
            ));
        }
        let scopes =
            std::iter::once(backend.default_scope()).chain(backend.tools.values().cloned());
        for scope in scopes {
            let parsed = Scopes::parse(&scope).ok().filter(|s| s.iter().count() == 1);
            if parsed.is_none() {
                return Err(ConfigError::invalid(
                    key("tools"),
                    format!("`{scope}` is not one scope"),
                ));
            }
        }
        for pattern in backend.tools.keys() {
            if globset::Glob::new(pattern).is_err() {
                return Err(ConfigError::invalid(
                    key("tools"),
                    format!("`{pattern}` is not a valid tool pattern"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{ForwardMode, Settings};

    fn error(toml: &str) -> String {
        Settings::from_toml(toml).unwrap_err().to_string()
    }

    #[test]
    fn the_issue_example_parses() {
        let settings = Settings::from_toml(
            r#"
            [[backends]]
            id = "everything"
            command = ["npx", "-y", "@modelcontextprotocol/server-everything"]
            scope = "everything:tools:call"
            forward = ["identity-headers"]
            [backends.tools]
            "echo" = "everything:echo:call"
            "trigger-*" = "everything:admin:call"
            "#,
        )
        .unwrap();
        let backend = &settings.backends[0];
        assert_eq!(backend.forward, [ForwardMode::IdentityHeaders]);
        assert_eq!(backend.tools["trigger-*"], "everything:admin:call");
        assert_eq!(
            backend.assertion_audience(),
            "urn:portcullis:backend:everything"
        );
        assert_eq!(settings.gateway.tool_separator, "__");
    }

    #[test]
    fn a_backend_needs_exactly_one_of_url_and_command() {
        assert!(error("[[backends]]\nid = \"a\"\n").contains("backends[0].url"));
        let both =
            "[[backends]]\nid = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\ncommand = [\"x\"]\n";
        assert!(error(both).contains("not both"));
        assert!(error("[[backends]]\nid = \"a\"\ncommand = []\n").contains("backends[0].command"));
    }

    #[test]
    fn backend_mistakes_are_named_by_key() {
        let stdio = "[[backends]]\nid = \"s\"\ncommand = [\"x\"]\n";
        assert!(
            error(&format!("{stdio}forward = [\"assertion\"]\n")).contains("backends[0].forward")
        );
        assert!(
            error(&format!(
                "{stdio}shared = true\nforward = [\"identity-headers\"]\n"
            ))
            .contains("per-user")
        );
        assert!(Settings::from_toml(&format!("{stdio}forward = [\"identity-headers\"]\n")).is_ok());
        let base = "[[backends]]\nid = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\n";
        assert!(error(&format!("{base}forward = [\"the-token\"]\n")).contains("forward"));
        assert!(
            error(&format!("{base}[backends.tools]\n\"x\" = \"two scopes\"\n"))
                .contains("backends[0].tools")
        );
        assert!(
            error(&format!("{base}[backends.tools]\n\"[x\" = \"a:b:c\"\n"))
                .contains("not a valid tool pattern")
        );
        assert!(
            error(&format!(
                "{base}[[backends]]\nid = \"a\"\nurl = \"http://127.0.0.1:2/mcp\"\n"
            ))
            .contains("used twice")
        );
        assert!(error(&format!("{base}timeout_secs = 0\n")).contains("backends[0].timeout_secs"));
        let remote_upstream = "[[backends]]\nid = \"a\"\nurl = \"http://mcp.internal/mcp\"\nforward = [\"upstream-token\"]\n";
        assert!(error(remote_upstream).contains("https"));
        assert!(
            error("[[backends]]\nid = \"a__b\"\nurl = \"http://127.0.0.1:1/mcp\"\n")
                .contains("tool_separator")
        );
    }
}
