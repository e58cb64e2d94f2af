//! Tools Portcullis serves itself.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::auth::Caller;

/// The built-in tools: `whoami`.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinTools;

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

fn caller(context: &RequestContext<RoleServer>) -> Option<Caller> {
    context
        .extensions
        .get::<axum::http::request::Parts>()?
        .extensions
        .get::<Caller>()
        .cloned()
}

impl ServerHandler for BuiltinTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("portcullis", env!("CARGO_PKG_VERSION")))
            .with_instructions("Tools behind the Portcullis gateway.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![whoami_tool()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        match request.name.as_ref() {
            "whoami" => {
                let caller = caller(&context).ok_or_else(|| {
                    ErrorData::internal_error("the caller is not authenticated", None)
                })?;
                let claims = &caller.claims;
                let body = serde_json::json!({
                    "user": claims.sub,
                    "client_id": claims.client_id,
                    "scopes": caller.scopes().collect::<Vec<_>>(),
                    "audience": claims.aud,
                    "session": claims.sid,
                    "email": claims.email,
                });
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(body.to_string())]);
                result.structured_content = Some(body);
                Ok(result.into())
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool: {other}"),
                None,
            )),
        }
    }
}
