//! `[[trusted_issuers]]`: an organisation's own identity provider whose JWT access tokens (from
//! services, by `client_credentials`) may call the MCP endpoints directly.

use std::collections::{BTreeMap, HashSet};

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use super::access::{AccessSettings, ClaimRoles, parse_claim_roles};
use super::{ConfigError, check_identifier, is_loopback_url};

/// Which claim carries a token's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeClaim {
    /// `scope`: a space-separated string (RFC 9068, RFC 8693).
    #[default]
    Scope,
    /// `scp`: a list, or a space-separated string (Entra, Okta).
    Scp,
    /// `permissions`: a list (Auth0 RBAC).
    Permissions,
}

impl ScopeClaim {
    pub fn name(self) -> &'static str {
        match self {
            Self::Scope => "scope",
            Self::Scp => "scp",
            Self::Permissions => "permissions",
        }
    }
}

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// Names the issuer in audit records and subjects (`{id}:{sub}`).
    pub id: String,
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// The `aud` its tokens must carry for Portcullis, exactly.
    pub audience: String,
    /// Where its keys are: `None` to find `jwks_uri` by discovery at `issuer`.
    pub jwks_uri: Option<Url>,
    /// Asymmetric algorithms only; a token's `alg` must be one of them (and its key's own).
    pub algorithms: Vec<Algorithm>,
    pub scope_claim: ScopeClaim,
    pub subject_claim: String,
    /// The claim with the caller's email, if the issuer sends a verified one.
    pub email_claim: Option<String>,
    /// Roles its tokens' claims give.
    pub claim_roles: ClaimRoles,
}

/// `[[trusted_issuers]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuer {
    id: String,
    issuer: String,
    audience: String,
    #[serde(default)]
    jwks_uri: Option<Url>,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    scope_claim: ScopeClaim,
    #[serde(default)]
    subject_claim: Option<String>,
    #[serde(default)]
    email_claim: Option<String>,
    #[serde(default)]
    claim_roles: BTreeMap<String, BTreeMap<String, String>>,
}

const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub(super) fn parse(
    raw: Vec<RawIssuer>,
    access: &AccessSettings,
) -> Result<Vec<TrustedIssuer>, ConfigError> {
    let mut seen = HashSet::new();
    for (index, issuer) in raw.iter().enumerate() {
        check_identifier(
            &format!("trusted_issuers[{index}].id"),
            &issuer.id,
            &mut seen,
        )?;
    }
    let mut issuers = Vec::with_capacity(raw.len());
    for (index, issuer) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("trusted_issuers[{index}].{field}");
        let https_or_loopback =
            |url: &Url| url.scheme() == "https" || (url.scheme() == "http" && is_loopback_url(url));
        match Url::parse(&issuer.issuer) {
            Ok(url) if https_or_loopback(&url) => {}
            _ => {
                return Err(ConfigError::invalid(
                    key("issuer"),
                    "must be an https URL (http only on loopback)",
                ));
            }
        }
        if issuer
            .jwks_uri
            .as_ref()
            .is_some_and(|u| !https_or_loopback(u))
        {
            return Err(ConfigError::invalid(
                key("jwks_uri"),
                "must be https (http only on loopback)",
            ));
        }
        if issuer.audience.is_empty() {
            return Err(ConfigError::invalid(key("audience"), "must not be empty"));
        }
        let names = issuer
            .algorithms
            .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
        let mut algorithms = Vec::new();
        for name in &names {
            match ASYMMETRIC.iter().find(|a| format!("{a:?}") == *name) {
                Some(algorithm) => algorithms.push(*algorithm),
                None => {
                    return Err(ConfigError::invalid(
                        key("algorithms"),
                        format!(
                            "`{name}` is not allowed: only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA), never HS* or none"
                        ),
                    ));
                }
            }
        }
        if algorithms.is_empty() {
            return Err(ConfigError::invalid(key("algorithms"), "name at least one"));
        }
        issuers.push(TrustedIssuer {
            claim_roles: parse_claim_roles(
                &format!("trusted_issuers[{index}]"),
                issuer.claim_roles,
                access,
            )?,
            id: issuer.id,
            issuer: issuer.issuer,
            audience: issuer.audience,
            jwks_uri: issuer.jwks_uri,
            algorithms,
            scope_claim: issuer.scope_claim,
            subject_claim: issuer.subject_claim.unwrap_or_else(|| "sub".into()),
            email_claim: issuer.email_claim,
        });
    }
    Ok(issuers)
}
