//! The authorization server's capabilities: what the OAuth core needs, handed in once at
//! construction. It knows no HTTP and no gateway; time is a parameter of every operation.

use std::collections::HashMap;
use std::sync::Arc;

use super::access::AccessPolicy;
use super::cimd::Clients;
use super::resource::Resources;
use super::revocation::RevocationView;
use super::tokens::KeySet;
use super::upstream_tokens::UpstreamTokenKeeper;
use crate::audit::Auditor;
use crate::config::TokenSettings;
use crate::crypto::Secrets;
use crate::paths::PublicUrl;
use crate::store::DynStore;
use crate::upstream::Providers;

/// How long what the authorization server issues lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub access: chrono::Duration,
    pub refresh: chrono::Duration,
    /// How long a rotated refresh token still answers a concurrent duplicate refresh.
    pub refresh_grace: chrono::Duration,
    pub code: chrono::Duration,
    /// From `/authorize` to finishing the upstream sign-in.
    pub flow: chrono::Duration,
    /// From the sign-in to the moment no token of it is good any more, refreshes included.
    pub session: chrono::Duration,
}

/// How long after a refusal at the gateway a refresh of the grant answers the step-up (clients
/// that refresh on a 403 do it at once).
const STEP_UP_WINDOW: chrono::Duration = chrono::Duration::minutes(2);

impl Lifetimes {
    /// The step-up window (see [`crate::store::Store::request_step_up`]).
    pub fn step_up(&self) -> chrono::Duration {
        STEP_UP_WINDOW
    }

    /// What the periodic purge keeps: a redeemed code until the tokens it gave have expired,
    /// a rotated token's successor through the grace window, step-up requests through theirs,
    /// audit events for `audit` (or always).
    /// What the periodic purge keeps: `audit` events and `unused_clients` as configured.
    pub fn retention(
        &self,
        audit: Option<chrono::Duration>,
        unused_clients: Option<chrono::Duration>,
    ) -> Retention {
        Retention {
            redeemed_codes: self.access + self.code,
            refresh_grace: self.refresh_grace,
            step_up: STEP_UP_WINDOW,
            audit,
            // The clock skew a token check allows, with room to spare.
            dead_grants: Some(self.access + chrono::Duration::minutes(2)),
            unused_clients,
        }
    }
}

use crate::config::chrono_duration;
use crate::store::Retention;

impl From<&TokenSettings> for Lifetimes {
    fn from(tokens: &TokenSettings) -> Self {
        Self {
            access: chrono_duration(tokens.access_ttl),
            refresh: chrono_duration(tokens.refresh_ttl),
            refresh_grace: chrono_duration(tokens.refresh_grace),
            code: chrono_duration(tokens.code_ttl),
            flow: chrono_duration(tokens.flow_ttl),
            session: chrono_duration(tokens.session_ttl),
        }
    }
}

/// Everything the OAuth core works with: the authorize, consent and callback steps, the grants,
/// revocation and introspection all take `&AuthorizationServer`.
pub struct AuthorizationServer {
    pub public: PublicUrl,
    pub store: DynStore,
    /// Registered clients and clients identified by a metadata document.
    pub clients: Arc<Clients>,
    /// How long an approval spares the consent page (zero: always ask).
    pub remember_consent: chrono::Duration,
    pub secrets: Secrets,
    pub keys: Arc<KeySet>,
    pub providers: Providers,
    /// Who may sign in through each provider, and what each person may be granted.
    pub access: Arc<AccessPolicy>,
    /// The providers' logos (`data:` URLs), by provider id.
    pub logos: HashMap<String, String>,
    pub resources: Arc<Resources>,
    pub revocations: Arc<RevocationView>,
    pub auditor: Auditor,
    pub lifetimes: Lifetimes,
    pub upstream: UpstreamTokenKeeper,
}

impl AuthorizationServer {
    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        self.public.issuer()
    }
}
