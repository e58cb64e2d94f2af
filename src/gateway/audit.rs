//! One audit record per call through the gateway: who, which backend and tool, the decision,
//! the outcome, how long it took and how much came back.

use tokio::time::Instant;

use super::caller::Caller;
use crate::audit::Auditor;
use crate::clock::Clock;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::telemetry::metrics;

/// The longest client-supplied value (tool name, request id) an audit record keeps.
const MAX_RECORDED: usize = 200;

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

fn bounded(value: &str) -> String {
    value.chars().take(MAX_RECORDED).collect()
}

/// A call on its way through the gateway, recorded once when it is decided or ends.
#[derive(Clone)]
pub struct CallRecord {
    auditor: Auditor,
    clock: Clock,
    pub backend: String,
    pub tool: Option<String>,
    pub user_id: String,
    pub user_email: Option<String>,
    pub client_id: String,
    pub request_id: String,
    /// Taken when the call starts: a streamed answer ends outside the request's task.
    pub trace_id: Option<String>,
    /// A short note on how an allowed call went (`cache hit`), kept as the event's reason.
    pub detail: Option<&'static str>,
}

impl CallRecord {
    pub fn new(
        auditor: Auditor,
        clock: Clock,
        backend: &str,
        caller: &Caller,
        request_id: &str,
    ) -> Self {
        Self {
            auditor,
            clock,
            backend: backend.to_owned(),
            tool: None,
            user_id: caller.claims.sub.clone(),
            user_email: caller.claims.email.clone(),
            client_id: caller.claims.client_id.clone(),
            request_id: bounded(request_id),
            trace_id: crate::telemetry::trace::current_ids().map(|(_, trace_id)| trace_id),
            detail: None,
        }
    }

    fn event(&self, decision: Decision) -> AuditEvent {
        let mut event = AuditEvent::detached(AuditKind::ToolCall, decision, self.clock.now())
            .user(self.user_id.clone(), self.user_email.as_deref())
            .client(self.client_id.clone())
            .request_id(self.request_id.clone());
        event.trace_id.clone_from(&self.trace_id);
        event.backend = Some(self.backend.clone());
        event.tool = self.tool.as_deref().map(bounded);
        event
    }

    /// The call was refused before it reached the backend. Only tool calls are recorded: the
    /// rest of MCP's traffic (initialize, lists, notifications) calls nothing.
    pub fn deny(&self, reason: &str) {
        if let Some(tool) = &self.tool {
            metrics::tool_call_denied(&self.backend, tool);
            self.auditor
                .record(self.event(Decision::Denied).reason(reason));
        }
    }

    /// The call reached the backend and ended with `outcome` (tool calls only, as above).
    pub fn finish(&self, outcome: Outcome, started: Instant, response_bytes: usize) {
        let Some(tool) = &self.tool else {
            return;
        };
        let took = started.elapsed();
        metrics::tool_call(&self.backend, tool, outcome.as_str(), took);
        let mut event = self
            .event(Decision::Allowed)
            .outcome(outcome.as_str())
            .latency(took)
            .response_bytes(u64::try_from(response_bytes).unwrap_or(u64::MAX));
        if let Some(detail) = self.detail {
            event = event.reason(detail);
        }
        self.auditor.record(event);
    }
}
