//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3.1, RFC 7591 `token_endpoint_auth_method`).

use chrono::{DateTime, Utc};

use super::cimd::Clients;
use super::error::OAuthError;
use super::params::Params;
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::store::Client;

/// How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client: no secret.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    /// Every method, in the order discovery advertises them.
    pub const ALL: [AuthMethod; 3] = [Self::None, Self::ClientSecretBasic, Self::ClientSecretPost];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }
}

/// Credentials from an `Authorization: Basic` header, already form-decoded.
#[derive(Debug, Clone)]
pub struct BasicCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// Authenticates the client with exactly the method it registered (a metadata document client
/// is always public: `none`). Every failure is the same `invalid_client`, so the answer does
/// not tell which part was wrong.
pub async fn authenticate(
    clients: &Clients,
    basic: Option<&BasicCredentials>,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Client, OAuthError> {
    let body_secret = params.get("client_secret");
    if basic.is_some() && body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let (client_id, secret, method) = match (basic, body_secret) {
        (Some(basic), None) => {
            if params
                .get("client_id")
                .is_some_and(|id| id != basic.client_id)
            {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            (
                basic.client_id.as_str(),
                Some(basic.client_secret.as_str()),
                AuthMethod::ClientSecretBasic,
            )
        }
        (None, Some(secret)) => (
            params.require("client_id")?,
            Some(secret),
            AuthMethod::ClientSecretPost,
        ),
        _ => (params.require("client_id")?, None, AuthMethod::None),
    };
    let client = clients.resolve(client_id, now).await?.client;
    // The method it registered, exactly: a client that registered a secret cannot drop it.
    if AuthMethod::parse(&client.token_endpoint_auth_method) != Some(method) {
        return Err(OAuthError::invalid_client());
    }
    match (secret, client.secret_hash.as_deref()) {
        (None, None) => Ok(client),
        (Some(secret), Some(hash)) if constant_time_eq(&sha256_hex(secret), hash) => Ok(client),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// Parses an `Authorization: Basic` value (the scheme in any case, RFC 7617 §2): base64 of
/// `form-encoded id ":" form-encoded secret` (RFC 6749 §2.3.1).
pub fn parse_basic(header: &str) -> Option<BasicCredentials> {
    use base64::Engine;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    (!id.is_empty()).then_some(BasicCredentials {
        client_id: id,
        client_secret: secret,
    })
}

/// One form-encoded value: `+` is a space, `%XX` a byte. A raw `&` or `=` (from a client that
/// did not encode) stays what it is rather than cutting the value short.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Basic credentials decoded as RFC 6749 §2.3.1 says.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "my%20id:p%40ss" in base64
        use base64::Engine;
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%20id:p%40ss")
        );
        let creds = parse_basic(&header).unwrap();
        assert_eq!(creds.client_id, "my id");
        assert_eq!(creds.client_secret, "p@ss");
        assert!(parse_basic("Bearer x").is_none());
        assert!(parse_basic("Basic !!!").is_none());
        assert!(parse_basic("Basicx").is_none());
    }

    #[test]
    fn the_scheme_is_read_in_any_case_and_raw_ampersands_stay() {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode("client:s3cr&t=x+y");
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            let creds = parse_basic(&format!("{scheme} {encoded}")).unwrap();
            assert_eq!(creds.client_id, "client");
            assert_eq!(creds.client_secret, "s3cr&t=x y", "{scheme}");
        }
    }
}
