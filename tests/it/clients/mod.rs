//! The real MCP clients, unmodified, through Portcullis to a 2025-era backend
//! (server-everything) and a 2026-era one (`scripts/clients/modern-server.mjs`, on the
//! TypeScript SDK 2.x server), each over Streamable HTTP and over stdio: sign-in, list, call,
//! refresh and step-up, on `/mcp/{id}` and `/mcp`.

use serde_json::Value;

use crate::support::app::{TestApp, spawn_dev};
use crate::support::clients::{modern_stdio_command, spawn_modern_http};
use crate::support::everything::{self, Everything};

/// The conformance suite's authorization-server scenarios.
mod conformance;
/// The MCP Inspector's CLI, `mcpdo`.
mod inspector;
/// mcp-remote, spawned by the TypeScript SDK 1.x client over stdio.
mod mcp_remote;
/// The Python SDK 2.x client.
mod python;
/// What every client does, written once: sign-in, list, call, refresh, step-up.
mod scenarios;
/// The TypeScript SDK 1.x and 2.x clients (`scripts/mcp/client.mjs`).
mod typescript;

/// The backend behind `/mcp/ev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// server-everything over Streamable HTTP: 2025-11-25, sessions.
    EverythingHttp,
    /// server-everything over stdio, run by Portcullis per person.
    EverythingStdio,
    /// The 2026-07-28 server over Streamable HTTP: stateless, `server/discover`, no 2025 era.
    ModernHttp,
    /// The 2026-07-28 server over stdio, run by Portcullis per person.
    ModernStdio,
}

/// What a sign-in grants (`grant = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The default: the person's whole entitlement on the resource.
    Entitlement,
    /// Least privilege: what the client asked for; the 401 names the basic scope.
    Requested,
}

/// Portcullis with the development provider and one backend, `ev`, whose basic scope is
/// `ev:tools:call` and whose `trigger-*` tools need `ev:admin:call`.
pub struct Gateway {
    pub app: TestApp,
    /// `/mcp/ev`.
    pub ev: String,
    /// `/mcp`.
    pub mcp: String,
    _backend: Option<Everything>,
}

impl Gateway {
    pub async fn start(backend: Backend, grant: Grant) -> Self {
        Self::start_with(backend, grant, "").await
    }

    /// [`Gateway::start`] with more top-level configuration, e.g. `[tokens]`.
    pub async fn start_with(backend: Backend, grant: Grant, top_toml: &str) -> Self {
        let (target, server) = match backend {
            Backend::EverythingHttp => {
                let server = everything::spawn_http().await;
                (format!("url = \"{}\"", server.url), Some(server))
            }
            Backend::ModernHttp => {
                let server = spawn_modern_http().await;
                (format!("url = \"{}\"", server.url), Some(server))
            }
            Backend::EverythingStdio => (command(&everything::stdio_command()), None),
            Backend::ModernStdio => (command(&modern_stdio_command()), None),
        };
        let grant = match grant {
            Grant::Entitlement => "entitlement",
            Grant::Requested => "requested",
        };
        let toml = format!(
            r#"
grant = "{grant}"
{top_toml}
[[backends]]
id = "ev"
{target}
scope = "ev:tools:call"
forward = ["identity-headers"]
timeout_secs = 20
[backends.tools]
"trigger-*" = "ev:admin:call"
"#
        );
        let app = spawn_dev(&toml).await;
        Self {
            ev: app.url("/mcp/ev"),
            mcp: app.mcp_url(),
            app,
            _backend: server,
        }
    }
}

fn command(argv: &[String]) -> String {
    format!("command = {}", serde_json::to_string(argv).unwrap())
}

/// The tool names of a `tools/list` result.
pub fn tool_names(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {result:#}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// The `connect` line of a driver's output, checked: it connected, signing in exactly once, for
/// `resource`. Returns that authorization (`scope`, `resource`, `client_id`…).
pub fn signed_in_once<'a>(lines: &'a [Value], resource: &str) -> &'a Value {
    let connect = crate::support::sdk::step(lines, -1);
    assert_eq!(connect["ok"], true, "{connect:#}");
    let authorizations = connect["auth"]["authorizations"]
        .as_array()
        .unwrap_or_else(|| panic!("{connect:#}"));
    assert_eq!(authorizations.len(), 1, "one sign-in: {connect:#}");
    assert_eq!(authorizations[0]["resource"], resource, "{connect:#}");
    &authorizations[0]
}

/// The first text content of a `tools/call` result.
pub fn text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result:#}"))
}
