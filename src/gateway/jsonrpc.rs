//! JSON-RPC responses as the gateway relays them: which request a response answers, whether
//! it failed, and the `tools/list` filter applied to JSON and SSE responses alike.

use serde_json::Value;

/// The id of a response message (one with `result` or `error`), if it is one.
pub fn response_id(message: &Value) -> Option<&Value> {
    let object = message.as_object()?;
    (object.contains_key("result") || object.contains_key("error"))
        .then(|| object.get("id"))
        .flatten()
}

/// True when the message is an error response or a tool result marked `isError`.
pub fn is_failure(message: &Value) -> bool {
    message.get("error").is_some() || message.get("result").is_some_and(is_tool_error)
}

/// True when a `CallToolResult` is marked `isError`.
pub fn is_tool_error(result: &Value) -> bool {
    result.get("isError").and_then(Value::as_bool) == Some(true)
}

/// Removes from a `tools/list` response the tools `allowed` rejects. Returns true if it changed.
pub fn filter_tools(message: &mut Value, allowed: &dyn Fn(&str) -> bool) -> bool {
    let Some(tools) = message
        .pointer_mut("/result/tools")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = tools.len();
    tools.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(allowed)
    });
    tools.len() != before
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::gateway::sse::{event_message, rewrite_event};

    #[test]
    fn a_tools_list_is_filtered_and_the_event_rewritten() {
        let event = b"id: 4\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"admin\"}]}}\n\n";
        let mut message = event_message(event).unwrap();
        assert!(filter_tools(&mut message, &|name| name != "admin"));
        let rewritten = rewrite_event(event, &message);
        let text = String::from_utf8(rewritten.clone()).unwrap();
        assert!(text.starts_with("id: 4\nevent: message\ndata: "), "{text}");
        assert_eq!(
            event_message(&rewritten).unwrap()["result"]["tools"],
            json!([{"name": "echo"}])
        );
    }
}
