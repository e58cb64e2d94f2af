//! The integration suite: one test binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod edges;
mod everything;
mod flow;
mod idp;
mod negative;
mod sdk_client;
mod store;
mod support;
