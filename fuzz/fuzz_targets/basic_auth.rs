//! `Authorization: Basic` client credentials (`oauth::client_auth::parse_basic`): either a raw
//! header value, or credentials encoded as RFC 6749 §2.3.1 says (form-encode each part, join
//! with `:`, base64).
//!
//! Checks: no panic; a parsed client id is never empty; properly encoded credentials parse back
//! to themselves (with either spelling of the scheme and surrounding spaces); whatever a raw
//! header parses to survives re-encoding.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::client_auth::parse_basic;

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(String),
    Credentials {
        id: String,
        secret: String,
        lowercase: bool,
        spaces: u8,
    },
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn header(id: &str, secret: &str, scheme: &str, spaces: usize) -> String {
    let encoded = STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)));
    let pad = " ".repeat(spaces);
    format!("{scheme} {pad}{encoded}{pad}")
}

fuzz_target!(|input: Input| match input {
    Input::Raw(raw) => {
        if let Some(credentials) = parse_basic(&raw) {
            assert!(!credentials.client_id.is_empty());
            let again = parse_basic(&header(
                &credentials.client_id,
                &credentials.client_secret,
                "Basic",
                0,
            ))
            .expect("re-encoded credentials parse");
            assert_eq!(again.client_id, credentials.client_id);
            assert_eq!(again.client_secret, credentials.client_secret);
        }
    }
    Input::Credentials {
        id,
        secret,
        lowercase,
        spaces,
    } => {
        let scheme = if lowercase { "basic" } else { "Basic" };
        let parsed = parse_basic(&header(&id, &secret, scheme, usize::from(spaces % 4)));
        match parsed {
            Some(credentials) => {
                assert_eq!(credentials.client_id, id);
                assert_eq!(credentials.client_secret, secret);
            }
            None => assert!(id.is_empty(), "{id:?}:{secret:?} did not parse"),
        }
    }
});
