//! The TypeScript MCP SDK client, unmodified, signing in by itself (the development provider)
//! and using the API's tools through `/mcp/inventory` and `/mcp`.

use portcullis::store::Decision;
use serde_json::json;

use super::{backend_toml, text, tool_calls};
use crate::support::app::spawn_dev;
use crate::support::openapi;
use crate::support::sdk::{run_client, step};

#[tokio::test]
async fn the_sdk_client_lists_and_calls_the_apis_tools_on_both_endpoints() {
    let api = openapi::spawn().await;
    let app = spawn_dev(&backend_toml(&api, Some(&api.base), "", "")).await;
    let inventory = app.url("/mcp/inventory");
    let mcp = app.mcp_url();
    let lamp = json!({"name": "lamp", "price": 12.5, "colour": "green", "tags": ["desk"]});

    let lines = run_client(
        &inventory,
        "oa-sdk@example.com",
        json!([
            {"listTools": {}},
            {"callTool": {"name": "put_item_items__item_id__put", "arguments": {"item_id": 3, "body": lamp}}},
            {"callTool": {"name": "read_item_items__item_id__get", "arguments": {"item_id": 3}}},
            {"callTool": {"name": "read_item_items__item_id__get", "arguments": {"item_id": 33}}},
            {"callTool": {"name": "list_items_items_get", "arguments": {"colour": "purple"}}},
            {"listTools": {}, "server": mcp},
            {"callTool": {"name": "inventory__list_items_items_get", "arguments": {"colour": "green", "tag": ["desk"]}}, "server": mcp},
            {"callTool": {"name": "inventory__fail_fail_get", "arguments": {}}, "server": mcp},
        ]),
    )
    .await;
    assert_eq!(step(&lines, -1)["ok"], true, "{lines:#?}");

    let listed = step(&lines, 0);
    let tools = listed["result"]["tools"].as_array().unwrap();
    let read = tools
        .iter()
        .find(|t| t["name"] == "read_item_items__item_id__get")
        .unwrap_or_else(|| panic!("{listed:#}"));
    assert_eq!(read["annotations"]["readOnlyHint"], true, "{read:#}");

    let put = &step(&lines, 1)["result"];
    assert_eq!(put["structuredContent"]["colour"], "green", "{put:#}");
    let read = &step(&lines, 2)["result"];
    assert_eq!(
        read["structuredContent"], put["structuredContent"],
        "{read:#}"
    );
    let missing = &step(&lines, 3)["result"];
    assert_eq!(missing["isError"], true, "{missing:#}");
    assert!(text(missing).starts_with("HTTP 404"), "{missing:#}");
    let invalid = step(&lines, 4);
    assert_eq!(invalid["ok"], false, "{invalid:#}");
    assert_eq!(invalid["error"]["code"], -32602, "{invalid:#}");
    assert!(
        invalid["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/colour"),
        "{invalid:#}"
    );

    let aggregate = step(&lines, 5)["result"]["tools"].as_array().unwrap();
    assert!(
        aggregate
            .iter()
            .any(|t| t["name"] == "inventory__read_item_items__item_id__get"),
        "{aggregate:#?}"
    );
    let listed = &step(&lines, 6)["result"];
    assert_eq!(
        listed["structuredContent"]["result"][0]["name"], "lamp",
        "{listed:#}"
    );
    let failed = &step(&lines, 7)["result"];
    assert_eq!(failed["isError"], true, "{failed:#}");
    assert!(text(failed).starts_with("HTTP 500"), "{failed:#}");

    // Every call is audited under the backend's own tool name, with its outcome: the refused
    // arguments too (an error, though no request was sent).
    let rows = tool_calls(&app, "oa-sdk@example.com").await;
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.tool.as_deref().unwrap(), r.outcome.as_deref().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("put_item_items__item_id__put", "ok"),
            ("read_item_items__item_id__get", "ok"),
            ("read_item_items__item_id__get", "error"),
            ("list_items_items_get", "error"),
            ("list_items_items_get", "ok"),
            ("fail_fail_get", "error"),
        ],
        "{rows:#?}"
    );
    assert!(rows.iter().all(|r| r.decision == Decision::Allowed));
    assert!(
        rows.iter()
            .all(|r| r.backend.as_deref() == Some("inventory"))
    );
}

#[tokio::test]
async fn with_least_privilege_the_sdk_signs_in_for_the_reads_and_steps_up_for_a_write() {
    let api = openapi::spawn().await;
    // `grant` is top-level: before the backend's table.
    let toml = format!(
        "grant = \"requested\"\n{}",
        backend_toml(&api, Some(&api.base), "", "")
    );
    let app = spawn_dev(&toml).await;
    let inventory = app.url("/mcp/inventory");
    let lamp = json!({"name": "lamp", "price": 3.0});

    let lines = run_client(
        &inventory,
        "oa-least@example.com",
        json!([
            {"listTools": {}},
            {"callTool": {"name": "list_items_items_get", "arguments": {}}},
            {"callTool": {"name": "put_item_items__item_id__put", "arguments": {"item_id": 9, "body": lamp}},
             "expectStepUp": true},
            {"listTools": {}},
        ]),
    )
    .await;

    // The 401 names the read scopes: the SDK asks for exactly those.
    let connect = step(&lines, -1);
    assert_eq!(connect["ok"], true, "{connect:#}");
    let asked = connect["auth"]["authorizations"][0]["scope"]
        .as_str()
        .unwrap_or_else(|| panic!("{connect:#}"));
    let asked: Vec<&str> = asked.split(' ').collect();
    assert!(asked.contains(&"inventory:items:read"), "{asked:?}");
    assert!(asked.iter().all(|s| s.ends_with(":read")), "{asked:?}");

    let names = |index| -> Vec<String> {
        step(&lines, index)["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = names(0);
    assert!(
        before.contains(&"list_items_items_get".to_owned()),
        "{before:?}"
    );
    assert!(
        !before.contains(&"put_item_items__item_id__put".to_owned()),
        "a write is not listed to a reader: {before:?}"
    );
    assert_eq!(step(&lines, 1)["ok"], true, "{:#}", step(&lines, 1));

    // The write is refused with a step-up challenge; the SDK signs in again for it, and the
    // retried call reaches the API.
    let stepped = step(&lines, 2);
    assert_eq!(stepped["ok"], true, "{stepped:#}");
    assert_eq!(stepped["stepUp"]["reauthorized"], true, "{stepped:#}");
    assert!(
        stepped["stepUp"]["requestedScope"]
            .as_str()
            .unwrap()
            .contains("inventory:items:write"),
        "{stepped:#}"
    );
    assert_eq!(stepped["result"]["structuredContent"]["name"], "lamp");
    assert!(names(3).contains(&"put_item_items__item_id__put".to_owned()));

    // The refusal and the calls, in order, in the audit trail.
    let rows = tool_calls(&app, "oa-least@example.com").await;
    let seen: Vec<(&str, Decision)> = rows
        .iter()
        .map(|r| (r.tool.as_deref().unwrap(), r.decision))
        .collect();
    assert_eq!(
        seen,
        [
            ("list_items_items_get", Decision::Allowed),
            ("put_item_items__item_id__put", Decision::Denied),
            ("put_item_items__item_id__put", Decision::Allowed),
        ],
        "{rows:#?}"
    );
}
