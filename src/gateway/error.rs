//! The gateway's one error vocabulary, mapped once to the JSON-RPC code, the HTTP status and
//! the audit outcome. Every MCP endpoint answers with these.

use axum::http::StatusCode;
use serde_json::Value;

use super::audit::Outcome;
use super::connection::CallError;

/// Implementation-defined server error codes (JSON-RPC 2.0 §5.1 reserves -32000 to -32099).
pub mod code {
    pub const BACKEND_UNAVAILABLE: i64 = -32001;
    pub const BACKEND_TIMEOUT: i64 = -32002;
    pub const RESPONSE_TOO_LARGE: i64 = -32003;
    pub const FORBIDDEN: i64 = -32004;
    pub const REQUEST_TOO_LARGE: i64 = -32005;
    pub const INPUT_NOT_BRIDGED: i64 = -32006;
    /// Over a rate limit (HTTP 429).
    pub const RATE_LIMITED: i64 = -32029;
    /// Portcullis itself (its database) is out of reach for now: retry after `Retry-After`.
    pub const TEMPORARILY_UNAVAILABLE: i64 = -32007;
    /// The caller holds as many server streams open as one person may.
    pub const TOO_MANY_STREAMS: i64 = -32008;
    /// Defined by MCP 2026-07-28 (`HeaderMismatchError`, `UnsupportedProtocolVersionError`).
    pub const HEADER_MISMATCH: i64 = super::super::era::HEADER_MISMATCH;
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = super::super::era::UNSUPPORTED_PROTOCOL_VERSION;
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// Why an MCP request got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    #[error("the body is not JSON")]
    Parse,
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0} is not offered here")]
    MethodNotFound(String),
    /// The `Mcp-*` headers do not say what the body says (MCP 2026-07-28 server validation).
    #[error("Header mismatch: {0}")]
    HeaderMismatch(String),
    /// A modern request's `_meta` lacks what the revision requires (HTTP 400).
    #[error("{0}")]
    InvalidMeta(String),
    /// A modern request claims a protocol version the gateway does not speak.
    #[error("Unsupported protocol version")]
    UnsupportedVersion { requested: String },
    /// A modern backend asked for input (MRTR) that a legacy client cannot be asked for here.
    #[error(
        "the backend needs input from the client (elicitation, sampling or roots) that this client's protocol revision cannot provide through the gateway"
    )]
    InputRequired,
    /// The caller's scopes do not cover the call: HTTP 403 with a step-up challenge. `roles`
    /// are the roles that would grant the scope, so the refusal explains itself.
    #[error(
        "forbidden: this call requires the scope {required}{}",
        granted_by(roles)
    )]
    Forbidden {
        required: String,
        roles: Vec<String>,
    },
    /// The upstream sign-in behind the caller's grant has ended: the token is no longer good.
    #[error("the upstream sign-in has ended")]
    SignInEnded,
    #[error("the request is larger than this backend accepts")]
    RequestTooLarge,
    #[error("the backend's response is larger than allowed")]
    ResponseTooLarge,
    #[error("the backend did not answer in time")]
    Timeout,
    #[error("{0}")]
    Unavailable(&'static str),
    /// What the gateway needs from its own database cannot be read now: HTTP 503 with
    /// `Retry-After`, whichever endpoint answers.
    #[error("the gateway is temporarily unavailable; try again shortly")]
    TemporarilyUnavailable,
    /// The caller has `[gateway] max_streams_per_person` server streams open already: HTTP 429
    /// with `Retry-After`.
    #[error("too many open streams: close one, or try again later")]
    TooManyStreams,
    /// The backend answered with a JSON-RPC error: passed on as it is.
    #[error("{message}")]
    Backend {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// The backend's answer does not have the shape MCP requires.
    #[error("the backend's answer is malformed")]
    Malformed,
    /// The request names a session that is not the caller's (or that this gateway never handed
    /// out): HTTP 404, as for an ended session, so the client starts a new one.
    #[error("Session not found")]
    SessionNotFound,
}

/// `; the role R grants it` (or `roles R, S grant`), or nothing when no role does.
pub fn granted_by(roles: &[String]) -> String {
    match roles {
        [] => String::new(),
        [role] => format!("; the role {role} grants it"),
        roles => format!("; the roles {} grant it", roles.join(", ")),
    }
}

impl GatewayError {
    pub fn rpc_code(&self) -> i64 {
        match self {
            Self::Parse => code::PARSE_ERROR,
            Self::InvalidRequest(_) | Self::SessionNotFound => code::INVALID_REQUEST,
            Self::InvalidParams(_) | Self::InvalidMeta(_) => code::INVALID_PARAMS,
            Self::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            Self::HeaderMismatch(_) => code::HEADER_MISMATCH,
            Self::UnsupportedVersion { .. } => code::UNSUPPORTED_PROTOCOL_VERSION,
            Self::InputRequired => code::INPUT_NOT_BRIDGED,
            Self::TemporarilyUnavailable => code::TEMPORARILY_UNAVAILABLE,
            Self::TooManyStreams => code::TOO_MANY_STREAMS,
            Self::Forbidden { .. } => code::FORBIDDEN,
            Self::RequestTooLarge => code::REQUEST_TOO_LARGE,
            Self::ResponseTooLarge => code::RESPONSE_TOO_LARGE,
            Self::Timeout => code::BACKEND_TIMEOUT,
            Self::Unavailable(_) | Self::SignInEnded => code::BACKEND_UNAVAILABLE,
            Self::Backend { code, .. } => *code,
            Self::Malformed => code::INTERNAL_ERROR,
        }
    }

    /// The HTTP status of the response that carries this error. Refusals before dispatch have
    /// their own status everywhere. A failed backend is a 502/504 where the gateway relays the
    /// backend's HTTP exchange (`relayed`), and an ordinary JSON-RPC error answer where the
    /// gateway speaks MCP itself.
    pub fn status(&self, relayed: bool) -> StatusCode {
        match self {
            Self::Parse
            | Self::InvalidRequest(_)
            | Self::HeaderMismatch(_)
            | Self::InvalidMeta(_)
            | Self::UnsupportedVersion { .. } => StatusCode::BAD_REQUEST,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::SessionNotFound => StatusCode::NOT_FOUND,
            Self::SignInEnded => StatusCode::UNAUTHORIZED,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout if relayed => StatusCode::GATEWAY_TIMEOUT,
            Self::ResponseTooLarge | Self::Unavailable(_) | Self::Malformed if relayed => {
                StatusCode::BAD_GATEWAY
            }
            _ => StatusCode::OK,
        }
    }

    /// How a call that ended with this error is recorded.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Timeout => Outcome::Timeout,
            Self::RequestTooLarge | Self::ResponseTooLarge => Outcome::TooLarge,
            Self::Unavailable(_) | Self::SignInEnded | Self::TemporarilyUnavailable => {
                Outcome::Unavailable
            }
            _ => Outcome::Error,
        }
    }

    /// The JSON-RPC error response to request `id`.
    pub fn to_message(&self, id: &Value) -> Value {
        let mut error = serde_json::json!({ "code": self.rpc_code(), "message": self.to_string() });
        let data = match self {
            Self::Backend { data, .. } => data.clone(),
            Self::UnsupportedVersion { requested } => Some(serde_json::json!({
                "supported": super::era::supported_versions(),
                "requested": requested,
            })),
            _ => None,
        };
        if let (Some(data), Some(object)) = (data, error.as_object_mut()) {
            object.insert("data".into(), data);
        }
        serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error })
    }
}

impl From<CallError> for GatewayError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Rpc {
                code,
                message,
                data,
            } => Self::Backend {
                code,
                message,
                data,
            },
            CallError::Timeout => Self::Timeout,
            CallError::TooLarge => Self::ResponseTooLarge,
            CallError::Unavailable(_) => Self::Unavailable("the backend is unavailable"),
            CallError::AtCapacity => {
                Self::Unavailable("the backend is at capacity; try again later")
            }
        }
    }
}
