//! Portcullis: an OAuth 2.1 authorization-server proxy and gateway for MCP servers.
//!
//! The modules, roughly in the order a request meets them:

/// `portcullis users`, `grants`, `clients`: the operator's commands on people, grants, clients.
pub mod admin;
/// The audit trail: events, pluggable sinks, the background writer, `portcullis audit`.
pub mod audit;
/// The one place the time is read.
pub mod clock;
/// Redis, when configured: events, locks and caches shared by instances.
pub mod cluster;
/// Typed settings: embedded defaults, then a TOML file, then the environment.
pub mod config;
/// Fernet encryption at rest, random tokens, hashes, PKCE.
pub mod crypto;
/// The MCP endpoint: token check and the tools behind it.
pub mod gateway;
/// The HTTP surface: routes and thin handlers.
pub mod http;
/// The OAuth protocol core: authorize, consent, callback, grants, tokens, metadata.
pub mod oauth;
/// OpenAPI documents as MCP tool definitions, with the plan for calling each operation.
pub mod openapi;
/// Route paths shared by the router and the discovery documents.
pub mod paths;
/// Rate limits per client address, person, client and API key.
pub mod ratelimit;
/// Binding, building the state, serving, and shutting down.
pub mod startup;
/// What every handler shares.
pub mod state;
/// Storage behind one trait, with SQLite and Postgres implementations.
pub mod store;
/// The plain-text tables the operator's commands print.
pub mod table;
/// Logging set-up, with `audit` and `security` targets.
pub mod telemetry;
/// Upstream identity providers (OpenID Connect, development sign-in).
pub mod upstream;
