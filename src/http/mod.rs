//! The HTTP surface: routes and thin handlers. Protocol rules live in `oauth`.

/// JSON endpoints: discovery, registration, token, revocation, introspection, health.
mod api;
/// The browser side: authorize, provider and consent pages, callback.
mod pages;
/// The operator's view: `/metrics`, `/health/backends`, and the per-request trace context.
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderName, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::paths;
use crate::ratelimit::{Class, RateLimits, address_subject};
use crate::state::AppState;

const STYLESHEET: &str = include_str!("../../static/portcullis.css");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// The authorization server's metadata, as RFC 8414 and OpenID Discovery name it.
fn discovery_routes() -> Router<AppState> {
    Router::new()
        .route(
            paths::AUTHORIZATION_SERVER_METADATA,
            get(api::authorization_server_metadata),
        )
        .route(
            paths::OPENID_CONFIGURATION,
            get(api::authorization_server_metadata),
        )
}

/// The routes below the public base URL's path; the OAuth endpoints are rate limited per
/// client address, each class on its own count.
fn app_routes(state: &AppState) -> Router<AppState> {
    let register = Router::new().route(paths::REGISTER, post(api::register));
    let token = Router::new()
        .route(paths::TOKEN, post(api::token))
        .route(paths::REVOKE, post(api::revoke))
        .route(paths::INTROSPECT, post(api::introspect));
    let sign_in = Router::new()
        .route(paths::AUTHORIZE, get(pages::authorize))
        .route(
            paths::AUTHORIZE_PROVIDER,
            get(pages::provider_page).post(pages::choose_provider),
        )
        .route(
            paths::AUTHORIZE_CONSENT,
            get(pages::consent_page).post(pages::decide),
        )
        .route(paths::CALLBACK, get(pages::callback));
    discovery_routes()
        .route(paths::JWKS, get(api::jwks))
        .route(paths::HEALTH_LIVE, get(api::live))
        .route(paths::HEALTH_READY, get(api::ready))
        .route(
            &format!("{}/portcullis.css", paths::STATIC),
            get(stylesheet),
        )
        .merge(limited(register, state, Class::Register))
        .merge(limited(token, state, Class::Token))
        .merge(limited(sign_in, state, Class::Authorize))
}

/// `routes`, each request counted against `class` per client address first.
fn limited<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    state: &AppState,
    class: Class,
) -> Router<S> {
    if !state.limits.limits(class) || !routes.has_routes() {
        return routes;
    }
    routes.route_layer(axum::middleware::from_fn_with_state(
        (state.limits.clone(), class),
        limit_by_address,
    ))
}

/// Refuses a request over its address's limit (see [`api::rate_limited`]).
async fn limit_by_address(
    State((limits, class)): State<(Arc<RateLimits>, Class)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(address) = limits.client_address(peer, request.headers())
        && let Err(limited) = limits.check(class, &address_subject(address)).await
    {
        return api::rate_limited(limited);
    }
    next.run(request).await
}

/// Well-known documents at the origin's root, with the issuer's or resource's path inserted
/// after the well-known segment (RFC 8414 §3.1, RFC 9728 §3.1), as MCP clients probe them.
fn well_known_routes() -> Router<AppState> {
    Router::new()
        .route(
            paths::PROTECTED_RESOURCE_METADATA,
            get(api::protected_resource_metadata),
        )
        .route(
            &format!("{}/{{*path}}", paths::PROTECTED_RESOURCE_METADATA),
            get(api::protected_resource_metadata),
        )
        .route(
            &format!("{}/{{*path}}", paths::AUTHORIZATION_SERVER_METADATA),
            get(api::authorization_server_metadata),
        )
        .route(
            &format!("{}/{{*path}}", paths::OPENID_CONFIGURATION),
            get(api::authorization_server_metadata),
        )
}

/// The whole application; `extra` (the development sign-in pages) is served below the prefix too.
pub fn router(state: AppState, extra: Router) -> Router {
    let prefix = state.public.prefix().to_owned();
    let mut routes = app_routes(&state);
    if let Some(token) = &state.settings.metrics.token {
        routes = routes.merge(telemetry::behind_token(token.clone()));
    }
    let app = routes
        .with_state(state.clone())
        .merge(state.gateway.router())
        // The development sign-in's pages count as signing in.
        .merge(limited(extra, &state, Class::Authorize));
    let well_known = well_known_routes().with_state(state.clone());
    let routes = if prefix.is_empty() {
        app.merge(well_known)
    } else {
        // Behind a reverse proxy at a path: the app below it, discovery at the origin's root,
        // including the bare root documents that clients which drop the issuer's path probe.
        let root = discovery_routes().with_state(state.clone());
        Router::new()
            .nest(&prefix, app)
            .merge(well_known)
            .merge(root)
    };
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([
            header::WWW_AUTHENTICATE,
            REQUEST_ID,
            HeaderName::from_static("mcp-session-id"),
        ]);
    routes
        .layer(telemetry::ObserveLayer)
        .layer(cors)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(crate::telemetry::trace::RequestSpan))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(drop_unusable_request_id))
}

/// A caller's `X-Request-ID` is kept when it is short and printable; anything else is dropped
/// so a fresh one is generated (it ends up in logs, audit rows and backend requests).
async fn drop_unusable_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let usable = |value: &axum::http::HeaderValue| {
        !value.is_empty()
            && value.len() <= 128
            && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
    };
    if request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|v| !usable(v))
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}
