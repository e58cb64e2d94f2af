//! Tools Portcullis serves itself on `/mcp`.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, Tool};

use super::auth::Caller;

fn whoami_tool() -> Tool {
    let schema =
        serde_json::json!({ "type": "object", "properties": {}, "additionalProperties": false });
    let schema = match schema {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Tool::new(
        "whoami",
        "Who is calling: the signed-in user, the client and the scopes granted.",
        Arc::new(schema),
    )
}

/// The built-in tools, as listed on `/mcp`.
pub fn tools() -> Vec<Tool> {
    vec![whoami_tool()]
}

/// Runs a built-in tool; `None` when `name` is not one. They need no scope beyond the token:
/// they only tell callers about themselves.
pub fn call(name: &str, caller: &Caller) -> Option<Result<CallToolResponse, ErrorData>> {
    match name {
        "whoami" => {
            let claims = &caller.claims;
            let body = serde_json::json!({
                "user": claims.sub,
                "email": claims.email,
                "client_id": claims.client_id,
                "scopes": caller.scopes().collect::<Vec<_>>(),
                "audience": claims.aud,
                "session": claims.sid,
            });
            let mut result = CallToolResult::success(vec![ContentBlock::text(body.to_string())]);
            result.structured_content = Some(body);
            Some(Ok(result.into()))
        }
        _ => None,
    }
}
