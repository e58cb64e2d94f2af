//! What the integration tests share: fresh databases, the test IdP, the running app, and real
//! MCP peers (a recording backend, server-everything, the TypeScript SDK client). The peers a
//! test process shares (the IdP, Postgres) come from `scripts/test.sh`'s `TEST_*` variables when
//! set, and are otherwise started once per process on first use; `prereq` stops the process with
//! one message when what they need is not installed.

/// The running app, driven as a browser and an MCP client would.
pub mod app;
/// The other real MCP clients (TypeScript SDK 2.x, Python SDK 2.x, mcp-remote, the Inspector,
/// the conformance suite) and the 2026-era backend.
pub mod clients;
/// Fresh databases, and the Postgres server they live on.
pub mod db;
/// server-everything over Streamable HTTP or stdio.
pub mod everything;
/// A local stand-in for GitHub's OAuth and REST endpoints.
pub mod github;
/// The test OpenID provider and a scripted browser for it.
pub mod idp;
/// A backend that speaks only MCP 2026-07-28, over Streamable HTTP.
pub mod modern;
/// The FastAPI app behind the OpenAPI tests, served by uvicorn.
pub mod openapi;
/// Postgres and Redis of a test's own, to stop and start again.
pub mod outage;
/// What the suite needs on the machine, checked once.
pub mod prereq;
/// Portcullis as a separate process, and a round-robin proxy in front of several.
pub mod process;
/// A backend that records every request it receives.
pub mod recorder;
/// Redis: the shared test server, and private ones a test stops and starts.
pub mod redis;
/// The TypeScript MCP SDK client.
pub mod sdk;
