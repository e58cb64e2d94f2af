//! Access tokens of trusted external issuers (`[[trusted_issuers]]`): JWTs an organisation's own
//! identity provider issued to its services, accepted on the MCP endpoints.
//!
//! Only asymmetric algorithms; a token's `alg` must be one the issuer is configured for and the
//! one its key names; `iss` and `aud` are compared exactly; `exp` is required. Keys come from
//! the issuer's JWKS (by discovery, or `jwks_uri`), kept in memory and fetched again when a
//! token names an unknown `kid`, at most once a minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use super::caller::Caller;
use crate::cluster::Redis;
use crate::config::{ScopeClaim, TrustedIssuer};
use crate::oauth::access::AccessPolicy;
use crate::oauth::tokens::AccessClaims;

/// The least time between two fetches of one issuer's keys.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a set one instance fetched serves the others (through Redis).
const SHARED_FOR: Duration = Duration::from_secs(600);

/// Why a token of a trusted issuer was refused. Answered like any other bad token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForeignTokenError {
    #[error("no key of {0} matches the token")]
    UnknownKey(String),
    #[error("the token's algorithm is not allowed for {0}")]
    Algorithm(String),
    #[error("the keys of {0} could not be fetched")]
    Keys(String),
    #[error("the token of {issuer} is invalid: {reason}")]
    Invalid { issuer: String, reason: String },
}

/// One issuer with its keys.
struct Issuer {
    settings: TrustedIssuer,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    set: Option<Arc<JwkSet>>,
    fetched_at: Option<Instant>,
}

/// The trusted issuers.
#[derive(Clone)]
pub struct TrustedIssuers {
    issuers: Arc<Vec<Issuer>>,
    access: Arc<AccessPolicy>,
    http: reqwest::Client,
    /// With Redis, a key set one instance fetched serves the others.
    redis: Option<Redis>,
}

impl TrustedIssuers {
    /// The same issuers, sharing fetched key sets with the other instances through `redis`.
    pub fn shared_through(mut self, redis: Option<Redis>) -> Self {
        self.redis = redis;
        self
    }

    pub fn new(
        issuers: &[TrustedIssuer],
        access: Arc<AccessPolicy>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            issuers: Arc::new(
                issuers
                    .iter()
                    .map(|settings| Issuer {
                        settings: settings.clone(),
                        keys: Mutex::default(),
                    })
                    .collect(),
            ),
            access,
            http,
            redis: None,
        }
    }

    /// The trusted issuer a token claims to come from (read before any check: it only picks
    /// which keys and rules to check it with).
    fn issuer_of(&self, token: &str) -> Option<&Issuer> {
        if self.issuers.is_empty() {
            return None;
        }
        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
        let iss = claims.get("iss")?.as_str()?;
        self.issuers.iter().find(|i| i.settings.issuer == iss)
    }

    /// `None` when the token does not name a trusted issuer; else its caller or the refusal.
    pub async fn verify(
        &self,
        token: &str,
        issuer_uri: &str,
        now: DateTime<Utc>,
    ) -> Option<Result<Caller, ForeignTokenError>> {
        let issuer = self.issuer_of(token)?;
        Some(self.verify_with(issuer, token, issuer_uri, now).await)
    }

    async fn verify_with(
        &self,
        issuer: &Issuer,
        token: &str,
        portcullis: &str,
        now: DateTime<Utc>,
    ) -> Result<Caller, ForeignTokenError> {
        let settings = &issuer.settings;
        let invalid = |reason: String| ForeignTokenError::Invalid {
            issuer: settings.id.clone(),
            reason,
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if !settings.algorithms.contains(&header.alg) {
            return Err(ForeignTokenError::Algorithm(settings.id.clone()));
        }
        let key = self.key(issuer, header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| invalid(e.to_string()))?;
        let claims = data.claims;
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now.timestamp() + 30)
        {
            return Err(invalid("not yet valid".into()));
        }
        let subject = claims
            .get(&settings.subject_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("no `{}` claim", settings.subject_claim)))?;
        let client = ["client_id", "azp"]
            .iter()
            .find_map(|name| claims.get(*name).and_then(Value::as_str))
            .unwrap_or(subject);
        let tag = format!("issuer:{}", settings.id);
        let mut caller = Caller::new(AccessClaims {
            iss: portcullis.to_owned(),
            sub: format!("{}:{subject}", settings.id),
            aud: settings.audience.clone(),
            client_id: format!("{tag}:{client}"),
            scope: scopes(&claims, settings.scope_claim).join(" "),
            exp: claims
                .get("exp")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            iat: claims
                .get("iat")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            jti: claims
                .get("jti")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            sid: tag,
            email: settings
                .email_claim
                .as_ref()
                .and_then(|name| claims.get(name))
                .and_then(Value::as_str)
                .map(str::to_lowercase),
        });
        if self.access.uses_roles() {
            let roles = self.access.roles_of_claims(&settings.claim_roles, &claims);
            caller = caller.within(self.access.entitlement_of_roles("", &roles));
        }
        Ok(caller)
    }

    /// The key `kid` of `issuer` for `alg`, fetching the JWKS when it is unknown (at most once
    /// a minute).
    async fn key(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, ForeignTokenError> {
        let id = &issuer.settings.id;
        let mut keys = issuer.keys.lock().await;
        let known = keys.set.as_ref().and_then(|set| find(set, kid).cloned());
        let jwk = match known {
            Some(jwk) => jwk,
            None => {
                let due = keys
                    .fetched_at
                    .is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL);
                if !due {
                    return Err(ForeignTokenError::UnknownKey(id.clone()));
                }
                keys.fetched_at = Some(Instant::now());
                let set = match self.shared_set(id, kid).await {
                    Some(set) => set,
                    None => {
                        let set = self.fetch(&issuer.settings).await.map_err(|error| {
                            tracing::warn!(issuer = %id, %error, "fetching a trusted issuer's keys failed");
                            ForeignTokenError::Keys(id.clone())
                        })?;
                        self.share(id, &set).await;
                        set
                    }
                };
                keys.set = Some(Arc::new(set));
                keys.set
                    .as_ref()
                    .and_then(|set| find(set, kid).cloned())
                    .ok_or_else(|| ForeignTokenError::UnknownKey(id.clone()))?
            }
        };
        // A key that names its algorithm is used with that algorithm only.
        if let Some(named) = jwk.common.key_algorithm
            && format!("{named:?}") != format!("{alg:?}")
        {
            return Err(ForeignTokenError::Algorithm(id.clone()));
        }
        DecodingKey::from_jwk(&jwk).map_err(|_| ForeignTokenError::UnknownKey(id.clone()))
    }

    /// A key set of issuer `id` another instance fetched lately, when it holds `kid`.
    async fn shared_set(&self, id: &str, kid: Option<&str>) -> Option<JwkSet> {
        let bytes = self.redis.as_ref()?.cache_get("jwks", id).await?;
        let set: JwkSet = serde_json::from_slice(&bytes).ok()?;
        find(&set, kid).is_some().then_some(set)
    }

    async fn share(&self, id: &str, set: &JwkSet) {
        if let (Some(redis), Ok(bytes)) = (&self.redis, serde_json::to_vec(set)) {
            redis.cache_put("jwks", id, &bytes, SHARED_FOR).await;
        }
    }

    async fn fetch(&self, settings: &TrustedIssuer) -> Result<JwkSet, String> {
        let uri = match &settings.jwks_uri {
            Some(uri) => uri.to_string(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    settings.issuer.trim_end_matches('/')
                );
                let document: Value = self.get_json(&discovery).await?;
                document
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or("the discovery document names no jwks_uri")?
                    .to_owned()
            }
        };
        let set: Value = self.get_json(&uri).await?;
        serde_json::from_value(set).map_err(|e| format!("the JWKS does not parse: {e}"))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }
}

/// The key `kid` names (a set of one key may be used without a `kid`).
fn find<'s>(set: &'s JwkSet, kid: Option<&str>) -> Option<&'s jsonwebtoken::jwk::Jwk> {
    match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
}

/// The scopes in `claim`: a space-separated string, or a list of strings.
fn scopes(claims: &Value, claim: ScopeClaim) -> Vec<String> {
    match claims.get(claim.name()) {
        Some(Value::String(joined)) => joined.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
