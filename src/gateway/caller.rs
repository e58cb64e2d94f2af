//! Who is calling: bearer-token authentication of MCP requests (RFC 6750, MCP authorization).
//!
//! The hot path: signature and claims checked locally (a signature that verified once is
//! remembered), revocation looked up in memory. No database round trip.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};

use super::api_keys::{ApiKeyVerifier, KeyHolder};
use super::rejections::Rejections;
use super::trusted::TrustedIssuers;
use crate::audit::Auditor;
use crate::oauth::access::Entitlement;
use crate::oauth::api_keys::KeyRefusal;
use crate::oauth::api_keys::looks_like_key;
use crate::oauth::resource::Resource;
use crate::oauth::revocation::RevocationView;
use crate::oauth::scope::pattern_covers;
use crate::oauth::tokens::{AccessClaims, KeySet};
use crate::store::{AuditEvent, AuditKind, Decision};

/// The authenticated caller of an MCP request, its scopes parsed once.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessClaims,
    scopes: Vec<String>,
    /// For an API key: what its owner may do now, which bounds the key's scopes.
    within: Option<Entitlement>,
    /// For Portcullis' own access tokens: the grant (sign-in) they were issued from.
    grant: Option<String>,
}

impl Caller {
    pub fn new(claims: AccessClaims) -> Self {
        let scopes = claims
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            claims,
            scopes,
            within: None,
            grant: None,
        }
    }

    /// The caller of one of Portcullis' own access tokens, issued from the grant `claims.sid`.
    pub fn of_grant(claims: AccessClaims) -> Self {
        let grant = Some(claims.sid.clone());
        Self {
            grant,
            ..Self::new(claims)
        }
    }

    /// The grant the caller's token was issued from, when it is one of Portcullis' own (API
    /// keys and trusted issuers' tokens come from none).
    pub fn grant(&self) -> Option<&str> {
        self.grant.as_deref()
    }

    /// The caller behind an API key, for a request to `resource`: the key's owner, with the
    /// key's scopes within the owner's entitlement. Its client and session name the key.
    pub fn with_key(holder: &KeyHolder, issuer: &str, resource: &Resource) -> Self {
        let key = &holder.key;
        let tag = format!("{}{}", super::api_keys::KEY_CLIENT_PREFIX, key.id);
        let caller = Self::new(AccessClaims {
            iss: issuer.to_owned(),
            sub: holder.owner.id.clone(),
            aud: resource.uri.clone(),
            client_id: tag.clone(),
            scope: key.scopes.clone(),
            exp: key.expires_at.map_or(i64::MAX, |at| at.timestamp()),
            iat: key.created_at.timestamp(),
            jti: key.id.clone(),
            sid: tag,
            email: holder.owner.email.clone(),
        });
        caller.within(holder.entitlement.clone())
    }

    /// The same caller, bounded by `entitlement`: a scope counts only if it covers it too.
    pub fn within(mut self, entitlement: Entitlement) -> Self {
        self.within = Some(entitlement);
        self
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(String::as_str)
    }

    /// True when one of the caller's (possibly wildcard) scopes covers `required` (and, for
    /// an API key, its owner may do it).
    pub fn holds(&self, required: &str) -> bool {
        self.scopes
            .iter()
            .any(|held| pattern_covers(held, required))
            && self.within.as_ref().is_none_or(|e| e.covers(required))
    }
}

/// What the `Authorization` header of a request holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <token>`.
    Malformed,
    Token(&'a str),
}

/// Reads `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive).
pub fn parse_bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Bearer::Missing;
    };
    parse_bearer_value(value.as_bytes())
}

/// [`parse_bearer`] of one header value's bytes.
pub fn parse_bearer_value(value: &[u8]) -> Bearer<'_> {
    // What `HeaderValue::to_str` accepts: visible ASCII, spaces and tabs.
    let printable = value
        .iter()
        .all(|b| *b == b'\t' || (0x20..0x7f).contains(b));
    let Some(value) = std::str::from_utf8(value).ok().filter(|_| printable) else {
        return Bearer::Malformed;
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Bearer::Malformed;
    }
    Bearer::Token(token)
}

/// Why a request was not authenticated. Every reason gets the same answer (no oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// No token was sent: the challenge carries no `error` (RFC 6750 §3.1).
    NoToken,
    /// A token was sent and refused.
    InvalidToken,
    /// The credential (an API key) could not be checked: the database is out of reach.
    Unavailable,
}

/// Verifies access tokens for one issuer, records refusals, and says who is calling.
#[derive(Clone)]
pub struct TokenVerifier {
    issuer: String,
    keys: Arc<KeySet>,
    revocations: Arc<RevocationView>,
    api_keys: ApiKeyVerifier,
    trusted: TrustedIssuers,
    /// Refusals, audited per source per minute.
    rejections: Arc<Rejections>,
}

/// What a [`TokenVerifier`] checks besides Portcullis' own tokens.
pub struct OtherCredentials {
    pub api_keys: ApiKeyVerifier,
    pub trusted: TrustedIssuers,
}

impl TokenVerifier {
    pub fn new(
        issuer: String,
        keys: Arc<KeySet>,
        revocations: Arc<RevocationView>,
        others: OtherCredentials,
        auditor: Auditor,
    ) -> Self {
        Self {
            issuer,
            keys,
            revocations,
            api_keys: others.api_keys,
            trusted: others.trusted,
            rejections: Arc::new(Rejections::new(auditor)),
        }
    }

    /// Audits the refusals counted in a minute that is over.
    pub fn flush_rejections(&self, now: DateTime<Utc>) {
        self.rejections.flush(now);
    }

    /// The caller of a request to `resource` from the address `source` (when known), or why
    /// there is none.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        resource: &Resource,
        source: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Caller, Unauthenticated> {
        let token = match parse_bearer(headers) {
            Bearer::Missing => return Err(Unauthenticated::NoToken),
            Bearer::Malformed => return Err(Unauthenticated::InvalidToken),
            Bearer::Token(token) => token,
        };
        if looks_like_key(token) {
            return match self.api_keys.verify(token, now).await {
                Ok(holder) => Ok(Caller::with_key(&holder, &self.issuer, resource)),
                Err(KeyRefusal::Unavailable) => Err(Unauthenticated::Unavailable),
                Err(reason) => Err(self.refuse(&reason, resource, source, now)),
            };
        }
        if let Some(verdict) = self.trusted.verify(token, &self.issuer, now).await {
            return verdict.map_err(|reason| self.refuse(&reason, resource, source, now));
        }
        match self.keys.verify(token, &self.issuer, &resource.uri, now) {
            Ok(claims) if !self.revocations.is_revoked(&claims.jti, &claims.sid) => {
                Ok(Caller::of_grant(claims))
            }
            Ok(claims) => {
                self.rejections.note(
                    source,
                    AuditEvent::new(AuditKind::RequestDenied, Decision::Denied, now)
                        .user(claims.sub.clone(), claims.email.as_deref())
                        .client(claims.client_id.clone())
                        .reason(format!("revoked token for {}", resource.uri)),
                );
                Err(Unauthenticated::InvalidToken)
            }
            Err(reason) => {
                Err(self.refuse(&format!("rejected token ({reason})"), resource, source, now))
            }
        }
    }

    /// Records a refused credential. Who sent it is unknown: nothing in it is trusted, so
    /// nothing in it is recorded.
    fn refuse(
        &self,
        reason: &dyn std::fmt::Display,
        resource: &Resource,
        source: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Unauthenticated {
        self.rejections.note(
            source,
            AuditEvent::new(AuditKind::RequestDenied, Decision::Denied, now)
                .reason(format!("{reason} for {}", resource.uri)),
        );
        Unauthenticated::InvalidToken
    }
}

/// Bearer headers and a caller's scopes, parsed once.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers_are_read_case_insensitively_and_anything_else_is_malformed() {
        assert_eq!(parse_bearer_value(b"Bearer abc"), Bearer::Token("abc"));
        assert_eq!(parse_bearer_value(b"bearer  abc "), Bearer::Token("abc"));
        assert_eq!(parse_bearer_value(b"Basic abc"), Bearer::Malformed);
        assert_eq!(parse_bearer_value(b"Bearer"), Bearer::Malformed);
        assert_eq!(parse_bearer_value(b"Bearer \xff"), Bearer::Malformed);
        assert_eq!(parse_bearer(&HeaderMap::new()), Bearer::Missing);
    }

    #[test]
    fn a_callers_scopes_are_parsed_once_and_wildcards_cover() {
        let claims = AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            client_id: "c".into(),
            scope: " orders:*:read  whoami ".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            sid: "g".into(),
            email: None,
        };
        let caller = Caller::new(claims);
        assert_eq!(
            caller.scopes().collect::<Vec<_>>(),
            ["orders:*:read", "whoami"]
        );
        assert!(caller.holds("orders:invoices:read"));
        assert!(!caller.holds("orders:invoices:write"));
    }
}
