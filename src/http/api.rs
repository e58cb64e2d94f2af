//! JSON endpoints: discovery, registration, token, revocation, introspection, health.
//! Each handler extracts, calls the core, and maps the outcome to a response.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::client_auth::{BasicCredentials, parse_basic};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::{grants, introspection, metadata, registration};
use crate::state::AppState;

/// An OAuth error as an HTTP response: RFC 6749 §5.2 JSON, the RFC's status, `no-store`, and
/// `WWW-Authenticate: Basic` when a client that tried Basic authentication failed (§5.2).
pub struct ApiError {
    pub error: OAuthError,
    pub status: Option<StatusCode>,
    pub basic_attempted: bool,
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            status: None,
            basic_attempted: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| status_of(self.error.code));
        let mut response = no_store(status, self.error.to_json());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            retry_after(&mut response);
        }
        if status == StatusCode::UNAUTHORIZED && self.basic_attempted {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="portcullis""#),
            );
        }
        response
    }
}

/// Asks the client to wait before trying again (RFC 9110 §10.2.3), on a 503.
pub fn retry_after(response: &mut Response) {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::oauth::error::RETRY_AFTER_SECS),
    );
}

/// The 429 for a client address over its limit: an OAuth error (`temporarily_unavailable`,
/// RFC 6749 §4.1.2.1: the server is overloaded for now) with `Retry-After`.
pub fn rate_limited(limited: crate::ratelimit::Limited) -> Response {
    let error = OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        format!(
            "too many requests from this address; retry after {} s",
            limited.retry_after_secs
        ),
    );
    let mut response = no_store(StatusCode::TOO_MANY_REQUESTS, error.to_json());
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limited.retry_after_secs),
    );
    response
}

/// The status of a JSON error response with `code` (RFC 6749 §5.2, RFC 6750 §3.1).
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A JSON body with `Cache-Control: no-store` (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// Reads the body up to the configured limit, as the content type the endpoint expects.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    expected: &'static str,
) -> Result<Bytes, ApiError> {
    if !content_type_is(headers, expected) {
        return Err(
            OAuthError::invalid_request(format!("the request body must be {expected}")).into(),
        );
    }
    axum::body::to_bytes(body, state.settings.limits.max_body_bytes)
        .await
        .map_err(|_| ApiError {
            error: OAuthError::invalid_request("the request body is too large"),
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            basic_attempted: false,
        })
}

/// A form body as text, with the Basic credentials if any.
async fn form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Option<BasicCredentials>, bool), ApiError> {
    let bytes = read_body(state, headers, body, "application/x-www-form-urlencoded").await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let basic_attempted =
        authorization.is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
    let basic = authorization.and_then(parse_basic);
    if basic_attempted && basic.is_none() {
        return Err(ApiError {
            error: OAuthError::invalid_client(),
            status: None,
            basic_attempted: true,
        });
    }
    Ok((text, basic, basic_attempted))
}

fn with_basic(basic_attempted: bool) -> impl FnOnce(OAuthError) -> ApiError {
    move |error| ApiError {
        error,
        status: None,
        basic_attempted,
    }
}

/// RFC 8414 §3 and OpenID Connect Discovery §4.
pub async fn authorization_server_metadata(State(state): State<AppState>) -> Response {
    Json(metadata::authorization_server(&state.auth)).into_response()
}

/// RFC 9728 §3, for the resource at `path` (empty for the default resource).
pub async fn protected_resource_metadata(
    State(state): State<AppState>,
    path: Option<Path<String>>,
) -> Response {
    // `/mcp/` is `/mcp`: clients add or drop the trailing slash of a resource.
    let resource_path = path
        .map(|Path(p)| format!("/{}", p.trim_end_matches('/')))
        .filter(|p| p != "/");
    let prefix = state.public.prefix();
    let resource = match resource_path {
        None => state.auth.resources.default_resource(),
        Some(path) => {
            let below_prefix = path.strip_prefix(prefix).unwrap_or(&path).to_owned();
            state
                .auth
                .resources
                .all()
                .iter()
                .find(|r| r.path == below_prefix || r.path == path)
        }
    };
    match resource {
        Some(resource) => Json(metadata::protected_resource(&state.auth, resource)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "not_found"})),
        )
            .into_response(),
    }
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// RFC 7591 §3.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&state, &headers, body, "application/json")
        .await
        .map_err(|mut e| {
            if e.status.is_none() {
                e.error = OAuthError::new(
                    ErrorCode::InvalidClientMetadata,
                    "the request body must be application/json",
                );
            }
            e
        })?;
    let response = registration::register(state.store.as_ref(), &bytes, state.now()).await?;
    Ok(no_store(StatusCode::CREATED, response))
}

/// RFC 6749 §3.2.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (text, basic, attempted) = form(&state, &headers, body).await?;
    let response = grants::token(&state.auth, basic.as_ref(), &text, state.now())
        .await
        .map_err(with_basic(attempted))?;
    Ok(no_store(StatusCode::OK, response))
}

/// RFC 7009 §2.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (text, basic, attempted) = form(&state, &headers, body).await?;
    introspection::revoke(&state.auth, basic.as_ref(), &text, state.now())
        .await
        .map_err(with_basic(attempted))?;
    Ok(no_store(StatusCode::OK, serde_json::json!({})))
}

/// RFC 7662 §2.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (text, basic, attempted) = form(&state, &headers, body).await?;
    let response = introspection::introspect(&state.auth, basic.as_ref(), &text, state.now())
        .await
        .map_err(with_basic(attempted))?;
    Ok(no_store(StatusCode::OK, response))
}

pub async fn live() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Ready when the database answers: 503 otherwise. Redis, when configured, is reported but
/// does not make the instance unready: every instance shares it, and each serves correctly
/// without it (limits fail open, revocations are polled), so taking them all out of the load
/// balancer would turn a Redis blip into an outage. It says `"status": "degraded"` then.
pub async fn ready(State(state): State<AppState>) -> Response {
    let (database, redis) = tokio::join!(state.store.ping(), async {
        match &state.redis {
            Some(redis) => Some(redis.ping().await),
            None => None,
        }
    });
    if let Err(error) = &database {
        tracing::warn!(%error, "readiness check: database unavailable");
    }
    if let Some(Err(error)) = &redis {
        tracing::warn!(%error, "readiness check: Redis unavailable");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let mut body = serde_json::json!({
        "status": match (&database, &redis) {
            (Err(_), _) => "unavailable",
            (Ok(()), Some(Err(_))) => "degraded",
            _ => "ok",
        },
        "database": word(database.is_ok()),
    });
    if let Some(redis) = &redis {
        body["redis"] = word(redis.is_ok()).into();
    }
    let status = if database.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
