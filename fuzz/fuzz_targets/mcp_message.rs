//! MCP bodies as the gateway reads them: `Incoming::parse` (a POST to an MCP endpoint, parsed
//! once into typed messages), and the relay's `Peek` and `tools/list` filter on the same bytes
//! read as a backend's answer.
//!
//! Checks: no panic; a refusal carries a JSON-RPC code of the parser's own vocabulary, and a parse
//! error exactly when the body is not JSON; an accepted body is JSON, and its requests are the
//! JSON messages with a string `method` and an `id`; `Peek` agrees with a full parse on the id a
//! response answers and on whether it failed; the filter keeps only allowed tools and is
//! idempotent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::gateway::jsonrpc::{Peek, filter_tools, is_tool_error};
use portcullis::gateway::message::{Incoming, Method};
use serde_json::Value;

fn requests_in(value: &Value) -> usize {
    let messages: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    messages
        .iter()
        .filter(|m| m.get("method").is_some_and(Value::is_string) && m.get("id").is_some())
        .count()
}

fuzz_target!(|body: &[u8]| {
    let json = serde_json::from_slice::<Value>(body).ok();
    match Incoming::parse(body) {
        Ok(incoming) => {
            let value = json.as_ref().expect("an accepted body is JSON");
            assert_eq!(incoming.requests().count(), requests_in(value));
            assert_eq!(incoming.batch, value.is_array());
            for request in incoming.requests() {
                if let Method::ToolsCall { name } = &request.method {
                    let params = request.params.as_ref().expect("a tool call has params");
                    assert_eq!(params.get("name").and_then(Value::as_str), Some(name.as_str()));
                }
            }
        }
        Err(rejected) => {
            let code = rejected.error.rpc_code();
            assert!([-32700, -32600, -32602].contains(&code), "unexpected code {code}");
            assert_eq!(code == -32700, json.is_none(), "a parse error exactly when not JSON");
            let message = rejected.error.to_message(&rejected.id);
            assert_eq!(message["error"]["code"], code);
        }
    }

    // The same bytes as a backend's answer, peeked at by the relay.
    let peek = Peek::read(body);
    let Some(mut message) = json else { return };
    if let (Some(peek), Value::Object(object)) = (&peek, &message) {
        let is_response = object.contains_key("result") && !object["result"].is_null()
            || object.get("error").is_some_and(|e| !e.is_null());
        if is_response {
            assert_eq!(peek.response_id(), object.get("id").filter(|id| !id.is_null()));
        }
        let failed = object.get("error").is_some_and(|e| !e.is_null())
            || object.get("result").is_some_and(is_tool_error);
        assert_eq!(peek.failed(), failed, "the peek and the parse disagree on failure");
    }
    let allowed = |name: &str| name.len() % 2 == 0;
    let before = message.clone();
    let changed = filter_tools(&mut message, &allowed);
    assert_eq!(changed, message != before);
    if let Some(tools) = message.pointer("/result/tools").and_then(Value::as_array) {
        for tool in tools {
            let name = tool.get("name").and_then(Value::as_str);
            assert!(name.is_some_and(allowed), "a rejected tool survived the filter");
        }
    }
    assert!(!filter_tools(&mut message, &allowed), "the filter is not idempotent");
});
