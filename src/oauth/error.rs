//! OAuth errors as the RFCs spell them: a code and a description that never echoes internals
//! (`http/` gives each code its status).

use std::borrow::Cow;

/// An error code from RFC 6749 §5.2 / §4.1.2.1, RFC 7591 §3.2.2, RFC 8707 §2, RFC 6750 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidToken => "invalid_token",
        }
    }
}

/// An OAuth error to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    /// Something failed inside Portcullis; the cause is logged by whoever built this.
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the authorization server failed; try again",
        )
    }

    pub fn temporarily_unavailable(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, description)
    }

    /// The JSON body of RFC 6749 §5.2.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

/// How long a client is asked to wait (`Retry-After`, seconds) when Portcullis is temporarily
/// unavailable: about what a database restart or fail-over takes.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Logs a storage failure and turns it into an error for the client: `temporarily_unavailable`
/// (503, retry) when the database is out of reach, `server_error` (500) otherwise.
///
/// RFC 6749 §4.1.2.1 defines `temporarily_unavailable` for the authorization endpoint only; the
/// token, registration, revocation and introspection endpoints use it the same way, as is
/// common practice, so that clients wait and retry instead of giving up.
impl From<crate::store::StoreError> for OAuthError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "storage unavailable");
            Self::temporarily_unavailable(
                "the authorization server is temporarily unavailable; try again shortly",
            )
        } else {
            tracing::error!(%error, "storage failed");
            Self::server_error()
        }
    }
}

/// Why a step the person takes in the browser (authorize, provider choice, consent, callback)
/// cannot go on and must not redirect: shown as a page. `http/` words and renders each one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The authorization request is malformed before its client is known.
    #[error("invalid authorization request: {0}")]
    InvalidRequest(Cow<'static, str>),
    #[error("the request names no client_id")]
    MissingClientId,
    #[error("the client is not registered")]
    UnknownClient,
    /// A metadata document `client_id` that is refused or whose document is unusable.
    #[error("the client's metadata document was refused: {0}")]
    ClientRefused(String),
    /// A metadata document that could not be fetched, with no copy at hand.
    #[error("the client's metadata document could not be fetched: {0}")]
    ClientUnavailable(String),
    #[error("the request names no redirect_uri")]
    MissingRedirectUri,
    #[error("the redirect_uri is not one the client registered")]
    UnregisteredRedirectUri,
    #[error("the redirect_uri is malformed")]
    MalformedRedirectUri,
    /// The flow is unknown, expired, already finished, or belongs to another provider.
    #[error("the flow is unknown, finished or expired")]
    FlowGone,
    /// The flow was started in another browser (the binding cookie does not match).
    #[error("the flow was started in another browser")]
    ForeignBrowser,
    /// The form's CSRF token is missing or wrong.
    #[error("the form's CSRF token was rejected")]
    FormExpired,
    #[error("invalid form: {0}")]
    InvalidForm(&'static str),
    #[error("unknown provider")]
    UnknownProvider,
    /// The provider signed the person in, but this gateway does not admit them (or has switched
    /// them off). The reason is audited, not shown.
    #[error("the person is not admitted")]
    NotAdmitted { provider_name: String },
    /// The database is out of reach for now: the person is asked to try again shortly (503).
    #[error("temporarily unavailable")]
    Unavailable,
    /// Something failed inside Portcullis; the cause was logged where it happened.
    #[error("internal error")]
    Internal,
}

impl From<crate::store::StoreError> for FlowError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "storage unavailable");
            Self::Unavailable
        } else {
            tracing::error!(%error, "storage failed");
            Self::Internal
        }
    }
}
