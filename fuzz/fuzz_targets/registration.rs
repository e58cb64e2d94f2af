//! Client registration metadata (RFC 7591, `oauth::registration::parse_metadata`): either raw
//! bytes, or a JSON document built from fuzzer-chosen fields so the later checks are reached.
//!
//! Checks: no panic; what is accepted obeys every rule `register` promises: 1-20 registrable
//! redirect URIs, a known authentication method, grant types from the two supported ones
//! including `authorization_code`, `response_types` exactly `["code"]`, a short client name
//! without control characters, a normalised scope, no server-assigned field kept and no long
//! string kept; a refusal is `invalid_client_metadata` or `invalid_redirect_uri`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::error::ErrorCode;
use portcullis::oauth::redirect::validate_for_registration;
use portcullis::oauth::registration::parse_metadata;
use portcullis::oauth::scope::Scopes;
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Document(Document),
}

#[derive(Arbitrary, Debug)]
struct Document {
    redirect_uris: Option<Vec<Uri>>,
    token_endpoint_auth_method: Option<Choice>,
    grant_types: Option<Vec<Choice>>,
    response_types: Option<Vec<Choice>>,
    client_name: Option<String>,
    scope: Option<String>,
    extra: Vec<(String, Extra)>,
}

/// A redirect URI, usually close to a valid one.
#[derive(Arbitrary, Debug)]
enum Uri {
    Https(String, String),
    Loopback(u16, String),
    Localhost(String),
    Any(String),
}

/// A protocol value: one of the known spellings or anything.
#[derive(Arbitrary, Debug)]
enum Choice {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Extra {
    Text(String),
    Long(u16),
    Number(i64),
    Null,
}

const KNOWN: [&str; 9] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "code",
    "token",
];

impl Choice {
    fn text(&self) -> String {
        match self {
            Choice::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].to_owned(),
            Choice::Any(s) => s.clone(),
        }
    }
}

impl Uri {
    fn text(&self) -> String {
        match self {
            Uri::Https(host, path) => format!("https://{host}/{path}"),
            Uri::Loopback(port, path) => format!("http://127.0.0.1:{port}/{path}"),
            Uri::Localhost(path) => format!("http://localhost/{path}"),
            Uri::Any(s) => s.clone(),
        }
    }
}

impl Document {
    fn to_json(&self) -> Vec<u8> {
        let mut object = Map::new();
        for (key, value) in &self.extra {
            let value = match value {
                Extra::Text(s) => json!(s),
                Extra::Long(n) => json!("x".repeat(usize::from(*n) % 4096)),
                Extra::Number(n) => json!(n),
                Extra::Null => Value::Null,
            };
            object.insert(key.clone(), value);
        }
        if let Some(uris) = &self.redirect_uris {
            object.insert(
                "redirect_uris".into(),
                json!(uris.iter().map(Uri::text).collect::<Vec<_>>()),
            );
        }
        if let Some(method) = &self.token_endpoint_auth_method {
            object.insert("token_endpoint_auth_method".into(), json!(method.text()));
        }
        if let Some(grants) = &self.grant_types {
            object.insert(
                "grant_types".into(),
                json!(grants.iter().map(Choice::text).collect::<Vec<_>>()),
            );
        }
        if let Some(types) = &self.response_types {
            object.insert(
                "response_types".into(),
                json!(types.iter().map(Choice::text).collect::<Vec<_>>()),
            );
        }
        if let Some(name) = &self.client_name {
            object.insert("client_name".into(), json!(name));
        }
        if let Some(scope) = &self.scope {
            object.insert("scope".into(), json!(scope));
        }
        Value::Object(object).to_string().into_bytes()
    }
}

fuzz_target!(|input: Input| {
    let body = match &input {
        Input::Raw(bytes) => bytes.clone(),
        Input::Document(document) => document.to_json(),
    };
    match parse_metadata(&body) {
        Ok(metadata) => {
            assert!((1..=20).contains(&metadata.redirect_uris.len()));
            for uri in &metadata.redirect_uris {
                assert!(
                    validate_for_registration(uri).is_ok(),
                    "{uri:?} was accepted"
                );
            }
            assert!(matches!(
                metadata.token_endpoint_auth_method.as_str(),
                "none" | "client_secret_basic" | "client_secret_post"
            ));
            assert!(
                metadata
                    .grant_types
                    .iter()
                    .any(|g| g == "authorization_code")
            );
            assert!(
                metadata
                    .grant_types
                    .iter()
                    .all(|g| g == "authorization_code" || g == "refresh_token")
            );
            assert_eq!(metadata.response_types, ["code"]);
            if let Some(name) = &metadata.client_name {
                assert!(name.len() <= 512 && !name.chars().any(char::is_control));
            }
            if let Some(scope) = &metadata.scope {
                let parsed = Scopes::parse(scope).expect("a kept scope parses");
                assert_eq!(&parsed.to_string(), scope, "the scope is not normalised");
            }
            for key in [
                "client_id",
                "client_secret",
                "client_id_issued_at",
                "client_secret_expires_at",
            ] {
                assert!(!metadata.extra.contains_key(key), "{key} was kept");
            }
            for value in metadata.extra.values() {
                assert!(value.as_str().is_none_or(|s| s.len() <= 2048));
            }
            // The document itself is what was sent, less the server-assigned fields.
            let sent: Value = serde_json::from_slice(&body).expect("accepted JSON");
            let sent = sent.as_object().expect("accepted an object");
            for (key, value) in &metadata.extra {
                assert_eq!(sent.get(key), Some(value));
            }
        }
        Err(error) => assert!(
            matches!(
                error.code,
                ErrorCode::InvalidClientMetadata | ErrorCode::InvalidRedirectUri
            ),
            "unexpected error {error}"
        ),
    }
});
