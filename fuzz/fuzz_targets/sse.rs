//! The SSE codec the gateway relays backend streams with (`take_events`, `event_message`,
//! `rewrite_event`), fed a stream split in two chunks at a fuzzer-chosen point.
//!
//! Checks: no panic; nothing is lost or invented (the events plus the remaining tail are the
//! input, in order); splitting the stream does not change the events; each event ends at its
//! first blank line and the tail holds none; a message found in an event survives
//! `rewrite_event` (the rewritten bytes are complete events and carry the same message).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::gateway::jsonrpc::{event_message, rewrite_event, sse_event, take_events};

#[derive(Arbitrary, Debug)]
struct Input {
    split: u16,
    stream: Vec<u8>,
}

fn ends_with_blank_line(event: &[u8]) -> bool {
    event.ends_with(b"\n\n") || event.ends_with(b"\r\r") || event.ends_with(b"\r\n\r\n")
}

fuzz_target!(|input: Input| {
    let stream = &input.stream;
    let split = usize::from(input.split) % (stream.len() + 1);

    // Two chunks, as they arrive from the network.
    let mut buffer = stream[..split].to_vec();
    let mut events = take_events(&mut buffer);
    buffer.extend_from_slice(&stream[split..]);
    events.extend(take_events(&mut buffer));

    // All at once.
    let mut whole = stream.clone();
    let whole_events = take_events(&mut whole);
    assert_eq!(
        events, whole_events,
        "splitting the stream changed its events"
    );
    assert_eq!(buffer, whole, "splitting the stream changed its tail");

    let mut rejoined: Vec<u8> = events.concat();
    rejoined.extend_from_slice(&buffer);
    assert_eq!(&rejoined, stream, "events plus tail are not the input");

    assert!(
        take_events(&mut buffer.clone()).is_empty(),
        "the tail holds an event"
    );
    for event in &events {
        assert!(
            ends_with_blank_line(event),
            "an event does not end with a blank line"
        );
        // The event ends at its first blank line: without its last byte it is incomplete.
        let mut shorter = event[..event.len() - 1].to_vec();
        assert!(
            take_events(&mut shorter).is_empty(),
            "an event holds two events"
        );

        let Some(message) = event_message(event) else {
            continue;
        };
        let rewritten = rewrite_event(event, &message);
        let mut rest = rewritten.clone();
        assert!(
            !take_events(&mut rest).is_empty() && rest.is_empty(),
            "a rewritten event is incomplete"
        );
        assert_eq!(
            event_message(&rewritten).as_ref(),
            Some(&message),
            "a rewritten event carries another message"
        );
        let fresh = sse_event(&message);
        assert_eq!(event_message(&fresh).as_ref(), Some(&message));
    }
    // The incomplete tail may be inspected too (it is not, today, but must not panic).
    let _ = event_message(&buffer);
});
