//! The `Authorization: Bearer` header of MCP requests (`gateway::caller::parse_bearer_value`).
//!
//! Checks: no panic; a token is found only in a `Bearer` header (any case), is never empty, has
//! no surrounding spaces, and is part of the header; the same header with the scheme upper-cased
//! reads the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::gateway::caller::{Bearer, parse_bearer_value};

fuzz_target!(|value: &[u8]| {
    match parse_bearer_value(value) {
        Bearer::Token(token) => {
            assert!(!token.is_empty());
            assert_eq!(token, token.trim());
            assert!(value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "));
            let text = std::str::from_utf8(value).expect("a token comes from text");
            assert!(text.contains(token));
            let mut upper = value.to_vec();
            upper[..6].copy_from_slice(b"BEARER");
            assert_eq!(parse_bearer_value(&upper), Bearer::Token(token));
        }
        Bearer::Malformed | Bearer::Missing => {}
    }
});
