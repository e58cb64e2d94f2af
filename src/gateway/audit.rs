//! One record per proxied call: who, which backend and tool, the decision, the outcome, how
//! long it took and how much came back.

use tokio::time::Instant;

use super::auth::Caller;
use crate::state::AppState;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The backend answered with a JSON-RPC error or a tool error.
    Error,
    Timeout,
    Unavailable,
    TooLarge,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::TooLarge => "too_large",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A call being proxied, recorded once when it ends.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub backend: String,
    pub tool: Option<String>,
    pub user_id: String,
    pub user_email: Option<String>,
    pub client_id: String,
    pub request_id: String,
}

impl CallRecord {
    pub fn new(backend: &str, caller: &Caller, request_id: &str) -> Self {
        Self {
            backend: backend.to_owned(),
            tool: None,
            user_id: caller.claims.sub.clone(),
            user_email: caller.claims.email.clone(),
            client_id: caller.claims.client_id.clone(),
            request_id: request_id.to_owned(),
        }
    }

    /// The call was refused before it reached the backend.
    pub fn deny(&self, _state: &AppState, reason: &str) {
        tracing::info!(
            target: "audit", event = "tool_call", decision = "denied", reason,
            backend = %self.backend, tool = self.tool.as_deref().unwrap_or("-"),
            user_id = %self.user_id, user_email = self.user_email.as_deref().unwrap_or("-"),
            client_id = %self.client_id, request_id = %self.request_id,
        );
    }

    /// The call reached the backend and ended with `outcome`.
    pub fn finish(
        &self,
        _state: &AppState,
        _tool_failed: Option<bool>,
        outcome: Outcome,
        started: Instant,
        response_bytes: usize,
    ) {
        tracing::info!(
            target: "audit", event = "tool_call", decision = "allowed", outcome = outcome.as_str(),
            backend = %self.backend, tool = self.tool.as_deref().unwrap_or("-"),
            user_id = %self.user_id, client_id = %self.client_id, request_id = %self.request_id,
            latency_ms = started.elapsed().as_millis() as u64, response_bytes,
        );
    }
}
