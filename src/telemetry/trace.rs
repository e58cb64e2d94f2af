//! W3C Trace Context for every request: the caller's `traceparent` is honoured, a fresh trace is
//! started otherwise, and the context travels on to HTTP backends (headers) and to 2026-07-28
//! backends (`_meta`, SEP-414). The trace id reaches the audit row whether or not spans are
//! exported.
//!
//! The context is ambient for the request's task, like the `tracing` span it mirrors: the audit
//! trail and the backend calls read it where they are, instead of every signature between the
//! HTTP layer and them carrying it.
//!
//! <https://www.w3.org/TR/trace-context/>

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, Request};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tower_http::trace::{DefaultMakeSpan, MakeSpan};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";

/// Set once the OpenTelemetry layer is installed: spans are exported and carry the context.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(super) fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// True when spans are exported (the `OTEL_*` variables asked for it).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What the audit trail and the backend calls learn about the request they serve.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `X-Request-ID`, as the request-id layer set it.
    pub request_id: Option<String>,
    /// Portcullis' own span in the trace: the trace id, and the span id backends see as their
    /// parent.
    pub span: SpanContext,
}

impl RequestContext {
    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        self.span.trace_id().to_string()
    }
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The context of the request this task serves, if any.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request id and the trace id of the request this task serves (for its audit rows),
/// without copying the rest of its context.
pub fn current_ids() -> Option<(Option<String>, String)> {
    CURRENT
        .try_with(|c| (c.request_id.clone(), c.trace_id()))
        .ok()
}

/// Runs `future` as the work of the request `context` describes.
pub async fn scope<F: Future>(context: RequestContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// `future` as part of the current request's work, in its context and its span: for a task the
/// request spawns (a task-local does not follow `tokio::spawn`).
pub fn carried<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let context = current();
    let span = Span::current();
    async move {
        match context {
            Some(context) => CURRENT.scope(context, future).await,
            None => future.await,
        }
    }
    .instrument(span)
}

/// The caller's context from `traceparent`/`tracestate`; invalid or absent ones give an empty
/// context (a new trace).
fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The context of an incoming request: the exported server span's when spans are exported;
/// otherwise the caller's trace (or a new one) with a span id of Portcullis' own.
pub fn incoming(headers: &HeaderMap, request_id: Option<String>) -> RequestContext {
    let span = if exporting() {
        Span::current().context().span().span_context().clone()
    } else {
        SpanContext::empty_context()
    };
    let span = if span.is_valid() {
        span
    } else {
        let ids = RandomIdGenerator::default();
        // Most callers send none: no propagator then.
        let parent = if headers.contains_key(TRACEPARENT) {
            extract(headers)
        } else {
            opentelemetry::Context::new()
        };
        let parent = parent.span();
        let parent = parent.span_context();
        let trace_id = if parent.is_valid() {
            parent.trace_id()
        } else {
            ids.new_trace_id()
        };
        SpanContext::new(
            trace_id,
            ids.new_span_id(),
            parent.trace_flags(),
            false,
            parent.trace_state().clone(),
        )
    };
    RequestContext { request_id, span }
}

/// The current request's `traceparent` (and `tracestate` when there is one) as `(name,
/// value)` pairs, for a backend request; none outside a request.
pub fn outgoing() -> Vec<(String, String)> {
    let Some(context) = current() else {
        return Vec::new();
    };
    let mut fields = std::collections::HashMap::new();
    let cx = opentelemetry::Context::new().with_remote_span_context(context.span);
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    // The propagator writes an empty `tracestate` when there is none; W3C says leave it out.
    let mut fields: Vec<(String, String)> =
        fields.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    fields.sort();
    fields
}

/// Adds the current request's `traceparent` (and `tracestate`) to a backend request's headers.
pub fn inject(headers: &mut HeaderMap) {
    for (name, value) in outgoing() {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name),
            axum::http::HeaderValue::try_from(value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// The server span of each request. Without export it is tower-http's default span; with
/// export it is an INFO span named after the route, whose parent is the caller's context.
#[derive(Debug, Clone, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        if !exporting() {
            return DefaultMakeSpan::new().make_span(request);
        }
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        // The path without the query: a callback's query carries codes.
        let span = tracing::info_span!(
            "request",
            otel.name = format!("{} {route}", request.method()),
            otel.kind = "server",
            http.request.method = %request.method(),
            http.route = route,
            url.path = request.uri().path(),
        );
        let _ = span.set_parent(extract(request.headers()));
        span
    }
}

/// A caller's trace kept, a malformed one replaced.
#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn the_callers_trace_is_kept_with_a_span_of_portcullis_own() {
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = incoming(
            &headers(&[("traceparent", caller), ("tracestate", "congo=t61rcWkgMzE")]),
            Some("req-1".into()),
        );

        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(context.span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.span.is_sampled());
        assert_eq!(context.span.trace_state().header(), "congo=t61rcWkgMzE");
        assert_eq!(context.request_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn a_missing_or_malformed_traceparent_starts_a_new_trace() {
        for bad in [
            None,
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Some("zz-not-a-trace-parent"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        ] {
            let pairs: Vec<(&'static str, &str)> =
                bad.map(|v| ("traceparent", v)).into_iter().collect();
            let context = incoming(&headers(&pairs), None);
            assert!(context.span.is_valid(), "{bad:?}");
            assert_ne!(
                context.trace_id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
        }
        let one = incoming(&HeaderMap::new(), None);
        let two = incoming(&HeaderMap::new(), None);
        assert_ne!(one.trace_id(), two.trace_id());
    }

    #[tokio::test]
    async fn backends_get_the_context_of_the_request_being_served_and_none_outside_one() {
        assert!(outgoing().is_empty());
        let context = incoming(&HeaderMap::new(), None);
        let expected = format!("00-{}-{}-00", context.trace_id(), context.span.span_id());

        let (fields, mut headers) = scope(context, async {
            let mut headers = HeaderMap::new();
            inject(&mut headers);
            (outgoing(), headers)
        })
        .await;

        assert_eq!(fields, vec![("traceparent".to_owned(), expected.clone())]);
        assert_eq!(headers.remove("traceparent").unwrap(), expected.as_str());
        assert!(headers.is_empty());
    }
}
