//! The integration suite: one test binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Generates `sqlite::<case>` and `postgres::<case>` tests from `async fn case(db: Db)`.
macro_rules! on_both {
    ($($case:ident),+ $(,)?) => {
        /// Each case on SQLite.
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(crate::support::app::Db::Sqlite).await; })+
        }
        /// Each case on Postgres.
        mod postgres {
            $(#[tokio::test] async fn $case() { super::$case(crate::support::app::Db::Postgres).await; })+
        }
    };
}

/// API keys on the MCP endpoints.
mod api_keys;
/// `portcullis audit` as an operator runs it.
mod audit_cli;
/// Clients identified by a metadata document; dynamic registration as real clients use it.
mod cimd;
/// The `portcullis` command: configuration layering and its messages.
mod cli;
/// The real MCP clients, unmodified, against a 2025-era and a 2026-era backend.
mod clients;
/// Several instances as one through Redis: revocations, shared limits, Redis outages.
mod cluster;
/// Dockerfile, docker-compose.yml and deploy/: accepted by Compose, agreeing with the code.
mod deploy;
/// The development sign-in, the upstream refresh, a public URL with a path.
mod edges;
/// server-everything spoken to directly, proving the helpers.
mod everything;
/// Faults: `kill -9`, two instances behind a proxy, the database stopped and started.
mod faults;
/// The whole sign-in, as an MCP client that knows only a URL.
mod flow;
/// The MCP endpoints: proxy, aggregate, audit.
mod gateway;
/// `kind = "github"` against a stand-in for GitHub.
mod github;
/// The test IdP on its own.
mod idp;
/// What real clients send, accepted as they send it.
mod leniency;
/// Rate limits per address on the OAuth endpoints and per person on the MCP endpoints.
mod limits;
/// `/metrics` and `/health/backends`: where they are served, what they count; the dashboard.
mod metrics;
/// Attacks and malformed requests: the RFC error, nothing changed.
mod negative;
/// A REST API described by OpenAPI (a FastAPI app) as governed MCP tools.
mod openapi;
/// Who may sign in and what each person may do: admission, identities, roles, refresh.
mod people;
/// `portcullis users`, `grants` and `clients` as an operator runs them.
mod people_cli;
/// Provider presets shaped like the providers they stand for.
mod presets;
/// The TypeScript MCP SDK's client signing in by itself.
mod sdk_client;
/// The TypeScript MCP SDK client through the gateway to server-everything.
mod sdk_gateway;
/// Stdio backend processes: per user or shared, supervised.
mod stdio;
/// Stdio backends behind the gateway.
mod stdio_gateway;
/// Step-up for clients that refresh when refused a scope.
mod step_up;
/// The store conformance suite, on SQLite and Postgres.
mod store;
/// What the tests share: databases, the IdP, the app, real MCP peers.
mod support;
/// Trace context from the caller to the backends and the audit row; spans over OTLP.
mod tracing;
/// Tokens of a trusted external issuer on the MCP endpoints.
mod trusted;

/// Runs first (the harness starts tests in name order, and `_` sorts before letters): without
/// node, the node modules of scripts/idp, scripts/mcp and scripts/clients, or the virtualenvs of
/// the Python SDK and the OpenAPI tests' FastAPI app, the run stops here, with one message saying what is missing and to run
/// scripts/test.sh, before the tests that need them.
#[test]
fn _prerequisites() {
    use support::prereq::{Need, require};
    require(&[Need::Idp, Need::Mcp, Need::Clients, Need::OpenApi]);
}
