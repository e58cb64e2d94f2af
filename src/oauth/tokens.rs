//! Portcullis' own access tokens: ES256 JWTs (RFC 9068 profile) signed with a key generated on
//! first start, stored Fernet-encrypted and shared by every instance, verified with no database
//! round trip.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::{Secrets, random_token};
use crate::store::{SigningKeyRecord, Store, StoreError};

/// Accepted clock difference between instances, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user's stable id.
    pub sub: String,
    /// The canonical URI of the one resource the token is for.
    pub aud: String,
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The grant (sign-in session) it was issued from.
    pub sid: String,
    /// The user's verified email, when known: lets the gateway name the caller without a
    /// database round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Why a token was not accepted. Callers answer all of them the same way (no oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature or claims")]
    Invalid,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("revoked")]
    Revoked,
}

struct VerifyingKey {
    key: DecodingKey,
    jwk: serde_json::Value,
}

/// The signing key in use and every key whose tokens still verify.
pub struct KeySet {
    kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, VerifyingKey>,
    /// Claims of tokens whose signature already verified, by SHA-256 of the token. An ECDSA
    /// verification costs more than the rest of a tool call; the same bytes verify the same
    /// way every time, so a client's second call skips it. Time, issuer, audience and
    /// revocation are still checked on every call. Bounded and concurrent (no global lock):
    /// the least useful entries go first, and none outlives the longest token lifetime.
    verified: moka::sync::Cache<[u8; 32], Arc<AccessClaims>>,
}

/// How many verified tokens are remembered: far more than the tokens active at once.
const VERIFIED_CACHE: u64 = 250_000;
/// An entry is forgotten this long after it was verified (a token's `exp` is checked anyway).
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn verified_cache() -> moka::sync::Cache<[u8; 32], Arc<AccessClaims>> {
    moka::sync::Cache::builder()
        .max_capacity(VERIFIED_CACHE)
        .time_to_live(VERIFIED_FOR)
        .build()
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What can stop the key set from loading at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {0} does not decrypt with the configured Fernet keys")]
    Decrypt(String),
    #[error("signing key {0} is malformed")]
    Malformed(String),
    #[error("could not generate a signing key")]
    Generate,
}

/// A new P-256 key as a storable record.
fn generate_record(secrets: &Secrets, now: DateTime<Utc>) -> Result<SigningKeyRecord, KeyError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Generate)?;
    // An uncompressed SEC1 point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    if point.len() != 65 {
        return Err(KeyError::Generate);
    }
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..]);
    // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order.
    let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
    Ok(SigningKeyRecord {
        kid,
        alg: "ES256".into(),
        private_key_enc: secrets.encrypt(&URL_SAFE_NO_PAD.encode(pkcs8.as_ref())),
        public_jwk: jwk.to_string(),
        created_at: now,
    })
}

impl KeySet {
    /// Loads the stored keys, generating and storing the first one when there is none. Two
    /// instances starting together both insert (one wins) and both use the newest stored key.
    pub async fn load_or_create(
        store: &dyn Store,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        let mut records = store.signing_keys().await?;
        if records.is_empty() {
            store
                .insert_signing_key(&generate_record(secrets, now)?)
                .await?;
            records = store.signing_keys().await?;
        }
        Self::from_records(&records, secrets)
    }

    /// `records` newest first; the newest signs.
    pub fn from_records(records: &[SigningKeyRecord], secrets: &Secrets) -> Result<Self, KeyError> {
        let newest = records.first().ok_or(KeyError::Generate)?;
        let der = secrets
            .decrypt(&newest.private_key_enc)
            .map_err(|_| KeyError::Decrypt(newest.kid.clone()))?;
        let der = URL_SAFE_NO_PAD
            .decode(der)
            .map_err(|_| KeyError::Malformed(newest.kid.clone()))?;
        let signing = EncodingKey::from_ec_der(&der);
        let mut verifying = HashMap::new();
        for record in records {
            let jwk: serde_json::Value = serde_json::from_str(&record.public_jwk)
                .map_err(|_| KeyError::Malformed(record.kid.clone()))?;
            let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
                return Err(KeyError::Malformed(record.kid.clone()));
            };
            let key = DecodingKey::from_ec_components(x, y)
                .map_err(|_| KeyError::Malformed(record.kid.clone()))?;
            verifying.insert(record.kid.clone(), VerifyingKey { key, jwk });
        }
        Ok(Self {
            kid: newest.kid.clone(),
            signing,
            verifying,
            verified: verified_cache(),
        })
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<&serde_json::Value> = self.verifying.values().map(|k| &k.jwk).collect();
        keys.sort_by_key(|jwk| jwk["kid"].as_str() != Some(self.kid.as_str()));
        serde_json::json!({ "keys": keys })
    }

    /// Signs an access token.
    pub fn issue(&self, claims: &AccessClaims) -> Result<String, jsonwebtoken::errors::Error> {
        // RFC 9068 §2.1: access tokens say what they are, so an id_token cannot pass for one.
        self.sign(claims, "at+jwt")
    }

    /// Signs any claims with the current key, typed by `typ` so one kind of token cannot be
    /// replayed as another.
    pub fn sign<T: Serialize>(
        &self,
        claims: &T,
        typ: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.signing)
    }

    /// Checks algorithm, key and signature (remembering tokens that passed) and that the
    /// registered claims are present. Only ES256 is accepted: `alg: none`, HS256 and any other
    /// algorithm fail before a key is consulted.
    fn signed_claims(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            return Ok(AccessClaims::clone(&claims));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 || !is_access_token_type(header.typ.as_deref()) {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::ES256);
        // Issuer, audience and time are checked by the callers, on every use.
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.key, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        self.verified.insert(digest, Arc::new(claims.clone()));
        Ok(claims)
    }

    /// Verifies signature, algorithm, `iss`, `aud` and the time claims against `now`.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, TokenError> {
        let claims = self.signed_claims(token)?;
        if claims.iss != issuer || claims.aud != audience {
            return Err(TokenError::Invalid);
        }
        let now = now.timestamp();
        if claims.exp + CLOCK_SKEW_SECS <= now {
            return Err(TokenError::Expired);
        }
        if claims.iat - CLOCK_SKEW_SECS > now {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// Reads claims of a token this key set signed, whatever its audience, for introspection and
    /// revocation. Signature, algorithm and issuer are still verified; time is not.
    pub fn verify_any_audience(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<AccessClaims, TokenError> {
        let claims = self.signed_claims(token)?;
        if claims.iss != issuer {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

/// RFC 9068 §4: an access token's `typ` is `at+jwt` (or the full `application/at+jwt`,
/// compared case-insensitively). Anything else Portcullis signs with the same key (a backend
/// assertion, say) is not an access token and must never pass for one.
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case("at+jwt")
    })
}

/// A new `jti`.
pub fn new_jti() -> String {
    random_token(16)
}

/// Installs jsonwebtoken's crypto backend once per process (it panics at the first use
/// without one).
pub fn install_crypto_provider() {
    // Err only means another caller installed it first.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Access tokens verified for their issuer and audience only.
#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (KeySet, Secrets) {
        install_crypto_provider();
        let secrets = Secrets::from_keys(&[Secrets::generate_key()]).unwrap();
        let record = generate_record(&secrets, Utc::now()).unwrap();
        (KeySet::from_records(&[record], &secrets).unwrap(), secrets)
    }

    fn claims(now: DateTime<Utc>) -> AccessClaims {
        AccessClaims {
            iss: "https://as.example.com".into(),
            sub: "user-1".into(),
            aud: "https://as.example.com/mcp".into(),
            client_id: "client-1".into(),
            scope: "a:b:c".into(),
            exp: now.timestamp() + 300,
            iat: now.timestamp(),
            jti: new_jti(),
            sid: "grant-1".into(),
            email: None,
        }
    }

    #[test]
    fn a_token_verifies_for_its_issuer_and_audience_only() {
        let (keys, _) = keys();
        let now = Utc::now();
        let token = keys.issue(&claims(now)).unwrap();
        assert_eq!(
            keys.verify(
                &token,
                "https://as.example.com",
                "https://as.example.com/mcp",
                now
            )
            .unwrap()
            .sub,
            "user-1"
        );
        assert_eq!(
            keys.verify(
                &token,
                "https://as.example.com",
                "https://as.example.com/other",
                now
            ),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            keys.verify(
                &token,
                "https://evil.example.com",
                "https://as.example.com/mcp",
                now
            ),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn expiry_is_checked_against_the_given_time_with_skew() {
        let (keys, _) = keys();
        let now = Utc::now();
        let token = keys.issue(&claims(now)).unwrap();
        let (iss, aud) = ("https://as.example.com", "https://as.example.com/mcp");
        assert!(
            keys.verify(&token, iss, aud, now + chrono::Duration::seconds(320))
                .is_ok()
        );
        assert_eq!(
            keys.verify(&token, iss, aud, now + chrono::Duration::seconds(331)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            keys.verify(&token, iss, aud, now - chrono::Duration::seconds(31)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn alg_none_and_hs256_tokens_are_refused() {
        let (keys, _) = keys();
        let now = Utc::now();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(now)).unwrap());
        let none = format!(
            "{}.{body}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"x"}"#)
        );
        assert!(
            keys.verify(
                &none,
                "https://as.example.com",
                "https://as.example.com/mcp",
                now
            )
            .is_err()
        );
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.kid.clone());
        let hs = jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_secret(b"secret"))
            .unwrap();
        assert_eq!(
            keys.verify(
                &hs,
                "https://as.example.com",
                "https://as.example.com/mcp",
                now
            ),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn only_tokens_typed_as_access_tokens_are_accepted() {
        let (keys, _) = keys();
        let now = Utc::now();
        let (iss, aud) = ("https://as.example.com", "https://as.example.com/mcp");
        for typ in ["JWT", "portcullis-assertion+jwt", "at+jwt+x"] {
            let token = keys.sign(&claims(now), typ).unwrap();
            assert_eq!(
                keys.verify(&token, iss, aud, now),
                Err(TokenError::Invalid),
                "{typ}"
            );
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.kid.clone());
        header.typ = None;
        let untyped = jsonwebtoken::encode(&header, &claims(now), &keys.signing).unwrap();
        assert_eq!(
            keys.verify(&untyped, iss, aud, now),
            Err(TokenError::Invalid)
        );
        for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
            let token = keys.sign(&claims(now), typ).unwrap();
            assert!(keys.verify(&token, iss, aud, now).is_ok(), "{typ}");
        }
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let (keys, _) = keys();
        let (other, _) = self::keys();
        let now = Utc::now();
        let token = other.issue(&claims(now)).unwrap();
        assert_eq!(
            keys.verify(
                &token,
                "https://as.example.com",
                "https://as.example.com/mcp",
                now
            ),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn the_jwks_publishes_the_public_key_only() {
        let (keys, _) = keys();
        let jwks = keys.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], keys.kid.as_str());
        assert_eq!(key["alg"], "ES256");
        assert!(key.get("d").is_none());
    }
}
