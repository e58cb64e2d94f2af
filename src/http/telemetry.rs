//! The operator's view: `/metrics` (Prometheus text) and `/health/backends` (each backend's
//! reachability), served on their own listener (`[metrics] bind`) or on the public one behind a
//! bearer token (`[metrics] token`), and not at all otherwise; and the layer that gives every
//! request its trace context and counts it by route.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tower::{Layer, Service};

use crate::crypto::{constant_time_eq, sha256_hex};
use crate::paths;
use crate::state::AppState;
use crate::telemetry::{metrics, trace};

/// Gives each request its trace context (ambient while it is served: the audit trail and the
/// backend calls read it), then counts the answer by route template and status. A service of
/// its own rather than `from_fn`, which clones the whole inner stack on every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// See [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let request_id = request
            .headers()
            .get(&super::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let context = trace::incoming(request.headers(), request_id);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = trace::scope(context, answer).await?;
            metrics::http_request(
                route.as_ref().map_or("unmatched", MatchedPath::as_str),
                response.status().as_u16(),
            );
            Ok(response)
        })
    }
}

/// `/metrics`: the sampled values read now, then every metric.
async fn metrics_text(State(state): State<AppState>) -> Response {
    let Ok(handle) = metrics::install() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let sampled = metrics::Sampled {
        audit_queue_depth: state.auditor.queued(),
        audit_dropped: state.auditor.dropped(),
        pool: Some(state.store.pool_stats()),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        metrics::render(&handle, &sampled),
    )
        .into_response()
}

/// `/health/backends`: each backend probed now. 200 when every backend that can be probed is
/// reachable, 503 otherwise, with the list either way.
async fn backends(State(state): State<AppState>) -> Response {
    let probes = state.gateway.probe_backends().await;
    let healthy = probes.iter().all(|p| p.reachable != Some(false));
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "backends": probes,
    });
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

fn operator_routes() -> Router<AppState> {
    Router::new()
        .route(paths::METRICS, get(metrics_text))
        .route(paths::HEALTH_BACKENDS, get(backends))
}

/// The operator's endpoints on the public listener, behind `token`.
pub fn behind_token(token: SecretString) -> Router<AppState> {
    operator_routes().route_layer(middleware::from_fn(move |request, next| {
        let token = token.clone();
        async move { require_token(&token, request, next).await }
    }))
}

/// The operator's endpoints alone, for their own listener (no token: the address is the
/// protection).
pub fn own_listener(state: AppState) -> Router {
    operator_routes().with_state(state)
}

/// Lets the request through with `Authorization: Bearer {token}`; 401 otherwise (RFC 6750 §3).
async fn require_token(token: &SecretString, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, value)| value.trim());
    // Hashed first, so the comparison takes as long whatever the lengths.
    let allowed = presented.is_some_and(|presented| {
        constant_time_eq(&sha256_hex(presented), &sha256_hex(token.expose_secret()))
    });
    if allowed {
        return next.run(request).await;
    }
    let error = if presented.is_some() {
        json!({"error": "invalid_token", "error_description": "the metrics token is not valid"})
    } else {
        json!({"error": "invalid_request", "error_description": "a bearer token is required"})
    };
    let challenge = if presented.is_some() {
        r#"Bearer realm="portcullis-operator", error="invalid_token""#
    } else {
        r#"Bearer realm="portcullis-operator""#
    };
    (
        StatusCode::UNAUTHORIZED,
        [
            (
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::Json(error),
    )
        .into_response()
}
