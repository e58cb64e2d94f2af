//! Everything a request handler needs, built once at start-up and shared.

use std::ops::Deref;
use std::sync::Arc;

use url::Url;

use crate::audit::Auditor;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::Secrets;
use crate::gateway::Gateway;
use crate::oauth::resource::Resources;
use crate::oauth::revocation::RevocationView;
use crate::oauth::tokens::KeySet;
use crate::store::{AuditEvent, AuditKind, Decision, DynStore};
use crate::upstream::Providers;

/// Cheap to clone: one `Arc` around the parts.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    /// The public base URL (may carry a path prefix).
    pub base: Url,
    /// The issuer identifier: the public base URL without a trailing slash (RFC 8414 §2).
    pub issuer: String,
    pub store: DynStore,
    pub secrets: Secrets,
    pub keys: KeySet,
    pub providers: Providers,
    pub resources: Resources,
    /// The backends behind `/mcp/{id}`.
    pub gateway: Gateway,
    pub revocations: RevocationView,
    /// Where audit events go: the database and the `audit` log target.
    pub auditor: Auditor,
    pub clock: Clock,
    /// For upstream calls: no redirects followed.
    pub http: reqwest::Client,
    /// True when served over https: cookies get `Secure` and the `__Host-` prefix.
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// `{issuer}{path}`: every advertised URL is built here, from configuration only.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Starts an audit event of `kind` at the current time.
    pub fn audit_event(&self, kind: AuditKind, decision: Decision) -> AuditEvent {
        AuditEvent::new(kind, decision, self.now())
    }
}

/// A reference to the state that does not keep it alive, for parts the state itself owns.
#[derive(Clone, Default)]
pub struct WeakState(std::sync::Weak<Inner>);

impl WeakState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl AppState {
    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.0))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
