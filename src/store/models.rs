//! The rows Portcullis keeps. Plain data: no behaviour, no secrets in the clear.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A registered OAuth client (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    /// SHA-256 (hex) of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// Space-separated scopes the client registered, if any.
    pub scope: Option<String>,
    /// Everything else the client registered, returned as-is in the registration response.
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A person as the operator or a first sign-in creates them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewUser {
    /// A verified email, or one the operator gave (lower-cased).
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A person. Who they are to a provider is an [`IdentityRecord`]; a person created by the
/// operator (`portcullis users add`) has none until their first sign-in claims them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id (a UUID), the `sub` of Portcullis' tokens.
    pub id: String,
    /// A verified email (never one a provider did not verify), or the one the operator gave.
    pub email: Option<String>,
    pub name: Option<String>,
    /// Set while the person is switched off: no sign-in, no refresh, no API key.
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The last sign-in, or the creation time for a person who never signed in.
    pub last_login_at: DateTime<Utc>,
}

/// Who a person is at one provider: (provider, subject) is the key, never the email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    /// The email this provider verified at the last sign-in, if it did.
    pub email: Option<String>,
    /// The claims the admission and role rules read, as the provider sent them at the last
    /// sign-in or upstream refresh, so that the rules can be applied again at every refresh.
    pub claims: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
}

/// A sign-in to record: the provider's view of the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub provider: String,
    pub subject: String,
    /// Verified only.
    pub email: Option<String>,
    pub name: Option<String>,
    pub claims: serde_json::Value,
}

/// Where a new identity goes when it is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// To this existing person (an operator-provisioned one, or one linked by verified email).
    To(String),
    /// To a new person.
    NewUser,
}

/// A person with what decides their access: their roles assigned by the operator, and their
/// identity at one provider (the one a grant came through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user: User,
    /// Roles assigned with `portcullis users roles add`, sorted.
    pub roles: Vec<String>,
    pub identity: Option<IdentityRecord>,
}

/// An API key: a machine acting for its owner (only a hash of the key is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// SHA-256 (hex) of the key.
    #[serde(skip)]
    pub key_hash: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// Space-separated scope patterns.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An authorization request on its way through provider choice, consent and upstream sign-in.
/// Stored as a JSON document so the steps can add to it without schema changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub id: String,
    pub expires_at: DateTime<Utc>,
    pub data: FlowData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowData {
    pub client_id: String,
    pub redirect_uri: String,
    /// The client's `state`, returned to it unchanged.
    pub state: Option<String>,
    pub code_challenge: String,
    /// Space-separated scopes requested.
    pub scope: Option<String>,
    /// The canonical resource (RFC 8707) the token will be for.
    pub resource: String,
    /// SHA-256 (hex) of the browser-binding cookie of the browser that started the flow.
    pub browser_hash: String,
    /// The CSRF token of the provider and consent forms.
    pub csrf: String,
    /// The upstream provider chosen (set at once when only one is configured).
    pub provider: Option<String>,
    /// Set when the person approved and was sent upstream.
    pub upstream: Option<UpstreamLeg>,
    /// Set when the consent page was skipped because this person approved the same request in
    /// this browser before: the callback goes on only if the same person signs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered_user: Option<String>,
}

/// Portcullis' own state for the upstream leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamLeg {
    pub nonce: String,
    /// Fernet-encrypted PKCE verifier.
    pub pkce_verifier_enc: String,
}

/// The upstream tokens of a grant, each Fernet-encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token_enc: Option<String>,
    pub refresh_token_enc: Option<String>,
    pub id_token_enc: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One sign-in of a user at a client, the `sid` of every token issued from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub provider: String,
    /// Space-separated scopes granted.
    pub scope: String,
    pub resource: String,
    /// The redirect URI the grant was issued through: what tells apart the installations of a
    /// client identified by a metadata document, which share one `client_id`. `None` for grants
    /// issued before it was kept.
    pub redirect_uri: Option<String>,
    pub upstream: UpstreamTokens,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A remembered approval: the person approved the client (`client_id` and redirect URI) for the
/// resource and scopes in the browser whose binding cookie hashes to `browser_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub browser_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub resource: String,
    pub user_id: String,
    /// Space-separated scopes approved.
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What the token endpoint reads before spending a code: the code, the grant it hands over,
/// and the email of that grant's person (for the access token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeExchange {
    pub code: AuthorizationCode,
    pub grant: Grant,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 (hex) of the code.
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    pub expires_at: DateTime<Utc>,
    /// When it was redeemed; `None` while unspent.
    pub redeemed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged for its successor; `None` while current.
    pub rotated_at: Option<DateTime<Utc>>,
    /// The successor token, Fernet-encrypted, so a concurrent duplicate refresh inside the
    /// grace window receives the same answer.
    pub successor_enc: Option<String>,
}

/// A signing key of Portcullis' own tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// `ES256`.
    pub alg: String,
    /// Fernet-encrypted PKCS#8 DER of the private key.
    pub private_key_enc: String,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
}

/// One audited event: a tool call, a sign-in, a token issued, refreshed or revoked, a request
/// refused, or an operator's change. Never carries a token, a code or a secret; `reason` and `outcome` are short words
/// chosen by Portcullis, not text echoed from a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// A UUID v4.
    pub id: String,
    pub time: DateTime<Utc>,
    pub kind: AuditKind,
    /// The `X-Request-ID` the request carried or was given.
    pub request_id: Option<String>,
    /// The W3C trace id of the request (32 hex digits): the caller's trace, or one Portcullis
    /// started.
    pub trace_id: Option<String>,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub client_id: Option<String>,
    pub backend: Option<String>,
    pub tool: Option<String>,
    pub decision: Decision,
    /// Why it was denied, or a short detail.
    pub reason: Option<String>,
    /// `ok`, `error`, `timeout`, `unavailable`, `too_large`, ...
    pub outcome: Option<String>,
    pub latency_ms: Option<i64>,
    pub response_bytes: Option<i64>,
}

/// What an [`AuditEvent`] records. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    ToolCall,
    SignIn,
    TokenIssued,
    TokenRefreshed,
    TokenRevoked,
    RequestDenied,
    /// An operator's change from the command line: a person added, disabled, enabled or
    /// deleted, a role assigned or removed, a grant revoked, a client deleted.
    Admin,
}

impl AuditKind {
    pub const ALL: [AuditKind; 7] = [
        AuditKind::ToolCall,
        AuditKind::SignIn,
        AuditKind::TokenIssued,
        AuditKind::TokenRefreshed,
        AuditKind::TokenRevoked,
        AuditKind::RequestDenied,
        AuditKind::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::ToolCall => "tool_call",
            AuditKind::SignIn => "sign_in",
            AuditKind::TokenIssued => "token_issued",
            AuditKind::TokenRefreshed => "token_refreshed",
            AuditKind::TokenRevoked => "token_revoked",
            AuditKind::RequestDenied => "request_denied",
            AuditKind::Admin => "admin",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuditKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// Whether Portcullis let the request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    Denied,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decision {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "allowed" => Ok(Decision::Allowed),
            "denied" => Ok(Decision::Denied),
            other => Err(UnknownName(other.to_owned())),
        }
    }
}

/// A name that is not one of an enum's stored names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

/// Which audit events to list: every present field must match. Newest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Matches `user_id` or `user_email`, exactly.
    pub user: Option<String>,
    pub tool: Option<String>,
    pub backend: Option<String>,
    pub kind: Option<AuditKind>,
    /// Events at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
}

impl Default for AuditFilter {
    /// No condition, the newest 100.
    fn default() -> Self {
        Self {
            user: None,
            tool: None,
            backend: None,
            kind: None,
            since: None,
            limit: 100,
        }
    }
}
