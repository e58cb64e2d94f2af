//! PKCE (RFC 7636), S256 only (OAuth 2.1 §4.1.1).

use super::error::OAuthError;
use crate::crypto::{constant_time_eq, pkce_s256};

/// RFC 7636 §4.1: 43-128 characters from the unreserved set.
fn is_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks the challenge of an authorization request: present, S256, well-formed. `plain` and
/// a missing method are refused: a missing method means `plain` (RFC 7636 §4.3).
pub fn validate_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, OAuthError> {
    let challenge = challenge
        .ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE S256)"))?;
    match method {
        Some("S256") => {}
        Some(_) | None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
    }
    // An S256 challenge is a base64url SHA-256: exactly 43 characters.
    if challenge.len() != 43 || !is_pkce_string(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge is not a valid S256 challenge",
        ));
    }
    Ok(challenge.to_owned())
}

/// Checks a token request's verifier against the stored challenge. The three failures of
/// RFC 7636 §4.6 all answer `invalid_grant`, but say which one it was.
pub fn verify(stored_challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (stored_challenge, verifier) {
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        // A verifier for a code issued without a challenge is a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent for a code issued without PKCE",
        )),
        (None, None) => Err(OAuthError::invalid_grant(
            "the code was issued without PKCE",
        )),
        (Some(challenge), Some(verifier)) => {
            if is_pkce_string(verifier) && constant_time_eq(&pkce_s256(verifier), challenge) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

/// S256 only, and every verifier mismatch an invalid grant.
#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn only_s256_challenges_are_accepted() {
        assert!(validate_challenge(Some(CHALLENGE), Some("S256")).is_ok());
        assert!(validate_challenge(Some(CHALLENGE), Some("plain")).is_err());
        assert!(validate_challenge(Some(CHALLENGE), None).is_err());
        assert!(validate_challenge(None, Some("S256")).is_err());
        assert!(validate_challenge(Some("short"), Some("S256")).is_err());
    }

    #[test]
    fn all_three_verifier_mismatches_are_invalid_grant() {
        assert!(verify(Some(CHALLENGE), Some(VERIFIER)).is_ok());
        for (challenge, verifier) in [
            (Some(CHALLENGE), None),
            (None, Some(VERIFIER)),
            (
                Some(CHALLENGE),
                Some("wrong-verifier-wrong-verifier-wrong-verifier-x"),
            ),
            (Some(CHALLENGE), Some(CHALLENGE)),
        ] {
            assert_eq!(
                verify(challenge, verifier).unwrap_err().code.as_str(),
                "invalid_grant"
            );
        }
    }
}
