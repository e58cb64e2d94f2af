//! PKCE (`oauth::pkce`): the challenge of an authorization request and the verifier of a token
//! request, with fuzzer strings.
//!
//! Checks: no panic; an accepted challenge is the one sent, 43 unreserved characters, with
//! method `S256`; the S256 of any verifier is an acceptable challenge; a verifier passes exactly
//! when it is 43-128 unreserved characters and its S256 is the stored challenge; nothing passes
//! when either side is missing.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::crypto::pkce_s256;
use portcullis::oauth::pkce::{validate_challenge, verify};

#[derive(Arbitrary, Debug)]
struct Input {
    challenge: Option<String>,
    method: Option<String>,
    verifier: Option<String>,
    /// Store the S256 of the verifier as the challenge, rather than the fuzzer's challenge.
    matching: bool,
}

fn is_unreserved(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fuzz_target!(|input: Input| {
    let challenge = input.challenge.as_deref();
    let method = input.method.as_deref();
    if let Ok(accepted) = validate_challenge(challenge, method) {
        assert_eq!(Some(accepted.as_str()), challenge);
        assert_eq!(method, Some("S256"));
        assert_eq!(accepted.len(), 43);
        assert!(is_unreserved(&accepted));
    }

    let verifier = input.verifier.as_deref();
    if let Some(verifier) = verifier {
        let s256 = pkce_s256(verifier);
        assert!(
            validate_challenge(Some(&s256), Some("S256")).is_ok(),
            "{s256:?}"
        );
        let valid = (43..=128).contains(&verifier.len()) && is_unreserved(verifier);
        assert_eq!(
            verify(Some(&s256), Some(verifier)).is_ok(),
            valid,
            "{verifier:?}"
        );
    }

    let stored = if input.matching {
        verifier.map(pkce_s256)
    } else {
        input.challenge.clone()
    };
    match verify(stored.as_deref(), verifier) {
        Ok(()) => {
            let (stored, verifier) = (
                stored.expect("a stored challenge"),
                verifier.expect("a verifier"),
            );
            assert_eq!(pkce_s256(verifier), stored);
        }
        Err(error) => assert_eq!(error.code.as_str(), "invalid_grant"),
    }
});
