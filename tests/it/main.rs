//! Portcullis' integration tests: one binary, one module per area (see STYLE.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

/// The test IdP (scripts/idp) itself, before any Portcullis flow relies on it.
mod idp;
