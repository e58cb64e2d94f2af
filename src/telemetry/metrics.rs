//! Prometheus metrics: every name Portcullis exports, described once, and the small helpers the
//! call sites use. Recording goes through the `metrics` facade: until [`install`] runs (the
//! operator's endpoints are configured) every helper is a no-op costing a load and a branch.
//!
//! Labels are bounded: routes are the router's templates, never raw paths; providers and
//! backends are configured ids; tool names come from clients, so only the first
//! [`MAX_TOOL_LABELS`] distinct ones get their own series and the rest share `other`.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests by `route` (the route template) and `status`.
pub const HTTP_REQUESTS: &str = "portcullis_http_requests_total";
/// Tool calls by `backend`, `tool` and `outcome` (the audit outcome, or `denied`).
pub const TOOL_CALLS: &str = "portcullis_tool_calls_total";
/// Tool calls' time to the end of the answer, by `backend` and `tool`.
pub const TOOL_CALL_DURATION: &str = "portcullis_tool_call_duration_seconds";
/// Finished sign-ins by `provider` and `outcome`.
pub const SIGN_INS: &str = "portcullis_sign_ins_total";
/// Tokens by `event`: `issued`, `refreshed`, `revoked`.
pub const TOKENS: &str = "portcullis_tokens_total";
/// Refresh tokens presented again after their rotation: the grant was revoked.
pub const REFRESH_REUSE: &str = "portcullis_refresh_token_reuse_total";
/// Requests refused by a rate limit, by `class`.
pub const RATE_LIMITED: &str = "portcullis_rate_limited_total";
/// Requests let through unlimited because the shared limits' Redis did not answer.
pub const RATE_LIMIT_UNAVAILABLE: &str = "portcullis_rate_limit_unavailable_total";
/// Stdio backend processes running now, by `backend`.
pub const STDIO_PROCESSES: &str = "portcullis_stdio_processes";
/// Stdio backend processes started, by `backend`.
pub const STDIO_STARTS: &str = "portcullis_stdio_process_starts_total";
pub const OPENAPI_CACHE: &str = "portcullis_openapi_cache_total";
/// Stdio backend processes ended, by `backend` and `expected` (`true` when Portcullis stopped it).
pub const STDIO_EXITS: &str = "portcullis_stdio_process_exits_total";
/// Audit events waiting to be written.
pub const AUDIT_QUEUE_DEPTH: &str = "portcullis_audit_queue_depth";
/// Audit events dropped because the queue was full.
pub const AUDIT_DROPPED: &str = "portcullis_audit_events_dropped_total";
/// Database connections by `state`: `idle` or `in_use`.
pub const DB_POOL_CONNECTIONS: &str = "portcullis_db_pool_connections";
/// The most connections the database pool opens.
pub const DB_POOL_MAX: &str = "portcullis_db_pool_max_connections";
/// Always 1, labelled with the `version`: shows the instance is scraped.
pub const BUILD_INFO: &str = "portcullis_build_info";

/// Every metric name, for the dashboard and alert files' test.
pub const NAMES: [&str; 16] = [
    HTTP_REQUESTS,
    TOOL_CALLS,
    TOOL_CALL_DURATION,
    SIGN_INS,
    TOKENS,
    REFRESH_REUSE,
    RATE_LIMITED,
    RATE_LIMIT_UNAVAILABLE,
    STDIO_PROCESSES,
    STDIO_STARTS,
    STDIO_EXITS,
    AUDIT_QUEUE_DEPTH,
    AUDIT_DROPPED,
    DB_POOL_CONNECTIONS,
    DB_POOL_MAX,
    BUILD_INFO,
];

/// Distinct tool names with a series of their own (per process).
pub const MAX_TOOL_LABELS: usize = 500;

/// Tool-call latency buckets, in seconds: a built-in tool answers in well under a millisecond, a
/// backend in tens of milliseconds to its timeout.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle) and describes
/// every metric.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(TOOL_CALL_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        anyhow::bail!("another metrics recorder is installed in this process");
    }
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route template and status code"
    );
    describe_counter!(TOOL_CALLS, "Tool calls by backend, tool and outcome");
    describe_histogram!(
        TOOL_CALL_DURATION,
        metrics::Unit::Seconds,
        "Tool calls' duration until the answer ended"
    );
    describe_counter!(SIGN_INS, "Finished sign-ins by provider and outcome");
    describe_counter!(TOKENS, "Tokens issued, refreshed and revoked");
    describe_counter!(
        REFRESH_REUSE,
        "Rotated refresh tokens presented again (the grant is revoked)"
    );
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by class");
    describe_counter!(
        RATE_LIMIT_UNAVAILABLE,
        "Requests let through unlimited because Redis did not answer"
    );
    describe_gauge!(STDIO_PROCESSES, "Stdio backend processes running");
    describe_counter!(STDIO_STARTS, "Stdio backend processes started");
    describe_counter!(
        OPENAPI_CACHE,
        "OpenAPI backends' cacheable calls by backend and result (hit or miss)"
    );
    describe_counter!(STDIO_EXITS, "Stdio backend processes ended");
    describe_gauge!(AUDIT_QUEUE_DEPTH, "Audit events waiting to be written");
    describe_counter!(
        AUDIT_DROPPED,
        "Audit events dropped because the queue was full"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "Database pool connections by state");
    describe_gauge!(DB_POOL_MAX, "The database pool's connection limit");
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the version");
}

/// A request answered with `status` on `route` (the route template, `unmatched` for none).
pub fn http_request(route: &str, status: u16) {
    if !installed() {
        return;
    }
    counter!(HTTP_REQUESTS, "route" => route.to_owned(), "status" => status.to_string())
        .increment(1);
}

/// The label a client-supplied tool name is counted under.
fn tool_label(tool: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    let Ok(mut seen) = seen.lock() else {
        return "other".to_owned();
    };
    if seen.contains(tool) {
        return tool.to_owned();
    }
    if seen.len() < MAX_TOOL_LABELS {
        seen.insert(tool.to_owned());
        return tool.to_owned();
    }
    "other".to_owned()
}

/// A tool call that reached its backend (or the built-in tools) and ended with `outcome`.
pub fn tool_call(backend: &str, tool: &str, outcome: &'static str, took: Duration) {
    if !installed() {
        return;
    }
    let tool = tool_label(tool);
    histogram!(TOOL_CALL_DURATION, "backend" => backend.to_owned(), "tool" => tool.clone())
        .record(took.as_secs_f64());
    counter!(TOOL_CALLS, "backend" => backend.to_owned(), "tool" => tool, "outcome" => outcome)
        .increment(1);
}

/// A tool call refused before it reached the backend.
pub fn tool_call_denied(backend: &str, tool: &str) {
    if !installed() {
        return;
    }
    counter!(TOOL_CALLS, "backend" => backend.to_owned(), "tool" => tool_label(tool), "outcome" => "denied")
        .increment(1);
}

/// How a sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    Ok,
    /// The provider signed the person in; Portcullis' admission rules refused them.
    NotAdmitted,
    /// The provider answered with an error (the person cancelled, the provider refused).
    UpstreamDenied,
    /// The provider's code exchange failed or could not be reached.
    UpstreamFailed,
    /// The person declined on the consent page.
    ConsentDenied,
}

impl SignIn {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotAdmitted => "not_admitted",
            Self::UpstreamDenied => "upstream_denied",
            Self::UpstreamFailed => "upstream_failed",
            Self::ConsentDenied => "consent_denied",
        }
    }
}

/// A sign-in with the configured provider `provider` ended.
pub fn sign_in(provider: &str, outcome: SignIn) {
    if !installed() {
        return;
    }
    counter!(SIGN_INS, "provider" => provider.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
}

/// What happened to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEvent {
    Issued,
    Refreshed,
    Revoked,
}

pub fn token(event: TokenEvent) {
    let event = match event {
        TokenEvent::Issued => "issued",
        TokenEvent::Refreshed => "refreshed",
        TokenEvent::Revoked => "revoked",
    };
    counter!(TOKENS, "event" => event).increment(1);
}

/// A rotated refresh token came back after its grace window.
pub fn refresh_reuse() {
    counter!(REFRESH_REUSE).increment(1);
}

/// A request refused by the rate limit of `class` (a fixed word chosen by the limiter, never
/// text from the request: it is a label).
pub fn rate_limited(class: &str) {
    if !installed() {
        return;
    }
    counter!(RATE_LIMITED, "class" => class.to_owned()).increment(1);
}

/// A request let through unlimited: Redis, where the shared limits live, did not answer.
pub fn rate_limit_unavailable() {
    if !installed() {
        return;
    }
    counter!(RATE_LIMIT_UNAVAILABLE).increment(1);
}

/// A cacheable call of an OpenAPI backend, answered from the cache (`hit`) or not (`miss`).
pub fn openapi_cache(backend: &str, hit: bool) {
    if !installed() {
        return;
    }
    let result = if hit { "hit" } else { "miss" };
    counter!(OPENAPI_CACHE, "backend" => backend.to_owned(), "result" => result).increment(1);
}

/// A stdio process of `backend` started.
pub fn stdio_started(backend: &str) {
    if !installed() {
        return;
    }
    counter!(STDIO_STARTS, "backend" => backend.to_owned()).increment(1);
    gauge!(STDIO_PROCESSES, "backend" => backend.to_owned()).increment(1.0);
}

/// A stdio process of `backend` ended; `expected` when Portcullis stopped it.
pub fn stdio_exited(backend: &str, expected: bool) {
    if !installed() {
        return;
    }
    gauge!(STDIO_PROCESSES, "backend" => backend.to_owned()).decrement(1.0);
    counter!(STDIO_EXITS, "backend" => backend.to_owned(), "expected" => if expected { "true" } else { "false" })
        .increment(1);
}

/// The database pool as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// Values read at scrape time rather than counted as they happen.
pub struct Sampled {
    pub audit_queue_depth: usize,
    pub audit_dropped: u64,
    pub pool: Option<PoolStats>,
}

/// Records `sampled`, then renders every metric in the Prometheus text format.
pub fn render(handle: &PrometheusHandle, sampled: &Sampled) -> String {
    gauge!(AUDIT_QUEUE_DEPTH).set(sampled.audit_queue_depth as f64);
    counter!(AUDIT_DROPPED).absolute(sampled.audit_dropped);
    if let Some(pool) = sampled.pool {
        let in_use = pool.open.saturating_sub(pool.idle);
        gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
        gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
        gauge!(DB_POOL_MAX).set(f64::from(pool.max));
    }
    handle.render()
}

/// Drains histogram samples into their buckets; run periodically so memory stays bounded
/// between scrapes.
pub fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

/// True once [`install`] has run.
pub fn installed() -> bool {
    HANDLE.get().is_some()
}
