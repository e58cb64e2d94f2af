//! Small cryptographic helpers: Fernet encryption at rest, random tokens, hashes, PKCE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Fernet keys: the first encrypts, all decrypt, so a key can be rotated without downtime.
#[derive(Clone)]
pub struct Secrets {
    fernet: std::sync::Arc<fernet::MultiFernet>,
    /// For tags that bind a value to its holder (HMAC-SHA256), derived from the first Fernet
    /// key: the same on every instance, and new when that key is rotated.
    tagging: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// A Fernet token that does not decrypt with any configured key (or is not UTF-8 inside).
#[derive(Debug, thiserror::Error)]
#[error("encrypted value does not decrypt with any configured Fernet key")]
pub struct DecryptError;

impl Secrets {
    /// Builds the key list; `None` names the first key (0-based) that is not a valid Fernet key.
    pub fn from_keys(keys: &[String]) -> Result<Self, usize> {
        let mut parsed = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            parsed.push(fernet::Fernet::new(key.trim()).ok_or(index)?);
        }
        if parsed.is_empty() {
            return Err(0);
        }
        let derived = Sha256::new()
            .chain_update(b"portcullis tagging key v1\0")
            .chain_update(keys[0].trim().as_bytes())
            .finalize();
        Ok(Self {
            fernet: std::sync::Arc::new(fernet::MultiFernet::new(parsed)),
            tagging: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &derived),
        })
    }

    /// A short tag (128 bits of HMAC-SHA256, URL-safe base64) over `parts`, each length-prefixed
    /// so that no two lists of parts share a message.
    pub fn tag(&self, parts: &[&str]) -> String {
        let mut context = aws_lc_rs::hmac::Context::with_key(&self.tagging);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(&context.sign().as_ref()[..16])
    }

    /// A new random Fernet key, URL-safe base64.
    pub fn generate_key() -> String {
        fernet::Fernet::generate_key()
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        self.fernet.encrypt(plaintext.as_bytes())
    }

    pub fn decrypt(&self, token: &str) -> Result<String, DecryptError> {
        let bytes = self.fernet.decrypt(token).map_err(|_| DecryptError)?;
        String::from_utf8(bytes).map_err(|_| DecryptError)
    }
}

/// `bytes` random bytes from the operating system's CSPRNG, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG only fails when the OS has no entropy source at all; there is no safe
    // way to go on issuing credentials then.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buf).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// Lower-case hex SHA-256: how codes, refresh tokens and client secrets are stored.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The RFC 7636 §4.2 S256 transformation: `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// PKCE, Fernet with key rotation, and how bad keys are named.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_appendix_b_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_decrypt_with_any_key_and_encrypt_with_the_first() {
        let old = Secrets::generate_key();
        let new = Secrets::generate_key();
        let before = Secrets::from_keys(std::slice::from_ref(&old)).unwrap();
        let token = before.encrypt("upstream-token");
        let rotated = Secrets::from_keys(&[new.clone(), old]).unwrap();
        assert_eq!(rotated.decrypt(&token).unwrap(), "upstream-token");
        let fresh = rotated.encrypt("x");
        assert!(Secrets::from_keys(&[new]).unwrap().decrypt(&fresh).is_ok());
        assert!(before.decrypt(&fresh).is_err());
    }

    #[test]
    fn invalid_fernet_keys_are_named_by_position() {
        assert_eq!(
            Secrets::from_keys(&[Secrets::generate_key(), "nope".into()]).unwrap_err(),
            1
        );
        assert!(Secrets::from_keys(&[]).is_err());
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }
}
