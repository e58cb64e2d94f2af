//! Every tool call through the gateway is recorded, allowed or denied.

use reqwest::StatusCode;
use serde_json::json;

use super::{call, gateway_on, rec_url, token_for_aggregate, token_for_rec};
use crate::support::app::{Db, Options, TestApp, spawn};
use crate::support::recorder;

/// The audit rows of one kind, newest first, after everything recorded so far is written.
async fn audit_rows(
    app: &TestApp,
    kind: portcullis::store::AuditKind,
) -> Vec<portcullis::store::AuditEvent> {
    app.state.auditor.flush().await;
    let filter = portcullis::store::AuditFilter {
        kind: Some(kind),
        limit: 100,
        ..Default::default()
    };
    app.state.store.audit_events(&filter).await.unwrap()
}

#[tokio::test]
async fn every_tool_call_is_audited_allowed_or_denied() {
    audited_calls(Db::Sqlite).await;
}

#[tokio::test]
async fn every_tool_call_is_audited_allowed_or_denied_on_postgres() {
    audited_calls(Db::Postgres).await;
}

async fn audited_calls(db: Db) {
    use portcullis::store::{AuditKind, Decision};
    let (app, _backend) = gateway_on(db, r#"[]"#, "").await;
    let token = token_for_rec(&app, "audited").await;
    let response = app
        .http
        .post(rec_url(&app))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("x-request-id", "audit-req-1")
        .json(&call(1, "echo"))
        .send()
        .await
        .unwrap();
    let size = response.bytes().await.unwrap().len();
    app.mcp(&rec_url(&app), Some(&token), call(2, "admin-reset"))
        .await;
    let aggregate = token_for_aggregate(&app, "audited").await;
    app.mcp(&app.mcp_url(), Some(&aggregate), call(3, "rec__die"))
        .await
        .bytes()
        .await
        .unwrap();

    let rows = audit_rows(&app, AuditKind::ToolCall).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let allowed = rows
        .iter()
        .find(|r| r.request_id.as_deref() == Some("audit-req-1"))
        .unwrap();
    assert_eq!(allowed.decision, Decision::Allowed);
    assert_eq!(
        (allowed.backend.as_deref(), allowed.tool.as_deref()),
        (Some("rec"), Some("echo"))
    );
    assert_eq!(allowed.user_email.as_deref(), Some("audited@example.com"));
    assert!(allowed.client_id.is_some() && allowed.user_id.is_some());
    assert_eq!(allowed.outcome.as_deref(), Some("ok"));
    assert_eq!(allowed.response_bytes, Some(size as i64));
    assert!(allowed.latency_ms.is_some());
    let denied = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("admin-reset"))
        .unwrap();
    assert_eq!(denied.decision, Decision::Denied);
    assert_eq!(
        denied.reason.as_deref(),
        Some("missing scope rec:admin:call")
    );
    assert_eq!(denied.outcome, None, "a denied call never ran");
    let broken = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("die"))
        .unwrap();
    assert_eq!(
        (broken.decision, broken.outcome.as_deref()),
        (Decision::Allowed, Some("unavailable"))
    );

    // A rejected token is a denied request.
    app.mcp(&rec_url(&app), Some("not-a-token"), call(4, "echo"))
        .await;
    let denied = audit_rows(&app, AuditKind::RequestDenied).await;
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0].reason.as_deref().unwrap().contains("/mcp/rec"),
        "{:?}",
        denied[0]
    );
}

#[tokio::test]
async fn the_proxy_refuses_uses_beyond_tools_without_the_backends_default_scope() {
    let backend = recorder::spawn().await;
    let toml = format!(
        "[[backends]]\nid = \"rec\"\nurl = \"{}\"\n[backends.tools]\n\"echo\" = \"rec:echo:call\"\n",
        backend.url
    );
    let app = spawn(Options {
        grant_scopes: r#"["rec:echo:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let token = token_for_rec(&app, "narrow").await;
    assert_eq!(
        app.mcp(&rec_url(&app), Some(&token), call(1, "echo"))
            .await
            .status(),
        StatusCode::OK
    );
    let read = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "file:///etc/passwd"}});
    let denied = app.mcp(&rec_url(&app), Some(&token), read).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(
        denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("rec:tools:call")
    );
    assert!(
        backend
            .bodies()
            .iter()
            .all(|b| b["method"] != "resources/read"),
        "nothing reached the backend"
    );
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_ne!(
        app.mcp(&rec_url(&app), Some(&token), ping).await.status(),
        StatusCode::FORBIDDEN,
        "housekeeping needs no scope"
    );
}
