//! The one gate every MCP message passes, on every MCP endpoint: after the message is parsed
//! and routed, one step decides whether the caller may send it, and a refusal is audited once.
//! Later policy (roles, API keys, rate limits, header routing) plugs in here.

use std::sync::Arc;

use super::audit::CallRecord;
use super::backend::Backend;
use super::caller::Caller;
use super::error::GatewayError;
use super::message::{Method, Request};
use crate::audit::Auditor;
use crate::clock::Clock;
use crate::oauth::access::AccessPolicy;
use crate::store::{AuditEvent, AuditKind, Decision, DynStore};

/// Where a request goes, as its endpoint resolved it.
#[derive(Debug, Clone)]
pub enum Route<'a> {
    /// Protocol housekeeping and lists answered by the endpoint itself.
    Endpoint,
    /// A tool Portcullis serves itself: it tells callers about themselves, so needs no scope.
    Builtin(&'a str),
    /// A backend; `tool` is the backend's own name of the tool called, if one is.
    Backend {
        backend: &'a Arc<Backend>,
        tool: Option<&'a str>,
    },
    /// Nothing here serves it (an unknown tool, a method this endpoint does not offer): the
    /// endpoint answers with its error.
    Nowhere(GatewayError),
}

/// Authorizes requests and records refusals.
#[derive(Clone)]
pub struct Gate {
    auditor: Auditor,
    clock: Clock,
    access: Arc<AccessPolicy>,
    store: DynStore,
}

impl Gate {
    pub fn new(auditor: Auditor, clock: Clock, access: Arc<AccessPolicy>, store: DynStore) -> Self {
        Self {
            auditor,
            clock,
            access,
            store,
        }
    }

    /// A record of one call to `backend`, finished when the call ends.
    pub fn record(&self, backend: &str, caller: &Caller, request_id: &str) -> CallRecord {
        CallRecord::new(
            self.auditor.clone(),
            self.clock.clone(),
            backend,
            caller,
            request_id,
        )
    }

    /// The scope a request to `route` requires, if any.
    fn required<'a>(request: &Request, route: &Route<'a>) -> Option<&'a str> {
        match (&request.method, route) {
            (Method::Initialize | Method::Discover | Method::Ping | Method::ToolsList, _) => None,
            (Method::ToolsCall { .. }, Route::Backend { backend, tool }) => {
                Some(backend.policy.required_scope(tool.unwrap_or_default()))
            }
            (Method::Other(_), Route::Backend { backend, .. }) => {
                Some(backend.policy.default_scope())
            }
            (_, Route::Endpoint | Route::Builtin(_) | Route::Nowhere(_)) => None,
        }
    }

    /// Decides whether `caller` may send `request` to `route`. A refusal is audited here,
    /// once, and answered by the endpoint with a step-up challenge; the caller's grant is
    /// marked for step-up first, so that a client which refreshes on the 403 (rather than
    /// authorizing again) is told to authorize again (see the refresh grant).
    pub async fn authorize(
        &self,
        caller: &Caller,
        request: &Request,
        route: &Route<'_>,
        request_id: &str,
    ) -> Result<(), GatewayError> {
        let Some(required) = Self::required(request, route) else {
            return Ok(());
        };
        if caller.holds(required) {
            return Ok(());
        }
        let Route::Backend { backend, tool } = route else {
            return Ok(());
        };
        match (&request.method, tool) {
            (Method::ToolsCall { .. }, Some(tool)) => {
                let mut record = self.record(backend.id(), caller, request_id);
                record.tool = Some((*tool).to_owned());
                record.deny(&format!("missing scope {required}"));
            }
            _ => self.auditor.record(
                AuditEvent::new(AuditKind::RequestDenied, Decision::Denied, self.clock.now())
                    .user(caller.claims.sub.clone(), caller.claims.email.as_deref())
                    .client(caller.claims.client_id.clone())
                    .reason(format!(
                        "missing scope {required} to use backend {}",
                        backend.id()
                    )),
            ),
        }
        if let Some(grant) = caller.grant()
            && let Err(error) = self
                .store
                .request_step_up(grant, required, self.clock.now())
                .await
        {
            tracing::warn!(%error, "recording a step-up request failed");
        }
        Err(GatewayError::Forbidden {
            required: required.to_owned(),
            roles: self
                .access
                .roles_granting(required)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        })
    }
}
