//! The response cache of read-only operations: a second identical call of the same person is
//! answered by Portcullis (the API's own count shows it was not reached) and audited as a hit;
//! another person, or other arguments, reach the API. In memory, or in Redis when configured.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{EVERY_SCOPE, PATH, backend_toml, call, result, sign_in, start, tool_calls};
use crate::metrics;
use crate::support::app::{Options, TestApp, rpc_body, spawn};
use crate::support::openapi::{self, Api};
use crate::support::redis;

const COUNT: &str = "count_key_calls__key__get";
/// Only the counting tool is cached, for a minute.
const CACHE: &str = "[backends.cache]\n\"count_key_*\" = 60\n";

/// `/calls/{key}` through Portcullis: the count the answer carries.
async fn count(app: &TestApp, token: &str, key: &str) -> Value {
    let response = call(app, token, PATH, COUNT, json!({"key": key})).await;
    let result = result(&response);
    assert_eq!(result["isError"], false, "{result:#}");
    result["structuredContent"]["calls"].clone()
}

/// The `reason`s of `login`'s audited calls of `tool`, oldest first.
async fn reasons(app: &TestApp, login: &str, tool: &str) -> Vec<Option<String>> {
    tool_calls(app, &format!("{login}@example.com"))
        .await
        .into_iter()
        .filter(|row| row.tool.as_deref() == Some(tool))
        .inspect(|row| assert_eq!(row.outcome.as_deref(), Some("ok"), "{row:#?}"))
        .map(|row| row.reason)
        .collect()
}

/// Whether an audit reason says the call was answered from the cache.
fn hit(reason: &Option<String>) -> bool {
    reason.as_deref() == Some("cache hit")
}

/// Two people, one cached tool: what reaches the API and what the audit trail says.
async fn one_persons_answer_is_cached_for_that_person_only(app: &TestApp, api: &Api) {
    let ada = sign_in(app, "cache-ada", PATH).await;
    let bob = sign_in(app, "cache-bob", PATH).await;

    let first = call(app, &ada, PATH, COUNT, json!({"key": "k"})).await;
    assert_eq!(result(&first)["structuredContent"]["calls"], 1, "{first:#}");
    let again = call(app, &ada, PATH, COUNT, json!({"key": "k"})).await;
    assert_eq!(
        result(&again),
        result(&first),
        "the same answer, from the cache"
    );
    assert_eq!(
        api.calls("/calls/k").await,
        1,
        "the second call did not reach the API"
    );
    assert_eq!(
        count(app, &ada, "j").await,
        1,
        "other arguments are another entry"
    );
    assert_eq!(count(app, &bob, "k").await, 2, "not ada's answer");
    assert_eq!(api.calls("/calls/k").await, 2);

    let ada_reasons = reasons(app, "cache-ada", COUNT).await;
    let hits: Vec<bool> = ada_reasons.iter().map(hit).collect();
    assert_eq!(hits, [false, true, false], "{ada_reasons:?}");
    let bob_reasons = reasons(app, "cache-bob", COUNT).await;
    assert!(!bob_reasons.iter().any(hit), "{bob_reasons:?}");

    // A tool without a TTL is not cached.
    for _ in 0..2 {
        call(app, &ada, PATH, "echo_echo_get", json!({})).await;
    }
    assert_eq!(api.calls("/echo").await, 2);
}

#[tokio::test]
async fn a_cached_answer_is_per_person_and_arguments_and_audited_as_a_hit() {
    let api = openapi::spawn().await;
    let app = spawn(Options {
        grant_scopes: EVERY_SCOPE,
        top_toml: format!("[metrics]\ntoken = \"{}\"\n", metrics::TOKEN),
        extra_toml: backend_toml(&api, Some(&api.base), "", CACHE),
        ..Options::default()
    })
    .await;
    // The recorder is the process's: count what this test adds.
    let counted = |text: &str, result: &str| {
        metrics::sample(
            text,
            "portcullis_openapi_cache_total",
            &[("backend", "inventory"), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    let before = metrics::scrape(&app).await;
    one_persons_answer_is_cached_for_that_person_only(&app, &api).await;
    let after = metrics::scrape(&app).await;
    assert_eq!(
        counted(&after, "hit") - counted(&before, "hit"),
        1.0,
        "{after}"
    );
    assert_eq!(
        counted(&after, "miss") - counted(&before, "miss"),
        3.0,
        "{after}"
    );
}

#[tokio::test]
async fn with_redis_the_cache_lives_in_redis() {
    let (redis_url, _private) = redis::shared().await;
    let prefix = redis::fresh_prefix();
    let api = openapi::spawn().await;
    let app = spawn(Options {
        grant_scopes: EVERY_SCOPE,
        top_toml: format!(
            "grant = \"requested\"\nredis_url = \"{redis_url}\"\nredis_prefix = \"{prefix}\"\n"
        ),
        // The backend's TTL for every read-only tool, here the counting one and `echo`.
        extra_toml: backend_toml(&api, Some(&api.base), "cache_ttl_secs = 60", ""),
        ..Options::default()
    })
    .await;
    let token = sign_in(&app, "cache-redis", PATH).await;
    assert_eq!(count(&app, &token, "r").await, 1);
    assert_eq!(count(&app, &token, "r").await, 1, "the cached answer");
    assert_eq!(api.calls("/calls/r").await, 1);

    // Emptied in Redis, the cache is empty: the next call reaches the API.
    let client = ::redis::Client::open(redis_url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "nothing under {prefix} in Redis");
    let _: () = ::redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(count(&app, &token, "r").await, 2);
    let hits: Vec<bool> = reasons(&app, "cache-redis", COUNT)
        .await
        .iter()
        .map(hit)
        .collect();
    assert_eq!(hits, [false, true, false]);
}

/// A 2026-07-28 `tools/call` (`_meta` in the body, the `Mcp-*` headers that mirror it): its
/// result.
async fn modern_call(app: &TestApp, token: &str, name: &str, arguments: Value) -> Value {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "openapi-test", "version": "1"},
    });
    let response = app
        .http
        .post(app.url(PATH))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments, "_meta": meta}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = rpc_body(response).await;
    result(&body).clone()
}

#[tokio::test]
async fn a_2026_client_sees_how_long_a_cached_answer_stays_fresh_and_for_whom() {
    let (app, api) = start("", CACHE, EVERY_SCOPE).await;
    let token = sign_in(&app, "cache-modern", PATH).await;
    for _ in 0..2 {
        let cached = modern_call(&app, &token, COUNT, json!({"key": "m"})).await;
        assert_eq!(cached["structuredContent"]["calls"], 1, "{cached:#}");
        assert_eq!(cached["cacheScope"], "private", "{cached:#}");
        let ttl = cached["ttlMs"]
            .as_u64()
            .unwrap_or_else(|| panic!("{cached:#}"));
        assert!(ttl > 0 && ttl <= 60_000, "{cached:#}");
    }
    assert_eq!(api.calls("/calls/m").await, 1);
}
