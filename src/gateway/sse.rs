//! Server-Sent Events as MCP's Streamable HTTP uses them: split a byte stream into events, read
//! the JSON-RPC message in an event, and write events.

use std::borrow::Cow;

use serde_json::Value;

/// Splits a byte stream into complete Server-Sent Events (each with its terminating blank
/// line), keeping an incomplete tail until more arrives. It remembers how far it has looked,
/// so an event that arrives in many chunks is scanned once.
#[derive(Debug, Default)]
pub struct EventSplitter {
    buffer: Vec<u8>,
    /// Where the search for the end of the first event resumes.
    scanned: usize,
}

impl EventSplitter {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Vec<u8>> {
        // A terminator may straddle the previous scan's end: look back three bytes.
        let from = self.scanned.saturating_sub(3);
        match find_event_end(&self.buffer[from..]) {
            Some(end) => {
                let rest = self.buffer.split_off(from + end);
                self.scanned = 0;
                Some(std::mem::replace(&mut self.buffer, rest))
            }
            None => {
                self.scanned = self.buffer.len();
                None
            }
        }
    }

    /// Bytes received that do not yet form a complete event.
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }
}

/// The index just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`).
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    let mut index = 0;
    while index + 1 < buffer.len() {
        match &buffer[index..] {
            [b'\r', b'\n', b'\r', b'\n', ..] => return Some(index + 4),
            [b'\n', b'\n', ..] | [b'\r', b'\r', ..] => return Some(index + 2),
            _ => index += 1,
        }
    }
    None
}

/// The data of an SSE event: its `data:` lines joined by newlines (borrowed when there is one).
pub fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut lines = event
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter_map(|line| line.strip_prefix(b"data:"))
        .map(|data| data.strip_prefix(b" ").unwrap_or(data));
    let first = lines.next()?;
    match lines.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut joined = [first, second].join(&b'\n');
            for line in lines {
                joined.push(b'\n');
                joined.extend_from_slice(line);
            }
            Some(Cow::Owned(joined))
        }
    }
}

/// The JSON-RPC message in an SSE event's `data:` lines, if any.
pub fn event_message(event: &[u8]) -> Option<Value> {
    serde_json::from_slice(&event_data(event)?).ok()
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
        let stream: &[u8] =
            b"event: message\ndata: {\"a\":1}\n\nid: 7\r\ndata: {\"b\":2}\r\n\r\ndata: {\"c\"";
        // However the stream is cut into chunks, the same events come out.
        for size in [1, 2, 3, 5, stream.len()] {
            let mut splitter = EventSplitter::default();
            let mut events = Vec::new();
            for chunk in stream.chunks(size) {
                splitter.push(chunk);
                while let Some(event) = splitter.next_event() {
                    events.push(event);
                }
            }
            assert_eq!(events.len(), 2, "chunks of {size}");
            assert_eq!(event_message(&events[0]).unwrap(), json!({"a": 1}));
            assert_eq!(event_message(&events[1]).unwrap(), json!({"b": 2}));
            assert_eq!(splitter.pending(), b"data: {\"c\"");
        }
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let event = b"data: {\"a\":\ndata: 1}\n\n";
        assert_eq!(event_message(event).unwrap(), json!({"a": 1}));
        assert!(event_data(b": comment\n\n").is_none());
    }
}
