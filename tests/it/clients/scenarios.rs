//! What every client that can be scripted step by step does through the gateway, written once:
//! the drivers (`scripts/mcp/client.mjs` for the TypeScript SDKs and mcp-remote,
//! `scripts/clients/py/client.py` for the Python SDK) print the same JSON lines.

use serde_json::{Value, json};

use super::{Backend, Gateway, Grant, signed_in_once, text, tool_names};
use crate::support::clients::run_python;
use crate::support::sdk::{run_client_with, step};

/// A client, unmodified, and how it is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `@modelcontextprotocol/sdk` 1.32.2.
    TypeScript1,
    /// `@modelcontextprotocol/client` 2.4.0, version negotiation `auto`.
    TypeScript2,
    /// `mcp` 2.3.0 from PyPI, `mode="auto"`.
    Python2,
    /// mcp-remote 0.15.1 between the TypeScript SDK 1.x client (over stdio) and the gateway.
    McpRemote,
}

impl Driver {
    async fn run(self, server: &str, email: &str, steps: Value) -> Vec<Value> {
        self.run_with(server, email, steps, &[]).await
    }

    /// With more of the driver's options, e.g. `["--client-metadata-url", URL]`.
    async fn run_with(self, server: &str, email: &str, steps: Value, more: &[&str]) -> Vec<Value> {
        let options = match self {
            Driver::TypeScript1 => ["--sdk", "1"],
            Driver::TypeScript2 => ["--sdk", "2"],
            Driver::McpRemote => ["--via", "mcp-remote"],
            Driver::Python2 => return run_python(server, email, steps, more).await,
        };
        let options: Vec<&str> = options.iter().chain(more).copied().collect();
        run_client_with(server, email, steps, &options).await
    }

    /// Whether the driver sees the client's HTTP requests (mcp-remote makes its own).
    fn sees_the_wire(self) -> bool {
        self != Driver::McpRemote
    }

    /// Whether the client speaks 2026-07-28 when the endpoint offers it.
    fn speaks_2026(self) -> bool {
        matches!(self, Driver::TypeScript2 | Driver::Python2)
    }

    /// The step that makes the client refresh, as it does in real use: the TypeScript SDK
    /// refreshes on a 401 (here its access token is made bad, as when a server stops accepting
    /// it); the Python SDK refreshes an expired token before using it, and does a whole new
    /// authorization on a 401 (so time passes, past the short access token lifetime its
    /// gateway gets from [`Driver::gateway_toml`]).
    fn refresh_step(self) -> Value {
        match self {
            Driver::Python2 => json!({"sleep": {"seconds": 2.5}}),
            _ => json!({"forceRefresh": {}}),
        }
    }

    fn gateway_toml(self) -> &'static str {
        match self {
            Driver::Python2 => "[tokens]\naccess_ttl_secs = 2\n",
            _ => "",
        }
    }
}

fn ok(line: &Value) -> &Value {
    assert_eq!(line["ok"], true, "{line:#}");
    &line["result"]
}

fn scopes(value: &Value) -> Vec<&str> {
    value.as_str().unwrap_or_default().split(' ').collect()
}

/// Signs in on `/mcp/ev` by itself (dynamic registration), lists, calls, refreshes, then signs
/// in on `/mcp` and calls the backend's tool there, namespaced; in the default grant mode.
pub async fn signs_in_lists_calls_and_refreshes(driver: Driver, backend: Backend) {
    let gateway = Gateway::start_with(backend, Grant::Entitlement, driver.gateway_toml()).await;
    let (ev, mcp) = (&gateway.ev, &gateway.mcp);
    let lines = driver
        .run(
            ev,
            "client@example.com",
            json!([
                {"listTools": {}},
                {"callTool": {"name": "echo", "arguments": {"message": "hello"}}},
                driver.refresh_step(),
                {"callTool": {"name": "echo", "arguments": {"message": "after a refresh"}}},
                {"listTools": {}, "server": mcp},
                {"callTool": {"name": "ev__echo", "arguments": {"message": "aggregated"}}, "server": mcp},
            ]),
        )
        .await;

    signed_in_once(&lines, ev);
    let connect = step(&lines, -1);
    let auth = &connect["auth"];
    if driver.sees_the_wire() {
        assert_eq!(auth["registrations"], json!([{"status": 201}]), "{auth:#}");
    }

    let listed = step(&lines, 0);
    assert!(
        tool_names(ok(listed)).contains(&"echo".to_owned()),
        "{listed:#}"
    );
    assert_eq!(text(ok(step(&lines, 1))), "Echo: hello");

    ok(step(&lines, 2));
    let refreshed = step(&lines, 3);
    assert_eq!(text(ok(refreshed)), "Echo: after a refresh");
    assert_eq!(
        refreshed["auth"]["authorizations"],
        json!([]),
        "a refresh, not a new sign-in: {refreshed:#}"
    );
    if driver.sees_the_wire() {
        assert_eq!(refreshed["auth"]["refreshed"], true, "{refreshed:#}");
    }

    let aggregate = tool_names(ok(step(&lines, 4)));
    assert!(
        aggregate.contains(&"whoami".to_owned()) && aggregate.contains(&"ev__echo".to_owned()),
        "{aggregate:?}"
    );
    assert_eq!(text(ok(step(&lines, 5))), "Echo: aggregated");

    if driver.speaks_2026() {
        // It speaks 2026-07-28 when the endpoint offers it, and every endpoint must.
        assert_eq!(
            connect["result"]["protocolVersion"], "2026-07-28",
            "{connect:#}"
        );
    }
    gateway.app.stop().await;
}

/// With least-privilege grants: signs in for the basic scope the 401 names, calls a tool that
/// needs more, is refused with 403 `insufficient_scope`, and by itself ends up with a token that
/// has both, holding on to its refresh token throughout.
pub async fn steps_up(driver: Driver, backend: Backend) {
    steps_up_at(driver, backend, false).await;
}

/// [`steps_up`] on `/mcp`, where the backend's tools are `ev__…`.
pub async fn steps_up_on_the_aggregate(driver: Driver, backend: Backend) {
    steps_up_at(driver, backend, true).await;
}

async fn steps_up_at(driver: Driver, backend: Backend, aggregate: bool) {
    let gateway = Gateway::start(backend, Grant::Requested).await;
    let (endpoint, prefix) = if aggregate {
        (&gateway.mcp, "ev__")
    } else {
        (&gateway.ev, "")
    };
    let lines = driver
        .run(
            endpoint,
            "step-up@example.com",
            json!([
                {"callTool": {"name": format!("{prefix}echo"), "arguments": {"message": "basic"}}},
                {"callTool": {"name": format!("{prefix}trigger-long-running-operation"),
                              "arguments": {"duration": 0.2, "steps": 2}},
                 "expectStepUp": true},
                {"callTool": {"name": format!("{prefix}echo"), "arguments": {"message": "still there"}}},
                {"tokens": {}},
            ]),
        )
        .await;

    let first = scopes(&signed_in_once(&lines, endpoint)["scope"]);
    assert!(
        first.contains(&"ev:tools:call") && !first.contains(&"ev:admin:call"),
        "the first sign-in asks for the basic scope: {first:?}"
    );
    assert_eq!(text(ok(step(&lines, 0))), "Echo: basic");

    let stepped = step(&lines, 1);
    let step_up = &stepped["stepUp"];
    if driver.sees_the_wire() {
        assert_eq!(step_up["challenged"], true, "{stepped:#}");
    }
    assert_eq!(step_up["reauthorized"], true, "{stepped:#}");
    let asked = scopes(&step_up["requestedScope"]);
    assert!(
        asked.contains(&"ev:admin:call") && asked.contains(&"ev:tools:call"),
        "the new sign-in asks for what the client had and what the call needs: {stepped:#}"
    );
    assert!(
        text(ok(stepped)).starts_with("Long running operation completed"),
        "{stepped:#}"
    );

    let after = step(&lines, 2);
    assert_eq!(text(ok(after)), "Echo: still there");
    assert_eq!(after["auth"]["authorizations"], json!([]), "{after:#}");
    let tokens = ok(step(&lines, 3));
    assert_eq!(tokens["has_refresh_token"], true, "{tokens:#}");
    let held = scopes(&tokens["scope"]);
    assert!(
        held.contains(&"ev:admin:call") && held.contains(&"ev:tools:call"),
        "{tokens:#}"
    );
    gateway.app.stop().await;
}

/// In the default grant mode (the person's whole entitlement unless the client asks for less):
/// a tool that needs more than the basic scope works, whatever the client asked for at first;
/// when the client asked for less and is refused, it steps up by itself.
pub async fn calls_beyond_the_basic_scope(driver: Driver, backend: Backend) {
    let gateway = Gateway::start(backend, Grant::Entitlement).await;
    let lines = driver
        .run(
            &gateway.ev,
            "entitled@example.com",
            json!([
                {"callTool": {"name": "trigger-long-running-operation",
                              "arguments": {"duration": 0.2, "steps": 2}},
                 "expectStepUp": true},
                {"callTool": {"name": "echo", "arguments": {"message": "and the basic one"}}},
            ]),
        )
        .await;

    signed_in_once(&lines, &gateway.ev);
    let admin = step(&lines, 0);
    assert!(
        text(ok(admin)).starts_with("Long running operation completed"),
        "{admin:#}"
    );
    if admin["stepUp"]["challenged"] == true {
        assert_eq!(admin["stepUp"]["reauthorized"], true, "{admin:#}");
    }
    assert_eq!(text(ok(step(&lines, 1))), "Echo: and the basic one");
    gateway.app.stop().await;
}

/// Connecting to `/mcp/ev` introduces the backend itself: its own server info and instructions
/// (`initialize` or `server/discover`), even when Portcullis runs it over stdio.
pub async fn meets_the_backend_itself(driver: Driver, backend: Backend) {
    let gateway = Gateway::start(backend, Grant::Entitlement).await;
    let lines = driver
        .run(&gateway.ev, "introduced@example.com", json!([]))
        .await;
    signed_in_once(&lines, &gateway.ev);
    let connect = step(&lines, -1);
    let (name, instructions) = match backend {
        Backend::EverythingHttp | Backend::EverythingStdio => {
            ("mcp-servers/everything", "# Everything Server")
        }
        Backend::ModernHttp | Backend::ModernStdio => {
            ("portcullis-test-modern", "A 2026-07-28-era test server")
        }
    };
    assert_eq!(
        connect["result"]["serverVersion"]["name"], name,
        "{connect:#}"
    );
    assert!(
        connect["result"]["instructions"]
            .as_str()
            .is_some_and(|i| i.starts_with(instructions)),
        "{connect:#}"
    );
    gateway.app.stop().await;
}

/// What the person answers a server's question with (server-everything asks for a `name`, the
/// 2026-era backend for `confirm`).
const ANSWER: &str = r#"{"action":"accept","content":{"name":"Ada","confirm":true}}"#;

/// A tool that asks the person something while it runs (a 2025-era server sends an
/// `elicitation/create` request, a 2026-era one answers `input_required`, MRTR): the question
/// reaches the client, whichever era each side speaks, and the answer reaches the tool.
pub async fn answers_a_servers_question(driver: Driver, backend: Backend) {
    let gateway = Gateway::start(backend, Grant::Entitlement).await;
    let (tool, arguments, expected) = match backend {
        Backend::EverythingHttp | Backend::EverythingStdio => {
            ("trigger-elicitation-request", json!({}), "- Name: Ada")
        }
        Backend::ModernHttp | Backend::ModernStdio => {
            ("confirm", json!({"action": "deploy"}), "Confirmed: deploy")
        }
    };
    let lines = driver
        .run_with(
            &gateway.ev,
            "asked@example.com",
            json!([{"callTool": {"name": tool, "arguments": arguments}}]),
            &["--elicit", ANSWER],
        )
        .await;

    signed_in_once(&lines, &gateway.ev);
    let call = step(&lines, 0);
    let texts: Vec<&str> = ok(call)["content"]
        .as_array()
        .unwrap_or_else(|| panic!("{call:#}"))
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains(expected)),
        "the answer reached the tool: {call:#}"
    );
    assert_eq!(
        call["elicitations"].as_array().map(Vec::len),
        Some(1),
        "the client was asked once: {call:#}"
    );
    gateway.app.stop().await;
}

/// Claude Code's Client ID Metadata Document: loopback redirect URIs on any port. Portcullis ships
/// it pinned, for when the URL cannot be fetched (here: never, there is no internet).
const CLAUDE_CODE: &str = "https://claude.ai/oauth/claude-code-client-metadata";

/// Signs in with a Client ID Metadata Document URL as its `client_id` instead of registering
/// (CIMD, what the 2025-11-25 revision recommends), because the server advertises
/// `client_id_metadata_document_supported`; the document is Claude Code's, which Portcullis
/// knows pinned. Then it calls a tool.
pub async fn signs_in_with_a_client_id_metadata_document(driver: Driver, backend: Backend) {
    let gateway = Gateway::start(backend, Grant::Entitlement).await;
    let lines = driver
        .run_with(
            &gateway.ev,
            "cimd@example.com",
            json!([
                {"callTool": {"name": "echo", "arguments": {"message": "no registration"}}},
                {"tokens": {}},
            ]),
            &["--client-metadata-url", CLAUDE_CODE],
        )
        .await;

    let auth = &step(&lines, -1)["auth"];
    assert_eq!(auth["registrations"], json!([]), "no DCR: {auth:#}");
    let authorization = signed_in_once(&lines, &gateway.ev);
    assert_eq!(authorization["client_id"], CLAUDE_CODE, "{auth:#}");
    assert_eq!(text(ok(step(&lines, 0))), "Echo: no registration");
    let tokens = ok(step(&lines, 1));
    let claims = crate::negative::claims_of(tokens["access_token"].as_str().unwrap_or_default());
    assert_eq!(claims.client_id, CLAUDE_CODE, "{tokens:#}");
    gateway.app.stop().await;
}

/// The tests every scripted client gets, for `$driver`: sign-in, list, call and refresh against
/// each backend, step-up against server-everything over HTTP (on `/mcp/ev` and on `/mcp`) and
/// the 2026-era backend over stdio, a question a tool asks the person (elicitation, MRTR)
/// against each backend, the stdio backends' own server info and instructions, and a call
/// beyond the basic scope in the default grant mode.
macro_rules! client_tests {
    ($driver:expr) => {
        use $crate::clients::Backend::*;
        use $crate::clients::scenarios::{signs_in_lists_calls_and_refreshes, steps_up};

        #[tokio::test]
        async fn signs_in_lists_calls_and_refreshes_with_everything_over_http() {
            signs_in_lists_calls_and_refreshes($driver, EverythingHttp).await;
        }
        #[tokio::test]
        async fn signs_in_lists_calls_and_refreshes_with_everything_over_stdio() {
            signs_in_lists_calls_and_refreshes($driver, EverythingStdio).await;
        }
        #[tokio::test]
        async fn signs_in_lists_calls_and_refreshes_with_a_2026_backend_over_http() {
            signs_in_lists_calls_and_refreshes($driver, ModernHttp).await;
        }
        #[tokio::test]
        async fn signs_in_lists_calls_and_refreshes_with_a_2026_backend_over_stdio() {
            signs_in_lists_calls_and_refreshes($driver, ModernStdio).await;
        }
        #[tokio::test]
        async fn steps_up_with_everything_over_http() {
            steps_up($driver, EverythingHttp).await;
        }
        #[tokio::test]
        async fn steps_up_with_a_2026_backend_over_stdio() {
            steps_up($driver, ModernStdio).await;
        }
        #[tokio::test]
        async fn steps_up_on_the_aggregate_with_everything_over_http() {
            $crate::clients::scenarios::steps_up_on_the_aggregate($driver, EverythingHttp).await;
        }
        #[tokio::test]
        async fn answers_a_servers_question_with_everything_over_http() {
            $crate::clients::scenarios::answers_a_servers_question($driver, EverythingHttp).await;
        }
        #[tokio::test]
        async fn answers_a_servers_question_with_everything_over_stdio() {
            $crate::clients::scenarios::answers_a_servers_question($driver, EverythingStdio).await;
        }
        #[tokio::test]
        async fn answers_a_servers_question_with_a_2026_backend_over_http() {
            $crate::clients::scenarios::answers_a_servers_question($driver, ModernHttp).await;
        }
        #[tokio::test]
        async fn answers_a_servers_question_with_a_2026_backend_over_stdio() {
            $crate::clients::scenarios::answers_a_servers_question($driver, ModernStdio).await;
        }
        #[tokio::test]
        async fn meets_everything_itself_over_stdio() {
            $crate::clients::scenarios::meets_the_backend_itself($driver, EverythingStdio).await;
        }
        #[tokio::test]
        async fn meets_a_2026_backend_itself_over_stdio() {
            $crate::clients::scenarios::meets_the_backend_itself($driver, ModernStdio).await;
        }
        #[tokio::test]
        async fn calls_beyond_the_basic_scope_with_everything_over_http() {
            $crate::clients::scenarios::calls_beyond_the_basic_scope($driver, EverythingHttp).await;
        }
    };
}
pub(crate) use client_tests;

/// The CIMD sign-in test for `$driver`.
macro_rules! cimd_test {
    ($driver:expr) => {
        #[tokio::test]
        async fn signs_in_with_a_client_id_metadata_document() {
            $crate::clients::scenarios::signs_in_with_a_client_id_metadata_document(
                $driver,
                $crate::clients::Backend::EverythingHttp,
            )
            .await;
        }
    };
}
pub(crate) use cimd_test;
