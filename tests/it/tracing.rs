//! Trace context: the caller's `traceparent` is honoured, reaches HTTP backends (a header) and
//! 2026-07-28 backends (`_meta`), and lands in the audit row with the request id; with the
//! OTEL variables, spans reach an OTLP/HTTP collector in the caller's trace.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use portcullis::store::{AuditEvent, AuditFilter, AuditKind, Decision};
use reqwest::StatusCode;
use serde_json::json;

use crate::gateway::{call, gateway, rec_url, token_for_rec};
use crate::support::app::{Options, TestApp, spawn};
use crate::support::modern;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE}-{PARENT}-01")
}

async fn audit_rows(app: &TestApp, kind: AuditKind) -> Vec<AuditEvent> {
    app.state.auditor.flush().await;
    let filter = AuditFilter {
        kind: Some(kind),
        limit: 100,
        ..Default::default()
    };
    app.state.store.audit_events(&filter).await.unwrap()
}

/// `(trace id, parent span id)` of a `traceparent` value.
fn parts(traceparent: &str) -> (String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00");
    (fields[1].to_owned(), fields[2].to_owned())
}

fn is_w3c_id(id: &str, len: usize) -> bool {
    id.len() == len
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && id.bytes().any(|b| b != b'0')
}

/// Calls `rec`'s echo with the caller's trace context and `request_id`, to the end of the answer.
async fn traced_echo(app: &TestApp, token: &str, request_id: &str) {
    let response = app
        .http
        .post(rec_url(app))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("traceparent", traceparent())
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("x-request-id", request_id)
        .json(&call(1, "echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap();
}

#[tokio::test]
async fn the_callers_trace_reaches_the_backend_and_the_audit_row() {
    let (app, backend) = gateway("[]", "").await;
    let token = token_for_rec(&app, "traced").await;

    traced_echo(&app, &token, "traced-1").await;

    let seen = backend.last();
    let (trace, span) = parts(seen.headers["traceparent"].to_str().unwrap());
    assert_eq!(trace, TRACE);
    // Portcullis is the backend's parent, not the caller.
    assert_ne!(span, PARENT);
    assert!(is_w3c_id(&span, 16), "{span}");
    assert_eq!(seen.headers["tracestate"], "congo=t61rcWkgMzE");
    let rows = audit_rows(&app, AuditKind::ToolCall).await;
    let row = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("echo"))
        .unwrap();
    assert_eq!(row.trace_id.as_deref(), Some(TRACE));
    assert_eq!(row.request_id.as_deref(), Some("traced-1"));
}

#[tokio::test]
async fn without_a_traceparent_a_trace_is_started_and_every_audited_path_carries_it() {
    let (app, backend) = gateway("[]", "").await;
    let token = token_for_rec(&app, "untraced").await;

    app.mcp(&rec_url(&app), Some(&token), call(1, "echo"))
        .await
        .bytes()
        .await
        .unwrap();
    app.mcp(&rec_url(&app), Some(&token), call(2, "admin-reset"))
        .await
        .bytes()
        .await
        .unwrap();
    let refused = app
        .http
        .post(rec_url(&app))
        .bearer_auth("not-a-token")
        .header("traceparent", traceparent())
        .header("x-request-id", "refused-1")
        .json(&call(3, "echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let (trace, _) = parts(backend.last().headers["traceparent"].to_str().unwrap());
    assert!(is_w3c_id(&trace, 32), "{trace}");
    assert!(backend.last().headers.get("tracestate").is_none());
    let calls = audit_rows(&app, AuditKind::ToolCall).await;
    let allowed = calls
        .iter()
        .find(|r| r.decision == Decision::Allowed)
        .unwrap();
    assert_eq!(allowed.trace_id.as_deref(), Some(trace.as_str()));
    let denied = calls
        .iter()
        .find(|r| r.decision == Decision::Denied)
        .unwrap();
    assert!(denied.trace_id.as_deref().is_some_and(|t| is_w3c_id(t, 32)));
    assert_ne!(denied.trace_id, allowed.trace_id, "one trace per request");
    assert!(denied.request_id.is_some() && allowed.request_id.is_some());
    assert_ne!(denied.request_id, allowed.request_id);
    let refusals = audit_rows(&app, AuditKind::RequestDenied).await;
    let refusal = refusals
        .iter()
        .find(|r| r.request_id.as_deref() == Some("refused-1"))
        .expect("the refused request is audited with its request id");
    assert_eq!(refusal.trace_id.as_deref(), Some(TRACE));
}

#[tokio::test]
async fn a_2026_backend_gets_the_trace_in_meta() {
    let backend = modern::spawn().await;
    let toml = format!(
        "[[backends]]\nid = \"mod\"\nurl = \"{}\"\nscope = \"mod:tools:call\"\ntimeout_secs = 5\n",
        backend.url
    );
    let app = spawn(Options {
        grant_scopes: r#"["mod:tools:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let (_, tokens) = app.tokens_for("modern", None).await;
    let token = tokens["access_token"].as_str().unwrap();

    let response = app
        .http
        .post(app.mcp_url())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("traceparent", traceparent())
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "mod__echo", "arguments": {"text": "hi"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap();

    let seen = modern::last(&backend, "tools/call");
    let meta = &seen.body["params"]["_meta"];
    let (trace, span) = parts(meta["traceparent"].as_str().unwrap());
    assert_eq!(trace, TRACE);
    assert_ne!(span, PARENT);
    let header = seen.headers["traceparent"].to_str().unwrap();
    assert_eq!(parts(header), (trace, span), "the header and _meta agree");
}

/// An OTLP/HTTP collector: keeps every body POSTed to `/v1/traces`.
struct Collector {
    url: String,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Collector {
    async fn start() -> Self {
        let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let kept = bodies.clone();
        let router = axum::Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(body);
                    // An empty ExportTraceServiceResponse.
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, bodies, task }
    }

    /// True when some export carried `bytes` (ids travel as raw bytes in the protobuf).
    fn saw(&self, bytes: &[u8]) -> bool {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .any(|body| body.windows(bytes.len()).any(|w| w == bytes))
    }
}

#[tokio::test]
async fn spans_reach_the_collector_in_the_callers_trace() {
    let collector = Collector::start().await;
    let otlp = portcullis::telemetry::Otlp {
        traces_endpoint: format!("{}/v1/traces", collector.url),
        service_name: "portcullis-it".to_owned(),
    };
    let telemetry = portcullis::telemetry::init(
        portcullis::config::LogFormat::Text,
        "warn",
        std::io::sink,
        false,
        Some(&otlp),
    );
    assert!(portcullis::telemetry::trace::exporting());
    let (app, backend) = gateway("[]", "").await;
    let token = token_for_rec(&app, "exported").await;

    traced_echo(&app, &token, "exported-1").await;
    // The server span ends once the answer is sent, which may be just after the client has
    // it: flush until it has been exported. Flushing blocks on the exporter's request, which
    // this runtime's collector answers, so it runs off the runtime.
    let telemetry = Arc::new(telemetry);
    for _ in 0..50 {
        let flushing = telemetry.clone();
        tokio::task::spawn_blocking(move || flushing.flush())
            .await
            .unwrap();
        if collector.saw(&hex::decode(TRACE).unwrap()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    assert!(
        collector.saw(&hex::decode(TRACE).unwrap()),
        "no span in the caller's trace reached the collector"
    );
    assert!(
        collector.saw(&hex::decode(PARENT).unwrap()),
        "the caller's span is the parent"
    );
    assert!(collector.saw(b"portcullis-it"), "the service name");
    // The backend's parent is the exported server span.
    let (trace, span) = parts(backend.last().headers["traceparent"].to_str().unwrap());
    assert_eq!(trace, TRACE);
    assert!(
        collector.saw(&hex::decode(&span).unwrap()),
        "the backend's parent span was exported"
    );
    let rows = audit_rows(&app, AuditKind::ToolCall).await;
    let row = rows
        .iter()
        .find(|r| r.request_id.as_deref() == Some("exported-1"))
        .unwrap();
    assert_eq!(row.trace_id.as_deref(), Some(TRACE));
}
