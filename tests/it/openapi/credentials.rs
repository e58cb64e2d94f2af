//! What the API receives for each `auth` mode, read back from the app's echo endpoints: nothing,
//! a static secret where the operation's FastAPI security scheme says, Portcullis' signed
//! assertion, or the caller's upstream access token; never the client's Portcullis token.

use serde_json::{Value, json};

use super::{EVERY_SCOPE, PATH, call, result, sign_in, start};
use crate::support::app::TestApp;

const BEARER: &str = "echo_bearer_echo_bearer_get";
const HEADER_KEY: &str = "echo_header_key_echo_header_key_get";
const QUERY_KEY: &str = "echo_query_key_echo_query_key_get";
const PLAIN: &str = "echo_echo_get";

/// What the echo endpoint `tool` received, called through Portcullis with `token`.
async fn received(app: &TestApp, token: &str, tool: &str) -> Value {
    let response = call(app, token, PATH, tool, json!({})).await;
    let result = result(&response);
    assert_eq!(result["isError"], false, "{result:#}");
    result["structuredContent"].clone()
}

#[tokio::test]
async fn with_auth_none_the_api_gets_no_credential_but_the_identity_headers_asked_for() {
    let (app, _api) = start(r#"forward = ["identity-headers"]"#, "", EVERY_SCOPE).await;
    let token = sign_in(&app, "cred-none", PATH).await;
    for tool in [BEARER, HEADER_KEY, QUERY_KEY, PLAIN] {
        let seen = received(&app, &token, tool).await;
        for credential in ["authorization", "x_api_key", "api_key", "assertion"] {
            assert_eq!(seen[credential], Value::Null, "{tool}: {seen:#}");
        }
        assert_eq!(seen["email"], "cred-none@example.com", "{tool}: {seen:#}");
        assert!(seen["user"].is_string(), "{tool}: {seen:#}");
    }
}

#[tokio::test]
async fn a_static_secret_goes_where_each_operations_security_scheme_says() {
    // A variable of this test's own, set before Portcullis starts in this process.
    let variable = format!("OA_TEST_SECRET_{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let secret = format!("s3cret-{}", uuid::Uuid::new_v4().simple());
    // SAFETY: written once, before this test's app starts and reads it (`secret_env` is read
    // when the configuration is parsed). cargo-nextest, which scripts/test.sh runs, gives each
    // test a process of its own; under `cargo test` other tests' threads read the environment
    // through std, which takes the same lock.
    unsafe { std::env::set_var(&variable, &secret) };
    let keys = format!("auth = \"static\"\nsecret_env = \"{variable}\"");
    let (app, _api) = start(&keys, "", EVERY_SCOPE).await;
    let token = sign_in(&app, "cred-static", PATH).await;

    let bearer = received(&app, &token, BEARER).await;
    assert_eq!(
        bearer["authorization"],
        format!("Bearer {secret}"),
        "{bearer:#}"
    );
    assert_eq!(
        (&bearer["x_api_key"], &bearer["api_key"]),
        (&Value::Null, &Value::Null)
    );

    let header = received(&app, &token, HEADER_KEY).await;
    assert_eq!(header["x_api_key"], secret.as_str(), "{header:#}");
    assert_eq!(
        (&header["authorization"], &header["api_key"]),
        (&Value::Null, &Value::Null)
    );

    let query = received(&app, &token, QUERY_KEY).await;
    assert_eq!(query["api_key"], secret.as_str(), "{query:#}");
    assert_eq!(
        (&query["authorization"], &query["x_api_key"]),
        (&Value::Null, &Value::Null)
    );
}

#[tokio::test]
async fn the_assertion_names_the_caller_for_this_backend_only() {
    let (app, _api) = start(r#"auth = "assertion""#, "", EVERY_SCOPE).await;
    let token = sign_in(&app, "cred-assert", PATH).await;
    let seen = received(&app, &token, PLAIN).await;
    assert_eq!(seen["authorization"], Value::Null, "{seen:#}");
    let assertion = seen["assertion"]
        .as_str()
        .unwrap_or_else(|| panic!("{seen:#}"));

    // Signed with the key Portcullis publishes under the assertion's `kid`.
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(app.get_json(&app.url("/jwks.json")).await).unwrap();
    let kid = jsonwebtoken::decode_header(assertion).unwrap().kid.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["urn:portcullis:backend:inventory"]);
    validation.set_issuer(&[app.base.as_str()]);
    let verified = jsonwebtoken::decode::<Value>(assertion, &key, &validation).unwrap();
    let claims = crate::negative::claims_of(&token);
    assert_eq!(verified.claims["sub"], claims.sub.as_str());
    assert_eq!(verified.claims["aud"], "urn:portcullis:backend:inventory");
}

#[tokio::test]
async fn the_upstream_token_is_the_one_the_provider_issued_and_is_refreshed_when_expired() {
    let (app, _api) = start(r#"auth = "upstream-token""#, "", EVERY_SCOPE).await;
    let token = sign_in(&app, "cred-upstream", PATH).await;
    let grant = crate::negative::claims_of(&token).sid;
    let upstream = app.upstream_access_token(&grant).await;

    let seen = received(&app, &token, PLAIN).await;
    assert_eq!(
        seen["authorization"],
        format!("Bearer {upstream}"),
        "{seen:#}"
    );
    assert_ne!(seen["authorization"], format!("Bearer {token}"));

    app.expire_upstream_token(&grant).await;
    let refreshed = received(&app, &token, PLAIN).await;
    let stored = app.upstream_access_token(&grant).await;
    assert_ne!(stored, upstream, "a new upstream token");
    assert_eq!(
        refreshed["authorization"],
        format!("Bearer {stored}"),
        "{refreshed:#}"
    );
}
