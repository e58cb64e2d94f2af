//! The SSE codec the gateway relays backend streams with (`EventSplitter`, `event_data`,
//! `event_message`, `rewrite_event`), fed a stream cut into chunks at fuzzer-chosen points.
//!
//! Checks: no panic; nothing is lost or invented (the events plus the pending tail are the input,
//! in order); how the stream is cut does not change the events; each event ends at its first
//! blank line and the tail holds none; a message found in an event survives `rewrite_event`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::gateway::sse::{EventSplitter, event_data, event_message, rewrite_event, sse_event};

#[derive(Arbitrary, Debug)]
struct Input {
    cuts: Vec<u8>,
    stream: Vec<u8>,
}

/// `bytes` without its final line end (CRLF, LF or CR), if it has one.
fn without_line_end(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .or_else(|| bytes.strip_suffix(b"\r"))
}

/// The event's last line is blank: it ends with two line ends (CRLF, LF or CR, in any mix), or
/// is a blank line alone.
fn ends_with_blank_line(event: &[u8]) -> bool {
    without_line_end(event).is_some_and(|rest| rest.is_empty() || without_line_end(rest).is_some())
}

/// The events of `chunks` fed one after another, and the tail left.
fn split<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut splitter = EventSplitter::default();
    let mut events = Vec::new();
    for chunk in chunks {
        splitter.push(chunk);
        while let Some(event) = splitter.next_event() {
            events.push(event);
        }
    }
    (events, splitter.pending().to_vec())
}

fuzz_target!(|input: Input| {
    let stream = &input.stream;
    let mut chunks = Vec::new();
    let mut at = 0;
    for cut in &input.cuts {
        let next = (at + usize::from(*cut)).min(stream.len());
        chunks.push(&stream[at..next]);
        at = next;
    }
    chunks.push(&stream[at..]);
    let (events, tail) = split(chunks);
    let (whole_events, whole_tail) = split([stream.as_slice()]);
    assert_eq!(events, whole_events, "cutting the stream changed its events");
    assert_eq!(tail, whole_tail, "cutting the stream changed its tail");

    let mut rejoined: Vec<u8> = events.concat();
    rejoined.extend_from_slice(&tail);
    assert_eq!(&rejoined, stream, "events plus tail are not the input");
    assert!(split([tail.as_slice()]).0.is_empty(), "the tail holds an event");

    for event in &events {
        assert!(ends_with_blank_line(event), "an event does not end with a blank line");
        assert!(
            split([&event[..event.len() - 1]]).0.is_empty(),
            "an event holds two events"
        );
        let _ = event_data(event);
        let Some(message) = event_message(event) else {
            continue;
        };
        let rewritten = rewrite_event(event, &message);
        let (again, rest) = split([rewritten.as_slice()]);
        assert!(again.len() == 1 && rest.is_empty(), "a rewritten event is not one event");
        assert_eq!(event_message(&rewritten).as_ref(), Some(&message));
        assert_eq!(event_message(&sse_event(&message)).as_ref(), Some(&message));
    }
    let _ = event_data(&tail);
});
