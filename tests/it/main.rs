//! The integration suite: one test binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_cli;
mod cli;
mod edges;
mod everything;
mod flow;
mod gateway;
mod idp;
mod negative;
mod sdk_client;
mod sdk_gateway;
mod stdio;
mod stdio_gateway;
mod store;
mod support;
