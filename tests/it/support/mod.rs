//! Shared test helpers: real peers started by `scripts/test.sh`, reached through the environment.

/// The upstream OpenID provider and a scripted browser that signs in at it.
pub mod idp;
