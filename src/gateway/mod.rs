//! The gateway: `/mcp` with the built-in tools, and `/mcp/{backend}` for each MCP server behind
//! Portcullis, each a protected resource with its own audience. Every message on every endpoint
//! takes the same path: authenticated, parsed once, authorized by the one gate, audited, then
//! relayed (HTTP backends) or answered by the gateway as an MCP server, with the caller's
//! identity (never the client's token) going to the backend.

/// API keys as bearer tokens: found by hash, judged with the owner's entitlement.
pub mod api_keys;
/// Requests from backends to the client mid-call, and the client's answers routed back.
mod asks;
/// One audit record per call: who, which backend and tool, the decision and the outcome.
pub mod audit;
/// The MCP servers behind the gateway and how each is reached.
pub mod backend;
/// Tools Portcullis serves itself (`whoami`).
mod builtin;
/// Who is calling: bearer tokens verified for one resource, scopes parsed once.
pub mod caller;
/// The MCP client side of a backend: one JSON-RPC request at a time for a caller.
pub mod connection;
/// The endpoints, and the one handler every MCP request goes through.
pub mod endpoint;
/// The two eras of MCP (`initialize` and sessions; per-request `_meta`) and the bridge.
pub mod era;
/// The one error vocabulary: JSON-RPC code, HTTP status, audit outcome.
pub mod error;
/// MCP answered by the gateway itself (the aggregate `/mcp`, stdio backends).
mod facade;
/// The one authorization step every message passes.
pub mod gate;
/// What a backend learns about the caller: headers, a signed assertion, the upstream token.
pub mod identity;
/// JSON-RPC responses as relayed: ids, failures, the `tools/list` filter.
pub mod jsonrpc;
/// The gateway as an MCP client of a Streamable HTTP backend (for `/mcp`).
pub mod mcp_client;
/// Client messages parsed once into typed requests.
pub mod message;
/// Backends' requests to a 2026-07-28 client as MRTR: the call parked until the retry.
mod mrtr;
/// REST APIs described by OpenAPI, their operations served as tools.
pub mod openapi;
/// Which scope a tool requires.
pub mod policy;
/// The streaming reverse proxy in front of Streamable HTTP backends.
mod proxy;
/// Refused credentials, audited per source per minute.
mod rejections;
/// Relaying a proxied backend's JSON or SSE answer.
mod relay;
/// The shared HTTP answers: 401, step-up 403, JSON-RPC errors.
mod respond;
/// Backend sessions bound to the person who opened them.
mod sessions;
/// Server-Sent Events: splitting, reading and writing events.
pub mod sse;
/// Stdio backends: per-user (or shared) server processes that Portcullis starts and supervises.
pub mod stdio;
/// Access tokens of trusted external issuers, verified against their JWKS.
pub mod trusted;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::any;
use url::Url;

use crate::audit::Auditor;
use crate::clock::Clock;
use crate::config::{BackendSettings, BackendTransport, Settings};
use crate::crypto::Secrets;
use crate::oauth::access::AccessPolicy;
use crate::oauth::resource::{ResourceSpec, Resources};
use crate::paths::{self, PublicUrl};
use crate::ratelimit::{Class, Limited, RateLimits};
use crate::store::DynStore;
pub use backend::{Backend, Transport};
use caller::TokenVerifier;
use endpoint::{Endpoint, Served, Serves};
use gate::Gate;
use identity::IdentityForwarder;
use mcp_client::McpHttpClient;
pub use openapi::{Apis, ResponseCache};
use policy::ToolPolicy;

/// `/mcp/{id}` for a backend.
pub fn backend_path(id: &str) -> String {
    format!("{}/{id}", paths::MCP)
}

/// Which scope each of `backend`'s tools requires: its rules, over an OpenAPI operation's own
/// default.
pub fn tool_policy(backend: &BackendSettings, apis: &Apis) -> ToolPolicy {
    let policy = ToolPolicy::new(backend);
    match apis.get(&backend.id) {
        Some(api) => policy.with_defaults(openapi::OpenApiBackend::default_scopes(api)),
        None => policy,
    }
}

/// What a sign-in for `backend` asks for by default: its default scope, or for an OpenAPI
/// backend what its read-only operations require (writes step up).
fn basic_scopes(backend: &BackendSettings, policy: &ToolPolicy, apis: &Apis) -> Vec<String> {
    let Some(api) = apis.get(&backend.id) else {
        return vec![backend.scope.clone()];
    };
    let mut scopes: Vec<String> = api
        .catalog
        .tools
        .iter()
        .filter(|tool| tool.annotations.read_only_hint == Some(true))
        .map(|tool| policy.required_scope(&tool.name).to_owned())
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

/// The protected resources: `/mcp` (advertising every backend's scopes), then one per backend.
/// Each backend's basic scope is its default scope (an OpenAPI backend's, those of its reads);
/// `/mcp`'s are all of those.
pub fn resources(base: &Url, settings: &Settings, apis: &Apis) -> Resources {
    let mut supported_everywhere = Vec::new();
    let mut basic_everywhere = Vec::new();
    let mut backends = Vec::new();
    let global = settings.access.grant;
    for backend in &settings.backends {
        let policy = tool_policy(backend, apis);
        let supported = policy.scopes();
        let basic = basic_scopes(backend, &policy, apis);
        supported_everywhere.extend(supported.iter().cloned());
        basic_everywhere.extend(basic.iter().cloned());
        backends.push(ResourceSpec {
            path: backend_path(&backend.id),
            scopes_supported: supported,
            basic_scopes: basic,
            grant: backend.grant.unwrap_or(global),
        });
    }
    for list in [&mut supported_everywhere, &mut basic_everywhere] {
        list.sort();
        list.dedup();
    }
    let aggregate = ResourceSpec {
        path: paths::MCP.to_owned(),
        scopes_supported: supported_everywhere,
        basic_scopes: basic_everywhere,
        grant: global,
    };
    Resources::new(base, std::iter::once(aggregate).chain(backends))
}

/// What the gateway is built from: each part it uses, nothing more.
pub struct GatewayParts<'a> {
    pub settings: &'a Settings,
    pub public: &'a PublicUrl,
    pub resources: &'a Resources,
    pub verifier: TokenVerifier,
    pub identity: Arc<IdentityForwarder>,
    /// For refusals that name the role which would grant the missing scope.
    pub access: Arc<AccessPolicy>,
    /// Where a refusal asks for a step-up of the caller's grant.
    pub store: DynStore,
    /// Tags backend session ids with their owner.
    pub secrets: Secrets,
    pub auditor: Auditor,
    pub clock: Clock,
    /// Requests per person, client and API key.
    pub limits: Arc<RateLimits>,
    /// The OpenAPI backends' documents, read at start-up.
    pub apis: &'a Apis,
    /// Where OpenAPI backends keep answers of read-only operations.
    pub response_cache: ResponseCache,
}

/// The backends, the endpoints in front of them, and what every request passes through.
pub struct Gateway {
    pub backends: Vec<Arc<Backend>>,
    endpoints: Vec<Arc<Endpoint>>,
    verifier: TokenVerifier,
    gate: Gate,
    identity: Arc<IdentityForwarder>,
    /// For proxied requests: no overall timeout (each call has its own deadline, streams may be
    /// long), no redirects.
    http: reqwest::Client,
    clock: Clock,
    /// The largest body the endpoints the gateway serves itself accept.
    max_body_bytes: usize,
    /// `Host` values accepted (DNS rebinding protection).
    allowed_hosts: Vec<String>,
    secrets: Secrets,
    /// `Origin` values accepted: the public URL's and those configured.
    allowed_origins: Vec<String>,
    /// Backends' requests waiting for a client's answer.
    asks: asks::Asks,
    /// Calls waiting for a modern client's retry with its input.
    parking: mrtr::Parking,
    limits: Arc<RateLimits>,
    /// Server streams each person holds open, and how many they may.
    streams: relay::StreamSlots,
    max_streams_per_person: usize,
    /// A relayed server stream silent this long is closed.
    sse_idle_timeout: std::time::Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Audits the refused credentials counted in a minute that is over.
    pub fn flush_rejections(&self, now: chrono::DateTime<chrono::Utc>) {
        self.verifier.flush_rejections(now);
    }

    /// Counts a request of `caller` against its limits: per API key for a key, per client
    /// otherwise, and per person (issuer and subject) always.
    pub async fn within_limits(&self, caller: &caller::Caller) -> Result<(), Limited> {
        let claims = &caller.claims;
        if claims.client_id.starts_with(api_keys::KEY_CLIENT_PREFIX) {
            self.limits
                .check(Class::McpApiKey, &claims.client_id)
                .await?;
        } else if self.limits.limits(Class::McpClient) {
            self.limits
                .check(Class::McpClient, &claims.client_id)
                .await?;
        }
        if self.limits.limits(Class::McpPerson) {
            let person = format!("{}\n{}", claims.iss, claims.sub);
            self.limits.check(Class::McpPerson, &person).await?;
        }
        Ok(())
    }

    pub fn new(parts: GatewayParts<'_>) -> anyhow::Result<Self> {
        let GatewayParts {
            settings,
            public,
            resources,
            verifier,
            identity,
            access,
            store,
            secrets,
            auditor,
            clock,
            limits,
            apis,
            response_cache,
        } = parts;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let resource_at = |path: &str| {
            resources
                .all()
                .iter()
                .find(|r| r.path == path)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no protected resource at {path}"))
        };
        let mut backends = Vec::new();
        let mut endpoints = Vec::new();
        for settings in &settings.backends {
            let transport = match &settings.transport {
                BackendTransport::Http { url } => Transport::Http {
                    client: McpHttpClient::new(
                        settings,
                        url.clone(),
                        http.clone(),
                        identity.clone(),
                        clock.clone(),
                    ),
                    url: url.clone(),
                },
                BackendTransport::Stdio(stdio) => {
                    Transport::Stdio(Arc::new(stdio::StdioPool::new(settings, stdio)))
                }
                BackendTransport::OpenApi(api_settings) => {
                    let api = apis.get(&settings.id).cloned().ok_or_else(|| {
                        anyhow::anyhow!("the OpenAPI document of {} was not read", settings.id)
                    })?;
                    Transport::OpenApi(Arc::new(openapi::OpenApiBackend::new(
                        settings,
                        api_settings,
                        api,
                        http.clone(),
                        identity.clone(),
                        response_cache.clone(),
                        clock.clone(),
                    )))
                }
            };
            let backend = Arc::new(Backend {
                settings: settings.clone(),
                policy: tool_policy(settings, apis),
                resource: resource_at(&backend_path(&settings.id))?,
                transport,
            });
            let serves = match backend.transport {
                Transport::Http { .. } => Serves::Proxy(backend.clone()),
                Transport::Stdio(_) | Transport::OpenApi(_) => Serves::Facade(backend.clone()),
            };
            endpoints.push(Arc::new(Endpoint {
                resource: backend.resource.clone(),
                serves,
            }));
            backends.push(backend);
        }
        endpoints.insert(
            0,
            Arc::new(Endpoint {
                resource: resource_at(paths::MCP)?,
                serves: Serves::Aggregate {
                    backends: backends.clone(),
                    separator: settings.gateway.tool_separator.clone(),
                },
            }),
        );
        let mut allowed_hosts = Vec::new();
        if let Some(host) = public.base().host_str() {
            allowed_hosts.push(host.to_owned());
            if let Some(port) = public.base().port() {
                allowed_hosts.push(format!("{host}:{port}"));
            }
        }
        allowed_hosts.push(settings.bind.ip().to_string());
        allowed_hosts.push(settings.bind.to_string());
        let allowed_origins = std::iter::once(public.base().origin().ascii_serialization())
            .chain(settings.gateway.allowed_origins.iter().cloned())
            .collect();
        Ok(Self {
            backends,
            endpoints,
            verifier,
            gate: Gate::new(auditor, clock.clone(), access, store),
            identity,
            http,
            clock,
            max_body_bytes: settings.limits.max_mcp_body_bytes,
            allowed_hosts,
            secrets,
            allowed_origins,
            asks: asks::Asks::default(),
            parking: mrtr::Parking::default(),
            limits,
            streams: relay::StreamSlots::default(),
            max_streams_per_person: settings.gateway.max_streams_per_person,
            sse_idle_timeout: settings.gateway.sse_idle_timeout,
        })
    }

    /// True when the request's `Host` is this gateway's (public or bound address).
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            // HTTP/2 carries the authority in the URI, which the public URL's routing checks.
            return true;
        };
        let host = host.trim().to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            allowed.eq_ignore_ascii_case(&host)
                || allowed.trim_matches(['[', ']']) == host.trim_matches(['[', ']'])
        })
    }

    /// False when a browser page of a foreign origin sent the request. Clients that are not
    /// browsers send no `Origin`, and are let through to authentication.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        headers.get_all(header::ORIGIN).iter().all(|origin| {
            origin.to_str().is_ok_and(|origin| {
                self.allowed_origins
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim_end_matches('/')))
            })
        })
    }

    /// The MCP routes: one per endpoint, all through the same handler.
    pub fn router(self: &Arc<Self>) -> Router {
        let mut router = Router::new();
        for endpoint in &self.endpoints {
            let served = Served {
                gateway: self.clone(),
                endpoint: endpoint.clone(),
            };
            router = router.merge(
                Router::new()
                    .route(&endpoint.resource.path, any(endpoint::handle))
                    .with_state(served),
            );
        }
        router
    }

    /// Every backend's reachability, probed at once.
    pub async fn probe_backends(&self) -> Vec<backend::Probe> {
        futures::future::join_all(self.backends.iter().map(|b| b.probe(&self.http))).await
    }

    /// Stops the stdio processes: stdin closed, then a signal to any that linger.
    pub async fn shutdown(&self) {
        let pools = self.backends.iter().filter_map(|b| match &b.transport {
            Transport::Stdio(pool) => Some(pool.shutdown()),
            Transport::Http { .. } | Transport::OpenApi(_) => None,
        });
        futures::future::join_all(pools).await;
    }
}
