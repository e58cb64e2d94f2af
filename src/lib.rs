//! Portcullis: an OAuth 2.1 authorization-server proxy and gateway for MCP servers.
//!
//! The modules, in the order a request meets them:

/// Typed settings: embedded defaults, then a TOML file, then the environment.
pub mod config;
/// Fernet encryption at rest, random tokens, hashes, PKCE.
pub mod crypto;
/// Upstream identity providers (OIDC, development sign-in) behind one trait, and their registry.
pub mod upstream;
