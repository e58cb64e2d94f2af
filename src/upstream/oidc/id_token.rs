//! What an id_token must be to be believed
//! ([OIDC Core §3.1.3.7](https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation)):
//! signed by the provider, for this client, unexpired, with our nonce and, when it carries one,
//! an `at_hash` matching the access token.
//!
//! The signature is checked with aws-lc (through `jsonwebtoken`) instead of `openidconnect`'s
//! pure-Rust RSA, whose one verification was a twentieth of a sign-in's server CPU. Only the
//! arithmetic moves: the algorithm must be one the provider advertises
//! (`id_token_signing_alg_values_supported`, as `openidconnect` requires), and the key is the
//! one `openidconnect` chooses (by `kid`, then by type: `IdToken::signing_key`). Whatever this
//! cannot check (a shared-secret algorithm, a key or algorithm `jsonwebtoken` does not read) is
//! left to `openidconnect`, so nothing it would refuse is accepted and nothing it would accept
//! is refused. The claims are always `openidconnect`'s to check.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, JwsSigningAlgorithm, Nonce,
    SignatureVerificationError,
};

use super::OidcClient;
use crate::crypto::constant_time_eq;
use crate::upstream::UpstreamError;
use crate::upstream::transport::error_chain;

/// What Portcullis keeps from a verified id_token.
pub(super) struct VerifiedClaims {
    /// The id_token as received (compact serialization), to keep and to read claims from.
    pub(super) token: String,
    pub(super) subject: String,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) name: Option<String>,
}

pub(super) enum VerifyError {
    /// The token names a key the JWKS does not hold (yet).
    UnknownKey,
    Failed(UpstreamError),
}

impl VerifyError {
    pub(super) fn into_upstream(self) -> UpstreamError {
        match self {
            Self::UnknownKey => UpstreamError::Invalid(
                "the id_token is signed with a key the provider does not publish".into(),
            ),
            Self::Failed(err) => err,
        }
    }
}

pub(super) fn verify_id_token(
    client: &OidcClient,
    allowed_algs: &[CoreJwsSigningAlgorithm],
    id_token: &CoreIdToken,
    compact: &str,
    nonce: Option<&str>,
    access_token: &AccessToken,
    now: DateTime<Utc>,
) -> Result<VerifiedClaims, VerifyError> {
    let verifier = client.id_token_verifier().set_time_fn(move || now);
    let verifier = match check_signature(id_token, compact, &verifier, allowed_algs) {
        Ok(Checked::Here) => verifier.insecure_disable_signature_check(),
        Ok(Checked::ByLibrary) => verifier,
        Err(Refused::UnknownKey) => return Err(VerifyError::UnknownKey),
        Err(Refused::Invalid(why)) => {
            return Err(VerifyError::Failed(UpstreamError::Invalid(format!(
                "id_token: {why}"
            ))));
        }
    };
    let check_nonce = move |claim: Option<&Nonce>| match (nonce, claim) {
        (None, _) => Ok(()),
        (Some(expected), Some(claim)) if constant_time_eq(expected, claim.secret()) => Ok(()),
        (Some(_), Some(_)) => Err("nonce mismatch".to_owned()),
        (Some(_), None) => Err("the id_token carries no nonce".to_owned()),
    };
    let claims = id_token
        .claims(&verifier, check_nonce)
        .map_err(|err| match err {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => VerifyError::UnknownKey,
            other => VerifyError::Failed(UpstreamError::Invalid(format!(
                "id_token: {}",
                error_chain(&other)
            ))),
        })?;
    // OIDC Core §3.1.3.8: `at_hash` binds the access token to this id_token.
    if let Some(expected) = claims.access_token_hash() {
        let invalid = |what: &str| {
            VerifyError::Failed(UpstreamError::Invalid(format!("id_token at_hash: {what}")))
        };
        let alg = id_token
            .signing_alg()
            .map_err(|_| invalid("unknown signing algorithm"))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|_| invalid("no signing key"))?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|_| invalid("cannot be computed"))?;
        if actual != *expected {
            return Err(invalid("does not match the access token"));
        }
    }
    Ok(VerifiedClaims {
        token: compact.to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|email| email.as_str().to_owned()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned()),
    })
}

/// Who checks the signature.
enum Checked {
    /// It was checked here and is good.
    Here,
    /// `openidconnect` must check it (with the claims).
    ByLibrary,
}

/// Why a signature was refused.
enum Refused {
    /// The token names a key the JWKS does not hold (yet).
    UnknownKey,
    Invalid(String),
}

/// Checks `id_token`'s signature with the key `verifier` would choose.
fn check_signature(
    id_token: &CoreIdToken,
    compact: &str,
    verifier: &CoreIdTokenVerifier<'_>,
    allowed: &[CoreJwsSigningAlgorithm],
) -> Result<Checked, Refused> {
    let alg = id_token
        .signing_alg()
        .map_err(|error| Refused::Invalid(error.to_string()))?;
    if !allowed.contains(alg) {
        return Err(Refused::Invalid(format!(
            "the id_token is signed with {}, which the provider does not advertise",
            algorithm_name(alg).unwrap_or_default()
        )));
    }
    if alg.uses_shared_secret() {
        return Ok(Checked::ByLibrary);
    }
    let key = match id_token.signing_key(verifier) {
        Ok(key) => key,
        Err(SignatureVerificationError::NoMatchingKey) => return Err(Refused::UnknownKey),
        Err(error) => return Err(Refused::Invalid(error.to_string())),
    };
    let (Some(algorithm), Some(key)) = (
        algorithm_name(alg).and_then(|name| jsonwebtoken::Algorithm::from_str(&name).ok()),
        serde_json::to_value(key)
            .ok()
            .and_then(|jwk| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk).ok())
            .and_then(|jwk| jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()),
    ) else {
        return Ok(Checked::ByLibrary);
    };
    let Some((signing_input, signature)) = compact.rsplit_once('.') else {
        return Err(Refused::Invalid("the id_token is not a signed JWT".into()));
    };
    match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key, algorithm) {
        Ok(true) => Ok(Checked::Here),
        Ok(false) => Err(Refused::Invalid(
            "the id_token's signature does not verify".into(),
        )),
        // The key does not suit the algorithm, or the signature is not base64url: the library
        // decides, and explains.
        Err(_) => Ok(Checked::ByLibrary),
    }
}

/// The JOSE name of `alg` (`RS256`, …).
fn algorithm_name(alg: &CoreJwsSigningAlgorithm) -> Option<String> {
    match serde_json::to_value(alg) {
        Ok(serde_json::Value::String(name)) => Some(name),
        _ => None,
    }
}
