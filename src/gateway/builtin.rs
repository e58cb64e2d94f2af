//! Tools Portcullis serves itself on `/mcp`. They only tell callers about themselves, so they
//! need no scope beyond the token.

use serde_json::{Value, json};

use super::caller::Caller;

/// The built-in tools, as listed on `/mcp`.
pub fn tools() -> Vec<Value> {
    vec![json!({
        "name": "whoami",
        "description": "Who is calling: the signed-in user, the client and the scopes granted.",
        "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
    })]
}

/// True when `name` is a built-in tool.
pub fn is_builtin(name: &str) -> bool {
    name == "whoami"
}

/// Runs a built-in tool; `None` when `name` is not one. The result is a `CallToolResult`.
pub fn call(name: &str, caller: &Caller) -> Option<Value> {
    match name {
        "whoami" => {
            let claims = &caller.claims;
            let body = json!({
                "user": claims.sub,
                "email": claims.email,
                "client_id": claims.client_id,
                "scopes": caller.scopes().collect::<Vec<_>>(),
                "audience": claims.aud,
                "session": claims.sid,
            });
            Some(json!({
                "content": [{ "type": "text", "text": body.to_string() }],
                "structuredContent": body,
                "isError": false,
            }))
        }
        _ => None,
    }
}
