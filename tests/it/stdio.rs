//! Stdio backends: processes started per user (or shared), initialized by Portcullis, called
//! concurrently, timed out and cancelled, restarted after a crash, reaped when idle, capped, and
//! stopped — against a small MCP server in Node (`tests/fixtures/stdio_server.mjs`).

use std::time::Duration;

use portcullis::config::{BackendTransport, Settings};
use portcullis::gateway::caller::Caller;
use portcullis::gateway::connection::{CallContext, CallError, Connection, FromBackend};
use portcullis::gateway::stdio::StdioPool;
use portcullis::oauth::tokens::AccessClaims;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/stdio_server.mjs"
);

/// A pool for the fixture; `extra` is more TOML for the backend (an `[backends.env]` table last).
fn pool(extra: &str) -> StdioPool {
    let toml = format!("[[backends]]\nid = \"fx\"\ncommand = [\"node\", \"{FIXTURE}\"]\n{extra}\n");
    pool_of(&Settings::from_toml(&toml).unwrap())
}

/// The pool of the first backend of `settings`, a stdio one.
fn pool_of(settings: &Settings) -> StdioPool {
    let backend = &settings.backends[0];
    let BackendTransport::Stdio(stdio) = &backend.transport else {
        panic!("{} is not a stdio backend", backend.id);
    };
    StdioPool::new(backend, stdio)
}

fn ctx_within(user: &str, within: Duration) -> CallContext {
    let claims = AccessClaims {
        iss: "http://127.0.0.1".into(),
        sub: user.into(),
        aud: "http://127.0.0.1/mcp/fx".into(),
        client_id: "client".into(),
        scope: "fx:tools:call".into(),
        exp: i64::MAX,
        iat: 0,
        jti: format!("jti-{user}"),
        sid: format!("sid-{user}"),
        email: None,
    };
    CallContext::new(Caller::new(claims), "req", Instant::now() + within)
}

fn ctx(user: &str) -> CallContext {
    ctx_within(user, Duration::from_secs(15))
}

async fn call(
    pool: &StdioPool,
    user: &str,
    tool: &str,
    arguments: Value,
) -> Result<Value, CallError> {
    let params = json!({ "name": tool, "arguments": arguments });
    pool.request(&ctx(user), "tools/call", Some(params), None)
        .await
}

/// The tool result's text, parsed as JSON when it is JSON.
fn text(result: &Value) -> Value {
    let text = result["content"][0]["text"].as_str().unwrap();
    serde_json::from_str(text).unwrap_or_else(|_| json!(text))
}

async fn whoami(pool: &StdioPool, user: &str) -> Value {
    text(&call(pool, user, "whoami", json!({})).await.unwrap())
}

fn drain(receiver: &mut UnboundedReceiver<FromBackend>) -> Vec<Value> {
    std::iter::from_fn(|| receiver.try_recv().ok())
        .filter_map(|message| match message {
            FromBackend::Notification(note) => Some(note),
            FromBackend::Request { .. } => None,
        })
        .collect()
}

/// Polls `condition` every 50 ms for up to `limit`.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}

/// Whether a process exists and is not a zombie (Linux).
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn the_first_call_starts_and_initializes_a_process_and_echo_makes_the_round_trip() {
    let pool = pool("");
    assert_eq!(pool.process_count(), 0);

    let result = call(&pool, "alice", "echo", json!({ "text": "hi" }))
        .await
        .unwrap();

    assert_eq!(text(&result), json!("hi"));
    assert_eq!(pool.process_count(), 1);
    let info = pool.server_info(&ctx("alice")).await.unwrap();
    assert_eq!(info["serverInfo"]["name"], "stdio-fixture");
    assert_eq!(info["protocolVersion"], "2025-06-18");
    assert_eq!(info["clientInfo"]["name"], "portcullis");
    // A client's own initialize is answered from the handshake, not sent again.
    let again = pool
        .request(&ctx("alice"), "initialize", Some(json!({})), None)
        .await;
    assert_eq!(again.unwrap(), info);
    let me = whoami(&pool, "alice").await;
    assert_eq!(me["initializes"], 1);
    assert_eq!(me["initialized"], true);
    let tools = pool
        .request(&ctx("alice"), "tools/list", None, None)
        .await
        .unwrap();
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo")
    );
}

#[tokio::test]
async fn each_user_gets_a_process_of_their_own_and_a_shared_backend_runs_one() {
    let per_user = pool("");
    let (alice, bob) = tokio::join!(whoami(&per_user, "alice"), whoami(&per_user, "bob"));
    assert_ne!(alice["pid"], bob["pid"]);
    assert_eq!(per_user.process_count(), 2);
    assert_eq!(
        per_user.pid_for(Some("alice")).map(u64::from),
        alice["pid"].as_u64()
    );
    assert_eq!(
        per_user.pid_for(Some("bob")).map(u64::from),
        bob["pid"].as_u64()
    );
    assert_eq!(per_user.pid_for(None), None);

    let shared = pool("shared = true");
    let (alice, bob) = tokio::join!(whoami(&shared, "alice"), whoami(&shared, "bob"));
    assert_eq!(alice["pid"], bob["pid"]);
    assert_eq!(shared.process_count(), 1);
    assert_eq!(shared.pid_for(None).map(u64::from), alice["pid"].as_u64());
}

#[tokio::test]
async fn many_concurrent_calls_share_one_process_and_each_gets_its_own_answer() {
    let pool = pool("");
    let calls = (0..40).map(|n| call(&pool, "alice", "echo", json!({ "text": format!("m{n}") })));
    let results = futures::future::join_all(calls).await;
    for (n, result) in results.into_iter().enumerate() {
        assert_eq!(text(&result.unwrap()), json!(format!("m{n}")));
    }
    assert_eq!(pool.process_count(), 1);
}

#[tokio::test]
async fn progress_reaches_each_caller_under_its_own_token_on_a_shared_process() {
    let pool = pool("shared = true");
    let progress = |user: &'static str| {
        let pool = &pool;
        async move {
            let (tx, mut rx) = unbounded_channel();
            let params =
                json!({ "name": "progress", "arguments": {}, "_meta": { "progressToken": "t" } });
            let result = pool
                .request(&ctx(user), "tools/call", Some(params), Some(tx))
                .await;
            (text(&result.unwrap()), drain(&mut rx))
        }
    };

    let ((alice, alice_notes), (bob, bob_notes)) = tokio::join!(progress("alice"), progress("bob"));

    // The backend saw distinct tokens of Portcullis' own, not the callers' shared "t".
    assert_ne!(alice["token_seen"], "t");
    assert_ne!(alice["token_seen"], bob["token_seen"]);
    for notes in [alice_notes, bob_notes] {
        assert_eq!(notes.len(), 3, "{notes:?}");
        for (step, note) in notes.iter().enumerate() {
            assert_eq!(note["method"], "notifications/progress");
            assert_eq!(note["params"]["progressToken"], "t");
            assert_eq!(note["params"]["progress"], step + 1);
        }
    }
}

#[tokio::test]
async fn other_notifications_of_a_users_process_reach_that_users_call() {
    let pool = pool("");
    let (tx, mut rx) = unbounded_channel();
    let params = json!({ "name": "log", "arguments": { "text": "note" } });
    pool.request(&ctx("alice"), "tools/call", Some(params), Some(tx))
        .await
        .unwrap();
    let notes = drain(&mut rx);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["method"], "notifications/message");
    assert_eq!(notes[0]["params"]["data"], "note");
}

#[tokio::test]
async fn a_call_past_its_deadline_times_out_and_is_cancelled_at_the_backend() {
    let pool = pool("");
    whoami(&pool, "alice").await;
    let started = Instant::now();

    let params = json!({ "name": "slow", "arguments": {} });
    let outcome = pool
        .request(
            &ctx_within("alice", Duration::from_millis(300)),
            "tools/call",
            Some(params),
            None,
        )
        .await;

    assert_eq!(outcome, Err(CallError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(2));
    let seen = text(&call(&pool, "alice", "cancelled", json!({})).await.unwrap());
    assert_eq!(seen["cancellations"].as_array().unwrap().len(), 1);
    assert_eq!(seen["cancellations"][0]["requestId"], seen["slow"][0]);
    assert_eq!(seen["cancellations"][0]["reason"], "the request timed out");
}

#[tokio::test]
async fn a_backend_that_dies_mid_call_fails_its_calls_at_once_and_the_next_call_restarts_it() {
    let pool = pool("");
    let first = whoami(&pool, "alice").await["pid"].clone();
    let slow = call(&pool, "alice", "slow", json!({}));
    let crash_once_slow_runs = async {
        loop {
            let seen = text(&call(&pool, "alice", "cancelled", json!({})).await.unwrap());
            if !seen["slow"].as_array().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = Instant::now();
        (call(&pool, "alice", "crash", json!({})).await, started)
    };

    let (slow, (crash, started)) = tokio::join!(slow, crash_once_slow_runs);

    let exited = Err(CallError::Unavailable("the backend process exited".into()));
    assert_eq!(crash, exited);
    assert_eq!(slow, exited);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(eventually(Duration::from_secs(3), || pool.process_count() == 0).await);
    let second = whoami(&pool, "alice").await["pid"].clone();
    assert_ne!(first, second);
    assert_eq!(pool.process_count(), 1);
}

#[tokio::test]
async fn the_backends_own_requests_are_answered_so_its_tool_returns() {
    let pool = pool("");
    let answers = text(&call(&pool, "alice", "sample", json!({})).await.unwrap());
    assert_eq!(answers["ping"], json!({ "result": {} }));
    assert_eq!(answers["sampling"]["error"]["code"], -32601);
    let message = answers["sampling"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not supported through the Portcullis gateway"),
        "{message}"
    );
}

#[tokio::test]
async fn the_backends_requests_reach_the_client_of_the_call_and_its_answer_returns() {
    let pool = pool("");
    let (tx, mut rx) = unbounded_channel();
    let params = json!({ "name": "sample", "arguments": {} });
    let alice = ctx("alice");
    let call = pool.request(&alice, "tools/call", Some(params), Some(tx));
    let client = async {
        while let Some(message) = rx.recv().await {
            if let FromBackend::Request { message, reply } = message {
                assert_eq!(message["method"], "sampling/createMessage");
                assert_eq!(message["params"]["maxTokens"], 10);
                let answer = json!({ "jsonrpc": "2.0", "id": "whatever", "result": {
                    "role": "assistant", "content": { "type": "text", "text": "hello back" }, "model": "m" } });
                reply.send(answer).unwrap();
                return;
            }
        }
        panic!("the backend's request never reached the call");
    };
    let (result, ()) = tokio::join!(call, client);
    let answers = text(&result.unwrap());
    assert_eq!(
        answers["ping"],
        json!({ "result": {} }),
        "ping is answered by Portcullis"
    );
    assert_eq!(
        answers["sampling"]["result"]["content"]["text"],
        "hello back"
    );
}

#[tokio::test]
async fn an_oversized_answer_fails_its_call_and_the_process_keeps_serving() {
    let pool = pool("max_response_bytes = 4096");
    let pid = whoami(&pool, "alice").await["pid"].clone();
    let outcome = call(&pool, "alice", "big", json!({ "size": 100_000 })).await;
    assert_eq!(outcome, Err(CallError::TooLarge));
    assert_eq!(whoami(&pool, "alice").await["pid"], pid);
}

#[tokio::test]
async fn an_idle_process_is_stopped() {
    let pool = pool("idle_timeout_secs = 1");
    let pid = whoami(&pool, "alice").await["pid"].as_u64().unwrap();
    assert_eq!(pool.process_count(), 1);
    assert!(eventually(Duration::from_secs(5), || pool.process_count() == 0).await);
    assert!(eventually(Duration::from_secs(3), || !alive(pid)).await);
}

#[tokio::test]
async fn at_the_cap_a_busy_process_is_kept_and_an_idle_one_makes_room() {
    let pool = pool("max_processes = 1");
    let params = json!({ "name": "slow", "arguments": {} });
    let alice_ctx = ctx_within("alice", Duration::from_secs(2));
    let alice_slow = pool.request(&alice_ctx, "tools/call", Some(params), None);
    let bob_meanwhile = async {
        assert!(
            eventually(Duration::from_secs(5), || pool
                .pid_for(Some("alice"))
                .is_some())
            .await
        );
        call(&pool, "bob", "echo", json!({ "text": "hi" })).await
    };

    let (alice, bob) = tokio::join!(alice_slow, bob_meanwhile);

    assert_eq!(bob, Err(CallError::AtCapacity));
    assert_eq!(alice, Err(CallError::Timeout));
    let alice_pid = pool.pid_for(Some("alice")).unwrap();
    let bob_now = call(&pool, "bob", "echo", json!({ "text": "hi" })).await;
    assert_eq!(text(&bob_now.unwrap()), json!("hi"));
    assert_eq!(pool.pid_for(Some("alice")), None);
    assert_eq!(pool.process_count(), 1);
    assert!(eventually(Duration::from_secs(3), || !alive(u64::from(alice_pid))).await);
}

#[tokio::test]
async fn a_backend_that_cannot_start_is_unavailable_with_the_reason() {
    let settings = Settings::from_toml(
        "[[backends]]\nid = \"nope\"\ncommand = [\"/nonexistent/portcullis-no-such-server\"]\n",
    )
    .unwrap();
    let missing = pool_of(&settings);
    let outcome = missing
        .request(&ctx("alice"), "tools/list", None, None)
        .await;
    let Err(CallError::Unavailable(reason)) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("not found"), "{reason}");
    assert!(eventually(Duration::from_secs(2), || missing.process_count() == 0).await);

    let exits = pool("[backends.env]\nPORTCULLIS_FIXTURE = \"exit\"");
    let outcome = exits.request(&ctx("alice"), "tools/list", None, None).await;
    assert_eq!(
        outcome,
        Err(CallError::Unavailable(
            "the backend process exited during start-up".into()
        ))
    );
}

#[tokio::test]
async fn a_start_slower_than_the_call_times_out_the_call() {
    let pool = pool("[backends.env]\nPORTCULLIS_FIXTURE = \"hang-init\"");
    let outcome = pool
        .request(
            &ctx_within("alice", Duration::from_millis(500)),
            "tools/list",
            None,
            None,
        )
        .await;
    assert_eq!(outcome, Err(CallError::Timeout));
}

#[tokio::test]
async fn the_configured_environment_reaches_the_process_and_little_else_does() {
    let pool = pool("[backends.env]\nPORTCULLIS_TEST_TAG = \"blue\"");
    let me = whoami(&pool, "alice").await;
    assert_eq!(me["tag"], "blue");
    let keys: Vec<&str> = me["env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(keys.contains(&"PATH"), "{keys:?}");
    // Cargo sets these for every test process; a backend must not inherit them.
    assert!(!keys.iter().any(|key| key.starts_with("CARGO")), "{keys:?}");
}

#[tokio::test]
async fn shutdown_stops_every_process_and_refuses_later_calls() {
    let pool = pool("");
    let (alice, bob) = tokio::join!(whoami(&pool, "alice"), whoami(&pool, "bob"));
    let started = Instant::now();

    pool.shutdown().await;

    // The fixture exits when its stdin closes, so no process needs killing.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pool.process_count(), 0);
    for me in [alice, bob] {
        let pid = me["pid"].as_u64().unwrap();
        assert!(eventually(Duration::from_secs(3), || !alive(pid)).await);
    }
    let later = call(&pool, "alice", "echo", json!({})).await;
    assert!(matches!(later, Err(CallError::Unavailable(_))), "{later:?}");
}

#[tokio::test]
async fn dropping_the_pool_kills_its_processes_and_what_they_started() {
    let pool = pool("[backends.env]\nPORTCULLIS_FIXTURE = \"grandchild\"");
    let me = whoami(&pool, "alice").await;
    let pid = me["pid"].as_u64().unwrap();
    let grandchild = me["grandchild"].as_u64().unwrap();
    assert!(alive(grandchild));

    drop(pool);

    assert!(eventually(Duration::from_secs(3), || !alive(pid)).await);
    assert!(eventually(Duration::from_secs(3), || !alive(grandchild)).await);
}
