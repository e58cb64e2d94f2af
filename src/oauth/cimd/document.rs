//! The client identifier URL and the metadata document behind it
//! (draft-ietf-oauth-client-id-metadata-document §3, §4, §8.1; MCP 2025-11-25 authorization,
//! "Client ID Metadata Documents").

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use url::Url;

use crate::oauth::redirect;
use crate::oauth::scope::Scopes;
use crate::store::Client;

const MAX_URL_LEN: usize = 2048;
const MAX_REDIRECT_URIS: usize = 20;
const MAX_NAME: usize = 256;

/// True when `client_id` names a metadata document rather than a registered client: it is an
/// https URL. Registered client ids are random tokens, never URLs, so nothing else is fetched.
pub fn is_document_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// A client identifier URL that may be fetched: https, a path, no fragment, no user
/// information, no dot segments, and already in normal form (the document's `client_id` is
/// compared byte for byte, so a URL the parser would rewrite is refused rather than changed).
pub fn parse_url(client_id: &str) -> Result<Url, &'static str> {
    if client_id.len() > MAX_URL_LEN {
        return Err("the client_id URL is too long");
    }
    let url = Url::parse(client_id).map_err(|_| "the client_id is not a valid URL")?;
    if url.scheme() != "https" {
        return Err("a client_id URL must use https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a client_id URL must not contain user information");
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return Err("a client_id URL must not contain a fragment");
    }
    let raw_path = client_id
        .get(8..)
        .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or("");
    let raw_path = raw_path.split(['?', '#']).next().unwrap_or("");
    if raw_path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        matches!(
            lower.as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    }) {
        return Err("a client_id URL must not contain dot segments");
    }
    if url.path().is_empty() || url.path() == "/" {
        return Err("a client_id URL must contain a path");
    }
    if url.host().is_none() {
        return Err("a client_id URL must name a host");
    }
    if url.as_str() != client_id {
        return Err("the client_id URL is not in normal form");
    }
    Ok(url)
}

fn text<'a>(document: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match document.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} is not a string")),
    }
}

fn strings(document: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match document.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{key} holds a value that is not a string"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("{key} is not an array")),
    }
}

/// Checks a fetched (or pinned) document against the URL it came from and turns it into the
/// client Portcullis works with: always public (`none`), PKCE enforced as for every client.
/// The error says what is wrong with the document, for the operator's log and the person's page.
pub fn client_from_document(
    client_id: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Client, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the document is not JSON".to_owned())?;
    let Value::Object(document) = value else {
        return Err("the document is not a JSON object".into());
    };
    // §4.1: the document's client_id is the URL it was fetched from, compared as strings.
    if text(&document, "client_id")? != Some(client_id) {
        return Err("the document's client_id is not the URL it was fetched from".into());
    }
    let name = text(&document, "client_name")?
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .ok_or("the document has no client_name")?;
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err("client_name is too long or contains control characters".into());
    }
    let redirect_uris = strings(&document, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err("the document has no redirect_uris".into());
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err("the document has too many redirect_uris".into());
    }
    for uri in &redirect_uris {
        redirect::validate_for_registration(uri)
            .map_err(|why| format!("redirect URI {uri} {why}"))?;
    }
    // §4.1: a document cannot carry a shared secret; the client is public. A document that
    // prefers another method but also lists `none` (ChatGPT's) is used as a public client.
    for secret_field in ["client_secret", "client_secret_expires_at"] {
        if document.contains_key(secret_field) {
            return Err(format!("the document must not contain {secret_field}"));
        }
    }
    let method = text(&document, "token_endpoint_auth_method")?.unwrap_or("none");
    let also_none = strings(&document, "token_endpoint_auth_methods_supported")?
        .is_some_and(|methods| methods.iter().any(|m| m == "none"));
    if method != "none" && !also_none {
        return Err(format!(
            "token_endpoint_auth_method {method} is not supported for metadata document clients: use none"
        ));
    }
    // Grant types Portcullis does not serve (jwt-bearer, device_code) are left out rather than
    // refused: the client uses the ones both sides know.
    let grant_types: Vec<String> = strings(&document, "grant_types")?
        .unwrap_or_else(|| vec!["authorization_code".into()])
        .into_iter()
        .filter(|g| g == "authorization_code" || g == "refresh_token")
        .collect();
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err("grant_types must include authorization_code".into());
    }
    if let Some(response_types) = strings(&document, "response_types")?
        && !response_types.iter().any(|r| r == "code")
    {
        return Err("response_types must include code".into());
    }
    let scope = match text(&document, "scope")? {
        Some(raw) => Some(
            Scopes::parse(raw)
                .map_err(|_| "scope is malformed".to_owned())?
                .to_string(),
        ),
        None => None,
    };
    Ok(Client {
        client_id: client_id.to_owned(),
        secret_hash: None,
        token_endpoint_auth_method: "none".into(),
        client_name: Some(name.to_owned()),
        redirect_uris,
        grant_types,
        response_types: vec!["code".into()],
        scope,
        metadata: Value::Object(document),
        created_at: now,
    })
}

/// Document URLs and the checks a metadata document must pass.
#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example.com/oauth/client.json";

    fn client(document: Value) -> Result<Client, String> {
        client_from_document(URL, document.to_string().as_bytes(), Utc::now())
    }

    fn good() -> Value {
        serde_json::json!({
            "client_id": URL,
            "client_name": "Example",
            "redirect_uris": ["https://app.example.com/cb", "http://localhost/callback"],
            "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    #[test]
    fn only_https_urls_are_document_urls() {
        assert!(is_document_url(URL));
        assert!(is_document_url("HTTPS://app.example.com/x"));
        assert!(!is_document_url("http://app.example.com/x"));
        assert!(!is_document_url("Zq3_registered-client-id"));
        assert!(!is_document_url("https:/"));
    }

    #[test]
    fn a_document_url_is_https_with_a_path_in_normal_form() {
        assert!(parse_url(URL).is_ok());
        assert!(parse_url("https://app.example.com:8443/c?v=1").is_ok());
        for bad in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/a/../b",
            "https://app.example.com/a/./b",
            "https://app.example.com/a/%2e%2e/b",
            "https://app.example.com/a/%2E/b",
            "https://app.example.com/client#x",
            "https://user@app.example.com/client",
            "https://user:pw@app.example.com/client",
            "https://APP.example.com/client",
            "https://app.example.com:443/client",
            "https://app.example.com/a b",
            "http://app.example.com/client",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://a.example/{}", "x".repeat(3000))).is_err());
    }

    #[test]
    fn a_good_document_becomes_a_public_client() {
        let client = client(good()).unwrap();
        assert_eq!(client.client_id, URL);
        assert_eq!(client.token_endpoint_auth_method, "none");
        assert!(client.secret_hash.is_none());
        assert_eq!(client.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(client.client_name.as_deref(), Some("Example"));
    }

    #[test]
    fn chatgpt_shaped_documents_that_also_support_none_are_accepted() {
        let mut document = good();
        document["token_endpoint_auth_method"] = "private_key_jwt".into();
        assert!(client(document.clone()).is_err());
        document["token_endpoint_auth_methods_supported"] =
            serde_json::json!(["none", "private_key_jwt"]);
        assert_eq!(client(document).unwrap().token_endpoint_auth_method, "none");
    }

    #[test]
    fn every_broken_document_is_refused_with_its_reason() {
        type Break = fn(&mut Value);
        let cases: Vec<(Break, &str)> = vec![
            (
                |d| d["client_id"] = "https://app.example.com/oauth/client.json/".into(),
                "client_id",
            ),
            (
                |d| d["client_id"] = "https://other.example/oauth/client.json".into(),
                "client_id",
            ),
            (
                |d| {
                    d.as_object_mut().unwrap().remove("client_id");
                },
                "client_id",
            ),
            (
                |d| {
                    d.as_object_mut().unwrap().remove("client_name");
                },
                "client_name",
            ),
            (|d| d["client_name"] = "  ".into(), "client_name"),
            (|d| d["client_name"] = "a\u{7}b".into(), "control"),
            (
                |d| {
                    d.as_object_mut().unwrap().remove("redirect_uris");
                },
                "redirect_uris",
            ),
            (
                |d| d["redirect_uris"] = serde_json::json!([]),
                "redirect_uris",
            ),
            (
                |d| d["redirect_uris"] = serde_json::json!("https://a.example/cb"),
                "not an array",
            ),
            (
                |d| d["redirect_uris"] = serde_json::json!(["http://evil.example/cb"]),
                "redirect URI",
            ),
            (|d| d["client_secret"] = "s".into(), "client_secret"),
            (
                |d| d["token_endpoint_auth_method"] = "client_secret_basic".into(),
                "not supported",
            ),
            (
                |d| d["grant_types"] = serde_json::json!(["refresh_token"]),
                "grant_types",
            ),
            (
                |d| d["response_types"] = serde_json::json!(["token"]),
                "response_types",
            ),
            (|d| d["scope"] = serde_json::json!(7), "scope"),
        ];
        for (break_it, expected) in cases {
            let mut document = good();
            break_it(&mut document);
            let error = client(document.clone()).unwrap_err();
            assert!(error.contains(expected), "{document}: {error}");
        }
        assert!(client_from_document(URL, b"[]", Utc::now()).is_err());
        assert!(client_from_document(URL, b"not json", Utc::now()).is_err());
    }
}
