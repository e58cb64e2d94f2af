//! Server-Sent Events as MCP's Streamable HTTP uses them: split a byte stream into events, read
//! the JSON-RPC message in an event, and write events.

use serde_json::Value;

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

/// A complete SSE event carrying an already serialized JSON message (one line).
pub fn data_event(json: &[u8]) -> Vec<u8> {
    let mut event = Vec::with_capacity(json.len() + 24);
    event.extend_from_slice(b"event: message\ndata: ");
    event.extend_from_slice(json);
    event.extend_from_slice(b"\n\n");
    event
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
