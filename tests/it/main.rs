//! The integration suite: one test binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod edges;
mod flow;
mod gateway;
mod idp;
mod negative;
mod stdio;
mod store;
mod support;
