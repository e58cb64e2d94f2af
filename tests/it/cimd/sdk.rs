//! The TypeScript MCP SDK (1.32.2, unmodified) identifies itself with a metadata document: it
//! registers nothing, signs in, lists tools and refreshes with the document URL as its client_id.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::document;
use super::documents::{Answer, DocumentServer};
use crate::support::app::spawn_dev;
use crate::support::prereq::{self, Need};

const REDIRECT: &str = "http://127.0.0.1:33420/callback";

#[tokio::test]
async fn the_typescript_sdk_signs_in_with_its_metadata_document_and_registers_nothing() {
    prereq::require(&[Need::Mcp]);
    let docs = DocumentServer::start().await;
    let client_id = docs.url("/sdk/client.json");
    docs.serve(
        "/sdk/client.json",
        Answer::json(&document(&client_id, &[REDIRECT]), "max-age=600"),
    );
    let app = spawn_dev(&docs.cimd_toml("")).await;

    let mcp_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mcp");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/cimd/sdk_cimd.mjs");
    let run = tokio::process::Command::new("node")
        .arg(script)
        .args(["--mcp-dir", mcp_dir, "--server", &app.mcp_url()])
        .args(["--metadata-url", &client_id, "--redirect-url", REDIRECT])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the SDK client finishes within 60 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&output.stdout)));

    assert_eq!(
        report["clientIds"],
        serde_json::json!([client_id]),
        "{report}"
    );
    assert_eq!(report["registrations"], 0, "{report}");
    assert_eq!(report["clientInformation"]["client_id"], client_id.as_str());
    let grants: Vec<&str> = report["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"], "{report}");
    assert!(report["tools"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["tools"], report["toolsAfterRefresh"]);
    assert_eq!(docs.hits("/sdk/client.json"), 1);
    app.stop().await;
}
