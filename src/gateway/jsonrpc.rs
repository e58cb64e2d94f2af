//! JSON-RPC responses as the gateway relays them: which request a response answers, whether
//! it failed, and the `tools/list` filter applied to JSON and SSE responses alike.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// What the relay reads of a backend's message: which request it answers and whether it
/// failed, without building the message's tree (a result can be megabytes).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Peek {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    result: Option<PeekResult>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// A result, read only for `isError`.
#[derive(Debug, Default)]
struct PeekResult {
    is_error: bool,
}

impl<'de> Deserialize<'de> for PeekResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader;
        impl<'de> Visitor<'de> for Reader {
            type Value = PeekResult;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC result")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PeekResult, A::Error> {
                let mut is_error = false;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "isError" {
                        is_error = map.next_value::<Value>()?.as_bool() == Some(true);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(PeekResult { is_error })
            }

            // Any other result (MCP's are objects) is simply not an error.
            fn visit_bool<E>(self, _: bool) -> Result<PeekResult, E> {
                Ok(PeekResult::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<PeekResult, E> {
                Ok(PeekResult::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<PeekResult, E> {
                Ok(PeekResult::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<PeekResult, E> {
                Ok(PeekResult::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<PeekResult, E> {
                Ok(PeekResult::default())
            }
            fn visit_unit<E>(self) -> Result<PeekResult, E> {
                Ok(PeekResult::default())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PeekResult, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PeekResult::default())
            }
        }
        deserializer.deserialize_any(Reader)
    }
}

impl Peek {
    /// Reads one JSON-RPC message; `None` for anything else (a batch, not JSON).
    pub fn read(json: &[u8]) -> Option<Peek> {
        // A derived struct would also read a sequence (a batch) field by field: only objects.
        let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
        (*first == b'{')
            .then(|| serde_json::from_slice(json).ok())
            .flatten()
    }

    /// The id of the request this message answers, when it is a response.
    pub fn response_id(&self) -> Option<&Value> {
        if self.result.is_some() || self.error.is_some() {
            self.id.as_ref()
        } else {
            None
        }
    }

    /// An error response, or a tool result marked `isError`.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.result.as_ref().is_some_and(|r| r.is_error)
    }
}

/// The id of a response message (one with `result` or `error`), if it is one.
pub fn response_id(message: &Value) -> Option<&Value> {
    let object = message.as_object()?;
    (object.contains_key("result") || object.contains_key("error"))
        .then(|| object.get("id"))
        .flatten()
}

/// True when a `CallToolResult` is marked `isError`.
pub fn is_tool_error(result: &Value) -> bool {
    result.get("isError").and_then(Value::as_bool) == Some(true)
}

/// Removes from a `tools/list` response the tools `allowed` rejects, and makes a modern
/// answer's caching hint `private`: what it lists depends on who asks. Returns true if it
/// changed.
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
    let filtered = tools.len() != before;
    let scope = message.pointer_mut("/result/cacheScope");
    let shared = scope.is_some_and(|scope| {
        let shared = scope != "private";
        *scope = Value::from("private");
        shared
    });
    filtered || shared
}

/// Peeking at a relayed response, and filtering a tools/list.
#[cfg(test)]
mod tests {
    #[test]
    fn a_peek_reads_the_id_and_failure_without_the_rest() {
        let peek = |json: &str| Peek::read(json.as_bytes()).unwrap();
        let ok =
            peek(r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"x"}]}}"#);
        assert_eq!((ok.response_id(), ok.failed()), (Some(&json!(7)), false));
        let tool_error =
            peek(r#"{"jsonrpc":"2.0","id":"a","result":{"isError":true,"content":[]}}"#);
        assert!(tool_error.failed());
        let error = peek(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}"#);
        assert!(error.failed());
        let odd = peek(r#"{"jsonrpc":"2.0","id":2,"result":5}"#);
        assert_eq!((odd.response_id(), odd.failed()), (Some(&json!(2)), false));
        let notification =
            peek(r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#);
        assert_eq!(notification.response_id(), None);
        assert!(Peek::read(b"[1]").is_none());
        assert!(Peek::read(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#).is_none());
    }

    use serde_json::json;

    use super::*;
    use crate::gateway::sse::{event_message, rewrite_event};

    #[test]
    fn a_tools_list_is_filtered_and_the_event_rewritten() {
        let event = b"id: 4\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"admin\"}]}}\n\n";
        let mut message = event_message(event).unwrap();
        assert!(filter_tools(&mut message, &|name| name != "admin"));
        let mut public = json!({"result": {"tools": [], "cacheScope": "public", "ttlMs": 5}});
        assert!(filter_tools(&mut public, &|_| true));
        assert_eq!(public["result"]["cacheScope"], "private");
        let rewritten = rewrite_event(event, &message);
        let text = String::from_utf8(rewritten.clone()).unwrap();
        assert!(text.starts_with("id: 4\nevent: message\ndata: "), "{text}");
        assert_eq!(
            event_message(&rewritten).unwrap()["result"]["tools"],
            json!([{"name": "echo"}])
        );
    }
}
