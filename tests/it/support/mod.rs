//! What the integration tests share: fresh databases, the test IdP, the running app, and real
//! MCP peers (a recording backend, server-everything, the TypeScript SDK client). The peers a
//! test process shares (the IdP, Postgres) come from `scripts/test.sh`'s `TEST_*` variables when
//! set, and are otherwise started once per process on first use; `prereq` stops the process with
//! one message when what they need is not installed.

pub mod app;
pub mod db;
pub mod everything;
pub mod idp;
pub mod prereq;
pub mod recorder;
pub mod sdk;
