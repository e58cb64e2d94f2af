//! The operator's view: `/metrics` and `/health/backends`, served only where `[metrics]` says,
//! counting what really happened with bounded labels; and the shipped dashboard and alerts
//! using only names Portcullis exports.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{Options, TestApp, spawn, spawn_dev};
use crate::support::recorder::{self, Recorder};

pub(crate) const TOKEN: &str = "metrics-token-for-the-tests-0123456789";

/// A gateway with the recorder as backend `rec` (and `more`, appended), metrics on `metrics`.
async fn gateway(metrics: &str, more: &str) -> (TestApp, Recorder) {
    let backend = recorder::spawn().await;
    let toml = format!(
        r#"
[[backends]]
id = "rec"
url = "{url}"
scope = "rec:tools:call"
timeout_secs = 2
[backends.tools]
"echo" = "rec:echo:call"
"admin-*" = "rec:admin:call"
{more}
"#,
        url = backend.url
    );
    let app = spawn(Options {
        grant_scopes: r#"["rec:tools:call", "rec:echo:call"]"#,
        top_toml: format!("grant = \"requested\"\n[metrics]\n{metrics}\n"),
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    (app, backend)
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"text": "hi"}}})
}

async fn token_for_rec(app: &TestApp) -> String {
    let (_, tokens) = app
        .tokens_for_resource("metered", None, Some(app.url("/mcp/rec")))
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// `/metrics` of `app`, opened with `TOKEN`.
pub(crate) async fn scrape(app: &TestApp) -> String {
    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

/// The value of the sample of `name` whose labels include every one of `labels`.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test]
async fn without_a_bind_or_a_token_the_operator_endpoints_are_not_served() {
    let app = spawn_dev("").await;

    for path in ["/metrics", "/health/backends"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(app.operator.is_none());
}

#[tokio::test]
async fn metrics_need_the_token() {
    let (app, _backend) = gateway(&format!("token = \"{TOKEN}\""), "").await;

    let none = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        none.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    for wrong in [&TOKEN[..TOKEN.len() - 1], "not-the-token-at-all-0123456789"] {
        let refused = app
            .http
            .get(app.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            refused.json::<Value>().await.unwrap()["error"],
            "invalid_token"
        );
    }
    let detail = app
        .http
        .get(app.url("/health/backends"))
        .send()
        .await
        .unwrap();
    assert_eq!(detail.status(), StatusCode::UNAUTHORIZED);

    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, "portcullis_build_info", &[]),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_sign_in_and_tool_calls_are_counted_with_their_labels() {
    let (app, _backend) = gateway(&format!("token = \"{TOKEN}\""), "").await;

    let token = token_for_rec(&app).await;
    let allowed = app
        .mcp(&app.url("/mcp/rec"), Some(&token), call(1, "echo"))
        .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    allowed.bytes().await.unwrap();
    app.mcp(&app.url("/mcp/rec"), Some(&token), call(2, "admin-reset"))
        .await
        .bytes()
        .await
        .unwrap();

    let text = scrape(&app).await;
    let value = |name, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        value(
            "portcullis_sign_ins_total",
            &[("provider", "corp"), ("outcome", "ok")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "portcullis_tool_calls_total",
            &[("backend", "rec"), ("tool", "echo"), ("outcome", "ok")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "portcullis_tool_calls_total",
            &[
                ("backend", "rec"),
                ("tool", "admin-reset"),
                ("outcome", "denied")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "portcullis_tool_call_duration_seconds_count",
            &[("backend", "rec"), ("tool", "echo")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("portcullis_tokens_total", &[("event", "issued")]),
        Some(1.0),
        "{text}"
    );
    // Routes are templates: the callback is counted once under its pattern, never its path.
    assert!(
        value(
            "portcullis_http_requests_total",
            &[("route", "/callback/{provider}"), ("status", "303")]
        )
        .is_some(),
        "{text}"
    );
    assert!(!text.contains("route=\"/callback/corp\""), "{text}");
    assert_eq!(
        value(
            "portcullis_http_requests_total",
            &[("route", "/mcp/rec"), ("status", "200")]
        ),
        Some(1.0),
        "{text}"
    );
    let pool = value("portcullis_db_pool_max_connections", &[]);
    assert!(pool.is_some_and(|max| max >= 1.0), "{text}");
    assert_eq!(
        value("portcullis_audit_events_dropped_total", &[]),
        Some(0.0)
    );
    assert!(
        value("portcullis_audit_queue_depth", &[]).is_some(),
        "{text}"
    );
}

#[tokio::test]
async fn the_operator_endpoints_can_have_a_listener_of_their_own() {
    let (app, _backend) = gateway("bind = \"127.0.0.1:0\"", "").await;
    let operator = app.operator.clone().expect("an operator listener");

    let metrics = app
        .http
        .get(format!("{operator}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("portcullis_build_info")
    );
    // Only the operator's endpoints there, and not them on the public listener.
    let token = app
        .http
        .post(format!("{operator}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::NOT_FOUND);
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn backend_detail_names_the_reachable_and_the_unreachable() {
    // Nothing listens on port 1 of the loopback.
    let gone = "[[backends]]\nid = \"gone\"\nurl = \"http://127.0.0.1:1/mcp\"\nscope = \"gone:tools:call\"\n";
    let (app, _backend) = gateway(&format!("token = \"{TOKEN}\""), gone).await;

    let response = app
        .http
        .get(app.url("/health/backends"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    let backends = body["backends"].as_array().unwrap();
    let find = |id: &str| backends.iter().find(|b| b["id"] == id).unwrap().clone();
    let rec = find("rec");
    assert_eq!(rec["transport"], "http");
    assert_eq!(rec["reachable"], true);
    assert!(rec["error"].is_null());
    assert!(rec["latency_ms"].is_u64());
    let gone = find("gone");
    assert_eq!(gone["reachable"], false);
    assert_eq!(gone["error"], "the connection failed");
    // The public readiness check is not about backends.
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// The metric names a file uses: every `portcullis_…` word, histogram suffixes removed.
fn names_used(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("portcullis_") {
        let word: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[start + word.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                word.strip_suffix(suffix).filter(|base| {
                    portcullis::telemetry::metrics::NAMES.contains(base)
                        && base.ends_with("_seconds")
                })
            })
            .unwrap_or(&word)
            .to_owned();
        names.insert(base);
    }
    names
}

#[test]
fn the_dashboard_and_the_alerts_use_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/portcullis.json")).unwrap();
    let alerts = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let parsed: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(!parsed["panels"].as_array().unwrap().is_empty());
    assert_eq!(
        alerts.matches("- alert:").count(),
        5,
        "five alerts, as the README says"
    );

    for (file, text) in [("dashboard", &dashboard), ("alerts", &alerts)] {
        let used = names_used(text);
        assert!(used.len() >= 4, "{file} uses {used:?}");
        for name in &used {
            assert!(
                portcullis::telemetry::metrics::NAMES.contains(&name.as_str()),
                "{file} uses {name}, which Portcullis does not export"
            );
        }
    }
}
