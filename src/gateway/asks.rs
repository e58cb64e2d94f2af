//! Requests a backend sends to the client while answering one of its calls (sampling,
//! elicitation, roots), on their way to a 2025-era client over the call's SSE stream, and the
//! client's answers, which arrive as POSTs of their own, on their way back. Each is asked under
//! an id of the gateway's making and may be answered only by the person whose call it is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::stdio::lock;

/// How long a question waits for its answer before it is forgotten (the backend is told the
/// client could not be asked).
const WAIT: Duration = Duration::from_secs(600);
const CAPACITY: u64 = 10_000;
/// The ids of the gateway's questions begin so.
const PREFIX: &str = "portcullis-ask-";

type Reply = Arc<Mutex<Option<oneshot::Sender<Value>>>>;

/// The questions waiting for the client's answer, by the id the client saw.
pub struct Asks {
    waiting: moka::sync::Cache<String, (String, Reply)>,
}

impl Default for Asks {
    fn default() -> Self {
        Self {
            waiting: moka::sync::Cache::builder()
                .time_to_live(WAIT)
                .max_capacity(CAPACITY)
                .build(),
        }
    }
}

impl Asks {
    /// Registers the backend's request `message` for `owner`'s client; returns it as the
    /// client is to see it, under a new id.
    pub fn ask(&self, owner: &str, mut message: Value, reply: oneshot::Sender<Value>) -> Value {
        let id = format!("{PREFIX}{}", uuid::Uuid::new_v4());
        self.waiting.insert(
            id.clone(),
            (owner.to_owned(), Arc::new(Mutex::new(Some(reply)))),
        );
        if let Some(object) = message.as_object_mut() {
            object.insert("id".into(), Value::String(id));
        }
        message
    }

    /// Passes `owner`'s client's response on to the backend that asked; false when it answers
    /// nothing this person was asked.
    pub fn answer(&self, owner: &str, response: &Map<String, Value>) -> bool {
        let Some(id) = response.get("id").and_then(Value::as_str) else {
            return false;
        };
        let Some((asked, reply)) = self.waiting.get(id) else {
            return false;
        };
        if asked != owner {
            return false;
        }
        self.waiting.invalidate(id);
        let sender = lock(&reply).take();
        sender.is_some_and(|sender| sender.send(Value::Object(response.clone())).is_ok())
    }
}

/// An ask's answer reaches the backend only from the person asked.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_answer_reaches_the_backend_only_from_the_person_asked() {
        let asks = Asks::default();
        let (reply, mut answer) = oneshot::channel();
        let asked = asks.ask(
            "alice",
            json!({"jsonrpc": "2.0", "id": 3, "method": "roots/list"}),
            reply,
        );
        let id = asked["id"].clone();
        assert_ne!(id, json!(3));
        let response = |id: &Value| {
            json!({"jsonrpc": "2.0", "id": id, "result": {"roots": []}})
                .as_object()
                .cloned()
                .unwrap()
        };
        assert!(!asks.answer("mallory", &response(&id)));
        assert!(!asks.answer("alice", &response(&json!("other"))));
        assert!(asks.answer("alice", &response(&id)));
        assert_eq!(answer.try_recv().unwrap()["result"], json!({"roots": []}));
        assert!(!asks.answer("alice", &response(&id)), "answered once");
    }
}
