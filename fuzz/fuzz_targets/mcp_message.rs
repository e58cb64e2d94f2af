//! The JSON-RPC/MCP body inspection of a POST to the gateway (`gateway::jsonrpc::inspect`), then
//! the response-side helpers on whatever JSON the body holds.
//!
//! Checks: no panic; a refusal is a JSON-RPC error object with a known code; what the inspection
//! reports is consistent (every tool call, list and other use is one of the request ids, and
//! there are no more of them than requests); the `tools/list` filter keeps only allowed tools
//! and is idempotent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::gateway::jsonrpc::{
    self, INVALID_REQUEST, PARSE_ERROR, filter_tools, inspect, is_failure, response_id,
};
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let is_json = serde_json::from_slice::<Value>(body).ok();
    match inspect(body) {
        Ok(inspected) => {
            assert!(
                is_json.is_some(),
                "inspect accepted a body that is not JSON"
            );
            let uses = inspected.tool_calls.len()
                + inspected.tool_lists.len()
                + inspected.other_uses.len();
            assert!(uses <= inspected.request_ids.len());
            for id in inspected
                .tool_calls
                .iter()
                .map(|(_, id)| id)
                .chain(&inspected.tool_lists)
                .chain(&inspected.other_uses)
            {
                assert!(
                    inspected.request_ids.contains(id),
                    "{id} is not a request id"
                );
            }
        }
        Err(error) => {
            assert_eq!(error["jsonrpc"], "2.0");
            assert!(error.get("id").is_some());
            let code = error["error"]["code"]
                .as_i64()
                .expect("an integer error code");
            assert!(
                [PARSE_ERROR, INVALID_REQUEST, -32602].contains(&code),
                "unexpected error code {code}"
            );
            assert_eq!(code == PARSE_ERROR, is_json.is_none());
            // The error itself is well-formed JSON that says the same thing.
            let printed = error.to_string();
            assert_eq!(serde_json::from_str::<Value>(&printed).ok(), Some(error));
        }
    }

    // The same JSON read as a backend's response (what the proxy does with a JSON reply).
    let Some(mut message) = is_json else { return };
    let _ = response_id(&message);
    let _ = is_failure(&message);
    let allowed = |name: &str| name.len() % 2 == 0;
    let before = message.clone();
    let changed = filter_tools(&mut message, &allowed);
    assert_eq!(changed, message != before);
    if let Some(tools) = message.pointer("/result/tools").and_then(Value::as_array) {
        for tool in tools {
            let name = tool.get("name").and_then(Value::as_str);
            assert!(
                name.is_some_and(allowed),
                "a rejected tool survived the filter"
            );
        }
    }
    assert!(
        !filter_tools(&mut message, &allowed),
        "the filter is not idempotent"
    );
    let _ = jsonrpc::sse_event(&message);
});
