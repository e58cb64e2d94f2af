//! The MCP conformance suite's authorization-server scenarios
//! (@modelcontextprotocol/conformance 0.2.0-alpha.12, `conformance authorization`) against
//! Portcullis: the metadata document, and an authorization-code grant with PKCE and `resource`
//! for a registered public client, the person played by the test browser.

use serde_json::{Value, json};

use crate::support::app::{TestApp, spawn_dev};
use crate::support::clients::run_conformance;

/// The suite's checks against a fresh Portcullis, with the client it needs registered.
async fn checks() -> (TestApp, Vec<Value>) {
    let app = spawn_dev("").await;
    // The suite's callback server listens on this port; a port the kernel just handed out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, client) = app
        .register(json!({
            "client_name": "MCP conformance suite",
            "redirect_uris": [format!("http://127.0.0.1:{port}/callback")],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }))
        .await;
    assert_eq!(status, 201, "{client:#}");
    let lines = run_conformance(
        &app.base,
        client["client_id"].as_str().unwrap(),
        port,
        &app.mcp_url(),
    )
    .await;
    assert_eq!(lines.last(), Some(&json!({"exit": 0})), "{lines:#?}");
    (app, lines)
}

fn status_of<'a>(lines: &'a [Value], scenario: &str, id: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l["scenario"] == scenario && l["id"] == id)
        .and_then(|l| l["status"].as_str())
        .unwrap_or_else(|| panic!("no check {scenario}/{id} in {lines:#?}"))
}

#[tokio::test]
async fn the_authorization_server_scenarios_pass() {
    let (app, lines) = checks().await;
    assert_eq!(
        status_of(
            &lines,
            "authorization-server-metadata-endpoint",
            "authorization-server-metadata"
        ),
        "SUCCESS"
    );
    assert_eq!(
        status_of(
            &lines,
            "authorization-code-grant",
            "authorization-code-grant"
        ),
        "SUCCESS",
        "{lines:#?}"
    );
    let failures: Vec<&Value> = lines.iter().filter(|l| l["status"] == "FAILURE").collect();
    assert!(failures.is_empty(), "{failures:#?}");
    app.stop().await;
}

/// Every check passes without a warning; the metadata check warns unless Client ID Metadata
/// Documents are advertised (`client_id_metadata_document_supported`).
#[tokio::test]
async fn the_authorization_server_scenarios_pass_without_warnings() {
    let (app, lines) = checks().await;
    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|l| l["status"].is_string() && l["status"] != "SUCCESS")
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    app.stop().await;
}
