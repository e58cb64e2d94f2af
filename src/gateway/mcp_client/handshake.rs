//! How the client meets a backend: the 2026 probe (`server/discover`) that decides its era,
//! stateless requests to a modern backend, and a legacy backend's `initialize` and session.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Answer, CLIENT_PROTOCOL, McpHttpClient, Probed, Session};
use crate::gateway::connection::{
    CallContext, CallError, Notifications, relayed_client_capabilities,
};
use crate::gateway::era::{self, ServerFacts};

impl McpHttpClient {
    /// The grant's session, initializing one when there is none. Concurrent first calls of one
    /// grant wait for the same initialization.
    pub(super) async fn session(&self, ctx: &CallContext) -> Result<Session, CallError> {
        self.sessions
            .try_get_with(ctx.caller.claims.sid.clone(), self.initialize(ctx))
            .await
            .map_err(|error| (*error).clone())
    }

    /// The backend's era, probed when not known.
    pub(super) async fn probed(&self, ctx: &CallContext) -> Result<Probed, CallError> {
        self.era
            .try_get_with((), self.probe(ctx))
            .await
            .map_err(|error| (*error).clone())
    }

    /// A modern `server/discover`: a `DiscoverResult` with a version the gateway speaks makes
    /// the backend modern; any other answer but a modern error makes it legacy. Failures to
    /// reach it or to be let in are errors, not verdicts.
    async fn probe(&self, ctx: &CallContext) -> Result<Probed, CallError> {
        let version = era::MODERN_VERSIONS[0];
        let discover = json!({
            "jsonrpc": "2.0",
            "id": self.next_id.fetch_add(1, Ordering::Relaxed),
            "method": "server/discover",
            "params": era::with_modern_meta(None, version, &json!({})),
        });
        let answer = self.post(ctx, None, Some(version), &discover, None).await;
        let probed = match answer {
            Ok(Some(Answer::Result { message, .. })) => message
                .get("result")
                .and_then(ServerFacts::from_discover)
                .map_or(Probed::Legacy, Probed::Modern),
            Ok(Some(Answer::Refused(status)))
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
            {
                return Err(CallError::Unavailable(format!(
                    "the backend refused the gateway: HTTP {status}"
                )));
            }
            Err(CallError::Rpc { code, .. }) if code == era::UNSUPPORTED_PROTOCOL_VERSION => {
                return Err(CallError::Unavailable(
                    "the backend speaks no MCP revision that Portcullis speaks".into(),
                ));
            }
            Ok(_) | Err(CallError::Rpc { .. }) => Probed::Legacy,
            Err(error) => return Err(error),
        };
        tracing::debug!(backend = %self.settings.id, modern = matches!(probed, Probed::Modern(_)), "probed the backend's MCP era");
        Ok(probed)
    }

    /// A stateless request to a modern backend.
    pub(super) async fn modern_request(
        &self,
        ctx: &CallContext,
        facts: &ServerFacts,
        method: &str,
        params: Option<Value>,
        notifications: Option<&Notifications>,
    ) -> Result<Value, CallError> {
        let message = json!({
            "jsonrpc": "2.0",
            "id": self.next_id.fetch_add(1, Ordering::Relaxed),
            "method": method,
            "params": era::with_modern_meta(params, &facts.version, &ctx.client_capabilities),
        });
        let answer = self
            .post(ctx, None, Some(&facts.version), &message, notifications)
            .await;
        match answer {
            Ok(Some(Answer::Result { mut message, .. })) => Ok(message
                .get_mut("result")
                .map(Value::take)
                .unwrap_or(Value::Null)),
            Ok(Some(Answer::Refused(status))) => {
                // Perhaps no longer the server that was probed: probe again next time.
                self.era.invalidate(&()).await;
                Err(CallError::Unavailable(format!(
                    "the backend answered HTTP {status}"
                )))
            }
            Err(error @ CallError::Rpc { code, .. })
                if code == era::UNSUPPORTED_PROTOCOL_VERSION =>
            {
                self.era.invalidate(&()).await;
                Err(error)
            }
            Err(error) => Err(error),
            Ok(_) => Err(CallError::Unavailable("the backend did not answer".into())),
        }
    }

    async fn initialize(&self, ctx: &CallContext) -> Result<Session, CallError> {
        let initialize = json!({
            "jsonrpc": "2.0",
            "id": self.next_id.fetch_add(1, Ordering::Relaxed),
            "method": "initialize",
            "params": {
                "protocolVersion": CLIENT_PROTOCOL,
                "capabilities": relayed_client_capabilities(),
                "clientInfo": { "name": "portcullis", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let answer = self.post(ctx, None, None, &initialize, None).await?;
        let Some(Answer::Result {
            message: result,
            session: id,
        }) = answer
        else {
            return Err(CallError::Unavailable(
                "the backend did not answer initialize".into(),
            ));
        };
        let facts = ServerFacts::from_initialize(result.get("result").unwrap_or(&Value::Null));
        let session = Session {
            id,
            protocol: result
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(CLIENT_PROTOCOL)
                .to_owned(),
            facts,
        };
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        self.post(ctx, Some(&session), None, &initialized, None)
            .await?;
        Ok(session)
    }
}
