//! Just enough JSON-RPC to guard and relay MCP traffic: what a request asks for, errors in the
//! protocol's shape, and the `tools/list` filter applied to JSON and SSE responses alike.

use serde_json::{Value, json};

/// Implementation-defined server error codes (JSON-RPC 2.0 §5.1 reserves -32000 to -32099).
pub const BACKEND_UNAVAILABLE: i64 = -32001;
pub const BACKEND_TIMEOUT: i64 = -32002;
pub const RESPONSE_TOO_LARGE: i64 = -32003;
pub const FORBIDDEN: i64 = -32004;
pub const REQUEST_TOO_LARGE: i64 = -32005;
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;

/// The messages of one POST body, which may be a single message or a batch.
#[derive(Debug, Default)]
pub struct Inspected {
    /// Ids of the requests (not notifications) in the body, as JSON values.
    pub request_ids: Vec<Value>,
    /// Tool names of the `tools/call` requests, with their ids.
    pub tool_calls: Vec<(String, Value)>,
    /// Ids of `tools/list` requests, whose responses are filtered.
    pub tool_lists: Vec<Value>,
    /// Ids of requests that use the backend beyond its tools (`resources/read`, `prompts/get`,
    /// …): they need the backend's default scope.
    pub other_uses: Vec<Value>,
}

/// Requests that are protocol housekeeping, not a use of the backend: no scope needed.
fn is_housekeeping(method: &str) -> bool {
    matches!(method, "initialize" | "ping")
}

/// Reads a POST body; `Err` is a JSON-RPC error response for a body that is not JSON-RPC.
pub fn inspect(body: &[u8]) -> Result<Inspected, Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| error(&Value::Null, PARSE_ERROR, "the body is not JSON"))?;
    let messages = match &value {
        Value::Array(items) if !items.is_empty() => items.iter().collect::<Vec<_>>(),
        Value::Object(_) => vec![&value],
        _ => {
            return Err(error(
                &Value::Null,
                INVALID_REQUEST,
                "the body is not a JSON-RPC message",
            ));
        }
    };
    let mut inspected = Inspected::default();
    for message in messages {
        let Some(object) = message.as_object() else {
            return Err(error(
                &Value::Null,
                INVALID_REQUEST,
                "the body is not a JSON-RPC message",
            ));
        };
        let (Some(method), Some(id)) = (
            object.get("method").and_then(Value::as_str),
            object.get("id"),
        ) else {
            continue;
        };
        inspected.request_ids.push(id.clone());
        match method {
            "tools/call" => {
                let name = object
                    .get("params")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str);
                let Some(name) = name else {
                    return Err(error(id, -32602, "tools/call needs params.name"));
                };
                inspected.tool_calls.push((name.to_owned(), id.clone()));
            }
            "tools/list" => inspected.tool_lists.push(id.clone()),
            other if !is_housekeeping(other) => inspected.other_uses.push(id.clone()),
            _ => {}
        }
    }
    Ok(inspected)
}

/// A JSON-RPC error response.
pub fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// The id of a response message (one with `result` or `error`), if it is one.
pub fn response_id(message: &Value) -> Option<&Value> {
    let object = message.as_object()?;
    (object.contains_key("result") || object.contains_key("error"))
        .then(|| object.get("id"))
        .flatten()
}

/// True when the message is an error response or a tool result marked `isError`.
pub fn is_failure(message: &Value) -> bool {
    message.get("error").is_some()
        || message.pointer("/result/isError").and_then(Value::as_bool) == Some(true)
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

/// Splits a byte buffer into complete Server-Sent Events (each with its terminating blank line),
/// leaving an incomplete tail in the buffer.
pub fn take_events(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    loop {
        let end = find_event_end(buffer);
        let Some(end) = end else { break };
        let rest = buffer.split_off(end);
        events.push(std::mem::replace(buffer, rest));
    }
    events
}

/// The index just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`).
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    let mut index = 0;
    while index < buffer.len() {
        if buffer[index..].starts_with(b"\r\n\r\n") {
            return Some(index + 4);
        }
        if buffer[index..].starts_with(b"\n\n") || buffer[index..].starts_with(b"\r\r") {
            return Some(index + 2);
        }
        index += 1;
    }
    None
}

/// The JSON-RPC message in an SSE event's `data:` lines, if any.
pub fn event_message(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

/// An event with the same non-data fields and `message` as its data.
pub fn rewrite_event(event: &[u8], message: &Value) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let mut out = String::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("data:"))
    {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&message.to_string());
    out.push_str("\n\n");
    out.into_bytes()
}

/// A complete SSE event carrying `message`.
pub fn sse_event(message: &Value) -> Vec<u8> {
    format!("event: message\ndata: {message}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspection_finds_tool_calls_lists_and_request_ids() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},
                        {"jsonrpc":"2.0","method":"notifications/initialized"},
                        {"jsonrpc":"2.0","id":"b","method":"tools/list"}]"#;
        let inspected = inspect(body).unwrap();
        assert_eq!(inspected.request_ids, vec![json!(1), json!("b")]);
        assert_eq!(inspected.tool_calls, vec![("echo".to_owned(), json!(1))]);
        assert_eq!(inspected.tool_lists, vec![json!("b")]);
        assert!(inspected.other_uses.is_empty());
        let other = inspect(
            br#"[{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"x"}},
                                 {"jsonrpc":"2.0","id":3,"method":"ping"}]"#,
        )
        .unwrap();
        assert_eq!(other.other_uses, vec![json!(2)]);
        assert_eq!(inspect(b"nope").unwrap_err()["error"]["code"], PARSE_ERROR);
        assert_eq!(
            inspect(b"[]").unwrap_err()["error"]["code"],
            INVALID_REQUEST
        );
    }

    #[test]
    fn sse_events_are_split_on_blank_lines_and_keep_a_partial_tail() {
        let mut buffer =
            b"event: message\ndata: {\"a\":1}\n\nid: 7\r\ndata: {\"b\":2}\r\n\r\ndata: {\"c\""
                .to_vec();
        let events = take_events(&mut buffer);
        assert_eq!(events.len(), 2);
        assert_eq!(event_message(&events[0]).unwrap(), json!({"a": 1}));
        assert_eq!(event_message(&events[1]).unwrap(), json!({"b": 2}));
        assert_eq!(buffer, b"data: {\"c\"");
    }

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
