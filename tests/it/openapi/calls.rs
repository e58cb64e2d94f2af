//! Tool calls against the FastAPI app: arguments become the request FastAPI reads, bad ones
//! never leave Portcullis, and whatever the API answers (an error, nothing in time, too much) is
//! a tool result the model can read, audited with its outcome.

use portcullis::store::Decision;
use serde_json::{Value, json};

use super::{
    EVERY_SCOPE, PATH, backend_toml, call, result, row, sign_in, start, start_with, text,
    tool_calls,
};
use crate::support::openapi;
use crate::support::process::free_port;

const PUT: &str = "put_item_items__item_id__put";
const READ: &str = "read_item_items__item_id__get";
const LIST: &str = "list_items_items_get";

/// The names of the items in a `list_items` result.
fn names(result: &Value) -> Vec<&str> {
    result["structuredContent"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no list in {result:#}"))
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn path_query_and_body_arguments_reach_the_api_as_it_reads_them() {
    let (app, api) = start("", "", EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-params", PATH).await;

    // A path parameter and a JSON body.
    let lamp = json!({"name": "lamp", "price": 12.5, "colour": "blue", "tags": ["desk", "light"]});
    let put = call(&app, &token, PATH, PUT, json!({"item_id": 7, "body": lamp})).await;
    let put = result(&put);
    assert_eq!(put["isError"], false, "{put:#}");
    let stored = api.get("/items/7").await;
    assert_eq!(stored["name"], "lamp");
    assert_eq!(stored["colour"], "blue");
    assert_eq!(stored["tags"], json!(["desk", "light"]));
    // An object answer is the structured content, and the text is the same JSON.
    assert_eq!(put["structuredContent"], stored, "{put:#}");
    assert_eq!(serde_json::from_str::<Value>(text(put)).unwrap(), stored);
    let chair = json!({"name": "chair", "price": 40, "tags": ["desk"]});
    let put = call(
        &app,
        &token,
        PATH,
        PUT,
        json!({"item_id": 8, "body": chair}),
    )
    .await;
    assert_eq!(
        result(&put)["structuredContent"]["colour"],
        "red",
        "FastAPI's default"
    );

    // A path parameter and a header parameter.
    let read = call(
        &app,
        &token,
        PATH,
        READ,
        json!({"item_id": 7, "x-request-note": "hi"}),
    )
    .await;
    assert_eq!(result(&read)["structuredContent"], stored);

    // A header parameter (FastAPI's `x_note: str = Header()`), as the API read it.
    let echo = call(
        &app,
        &token,
        PATH,
        "echo_echo_get",
        json!({"x-note": "a note"}),
    )
    .await;
    assert_eq!(
        result(&echo)["structuredContent"]["note"],
        "a note",
        "{echo:#}"
    );

    // Query parameters: the enum, and the tag list FastAPI reads as `tag=a&tag=b`. A list
    // answer is structured as `{"result": [...]}`.
    let list = |arguments: Value| call(&app, &token, PATH, LIST, arguments);
    let both = list(json!({"tag": ["desk"]})).await;
    assert_eq!(names(result(&both)), ["lamp", "chair"]);
    assert_eq!(
        serde_json::from_str::<Value>(text(result(&both))).unwrap(),
        result(&both)["structuredContent"]["result"]
    );
    let tagged = list(json!({"tag": ["desk", "light"]})).await;
    assert_eq!(names(result(&tagged)), ["lamp"]);
    let blue = list(json!({"colour": "blue"})).await;
    assert_eq!(names(result(&blue)), ["lamp"]);
    let none = list(json!({"colour": "red", "tag": ["light"]})).await;
    assert_eq!(names(result(&none)), Vec::<&str>::new());
    let limited = list(json!({"limit": 1})).await;
    assert_eq!(names(result(&limited)), ["lamp"]);

    // Each call is one audited tool call, under the backend's own tool name.
    let rows = tool_calls(&app, "oa-params@example.com").await;
    assert_eq!(rows.len(), 9, "{rows:#?}");
    let read = row(&rows, READ);
    assert_eq!(read.backend.as_deref(), Some("inventory"));
    assert_eq!(
        (read.decision, read.outcome.as_deref()),
        (Decision::Allowed, Some("ok"))
    );
}

#[tokio::test]
async fn invalid_arguments_are_refused_naming_the_path_before_any_request() {
    let (app, api) = start("", "", EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-invalid", PATH).await;
    let refused = |name: &'static str, arguments: Value| {
        let (app, token) = (&app, &token);
        async move {
            let response = call(app, token, PATH, name, arguments).await;
            assert_eq!(response["error"]["code"], -32602, "{name}: {response:#}");
            response["error"]["message"].as_str().unwrap().to_owned()
        }
    };

    let colour = refused(LIST, json!({"colour": "purple"})).await;
    assert!(
        colour.contains("/colour") && colour.contains("purple"),
        "{colour}"
    );
    let price = refused(
        PUT,
        json!({"item_id": 9, "body": {"name": "x", "price": "x"}}),
    )
    .await;
    assert!(price.contains("/body/price"), "{price}");
    let tags = refused(LIST, json!({"tag": "desk"})).await;
    assert!(tags.contains("/tag"), "{tags}");
    let missing = refused(READ, json!({})).await;
    assert!(missing.contains("item_id"), "{missing}");

    assert_eq!(api.calls("/items").await, 0);
    assert_eq!(api.calls("/items/9").await, 0);
}

#[tokio::test]
async fn a_404_and_a_500_are_tool_errors_with_the_status_and_the_body() {
    let (app, _api) = start("", "", EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-errors", PATH).await;

    let missing = call(&app, &token, PATH, READ, json!({"item_id": 404})).await;
    let missing = result(&missing);
    assert_eq!(missing["isError"], true, "{missing:#}");
    assert!(text(missing).starts_with("HTTP 404"), "{missing:#}");
    assert!(text(missing).contains("no such item"), "{missing:#}");

    let failed = call(&app, &token, PATH, "fail_fail_get", json!({})).await;
    let failed = result(&failed);
    assert_eq!(failed["isError"], true, "{failed:#}");
    assert!(text(failed).starts_with("HTTP 500"), "{failed:#}");
    assert!(text(failed).contains("on fire"), "{failed:#}");

    let rows = tool_calls(&app, "oa-errors@example.com").await;
    for tool in [READ, "fail_fail_get"] {
        let row = row(&rows, tool);
        assert_eq!(
            (row.decision, row.outcome.as_deref()),
            (Decision::Allowed, Some("error")),
            "{row:#?}"
        );
    }
}

#[tokio::test]
async fn an_answer_later_than_the_timeout_is_a_tool_error_audited_as_a_timeout() {
    let (app, _api) = start("timeout_secs = 1", "", EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-slow", PATH).await;

    let quick = call(&app, &token, PATH, "slow_slow_get", json!({"seconds": 0})).await;
    assert_eq!(result(&quick)["structuredContent"], json!({"slept": 0.0}));
    let slow = call(&app, &token, PATH, "slow_slow_get", json!({"seconds": 5})).await;
    let slow = result(&slow);
    assert_eq!(slow["isError"], true, "{slow:#}");
    assert!(text(slow).contains("within 1"), "{slow:#}");

    let rows = tool_calls(&app, "oa-slow@example.com").await;
    let outcomes: Vec<Option<&str>> = rows.iter().map(|r| r.outcome.as_deref()).collect();
    assert_eq!(outcomes, [Some("ok"), Some("timeout")], "{rows:#?}");
}

#[tokio::test]
async fn an_answer_over_the_cap_is_truncated_with_a_notice_of_both_sizes() {
    let (app, api) = start("max_result_bytes = 4096", "", EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-large", PATH).await;
    let whole = reqwest::get(api.url("/large?count=2000"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(whole.len() > 4096 * 10);

    let large = call(
        &app,
        &token,
        PATH,
        "large_large_get",
        json!({"count": 2000}),
    )
    .await;
    let large = result(&large);
    let shown = text(large);
    assert!(shown.starts_with(&whole[..200]), "{shown}");
    assert!(
        shown.len() < 4096 + 300,
        "the cap, plus a notice: {} bytes",
        shown.len()
    );
    let notice = &shown[shown.rfind("truncated").expect("a notice")..];
    assert!(
        notice.contains("4096") && notice.contains(&whole.len().to_string()),
        "{notice}"
    );
    assert!(large.get("structuredContent").is_none(), "{large:#}");

    // Under the cap: whole, and structured.
    let small = call(&app, &token, PATH, "large_large_get", json!({"count": 2})).await;
    let small = result(&small);
    assert_eq!(
        small["structuredContent"]["result"][1]["index"], 1,
        "{small:#}"
    );
    assert!(!text(small).contains("truncated"));
}

#[tokio::test]
async fn an_api_that_does_not_answer_is_a_tool_error_audited_unavailable() {
    let api = openapi::spawn().await;
    // The document comes from the app; the calls go where nothing listens.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let app = start_with(backend_toml(&api, Some(&nowhere), "", ""), EVERY_SCOPE).await;
    let token = sign_in(&app, "oa-nowhere", PATH).await;
    let response = call(&app, &token, PATH, READ, json!({"item_id": 1})).await;
    assert_eq!(result(&response)["isError"], true, "{response:#}");
    let rows = tool_calls(&app, "oa-nowhere@example.com").await;
    assert_eq!(row(&rows, READ).outcome.as_deref(), Some("unavailable"));
}
