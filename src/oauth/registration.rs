//! Dynamic client registration (RFC 7591).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::{ErrorCode, OAuthError};
use super::redirect;
use super::scope::Scopes;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{Client, Store};

const MAX_REDIRECT_URIS: usize = 20;
const MAX_TEXT: usize = 512;

/// The metadata Portcullis acts on (RFC 7591 §2); anything else is kept and echoed back.
#[derive(Debug, Deserialize)]
struct Request {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    scope: Option<String>,
    application_type: Option<String>,
}

fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// OpenID Connect Dynamic Client Registration §2 `application_type`, which MCP clients send
/// with RFC 7591 registrations: a `web` client is on a server and returns to https addresses,
/// never to a loopback one; a `native` client runs on the person's device and returns to a
/// loopback port or an https address it claims (RFC 8252 §7.2, §7.3). Absent, no rule beyond
/// RFC 7591's is applied: many clients that omit it register loopback redirects.
fn check_application_type(
    application_type: Option<&str>,
    redirect_uris: &[String],
) -> Result<(), OAuthError> {
    match application_type {
        None | Some("native") => Ok(()),
        Some("web") => match redirect_uris.iter().find(|uri| redirect::is_loopback(uri)) {
            Some(uri) => Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("a web application cannot return to a loopback address: {uri}"),
            )),
            None => Ok(()),
        },
        Some(_) => Err(metadata_error("application_type must be web or native")),
    }
}

/// Client metadata (RFC 7591 §2) after validation: what [`register`] stores, before the server
/// assigns an id and a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub client_name: Option<String>,
    /// The requested scopes, normalised (sorted, deduplicated).
    pub scope: Option<String>,
    /// The whole document as sent, less the fields only the server assigns (`client_id`,
    /// `client_secret`, `client_id_issued_at`, `client_secret_expires_at`); kept verbatim and
    /// echoed back (RFC 7591 §3.2.1).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Reads and validates a registration request body. Pure: no store, no clock, no randomness.
pub fn parse_metadata(body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    let document: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| metadata_error("the body is not a JSON object"))?;
    let serde_json::Value::Object(mut extra) = document.clone() else {
        return Err(metadata_error("the body is not a JSON object"));
    };
    let request: Request = serde_json::from_value(document)
        .map_err(|e| metadata_error(format!("malformed client metadata: {e}")))?;

    let redirect_uris = request.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "too many redirect_uris",
        ));
    }
    for uri in &redirect_uris {
        if let Err(why) = redirect::validate_for_registration(uri) {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("redirect URI {why}"),
            ));
        }
    }

    check_application_type(request.application_type.as_deref(), &redirect_uris)?;

    // RFC 7591 §2: the default is client_secret_basic.
    let auth_method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(
        auth_method.as_str(),
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return Err(metadata_error(
            "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
        ));
    }
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty()
        || grant_types
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(metadata_error(
            "grant_types may contain only authorization_code and refresh_token",
        ));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(metadata_error(
            "grant_types must include authorization_code",
        ));
    }
    let response_types = request
        .response_types
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types != ["code"] {
        return Err(metadata_error("response_types must be [\"code\"]"));
    }
    if request
        .client_name
        .as_ref()
        .is_some_and(|n| n.len() > MAX_TEXT || n.chars().any(char::is_control))
    {
        return Err(metadata_error(
            "client_name is too long or contains control characters",
        ));
    }
    let scope = match request.scope.as_deref() {
        Some(raw) => Some(
            Scopes::parse(raw)
                .map_err(|_| metadata_error("scope is malformed"))?
                .to_string(),
        ),
        None => None,
    };
    for text in extra.values() {
        if text.as_str().is_some_and(|s| s.len() > 2048) {
            return Err(metadata_error("a metadata value is too long"));
        }
    }

    // What the client sent beyond the fields above is kept verbatim (RFC 7591 §3.2.1).
    for key in [
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "client_secret_expires_at",
    ] {
        extra.remove(key);
    }
    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method: auth_method,
        grant_types,
        response_types,
        client_name: request.client_name,
        scope,
        extra,
    })
}

/// Registers a client from a JSON body and returns the RFC 7591 §3.2.1 response.
pub async fn register(
    store: &dyn Store,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<serde_json::Value, OAuthError> {
    let metadata = parse_metadata(body)?;
    let client_id = random_token(24);
    let secret = (metadata.token_endpoint_auth_method != "none").then(|| random_token(32));
    let client = Client {
        client_id: client_id.clone(),
        secret_hash: secret.as_deref().map(sha256_hex),
        token_endpoint_auth_method: metadata.token_endpoint_auth_method,
        client_name: metadata.client_name,
        redirect_uris: metadata.redirect_uris,
        grant_types: metadata.grant_types,
        response_types: metadata.response_types,
        scope: metadata.scope,
        metadata: serde_json::Value::Object(metadata.extra),
        created_at: now,
    };
    store.insert_client(&client).await?;
    tracing::info!(target: "audit", event = "client.registered", client_id = %client.client_id, auth = %client.token_endpoint_auth_method);

    let mut response = registration_response(&client);
    if let (Some(secret), Some(object)) = (secret, response.as_object_mut()) {
        object.insert("client_secret".into(), secret.into());
        object.insert("client_secret_expires_at".into(), 0.into());
    }
    Ok(response)
}

/// The registered metadata of a client, as RFC 7591 §3.2.1 returns it (without the secret).
pub fn registration_response(client: &Client) -> serde_json::Value {
    let mut object = client.metadata.as_object().cloned().unwrap_or_default();
    object.insert("client_id".into(), client.client_id.clone().into());
    object.insert(
        "client_id_issued_at".into(),
        client.created_at.timestamp().into(),
    );
    object.insert("redirect_uris".into(), client.redirect_uris.clone().into());
    object.insert(
        "token_endpoint_auth_method".into(),
        client.token_endpoint_auth_method.clone().into(),
    );
    object.insert("grant_types".into(), client.grant_types.clone().into());
    object.insert(
        "response_types".into(),
        client.response_types.clone().into(),
    );
    if let Some(name) = &client.client_name {
        object.insert("client_name".into(), name.clone().into());
    }
    if let Some(scope) = &client.scope {
        object.insert("scope".into(), scope.clone().into());
    }
    serde_json::Value::Object(object)
}

/// Registration metadata validated and defaulted.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_type_is_kept_and_its_redirect_rules_apply() {
        let native = parse_metadata(
            br#"{"redirect_uris":["http://127.0.0.1:5555/cb","https://app.example/cb"],"application_type":"native"}"#,
        )
        .unwrap();
        assert_eq!(native.extra["application_type"], "native");
        let web = parse_metadata(
            br#"{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"application_type":"web","token_endpoint_auth_method":"client_secret_post"}"#,
        )
        .unwrap();
        assert_eq!(web.extra["application_type"], "web");
        assert_eq!(web.token_endpoint_auth_method, "client_secret_post");
    }

    #[test]
    fn metadata_is_validated_and_defaulted_without_a_store() {
        let metadata = parse_metadata(
            br#"{"redirect_uris":["http://127.0.0.1/cb"],"scope":"b a","client_id":"mine","logo_uri":"x"}"#,
        )
        .unwrap();
        assert_eq!(metadata.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(metadata.grant_types, ["authorization_code"]);
        assert_eq!(metadata.response_types, ["code"]);
        assert_eq!(metadata.scope.as_deref(), Some("a b"));
        assert!(!metadata.extra.contains_key("client_id"));
        assert_eq!(metadata.extra["logo_uri"], "x");

        for (body, code) in [
            (&b"[]"[..], ErrorCode::InvalidClientMetadata),
            (br#"{}"#, ErrorCode::InvalidRedirectUri),
            (
                br#"{"redirect_uris":["http://example.com/cb"]}"#,
                ErrorCode::InvalidRedirectUri,
            ),
            (
                br#"{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}"#,
                ErrorCode::InvalidClientMetadata,
            ),
            (
                br#"{"redirect_uris":["https://a.example/cb"],"application_type":"desktop"}"#,
                ErrorCode::InvalidClientMetadata,
            ),
            (
                br#"{"redirect_uris":["https://a.example/cb"],"application_type":7}"#,
                ErrorCode::InvalidClientMetadata,
            ),
            (
                br#"{"redirect_uris":["https://a.example/cb","http://127.0.0.1/cb"],"application_type":"web"}"#,
                ErrorCode::InvalidRedirectUri,
            ),
            (
                br#"{"redirect_uris":["http://localhost:8080/cb"],"application_type":"web"}"#,
                ErrorCode::InvalidRedirectUri,
            ),
        ] {
            assert_eq!(parse_metadata(body).unwrap_err().code, code);
        }
    }
}
