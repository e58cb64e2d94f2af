//! The OAuth protocol core. No HTTP types here: handlers pass in parameters and `now`, and get
//! back typed outcomes or RFC-shaped errors.

pub mod authorize;
pub mod callback;
pub mod client_auth;
pub mod consent;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod metadata;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod server;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod upstream_tokens;
