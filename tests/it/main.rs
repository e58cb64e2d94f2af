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

/// Runs first (the harness starts tests in name order, and `_` sorts before letters): without
/// node or the node modules of scripts/idp and scripts/mcp, the run stops here, with one message
/// saying what is missing and to run scripts/test.sh, before the tests that need them.
#[test]
fn _prerequisites() {
    support::prereq::require(&[support::prereq::Need::Idp, support::prereq::Need::Mcp]);
}
