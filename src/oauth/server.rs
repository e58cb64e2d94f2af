//! The authorization server's capabilities: what the OAuth core needs, handed in once at
//! construction. It knows no HTTP and no gateway; time is a parameter of every operation.

use std::collections::HashMap;
use std::sync::Arc;

use super::resource::Resources;
use super::revocation::RevocationView;
use super::tokens::KeySet;
use super::upstream_tokens::UpstreamTokenKeeper;
use crate::audit::Auditor;
use crate::config::{ProviderSettings, TokenSettings};
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
}

use crate::config::chrono_duration;

impl From<&TokenSettings> for Lifetimes {
    fn from(tokens: &TokenSettings) -> Self {
        Self {
            access: chrono_duration(tokens.access_ttl),
            refresh: chrono_duration(tokens.refresh_ttl),
            refresh_grace: chrono_duration(tokens.refresh_grace),
            code: chrono_duration(tokens.code_ttl),
            flow: chrono_duration(tokens.flow_ttl),
        }
    }
}

/// Everything the OAuth core works with: the authorize, consent and callback steps, the grants,
/// revocation and introspection all take `&AuthorizationServer`.
pub struct AuthorizationServer {
    pub public: PublicUrl,
    pub store: DynStore,
    pub secrets: Secrets,
    pub keys: Arc<KeySet>,
    pub providers: Providers,
    /// The most a sign-in through each provider may grant (scope patterns), by provider id.
    pub grant_limits: HashMap<String, Vec<String>>,
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

    /// The scope patterns a sign-in through `provider_id` may receive (none for an unknown id).
    pub fn may_grant(&self, provider_id: &str) -> &[String] {
        self.grant_limits
            .get(provider_id)
            .map_or(&[], Vec::as_slice)
    }
}

/// The grant limits of the configured providers.
pub fn grant_limits(providers: &[ProviderSettings]) -> HashMap<String, Vec<String>> {
    providers
        .iter()
        .map(|p| (p.id.clone(), p.grant_scopes.clone()))
        .collect()
}
