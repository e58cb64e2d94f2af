//! MCP messages as the gateway reads them: each POST body is parsed once into typed messages,
//! which the gate authorizes and the endpoints dispatch.

use serde_json::{Map, Value};

use super::error::GatewayError;

/// What a request asks of the server behind an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Protocol housekeeping: needs no scope.
    Initialize,
    /// `server/discover` (2026-07-28): what `initialize` tells, without a session.
    Discover,
    Ping,
    /// The answer is filtered to what the caller may call.
    ToolsList,
    /// Needs the tool's scope.
    ToolsCall {
        name: String,
    },
    /// Any other use of the server (`resources/read`, `prompts/get`, …): needs the backend's
    /// default scope.
    Other(String),
}

impl Method {
    fn parse(method: String, params: Option<&Value>) -> Result<Self, GatewayError> {
        Ok(match method.as_str() {
            "initialize" => Self::Initialize,
            "server/discover" => Self::Discover,
            "ping" => Self::Ping,
            "tools/list" => Self::ToolsList,
            "tools/call" => {
                let name = params
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        GatewayError::InvalidParams("tools/call needs params.name".into())
                    })?;
                Self::ToolsCall {
                    name: name.to_owned(),
                }
            }
            _ => Self::Other(method),
        })
    }

    /// The JSON-RPC method name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Initialize => "initialize",
            Self::Discover => "server/discover",
            Self::Ping => "ping",
            Self::ToolsList => "tools/list",
            Self::ToolsCall { .. } => "tools/call",
            Self::Other(method) => method,
        }
    }
}

/// A JSON-RPC request (a message with `method` and `id`), or a use of the server sent as a
/// notification (no `id`: `tools/call` without one still runs at some servers), which the gate
/// checks all the same.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `null` for a notification.
    pub id: Value,
    pub method: Method,
    pub params: Option<Value>,
    /// Sent without an `id`: nothing will be answered.
    pub notification: bool,
}

/// One JSON-RPC message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    /// An MCP notification (`notifications/…`, no `id`): nothing is answered, nothing to
    /// authorize.
    Notification {
        method: String,
    },
    /// The client's answer to a request the server sent (sampling, elicitation, roots), whole.
    Response(Map<String, Value>),
}

/// A POST body: one message, or a batch (MCP 2025-03-26).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Incoming {
    pub messages: Vec<Message>,
    pub batch: bool,
}

/// A body that is not JSON-RPC, and the id to answer with (when one could be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub id: Value,
    pub error: GatewayError,
}

impl Incoming {
    /// Parses a POST body once: JSON, then each message's shape.
    pub fn parse(body: &[u8]) -> Result<Self, Rejected> {
        let reject = |id: Value, error| Rejected { id, error };
        let value: Value =
            serde_json::from_slice(body).map_err(|_| reject(Value::Null, GatewayError::Parse))?;
        let not_json_rpc = || {
            reject(
                Value::Null,
                GatewayError::InvalidRequest("the body is not a JSON-RPC message"),
            )
        };
        let (items, batch) = match value {
            Value::Array(items) if !items.is_empty() => (items, true),
            Value::Object(_) => (vec![value], false),
            _ => return Err(not_json_rpc()),
        };
        let mut messages = Vec::with_capacity(items.len());
        for item in items {
            let Value::Object(object) = item else {
                return Err(not_json_rpc());
            };
            messages.push(Self::message(object).map_err(|(id, error)| reject(id, error))?);
        }
        Ok(Self { messages, batch })
    }

    fn message(mut object: Map<String, Value>) -> Result<Message, (Value, GatewayError)> {
        let method = match object.remove("method") {
            Some(Value::String(method)) => method,
            // Whatever a server behind might make of it, the gate cannot read it.
            Some(_) => {
                let id = object.get("id").cloned().unwrap_or(Value::Null);
                return Err((
                    id,
                    GatewayError::InvalidRequest("the method is not a string"),
                ));
            }
            None if object.contains_key("id")
                && (object.contains_key("result") || object.contains_key("error")) =>
            {
                return Ok(Message::Response(object));
            }
            None => {
                return Err((
                    Value::Null,
                    GatewayError::InvalidRequest("the message is neither a request nor a response"),
                ));
            }
        };
        let (id, notification) = match object.remove("id") {
            Some(id) => (id, false),
            // MCP's own notifications use nothing; anything else without an id (a
            // `tools/call`, say) is a use of the server like any request, and is authorized as
            // one.
            None if method.starts_with("notifications/") => {
                return Ok(Message::Notification { method });
            }
            None => (Value::Null, true),
        };
        let params = object.remove("params");
        match Method::parse(method, params.as_ref()) {
            Ok(method) => Ok(Message::Request(Request {
                id,
                method,
                params,
                notification,
            })),
            Err(error) => Err((id, error)),
        }
    }

    /// The requests among the messages that expect an answer.
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.uses().filter(|r| !r.notification)
    }

    /// Every use of the server among the messages, answered or not: what the gate checks.
    pub fn uses(&self) -> impl Iterator<Item = &Request> {
        self.messages.iter().filter_map(|m| match m {
            Message::Request(request) => Some(request),
            _ => None,
        })
    }

    /// The id of the first request, to answer a refusal of the whole body with.
    pub fn first_id(&self) -> Value {
        self.requests().next().map_or(Value::Null, |r| r.id.clone())
    }
}

/// Messages and batches told apart, parsed once.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_batch_is_parsed_into_requests_notifications_and_responses() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},
                        {"jsonrpc":"2.0","method":"notifications/initialized"},
                        {"jsonrpc":"2.0","id":"b","method":"tools/list"},
                        {"jsonrpc":"2.0","id":9,"result":{}}]"#;
        let incoming = Incoming::parse(body).unwrap();
        assert!(incoming.batch);
        let methods: Vec<(Value, Method)> = incoming
            .requests()
            .map(|r| (r.id.clone(), r.method.clone()))
            .collect();
        assert_eq!(
            methods,
            vec![
                (
                    json!(1),
                    Method::ToolsCall {
                        name: "echo".into()
                    }
                ),
                (json!("b"), Method::ToolsList)
            ]
        );
        assert_eq!(
            incoming.messages[1],
            Message::Notification {
                method: "notifications/initialized".into()
            }
        );
        assert!(matches!(&incoming.messages[3], Message::Response(r) if r["id"] == json!(9)));
        assert_eq!(incoming.first_id(), json!(1));
    }

    #[test]
    fn other_methods_and_housekeeping_are_told_apart() {
        let incoming = Incoming::parse(
            br#"[{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"x"}},
                 {"jsonrpc":"2.0","id":3,"method":"ping"}]"#,
        )
        .unwrap();
        let methods: Vec<&Method> = incoming.requests().map(|r| &r.method).collect();
        assert_eq!(
            methods,
            [&Method::Other("resources/read".into()), &Method::Ping]
        );
    }

    #[test]
    fn a_tool_call_without_an_id_is_a_use_to_authorize_not_an_answer_to_expect() {
        let incoming =
            Incoming::parse(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}"#)
                .unwrap();
        let uses: Vec<&Request> = incoming.uses().collect();
        assert_eq!(uses.len(), 1);
        assert!(uses[0].notification);
        assert_eq!(uses[0].method, Method::ToolsCall { name: "x".into() });
        assert_eq!(incoming.requests().count(), 0);
        let initialized =
            Incoming::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(initialized.uses().count(), 0);
    }

    #[test]
    fn bodies_that_are_not_json_rpc_are_refused_with_their_code() {
        let code = |body: &[u8]| Incoming::parse(body).unwrap_err().error.rpc_code();
        assert_eq!(code(b"nope"), -32700);
        assert_eq!(code(b"[]"), -32600);
        assert_eq!(code(b"[1]"), -32600);
        assert_eq!(code(b"\"x\""), -32600);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            -32600,
            "a method that is not a string"
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), -32600);
        let rejected =
            Incoming::parse(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{}}"#)
                .unwrap_err();
        assert_eq!((rejected.id, rejected.error.rpc_code()), (json!(5), -32602));
    }
}
