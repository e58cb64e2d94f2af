//! The composition root: every part of the running application, built once at start-up. Only
//! `http/` and start-up see it; the core parts (oauth, gateway, upstream, store, audit) are each
//! built with the few capabilities they use and never import this module.

use std::ops::Deref;
use std::sync::Arc;

use crate::audit::Auditor;
use crate::clock::Clock;
use crate::cluster::Redis;
use crate::config::Settings;
use crate::gateway::Gateway;
use crate::gateway::api_keys::ApiKeyVerifier;
use crate::oauth::revocation::RevocationView;
use crate::oauth::server::AuthorizationServer;
use crate::oauth::tokens::KeySet;
use crate::paths::PublicUrl;
use crate::ratelimit::RateLimits;
use crate::store::DynStore;

/// Cheap to clone: one `Arc` around the parts.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

/// The parts of the application.
pub struct AppParts {
    pub settings: Settings,
    pub public: PublicUrl,
    pub store: DynStore,
    pub keys: Arc<KeySet>,
    /// The OAuth core.
    pub auth: Arc<AuthorizationServer>,
    /// The MCP endpoints and the backends behind them.
    pub gateway: Arc<Gateway>,
    pub revocations: Arc<RevocationView>,
    /// Where audit events go: the database and the `audit` log target.
    pub auditor: Auditor,
    pub clock: Clock,
    /// Redis, when configured.
    pub redis: Option<Redis>,
    pub limits: Arc<RateLimits>,
    /// Verdicts on API keys, forgotten when another instance publishes a change.
    pub api_keys: ApiKeyVerifier,
}

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

impl Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}
