//! What the integration tests share: fresh databases, the test IdP, the running app, and real
//! MCP peers (a recording backend, server-everything, the TypeScript SDK client).

pub mod app;
pub mod db;
pub mod everything;
pub mod idp;
pub mod recorder;
pub mod sdk;
