//! A 2025-era backend's requests to its client (sampling, elicitation, roots), put to a
//! 2026-07-28 client the MRTR way: the call in flight is parked, the client gets an
//! `InputRequiredResult` with the backend's request under a key, and its retry (the same tool,
//! `requestState` echoed, `inputResponses` filled in) hands the answer to the backend and picks
//! the parked call up again. The state is an opaque token of the gateway's; only the person
//! whose call it is can resume it.
//!
//! <https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr>

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::connection::FromBackend;
use super::error::GatewayError;
use super::facade::Dispatched;
use super::message::Request;
use super::stdio::lock;

/// How long a parked call waits for the client's retry.
const WAIT: Duration = Duration::from_secs(600);
const CAPACITY: u64 = 10_000;
/// `requestState` values of the gateway's making begin so; any other belongs to a backend.
const PREFIX: &str = "portcullis-mrtr-";

/// A call in flight and what its backend sends about it.
pub struct Call {
    pub task: JoinHandle<Dispatched>,
    pub messages: mpsc::UnboundedReceiver<FromBackend>,
}

/// What happened next to a call.
pub enum Next {
    Message(FromBackend),
    Done(Box<Dispatched>),
}

impl Call {
    /// The next message about the call, or its end once every message sent before it is out.
    pub async fn next(&mut self) -> Next {
        tokio::select! {
            biased;
            Some(message) = self.messages.recv() => Next::Message(message),
            joined = &mut self.task => Next::Done(Box::new(joined.unwrap_or_else(
                |_| Dispatched::from(Err(GatewayError::Unavailable("the call ended abruptly"))),
            ))),
        }
    }
}

/// One question of the backend's, as the client was asked it.
struct Question {
    key: String,
    request: Value,
    reply: oneshot::Sender<Value>,
}

/// A call waiting for the client's retry.
pub struct Parked {
    owner: String,
    /// What the retry must repeat: the method and the tool (or prompt, or resource).
    target: String,
    call: Call,
    questions: Vec<Question>,
}

/// The parked calls, by `requestState`.
pub struct Parking {
    parked: moka::sync::Cache<String, Arc<Mutex<Option<Parked>>>>,
}

impl Default for Parking {
    fn default() -> Self {
        Self {
            parked: moka::sync::Cache::builder()
                .time_to_live(WAIT)
                .max_capacity(CAPACITY)
                .build(),
        }
    }
}

/// The client capability a backend's request needs, if it is one a client can be asked.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "elicitation/create" => Some("elicitation"),
        "sampling/createMessage" => Some("sampling"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// What a retry must repeat of the request it retries.
fn target(request: &Request) -> String {
    let params = request.params.as_ref();
    let name = params
        .and_then(|p| p.get("name").or_else(|| p.get("uri")))
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{} {name}", request.method.as_str())
}

impl Parking {
    /// Parks `call`, which asked `message` of `request`'s client; returns the
    /// `InputRequiredResult` to answer `request` with.
    pub fn park(
        &self,
        owner: &str,
        request: &Request,
        call: Call,
        message: &Value,
        reply: oneshot::Sender<Value>,
    ) -> Value {
        let mut ask = json!({ "method": message.get("method").cloned().unwrap_or(Value::Null) });
        if let Some(params) = message.get("params") {
            ask["params"] = params.clone();
        }
        let question = Question {
            key: "backend-request".into(),
            request: ask,
            reply,
        };
        self.store(Parked {
            owner: owner.to_owned(),
            target: target(request),
            call,
            questions: vec![question],
        })
    }

    fn store(&self, parked: Parked) -> Value {
        let state = format!("{PREFIX}{}", uuid::Uuid::new_v4());
        let requests: Map<String, Value> = parked
            .questions
            .iter()
            .map(|q| (q.key.clone(), q.request.clone()))
            .collect();
        self.parked
            .insert(state.clone(), Arc::new(Mutex::new(Some(parked))));
        json!({
            "resultType": "input_required",
            "inputRequests": requests,
            "requestState": state,
        })
    }

    /// The parked call `request` retries, its answers handed to the backend; `None` when
    /// `request` retries nothing of the gateway's (a backend's own `requestState` passes on).
    /// A retry missing an answer is asked again (`Err` carries the new `InputRequiredResult`).
    pub fn resume(&self, owner: &str, request: &Request) -> Option<Result<Call, Resumed>> {
        let params = request.params.as_ref();
        let state = params
            .and_then(|p| p.get("requestState"))
            .and_then(Value::as_str)
            .filter(|s| s.starts_with(PREFIX))?;
        let slot = self.parked.get(state);
        let parked = slot.and_then(|slot| lock(&slot).take());
        let Some(parked) = parked else {
            return Some(Err(Resumed::Unknown));
        };
        if parked.owner != owner || parked.target != target(request) {
            // Not this caller's, or not this call's: left where it was.
            let refused = Resumed::Unknown;
            if let Some(slot) = self.parked.get(state) {
                *lock(&slot) = Some(parked);
            }
            return Some(Err(refused));
        }
        self.parked.invalidate(state);
        let responses = params.and_then(|p| p.get("inputResponses"));
        let answered = parked
            .questions
            .iter()
            .all(|q| responses.and_then(|r| r.get(&q.key)).is_some());
        if !answered {
            return Some(Err(Resumed::AskAgain(self.store(parked))));
        }
        for question in parked.questions {
            if let Some(answer) = responses.and_then(|r| r.get(&question.key)) {
                let _ = question.reply.send(json!({ "result": answer }));
            }
        }
        Some(Ok(parked.call))
    }
}

/// Why a retry did not pick a parked call up.
pub enum Resumed {
    /// No such parked call of this caller's (expired, answered already, or another's).
    Unknown,
    /// Not every question was answered: here they are again.
    AskAgain(Value),
}
