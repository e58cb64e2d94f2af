//! Form and query parameters (`oauth::params::Params::parse`): either raw text, or pairs
//! form-encoded by the fuzzer.
//!
//! Checks: no panic; a body is accepted exactly when it is valid form encoding with no name
//! repeated; every parameter reads back as decoded, an empty value reading as absent; encoded
//! pairs round-trip.

#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::params::Params;

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(String),
    Pairs(Vec<(String, String)>),
}

fuzz_target!(|input: Input| {
    let raw = match &input {
        Input::Raw(raw) => raw.clone(),
        Input::Pairs(pairs) => url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish(),
    };
    let reference: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let mut names = HashSet::new();
    let unique = reference.iter().all(|(name, _)| names.insert(name.clone()));

    match Params::parse(&raw) {
        Ok(params) => {
            assert!(unique, "a repeated name was accepted: {raw:?}");
            for (name, value) in &reference {
                let expected = (!value.is_empty()).then_some(value.as_str());
                assert_eq!(params.get(name), expected, "{name:?} in {raw:?}");
            }
        }
        Err(error) => {
            assert_eq!(error.code.as_str(), "invalid_request");
            assert!(!unique, "{raw:?} was refused: {error}");
        }
    }
});
