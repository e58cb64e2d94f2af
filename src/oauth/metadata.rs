//! Discovery documents: RFC 8414 authorization-server metadata (also served as OpenID
//! configuration, which several MCP clients probe first) and RFC 9728 protected-resource metadata.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::client_auth::AuthMethod;
use super::grants::GrantType;
use super::resource::Resource;
use super::server::AuthorizationServer;
use crate::paths;

/// RFC 8414 §2.
pub fn authorization_server(server: &AuthorizationServer) -> Value {
    let scopes: BTreeSet<&str> = server
        .resources
        .all()
        .iter()
        .flat_map(|r| r.scopes_supported.iter().map(String::as_str))
        .collect();
    let auth_methods = AuthMethod::ALL.map(AuthMethod::as_str);
    json!({
        "issuer": server.issuer(),
        "authorization_endpoint": server.public.url(paths::AUTHORIZE),
        "token_endpoint": server.public.url(paths::TOKEN),
        "registration_endpoint": server.public.url(paths::REGISTER),
        "revocation_endpoint": server.public.url(paths::REVOKE),
        "introspection_endpoint": server.public.url(paths::INTROSPECT),
        "jwks_uri": server.public.url(paths::JWKS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
        // draft-ietf-oauth-client-id-metadata-document §6; with `none` among the token
        // endpoint's methods (above), claude.ai uses it instead of registering.
        "client_id_metadata_document_supported": server.clients.documents_supported(),
        // For clients that read this document as OpenID configuration.
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// RFC 9728 §2 metadata of one protected resource.
pub fn protected_resource(server: &AuthorizationServer, resource: &Resource) -> Value {
    json!({
        "resource": resource.uri,
        "authorization_servers": [server.issuer()],
        "scopes_supported": resource.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": "Portcullis MCP gateway",
    })
}
