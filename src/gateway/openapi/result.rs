//! An API's HTTP answer as an MCP tool result: JSON as `structuredContent` plus text, a
//! non-2xx answer as a tool error with the status and an excerpt, and anything larger than the
//! backend's cap cut with a notice saying how much, so a model is not flooded.

use base64::Engine;
use serde_json::{Value, json};

/// The most of an error body a tool error quotes.
pub const MAX_EXCERPT_BYTES: usize = 2048;

/// An answer as read: the first bytes of the body up to the cap, and how many there were.
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub content_type: Option<String>,
    /// At most the cap.
    pub body: Vec<u8>,
    /// Bytes the body had in all, or at least (see `complete`).
    pub total: usize,
    /// False when reading stopped at the hard limit, so `total` is a lower bound.
    pub complete: bool,
}

impl Answer {
    fn truncated(&self) -> bool {
        self.body.len() < self.total || !self.complete
    }

    fn is_json(&self) -> bool {
        self.content_type.as_deref().is_some_and(|t| {
            let essence = t.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
        })
    }

    fn is_text(&self) -> bool {
        self.is_json()
            || self.content_type.as_deref().is_none_or(|t| {
                let t = t.to_ascii_lowercase();
                t.starts_with("text/")
                    || t.contains("xml")
                    || t.contains("yaml")
                    || t.starts_with("application/x-www-form-urlencoded")
            })
    }

    /// How much was cut, as a notice for the model.
    fn notice(&self) -> String {
        let at_least = if self.complete { "" } else { "more than " };
        format!(
            "[Portcullis truncated this response: showed {} of {at_least}{} bytes]",
            self.body.len(),
            self.total
        )
    }
}

/// The `CallToolResult` for an answer.
pub fn tool_result(answer: &Answer) -> Value {
    if !answer.status.is_success() {
        return error_result(answer);
    }
    if !answer.is_text() {
        return binary_result(answer);
    }
    let text = utf8_prefix(&answer.body);
    if answer.truncated() {
        return json!({
            "content": [{ "type": "text", "text": format!("{text}\n… {}", answer.notice()) }],
            "isError": false,
        });
    }
    let structured = answer
        .is_json()
        .then(|| serde_json::from_slice::<Value>(&answer.body).ok())
        .flatten()
        .map(|value| match value {
            Value::Object(_) => value,
            other => json!({ "result": other }),
        });
    let mut result = json!({
        "content": [{ "type": "text", "text": text }],
        "isError": false,
    });
    if let (Some(structured), Some(object)) = (structured, result.as_object_mut()) {
        object.insert("structuredContent".into(), structured);
    }
    result
}

/// A tool error saying what went wrong, for the model to read.
pub fn failure(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": true })
}

fn error_result(answer: &Answer) -> Value {
    let status = answer.status;
    let reason = status.canonical_reason().unwrap_or("");
    let mut text = format!("HTTP {} {reason}", status.as_u16())
        .trim_end()
        .to_owned();
    if answer.is_text() && !answer.body.is_empty() {
        let cut = &answer.body[..answer.body.len().min(MAX_EXCERPT_BYTES)];
        text.push_str(": ");
        text.push_str(&utf8_prefix(cut));
        if cut.len() < answer.total || !answer.complete {
            text.push_str(" …");
        }
    }
    failure(text)
}

/// An image comes back as image content when it fits; other bytes are described, not sent.
fn binary_result(answer: &Answer) -> Value {
    let content_type = answer.content_type.as_deref().unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.starts_with("image/") && !answer.truncated() {
        let data = base64::engine::general_purpose::STANDARD.encode(&answer.body);
        return json!({
            "content": [{ "type": "image", "data": data, "mimeType": essence }],
            "isError": false,
        });
    }
    let at_least = if answer.complete { "" } else { "more than " };
    json!({
        "content": [{ "type": "text", "text": format!(
            "The API answered {at_least}{} bytes of {}, which is not text and is not shown.",
            answer.total,
            if essence.is_empty() { "an unnamed type" } else { essence },
        )}],
        "isError": false,
    })
}

/// The longest valid UTF-8 prefix (a cut may split a character); invalid bytes inside are
/// replaced.
fn utf8_prefix(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(error) if error.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..error.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Answers shaped as tool results: JSON, truncation, errors, binary.
#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: &str, body: &[u8], total: usize) -> Answer {
        Answer {
            status: http::StatusCode::from_u16(status).unwrap(),
            content_type: Some(content_type.into()),
            body: body.to_vec(),
            total,
            complete: true,
        }
    }

    #[test]
    fn json_objects_are_structured_and_other_json_is_wrapped() {
        let object = tool_result(&answer(200, "application/json", br#"{"a":1}"#, 7));
        assert_eq!(object["structuredContent"], json!({"a": 1}));
        assert_eq!(object["content"][0]["text"], r#"{"a":1}"#);
        assert_eq!(object["isError"], false);
        let list = tool_result(&answer(200, "application/problem+json", b"[1,2]", 5));
        assert_eq!(list["structuredContent"], json!({"result": [1, 2]}));
        let text = tool_result(&answer(200, "text/plain; charset=utf-8", b"hello", 5));
        assert_eq!(text["content"][0]["text"], "hello");
        assert!(text.get("structuredContent").is_none());
    }

    #[test]
    fn a_large_answer_is_cut_with_a_notice_and_no_structure() {
        let result = tool_result(&answer(200, "application/json", b"[1,2,3", 1_000_000));
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("[1,2,3"), "{text}");
        assert!(
            text.contains("truncated this response: showed 6 of 1000000 bytes"),
            "{text}"
        );
        assert!(result.get("structuredContent").is_none());
        let mut endless = answer(200, "text/plain", b"abc", 99);
        endless.complete = false;
        let text = tool_result(&endless)["content"][0]["text"].clone();
        assert!(text.as_str().unwrap().contains("of more than 99 bytes"));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let cut = &"é".as_bytes()[..1];
        assert_eq!(utf8_prefix(cut), "");
        assert_eq!(utf8_prefix("aé".as_bytes()), "aé");
    }

    #[test]
    fn errors_are_tool_errors_with_status_and_excerpt() {
        let body = vec![b'x'; 5000];
        let result = tool_result(&answer(500, "text/plain", &body, body.len()));
        assert_eq!(result["isError"], true);
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(
            text.starts_with("HTTP 500 Internal Server Error: xxx"),
            "{text}"
        );
        assert!(text.ends_with(" …"));
        assert!(text.len() < MAX_EXCERPT_BYTES + 64);
        let missing = tool_result(&answer(404, "application/json", br#"{"detail":"no"}"#, 15));
        assert_eq!(
            missing["content"][0]["text"],
            r#"HTTP 404 Not Found: {"detail":"no"}"#
        );
    }

    #[test]
    fn images_are_images_and_other_bytes_are_described() {
        let png = tool_result(&answer(200, "image/png", &[1, 2, 3], 3));
        assert_eq!(png["content"][0]["type"], "image");
        assert_eq!(png["content"][0]["mimeType"], "image/png");
        let pdf = tool_result(&answer(200, "application/pdf", &[1, 2, 3], 3));
        let text = pdf["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("3 bytes of application/pdf"), "{text}");
    }
}
