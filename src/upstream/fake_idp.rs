//! A small in-process OpenID provider for the upstream tests: discovery, JWKS, token and
//! userinfo on 127.0.0.1:0, id_tokens signed with fresh ES256 keys. Codes are issued by the
//! test (`issue_code`) instead of through a browser, each with the claims it should yield.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::OidcSettings;
use crate::crypto::random_token;

pub const CLIENT_ID: &str = "portcullis-test";
pub const CLIENT_SECRET: &str = "fake-idp-client-secret";

/// What the id_token for an issued code says, and how it is signed.
#[derive(Clone)]
pub struct Grant {
    pub subject: String,
    pub nonce: String,
    pub email: String,
    /// When false the id_token leaves the email out and only userinfo has it.
    pub email_in_id_token: bool,
    /// Sign with a key the JWKS does not publish (but under the published `kid`).
    pub rogue_signature: bool,
    /// Sign with HS256 and the client secret, which discovery does not advertise.
    pub signed_with_client_secret: bool,
}

impl Grant {
    pub fn new(nonce: &str) -> Self {
        Grant {
            subject: "user-123".into(),
            nonce: nonce.into(),
            email: "Ada@Example.com".into(),
            email_in_id_token: true,
            rogue_signature: false,
            signed_with_client_secret: false,
        }
    }
}

struct Key {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl Key {
    fn generate(kid: &str) -> Key {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        // An uncompressed P-256 point: 0x04 || X (32 bytes) || Y (32 bytes).
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Key {
            kid: kid.into(),
            pkcs8: pkcs8.as_ref().to_vec(),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
        )
        .unwrap()
    }
}

/// What the fake IdP has issued and keeps.
struct IdpState {
    issuer: String,
    /// Published in the JWKS; the last one signs.
    keys: Vec<Key>,
    rogue: Key,
    codes: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, Grant>,
    access_tokens: HashMap<String, Grant>,
    token_requests: Vec<HashMap<String, String>>,
    jwks_fetches: usize,
}

#[derive(Clone)]
pub struct FakeIdp {
    /// Without a trailing slash, as Google spells its issuer.
    pub issuer: String,
    inner: Arc<Mutex<IdpState>>,
}

impl FakeIdp {
    pub async fn start() -> FakeIdp {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(IdpState {
            issuer: issuer.clone(),
            keys: vec![Key::generate("key-1")],
            rogue: Key::generate("key-1"),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            token_requests: Vec::new(),
            jwks_fetches: 0,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(inner.clone());
        // The task ends with the test's runtime.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeIdp { issuer, inner }
    }

    pub fn settings(&self) -> OidcSettings {
        OidcSettings {
            issuer: Url::parse(&self.issuer).unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            quirks: crate::config::Quirks::default(),
        }
    }

    pub fn issue_code(&self, grant: Grant) -> String {
        let code = random_token(16);
        self.inner.lock().unwrap().codes.insert(code.clone(), grant);
        code
    }

    /// Publishes a new signing key and signs with it from now on.
    pub fn rotate_key(&self) {
        let mut inner = self.inner.lock().unwrap();
        let kid = format!("key-{}", inner.keys.len() + 1);
        inner.keys.push(Key::generate(&kid));
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.inner.lock().unwrap().jwks_fetches
    }

    /// The form of every token request received, oldest first.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.inner.lock().unwrap().token_requests.clone()
    }
}

type Shared = State<Arc<Mutex<IdpState>>>;

async fn discovery(State(inner): Shared) -> Json<Value> {
    let issuer = inner.lock().unwrap().issuer.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(inner): Shared) -> Json<Value> {
    let mut inner = inner.lock().unwrap();
    inner.jwks_fetches += 1;
    Json(json!({ "keys": inner.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

async fn token(
    State(inner): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut inner = inner.lock().unwrap();
    inner.token_requests.push(form.clone());
    let (grant, with_id_token) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            match form.get("code").and_then(|code| inner.codes.remove(code)) {
                Some(grant) => (grant, true),
                None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
            }
        }
        Some("refresh_token") => match form
            .get("refresh_token")
            .and_then(|t| inner.refresh_tokens.remove(t))
        {
            Some(grant) => (grant, false),
            None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
        },
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let access_token = format!("at-{}", random_token(16));
    let refresh_token = format!("rt-{}", random_token(16));
    inner
        .access_tokens
        .insert(access_token.clone(), grant.clone());
    inner
        .refresh_tokens
        .insert(refresh_token.clone(), grant.clone());
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh_token,
    });
    if with_id_token {
        let now = chrono::Utc::now().timestamp();
        let digest = Sha256::digest(access_token.as_bytes());
        let mut claims = json!({
            "iss": inner.issuer, "sub": grant.subject, "aud": CLIENT_ID,
            "iat": now, "exp": now + 300, "nonce": grant.nonce, "name": "Ada Lovelace",
            "at_hash": URL_SAFE_NO_PAD.encode(&digest[..16]),
        });
        if grant.email_in_id_token {
            claims["email"] = json!(grant.email);
            claims["email_verified"] = json!(true);
        }
        let id_token = if grant.signed_with_client_secret {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
            )
            .unwrap()
        } else if grant.rogue_signature {
            inner.rogue.sign(&claims)
        } else {
            inner.keys.last().unwrap().sign(&claims)
        };
        body["id_token"] = json!(id_token);
    }
    Json(body).into_response()
}

async fn userinfo(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    let grant = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| inner.access_tokens.get(token));
    match grant {
        Some(grant) => {
            Json(json!({ "sub": grant.subject, "email": grant.email, "email_verified": true }))
                .into_response()
        }
        None => oauth_error(StatusCode::UNAUTHORIZED, "invalid_token"),
    }
}
