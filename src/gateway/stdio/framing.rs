//! The MCP stdio framing: one JSON-RPC message per line. Lines are read with a bound, so a
//! backend cannot make the gateway buffer an answer of any size.
//!
//! <https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#stdio>

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How much of each end of an oversized line is kept, to find out which request it answered.
const PEEK: usize = 256;

#[derive(Debug, PartialEq)]
pub(super) enum Line {
    Message(Vec<u8>),
    /// Longer than the limit, so not kept; its ends are, to find its id.
    TooLong {
        head: Vec<u8>,
        tail: Vec<u8>,
    },
}

pub(super) struct LineReader<R> {
    inner: R,
    limit: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(super) fn new(inner: R, limit: usize) -> Self {
        Self { inner, limit }
    }

    /// The next line without its terminator (`\n` or `\r\n`), or `None` at the end of the stream.
    pub(super) async fn next(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        let mut head: Option<Vec<u8>> = None;
        let mut tail = Vec::new();
        let mut read_any = false;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            if let Some(head) = &mut head {
                let room = PEEK.saturating_sub(head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..room]);
                keep_tail(&mut tail, chunk);
            } else {
                line.extend_from_slice(chunk);
                if line.len() > self.limit {
                    head = Some(line[..PEEK.min(line.len())].to_vec());
                    keep_tail(&mut tail, &line);
                    line = Vec::new();
                }
            }
            let used = newline.map_or(available.len(), |at| at + 1);
            self.inner.consume(used);
            if newline.is_some() {
                break;
            }
        }
        if let Some(head) = head {
            return Ok(Some(Line::TooLong { head, tail }));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(Line::Message(line)))
    }
}

fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() >= PEEK {
        tail.clear();
        tail.extend_from_slice(&bytes[bytes.len() - PEEK..]);
    } else {
        tail.extend_from_slice(bytes);
        let excess = tail.len().saturating_sub(PEEK);
        tail.drain(..excess);
    }
}

/// What the start of an oversized line says it is.
#[derive(Debug, PartialEq)]
pub(super) enum Oversized {
    /// A response to the request with this (Portcullis-assigned) id.
    Response(u64),
    /// A request or notification from the backend.
    FromBackend,
    Unknown,
}

/// Reads the id of an oversized message where serializers put it: first after `"jsonrpc"` (as
/// the Python SDK writes it) or as the last member (as the TypeScript SDK does).
pub(super) fn classify_oversized(head: &[u8], tail: &[u8]) -> Oversized {
    let head = String::from_utf8_lossy(head);
    match leading_member(&head) {
        Some(("id", value)) => {
            leading_digits(value).map_or(Oversized::Unknown, Oversized::Response)
        }
        Some(("method", _)) => Oversized::FromBackend,
        _ => trailing_id(&String::from_utf8_lossy(tail))
            .map_or(Oversized::Unknown, Oversized::Response),
    }
}

/// The first member's key and the text after its colon, skipping a leading `"jsonrpc":"2.0"`.
fn leading_member(text: &str) -> Option<(&str, &str)> {
    let mut rest = text.trim_start().strip_prefix('{')?;
    loop {
        let after_quote = rest.trim_start().strip_prefix('"')?;
        let (key, after_key) = after_quote.split_once('"')?;
        let value = after_key.trim_start().strip_prefix(':')?.trim_start();
        if key != "jsonrpc" {
            return Some((key, value));
        }
        rest = value
            .strip_prefix("\"2.0\"")?
            .trim_start()
            .strip_prefix(',')?;
    }
}

fn leading_digits(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// The id in a message ending `,"id":123}`: the final brace closes the message itself, so the
/// member is a top-level one, not one nested in the result.
fn trailing_id(text: &str) -> Option<u64> {
    let body = text.trim_end().strip_suffix('}')?.trim_end();
    let start = body
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |at| at + 1);
    let id = body[start..].parse().ok()?;
    body[..start]
        .trim_end()
        .strip_suffix(':')?
        .trim_end()
        .strip_suffix("\"id\"")?
        .trim_end()
        .strip_suffix(',')?;
    Some(id)
}

/// Lines split, and over-long lines dropped with reading going on.
#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], limit: usize) -> Vec<Line> {
        // A tiny buffer makes lines span many reads, as a slow pipe would.
        let reader = tokio::io::BufReader::with_capacity(7, input);
        let mut lines = LineReader::new(reader, limit);
        let mut out = Vec::new();
        while let Some(line) = lines.next().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_on_newlines_and_lose_their_terminators() {
        let got = lines(b"{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}", 100).await;
        let expected: Vec<Line> = [&b"{\"a\":1}"[..], b"", b"{\"b\":2}", b"{\"c\":3}"]
            .iter()
            .map(|l| Line::Message(l.to_vec()))
            .collect();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_dropped_with_its_ends_kept_and_reading_goes_on() {
        let long = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":\"{}\"}}",
            "x".repeat(1000)
        );
        let input = format!("{long}\n{{\"ok\":true}}\n");
        let got = lines(input.as_bytes(), 100).await;
        let Line::TooLong { head, tail } = &got[0] else {
            panic!("{got:?}")
        };
        assert!(head.starts_with(b"{\"jsonrpc\":\"2.0\",\"id\":42"));
        assert_eq!(head.len(), PEEK);
        assert!(tail.ends_with(b"xx\"}"));
        assert_eq!(tail.len(), PEEK);
        assert_eq!(classify_oversized(head, tail), Oversized::Response(42));
        assert_eq!(got[1], Line::Message(b"{\"ok\":true}".to_vec()));
        let exact = lines(&b"x".repeat(100), 100).await;
        assert_eq!(exact, vec![Line::Message(b"x".repeat(100))]);
    }

    #[test]
    fn oversized_messages_are_attributed_by_their_id_first_or_last() {
        let classify = |text: &str| classify_oversized(text.as_bytes(), text.as_bytes());
        assert_eq!(
            classify(r#"{"jsonrpc": "2.0", "id": 7, "result": {"#),
            Oversized::Response(7)
        );
        assert_eq!(classify(r#"{"id":8,"result":"#), Oversized::Response(8));
        assert_eq!(
            classify(r#"{"result":{"id":1}},"jsonrpc":"2.0","id":9}"#),
            Oversized::Response(9)
        );
        assert_eq!(
            classify(r#"{"method":"notifications/message","params":{"id":3}}"#),
            Oversized::FromBackend
        );
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","method":"x","id":4}"#),
            Oversized::FromBackend
        );
        assert_eq!(
            classify(r#"{"result":{"content":[{"id":5}]}}"#),
            Oversized::Unknown
        );
        assert_eq!(classify(r#"{"result":{"id":5}}"#), Oversized::Unknown);
    }
}
