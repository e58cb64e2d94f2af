//! What clients see of the API: each operation a tool, with its hints and input schema, on
//! `/mcp/inventory` and namespaced on `/mcp`; and what a person's scopes let them call.

use portcullis::store::Decision;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    EVERY_SCOPE, PATH, backend_toml, call, result, row, sign_in, start, start_with, tool_calls,
};
use crate::support::app::TestApp;
use crate::support::openapi;

/// `tools/list` on the endpoint at `path`: the tools, by name.
async fn tools(app: &TestApp, token: &str, path: &str) -> serde_json::Map<String, Value> {
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let body =
        crate::support::app::rpc_body(app.mcp(&app.url(path), Some(token), list).await).await;
    result(&body)["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {body:#}"))
        .iter()
        .map(|tool| (tool["name"].as_str().unwrap().to_owned(), tool.clone()))
        .collect()
}

#[tokio::test]
async fn each_operation_is_a_tool_with_its_hints_and_schema_on_both_endpoints() {
    let (app, _api) = start(r#"exclude = ["health_*", "stats"]"#, "", EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-list", PATH).await;
    let listed = tools(&app, &token, PATH).await;
    let mut names: Vec<&str> = listed.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "count_key_calls__key__get",
            "createCategory",
            "delete_item_items__item_id__delete",
            "echo_bearer_echo_bearer_get",
            "echo_echo_get",
            "echo_header_key_echo_header_key_get",
            "echo_query_key_echo_query_key_get",
            "fail_fail_get",
            "large_large_get",
            "list_items_items_get",
            "put_item_items__item_id__put",
            "read_item_items__item_id__get",
            "slow_slow_get",
        ],
        "every operation but the excluded health (operationId) and stats (tag)"
    );

    let read = &listed["read_item_items__item_id__get"];
    assert_eq!(read["annotations"]["readOnlyHint"], true, "{read:#}");
    assert_ne!(read["annotations"]["destructiveHint"], true, "{read:#}");
    assert_eq!(
        read["description"]
            .as_str()
            .map(|d| d.contains("Read one item")),
        Some(true)
    );
    let schema = &read["inputSchema"];
    assert_eq!(schema["type"], "object", "{schema:#}");
    assert!(schema["properties"]["item_id"].is_object(), "{schema:#}");
    assert_eq!(schema["required"], json!(["item_id"]), "{schema:#}");

    let delete = &listed["delete_item_items__item_id__delete"];
    assert_eq!(delete["annotations"]["destructiveHint"], true, "{delete:#}");
    assert_ne!(delete["annotations"]["readOnlyHint"], true, "{delete:#}");
    let put = &listed["put_item_items__item_id__put"];
    assert_ne!(put["annotations"]["readOnlyHint"], true, "{put:#}");
    assert!(
        put["inputSchema"]["properties"]["body"].is_object(),
        "{put:#}"
    );
    let list = &listed["list_items_items_get"]["inputSchema"]["properties"];
    assert_eq!(list["tag"]["type"], "array", "{list:#}");

    // The aggregate endpoint: the same tools, namespaced, called under that name.
    let aggregate_token = sign_in(&app, "oa-list", "/mcp").await;
    let aggregate = tools(&app, &aggregate_token, "/mcp").await;
    for name in listed.keys() {
        let namespaced = format!("inventory__{name}");
        assert_eq!(
            aggregate.get(&namespaced).map(|tool| &tool["inputSchema"]),
            Some(&listed[name]["inputSchema"]),
            "{namespaced}"
        );
    }
    let called = call(
        &app,
        &aggregate_token,
        "/mcp",
        "inventory__count_key_calls__key__get",
        json!({"key": "aggregate"}),
    )
    .await;
    assert_eq!(
        result(&called)["structuredContent"]["calls"],
        1,
        "{called:#}"
    );
    let rows = tool_calls(&app, "oa-list@example.com").await;
    let row = row(&rows, "count_key_calls__key__get");
    assert_eq!(row.backend.as_deref(), Some("inventory"));
    assert_eq!(row.outcome.as_deref(), Some("ok"));
}

#[tokio::test]
async fn a_call_without_its_scope_is_refused_before_the_api_and_audited_denied() {
    // Readers who may change items but not delete them: the DELETE needs an admin scope.
    let (app, api) = start(
        "",
        "[backends.tools]\n\"delete_item_*\" = \"inventory:admin:write\"\n",
        r#"["inventory:*:read", "inventory:items:write"]"#,
    )
    .await;
    let token = sign_in(&app, "oa-scoped", PATH).await;
    let listed = tools(&app, &token, PATH).await;
    assert!(
        listed.contains_key("put_item_items__item_id__put"),
        "{listed:#?}"
    );
    assert!(listed.contains_key("read_item_items__item_id__get"));
    assert!(!listed.contains_key("delete_item_items__item_id__delete"));
    assert!(
        !listed.contains_key("createCategory"),
        "needs inventory:categories:write"
    );

    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "delete_item_items__item_id__delete", "arguments": {"item_id": 1}}});
    let refused = app.mcp(&app.url(PATH), Some(&token), body.clone()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains("inventory:admin:write"), "{challenge}");

    // The same on the aggregate endpoint.
    let aggregate_token = sign_in(&app, "oa-scoped", "/mcp").await;
    let mut aggregate_body = body;
    aggregate_body["params"]["name"] = json!("inventory__delete_item_items__item_id__delete");
    let refused = app
        .mcp(&app.mcp_url(), Some(&aggregate_token), aggregate_body)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    assert_eq!(api.calls("/items/1").await, 0, "nothing reached the API");
    let rows = tool_calls(&app, "oa-scoped@example.com").await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in &rows {
        assert_eq!(
            (row.decision, row.tool.as_deref(), row.backend.as_deref()),
            (
                Decision::Denied,
                Some("delete_item_items__item_id__delete"),
                Some("inventory")
            ),
            "{row:#?}"
        );
        assert_eq!(
            row.reason.as_deref(),
            Some("missing scope inventory:admin:write")
        );
    }
}

#[tokio::test]
async fn without_base_url_calls_go_where_the_document_came_from() {
    // FastAPI's document has no `servers`: OpenAPI's default is `/`, relative to the
    // document's URL.
    let api = openapi::spawn().await;
    let app = start_with(backend_toml(&api, None, "", ""), EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-base", PATH).await;
    let counted = call(
        &app,
        &token,
        PATH,
        "count_key_calls__key__get",
        json!({"key": "b"}),
    )
    .await;
    assert_eq!(
        result(&counted)["structuredContent"]["calls"],
        1,
        "{counted:#}"
    );
    assert_eq!(api.calls("/calls/b").await, 1);
}
