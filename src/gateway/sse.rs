//! Server-Sent Events as MCP's Streamable HTTP uses them: split a byte stream into events, read
//! the JSON-RPC message in an event, and write events.

use std::borrow::Cow;

use serde_json::Value;

/// Splits a byte stream into complete Server-Sent Events (each with its terminating blank
/// line), keeping an incomplete tail until more arrives. Lines end with CRLF, LF or CR, as the
/// SSE format allows, in any mix; a CR at the end of what has arrived may be half a CRLF, so it
/// waits for the next byte. It remembers how far it has looked (and where the current line
/// began), so an event that arrives in many chunks is scanned once.
#[derive(Debug, Default)]
pub struct EventSplitter {
    buffer: Vec<u8>,
    /// Where the search for the end of the first event resumes.
    scanned: usize,
    /// Where the line being scanned began.
    line_start: usize,
}

impl EventSplitter {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Vec<u8>> {
        self.take_event(false)
    }

    /// At the end of the stream: the last event, if what is pending completes one (a final CR
    /// is a line end then). An event cut off before its blank line is not one (as the SSE
    /// format says: it is not dispatched).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.take_event(true)
    }

    fn take_event(&mut self, at_end: bool) -> Option<Vec<u8>> {
        let mut index = self.scanned;
        while index < self.buffer.len() {
            let terminator = match self.buffer[index] {
                b'\n' => 1,
                b'\r' => match self.buffer.get(index + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None if at_end => 1,
                    // Half a CRLF, perhaps: decide when the next byte is here.
                    None => break,
                },
                _ => {
                    index += 1;
                    continue;
                }
            };
            if index == self.line_start {
                // A blank line: the event ends after it.
                let rest = self.buffer.split_off(index + terminator);
                self.scanned = 0;
                self.line_start = 0;
                return Some(std::mem::replace(&mut self.buffer, rest));
            }
            index += terminator;
            self.line_start = index;
        }
        self.scanned = index;
        None
    }

    /// Bytes received that do not yet form a complete event.
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }
}

/// The lines of an event, without their terminators (CRLF, LF or CR).
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = event;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let terminator = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ if end < rest.len() => 1,
            _ => 0,
        };
        rest = &rest[end + terminator..];
        Some(line)
    })
}

/// The data of an SSE event: its `data:` lines joined by newlines (borrowed when there is one).
pub fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut lines = lines(event)
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
    let mut out = Vec::with_capacity(event.len());
    for line in lines(event).filter(|l| !l.is_empty() && !l.starts_with(b"data:")) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(message.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out
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

/// SSE events split, joined and written.
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
            let (events, pending) = split(stream, size);
            assert_eq!(events.len(), 2, "chunks of {size}");
            assert_eq!(event_message(&events[0]).unwrap(), json!({"a": 1}));
            assert_eq!(event_message(&events[1]).unwrap(), json!({"b": 2}));
            assert_eq!(pending, b"data: {\"c\"");
        }
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let event = b"data: {\"a\":\ndata: 1}\n\n";
        assert_eq!(event_message(event).unwrap(), json!({"a": 1}));
        assert!(event_data(b": comment\n\n").is_none());
    }

    /// Every event of `stream` cut into chunks of `size`, and what is left.
    fn split(stream: &[u8], size: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut splitter = EventSplitter::default();
        let mut events = Vec::new();
        for chunk in stream.chunks(size) {
            splitter.push(chunk);
            while let Some(event) = splitter.next_event() {
                events.push(event);
            }
        }
        (events, splitter.pending().to_vec())
    }

    #[test]
    fn lines_may_end_with_cr_lf_or_crlf_in_any_mix() {
        let stream: &[u8] = b"event: message\rdata: {\"a\":\rdata: 1}\r\r\
            data: {\"b\":2}\n\r\n\
            data: {\"c\":\r\ndata: 3}\r\n\n\
            data: {\"d\":4}\r\n\r";
        for size in 1..=stream.len() {
            let (events, pending) = split(stream, size);
            let messages: Vec<Value> = events.iter().filter_map(|e| event_message(e)).collect();
            assert_eq!(
                messages,
                [json!({"a": 1}), json!({"b": 2}), json!({"c": 3})],
                "chunks of {size}"
            );
            // A final CR may be half a CRLF: the last event waits for the stream's end, where
            // the relay passes on what is pending.
            assert_eq!(pending, b"data: {\"d\":4}\r\n\r", "chunks of {size}");
            assert_eq!(event_message(&pending).unwrap(), json!({"d": 4}));
            assert_eq!([events.concat(), pending].concat(), stream);
        }
    }

    #[test]
    fn a_crlf_cut_between_chunks_is_one_line_end_not_a_blank_line() {
        // Were the CR taken alone, the LF after it would end the event between two data lines,
        // and neither half would parse (a tools/list answer would escape its filter).
        let stream: &[u8] = b"data: {\"tools\":\r\ndata: []}\r\n\r\n";
        let cut = stream.iter().position(|b| *b == b'\r').unwrap() + 1;
        let mut splitter = EventSplitter::default();
        splitter.push(&stream[..cut]);
        assert_eq!(splitter.next_event(), None);
        splitter.push(&stream[cut..]);
        let event = splitter.next_event().unwrap();
        assert_eq!(event_message(&event).unwrap(), json!({"tools": []}));
    }

    #[test]
    fn at_the_end_a_final_cr_ends_the_last_event_and_a_cut_off_one_is_dropped() {
        let mut splitter = EventSplitter::default();
        splitter.push(b"data: {\"d\":4}\r\r");
        assert_eq!(
            splitter.next_event(),
            None,
            "the last CR may be half a CRLF"
        );
        let last = splitter.finish().unwrap();
        assert_eq!(event_message(&last).unwrap(), json!({"d": 4}));

        let mut cut = EventSplitter::default();
        cut.push(b"data: {\"e\":5}\r\n");
        assert_eq!(cut.finish(), None);
    }

    #[test]
    fn a_rewritten_event_keeps_its_fields_whatever_its_line_ends() {
        let rewritten = rewrite_event(b"event: message\rid: 7\r\ndata: {}\r\r", &json!({"x": 1}));
        assert_eq!(rewritten, b"event: message\nid: 7\ndata: {\"x\":1}\n\n");
    }
}
