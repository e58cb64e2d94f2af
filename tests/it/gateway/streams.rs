//! Relayed server streams (GET on `/mcp/{backend}`): a per-person cap, an idle timeout, and a
//! stream whose client went away closed at once, with its backend connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use futures::StreamExt;
use reqwest::StatusCode;

use crate::support::app::{Options, TestApp, spawn};

/// Streams the backend opened and saw closed.
#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

/// Counts a stream closed when the backend's server drops it (its client hung up).
struct Closing(Arc<Counts>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// A backend whose GET `/chatty` sends a keep-alive comment every 100 ms and `/silent` one
/// comment, then nothing.
async fn backend() -> (String, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let stream = |every: Option<Duration>, counts: Arc<Counts>| {
        counts.opened.fetch_add(1, Ordering::SeqCst);
        let closing = Closing(counts);
        let ticks = futures::stream::unfold((0u64, closing), move |(n, closing)| async move {
            if n > 0 {
                match every {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending::<()>().await,
                }
            }
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from_static(b": ping\n\n")),
                (n + 1, closing),
            ))
        });
        (
            [("content-type", "text/event-stream")],
            Body::from_stream(ticks.boxed()),
        )
    };
    let (chatty, silent) = (counts.clone(), counts.clone());
    let app = Router::new()
        .route(
            "/chatty",
            get(move || async move { stream(Some(Duration::from_millis(100)), chatty) }),
        )
        .route("/silent", get(move || async move { stream(None, silent) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, counts)
}

async fn gateway(backend: &str) -> TestApp {
    let toml = format!(
        r#"
[gateway]
max_streams_per_person = 2
sse_idle_timeout_secs = 1

[[backends]]
id = "chatty"
url = "{backend}/chatty"
scope = "streams:tools:call"

[[backends]]
id = "silent"
url = "{backend}/silent"
scope = "streams:tools:call"
"#
    );
    spawn(Options {
        grant_scopes: r#"["streams:tools:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await
}

async fn open(app: &TestApp, backend: &str, token: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/mcp/{backend}")))
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn token(app: &TestApp, backend: &str) -> String {
    let resource = Some(app.url(&format!("/mcp/{backend}")));
    let (_, tokens) = app.tokens_for_resource("streamer", None, resource).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Waits until `closed` reaches `wanted` (the deadline only stops a hang).
async fn until_closed(counts: &Counts, wanted: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts.closed.load(Ordering::SeqCst) < wanted {
        assert!(
            Instant::now() < deadline,
            "the backend's stream stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_person_holds_only_so_many_streams_and_one_the_client_left_is_closed_at_the_backend() {
    let (backend, counts) = backend().await;
    let app = gateway(&backend).await;
    let token = token(&app, "chatty").await;
    let first = open(&app, "chatty", &token).await;
    let second = open(&app, "chatty", &token).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );

    let refused = open(&app, "chatty", &token).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32008, "{body}");
    assert_eq!(
        counts.opened.load(Ordering::SeqCst),
        2,
        "the refused one never reached the backend"
    );

    // The client goes away: the gateway drops its backend connection, and the place is free.
    drop(first);
    until_closed(&counts, 1).await;
    let again = open(&app, "chatty", &token).await;
    assert_eq!(again.status(), StatusCode::OK);
    drop((second, again));
    until_closed(&counts, 3).await;
}

#[tokio::test]
async fn a_stream_silent_past_the_idle_timeout_is_closed() {
    let (backend, counts) = backend().await;
    let app = gateway(&backend).await;
    let token = token(&app, "silent").await;
    let stream = open(&app, "silent", &token).await;
    assert_eq!(stream.status(), StatusCode::OK);
    // The body ends: the gateway closed the stream (1 s without a byte), and its backend side.
    let body = stream.text().await.unwrap();
    assert!(body.contains(": ping"), "{body}");
    until_closed(&counts, 1).await;
}
