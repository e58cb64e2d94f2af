//! The OAuth protocol core. No HTTP types here: handlers pass in parameters and `now`, and get
//! back typed outcomes or RFC-shaped errors.

/// Who may come in and what each person may do: admission, roles, entitlements.
pub mod access;
/// API keys: their format, issuing one, and what its owner may do now.
pub mod api_keys;
/// The authorization request: validated, then recorded as a flow bound to the browser.
pub mod authorize;
/// The upstream provider's redirect back: exchange, grant, the client's code.
pub mod callback;
/// Who a `client_id` is: registered, or a Client ID Metadata Document fetched from its URL.
pub mod cimd;
/// Client authentication at the token, revocation and introspection endpoints.
pub mod client_auth;
/// The provider-choice and consent steps.
pub mod consent;
/// OAuth errors as the RFCs spell them, and why a browser step cannot go on.
pub mod error;
/// The token endpoint: one function per grant.
pub mod grants;
/// Token introspection (RFC 7662) and revocation (RFC 7009).
pub mod introspection;
/// Discovery documents (RFC 8414, RFC 9728).
pub mod metadata;
/// Form and query parameters, each allowed once.
pub mod params;
/// PKCE (RFC 7636), S256 only.
pub mod pkce;
/// Redirect URIs: what may be registered, exact matching, adding parameters.
pub mod redirect;
/// Dynamic client registration (RFC 7591).
pub mod registration;
/// The protected resources a token can be for (RFC 8707, RFC 9728).
pub mod resource;
/// The in-memory view of revoked grants and tokens the hot path reads.
pub mod revocation;
/// Scopes and `domain:resource:action` wildcards.
pub mod scope;
/// The capabilities the OAuth core is built with.
pub mod server;
/// The OAuth outcomes as function calls with a fixed `now`.
#[cfg(test)]
mod tests;
/// Portcullis' own access tokens: signing keys, issue, verify.
pub mod tokens;
/// The caller's upstream tokens: encrypted, refreshed when expired.
pub mod upstream_tokens;
