//! `/mcp/{backend}`: each backend a protected resource of its own; scopes checked before the
//! backend sees anything; the caller's identity forwarded, never the client's token; sessions,
//! streams, deadlines and limits relayed as MCP clients expect.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{Db, Options, TestApp, rpc_body, spawn};
use crate::support::recorder::{self, Recorder};

/// A gateway with the recorder as backend `rec`; the person may call `rec` tools and `echo`,
/// but not the `admin-*` tools.
async fn gateway(forward: &str, extra: &str) -> (TestApp, Recorder) {
    gateway_on(Db::Sqlite, forward, extra).await
}

async fn gateway_on(db: Db, forward: &str, extra: &str) -> (TestApp, Recorder) {
    let backend = recorder::spawn().await;
    let toml = format!(
        r#"
[[backends]]
id = "rec"
url = "{url}"
scope = "rec:tools:call"
forward = {forward}
timeout_secs = 2
max_response_bytes = 65536
{extra}
[backends.tools]
"echo" = "rec:echo:call"
"admin-*" = "rec:admin:call"
"#,
        url = backend.url
    );
    let app = spawn(Options {
        db,
        grant_scopes: r#"["rec:tools:call", "rec:echo:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    (app, backend)
}

fn rec_url(app: &TestApp) -> String {
    app.url("/mcp/rec")
}

async fn token_for_rec(app: &TestApp, login: &str) -> String {
    let (_, tokens) = app
        .tokens_for_resource(login, None, Some(rec_url(app)))
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"text": "hi"}}})
}

#[tokio::test]
async fn each_backend_is_a_protected_resource_with_its_own_audience() {
    let (app, _backend) = gateway(r#"["identity-headers"]"#, "").await;
    let unauthenticated = app.mcp(&rec_url(&app), None, call(1, "echo")).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let challenge = unauthenticated.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&app.url("/.well-known/oauth-protected-resource/mcp/rec")),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(r#"scope="rec:tools:call""#),
        "the basic scope: {challenge}"
    );
    let prm = app
        .get_json(&app.url("/.well-known/oauth-protected-resource/mcp/rec"))
        .await;
    assert_eq!(prm["resource"], rec_url(&app));
    assert_eq!(
        prm["scopes_supported"],
        json!(["rec:admin:call", "rec:echo:call", "rec:tools:call"])
    );
    let aggregate = app
        .get_json(&app.url("/.well-known/oauth-protected-resource/mcp"))
        .await;
    assert_eq!(aggregate["scopes_supported"], prm["scopes_supported"]);

    // Asking for no scope grants what the resource advertises and the person may have.
    let (_, tokens) = app
        .tokens_for_resource("aud", None, Some(rec_url(&app)))
        .await;
    assert_eq!(tokens["scope"], "rec:echo:call rec:tools:call");
    let rec_token = tokens["access_token"].as_str().unwrap();
    let (_, mcp_tokens) = app.tokens_for("aud2", None).await;
    let mcp_token = mcp_tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.mcp(&rec_url(&app), Some(rec_token), call(1, "echo"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.mcp(&rec_url(&app), Some(mcp_token), call(1, "echo"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.mcp(&app.mcp_url(), Some(rec_token), call(1, "whoami"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tools_list_shows_only_the_tools_the_caller_may_call() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "lister").await;
    let names = app.tool_names(&rec_url(&app), &token).await;
    assert_eq!(
        names,
        ["echo", "add", "slow", "stream", "die"],
        "admin-reset needs rec:admin:call"
    );
}

#[tokio::test]
async fn a_call_without_its_scope_is_refused_before_the_backend_with_a_step_up_challenge() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "stepper").await;
    let response = app
        .mcp(&rec_url(&app), Some(&token), call(9, "admin-reset"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"rec:admin:call rec:echo:call rec:tools:call\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 9);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rec:admin:call")
    );
    assert!(
        backend.bodies().iter().all(|b| b["method"] != "tools/call"),
        "nothing reached the backend"
    );
}

#[tokio::test]
async fn the_backend_gets_the_callers_identity_and_never_the_clients_token() {
    let (app, backend) =
        gateway(r#"["identity-headers", "assertion", "upstream-token"]"#, "").await;
    let (_, tokens) = app
        .tokens_for_resource("ident", None, Some(rec_url(&app)))
        .await;
    let token = tokens["access_token"].as_str().unwrap();
    let response = app
        .http
        .post(rec_url(&app))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("cookie", "portcullis-browser=secret")
        .header("x-request-id", "req-from-client-1")
        .json(&call(1, "echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "req-from-client-1");
    let seen = backend.last();
    let header = |name: &str| {
        seen.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("x-request-id").as_deref(), Some("req-from-client-1"));
    assert_eq!(
        header("x-portcullis-email").as_deref(),
        Some("ident@example.com")
    );
    assert_eq!(
        header("x-portcullis-scopes").as_deref(),
        Some("rec:echo:call rec:tools:call")
    );
    assert!(header("x-portcullis-client").is_some() && header("x-portcullis-user").is_some());
    assert!(header("cookie").is_none());
    for (name, value) in &seen.headers {
        assert!(
            !value.to_str().unwrap_or_default().contains(token),
            "the client's token leaked in {name}"
        );
    }

    // The upstream token is the one the IdP issued for this sign-in.
    let claims = crate::negative::claims_of(token);
    let upstream = app.upstream_access_token(&claims.sid).await;
    assert_eq!(header("authorization"), Some(format!("Bearer {upstream}")));

    // The assertion verifies with Portcullis' published key, for this backend's audience.
    let assertion = header("x-portcullis-assertion").unwrap();
    let jwks = app.get_json(&app.url("/jwks.json")).await;
    let jwk = &jwks["keys"][0];
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["urn:portcullis:backend:rec"]);
    validation.set_issuer(&[app.base.as_str()]);
    let verified = jsonwebtoken::decode::<Value>(&assertion, &key, &validation).unwrap();
    assert_eq!(
        verified.header.typ.as_deref(),
        Some("portcullis-assertion+jwt")
    );
    assert_eq!(verified.claims["sub"], claims.sub.as_str());
    assert_eq!(verified.claims["request_id"], "req-from-client-1");
    assert!(
        verified.claims["exp"].as_i64().unwrap() - verified.claims["iat"].as_i64().unwrap() <= 60
    );

    // Once the upstream token has expired, the backend gets a freshly refreshed one.
    app.expire_upstream_token(&claims.sid).await;
    let again = app.mcp(&rec_url(&app), Some(token), call(2, "echo")).await;
    assert_eq!(again.status(), StatusCode::OK);
    let refreshed = backend.last().headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        refreshed,
        format!("Bearer {upstream}"),
        "a new upstream token"
    );
    let stored = app.upstream_access_token(&claims.sid).await;
    assert_eq!(
        refreshed,
        format!("Bearer {stored}"),
        "the refreshed token is kept"
    );
}

#[tokio::test]
async fn without_forwarding_the_backend_learns_only_the_request_id() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "quiet").await;
    let response = app.mcp(&rec_url(&app), Some(&token), call(1, "echo")).await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        !request_id.is_empty(),
        "a request id is generated and returned"
    );
    let seen = backend.last();
    assert_eq!(seen.headers["x-request-id"].to_str().unwrap(), request_id);
    for name in [
        "authorization",
        "x-portcullis-user",
        "x-portcullis-email",
        "x-portcullis-assertion",
    ] {
        assert!(seen.headers.get(name).is_none(), "{name} was forwarded");
    }
}

#[tokio::test]
async fn mcp_sessions_pass_through_the_gateway() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "session").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}});
    let response = app.mcp(&rec_url(&app), Some(&token), init).await;
    assert_eq!(response.headers()["mcp-session-id"], "session-from-backend");
    let next = app
        .http
        .post(rec_url(&app))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "session-from-backend")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), StatusCode::ACCEPTED);
    let seen = backend.last();
    assert_eq!(seen.headers["mcp-session-id"], "session-from-backend");
    assert_eq!(seen.headers["mcp-protocol-version"], "2025-06-18");
}

#[tokio::test]
async fn a_streamed_result_arrives_as_server_sent_events() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "streamer").await;
    let response = app
        .mcp(&rec_url(&app), Some(&token), {
            let mut streamed = call(4, "stream");
            streamed["params"]["_meta"] = json!({"progressToken": 41});
            streamed
        })
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .count(),
        3
    );
    assert_eq!(
        messages.last().unwrap()["result"]["content"][0]["text"],
        "streamed"
    );
}

#[tokio::test]
async fn a_backend_that_breaks_mid_call_or_is_too_slow_gives_a_json_rpc_error() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "fragile").await;

    // Whether the break comes before or after the first event reached the gateway, the client
    // gets an error for its request instead of waiting.
    let died = app.mcp(&rec_url(&app), Some(&token), call(7, "die")).await;
    let status = died.status();
    let last = rpc_body(died).await;
    assert_eq!(last["id"], 7, "{status} {last}");
    assert_eq!(last["error"]["code"], -32001, "{last}");

    let slow = app.mcp(&rec_url(&app), Some(&token), call(8, "slow")).await;
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value = slow.json().await.unwrap();
    assert_eq!(
        (body["id"].clone(), body["error"]["code"].clone()),
        (json!(8), json!(-32002))
    );
}

#[tokio::test]
async fn an_unreachable_backend_gives_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!("[[backends]]\nid = \"gone\"\nurl = \"http://127.0.0.1:{closed}/mcp\"\n");
    let app = spawn(Options {
        grant_scopes: r#"["gone:*:*"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let (_, tokens) = app
        .tokens_for_resource("gone", None, Some(app.url("/mcp/gone")))
        .await;
    let response = app
        .mcp(
            &app.url("/mcp/gone"),
            tokens["access_token"].as_str(),
            call(3, "anything"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 3);
    assert_eq!(body["error"]["message"], "the backend is unavailable");
}

#[tokio::test]
async fn size_limits_answer_with_json_rpc_errors() {
    let (app, backend) = gateway(r#"[]"#, "max_request_bytes = 2048").await;
    let token = token_for_rec(&app, "sizes").await;
    let mut large = call(1, "echo");
    large["params"]["arguments"]["text"] = json!("y".repeat(4096));
    let response = app.mcp(&rec_url(&app), Some(&token), large).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32005
    );
    assert!(
        backend.bodies().is_empty(),
        "an oversized request is not forwarded"
    );

    let big = app.mcp(&rec_url(&app), Some(&token), call(2, "big")).await;
    assert_eq!(big.status(), StatusCode::BAD_GATEWAY);
    let body: Value = big.json().await.unwrap();
    assert_eq!(
        (body["id"].clone(), body["error"]["code"].clone()),
        (json!(2), json!(-32003))
    );
}

async fn token_for_aggregate(app: &TestApp, login: &str) -> String {
    let (_, tokens) = app.tokens_for(login, None).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_aggregate_endpoint_lists_every_backends_tools_namespaced_and_filtered() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_aggregate(&app, "aggregate").await;
    let names = app.tool_names(&app.mcp_url(), &token).await;
    assert_eq!(
        names,
        [
            "whoami",
            "rec__echo",
            "rec__add",
            "rec__slow",
            "rec__stream",
            "rec__die"
        ],
        "{names:?}"
    );
}

#[tokio::test]
async fn an_aggregate_call_reaches_the_backend_under_its_own_name_with_the_callers_identity() {
    aggregate_call(Db::Sqlite).await;
}

#[tokio::test]
async fn an_aggregate_call_reaches_the_backend_under_its_own_name_on_postgres() {
    aggregate_call(Db::Postgres).await;
}

async fn aggregate_call(db: Db) {
    let (app, backend) = gateway_on(db, r#"["identity-headers"]"#, "").await;
    let token = token_for_aggregate(&app, "agg-call").await;
    let response = app
        .http
        .post(app.mcp_url())
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("x-request-id", "agg-req-1")
        .json(&call(1, "rec__echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer = rpc_body(response).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], r#"echo: {"text":"hi"}"#,
        "{answer}"
    );
    let methods: Vec<String> = backend
        .bodies()
        .iter()
        .map(|b| b["method"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        methods,
        ["initialize", "notifications/initialized", "tools/call"]
    );
    let seen = backend.last();
    assert_eq!(seen.body["params"]["name"], "echo");
    assert_eq!(seen.headers["x-request-id"], "agg-req-1");
    assert_eq!(seen.headers["x-portcullis-email"], "agg-call@example.com");
    assert_eq!(seen.headers["mcp-session-id"], "session-from-backend");

    // A second call reuses the backend session.
    rpc_body(
        app.mcp(&app.mcp_url(), Some(&token), call(2, "rec__add"))
            .await,
    )
    .await;
    assert_eq!(
        backend
            .bodies()
            .iter()
            .filter(|b| b["method"] == "initialize")
            .count(),
        1
    );
}

#[tokio::test]
async fn an_aggregate_call_without_its_scope_gets_a_step_up_challenge() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_aggregate(&app, "agg-step").await;
    let response = app
        .mcp(&app.mcp_url(), Some(&token), call(5, "rec__admin-reset"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"rec:admin:call rec:echo:call rec:tools:call\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&app.url("/.well-known/oauth-protected-resource/mcp")),
        "{challenge}"
    );
    assert!(backend.bodies().iter().all(|b| b["method"] != "tools/call"));
}

#[tokio::test]
async fn progress_and_failures_come_through_the_aggregate_as_mcp_expects() {
    let (app, _backend) = gateway(r#"[]"#, "").await;
    let token = token_for_aggregate(&app, "agg-stream").await;
    let mut streamed = call(6, "rec__stream");
    streamed["params"]["_meta"] = json!({"progressToken": "agg-token"});
    let response = app.mcp(&app.mcp_url(), Some(&token), streamed).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{text}");
    assert_eq!(progress[0]["params"]["progressToken"], "agg-token");
    assert_eq!(
        messages.last().unwrap()["result"]["content"][0]["text"],
        "streamed"
    );

    let died = rpc_body(
        app.mcp(&app.mcp_url(), Some(&token), call(7, "rec__die"))
            .await,
    )
    .await;
    assert_eq!(
        (died["id"].clone(), died["error"]["code"].clone()),
        (json!(7), json!(-32001)),
        "{died}"
    );
    let unknown = rpc_body(
        app.mcp(&app.mcp_url(), Some(&token), call(8, "nope__x"))
            .await,
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602);
}

#[tokio::test]
async fn an_unusable_request_id_is_replaced_by_a_generated_one() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "reqid").await;
    for bad in ["x".repeat(300), "has space".to_owned()] {
        let response = app
            .http
            .post(rec_url(&app))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("x-request-id", bad.as_str())
            .json(&call(1, "echo"))
            .send()
            .await
            .unwrap();
        let returned = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(returned, bad);
        assert_eq!(
            uuid::Uuid::parse_str(&returned).map(|_| ()),
            Ok(()),
            "{returned}"
        );
        assert_eq!(
            backend.last().headers["x-request-id"].to_str().unwrap(),
            returned
        );
    }
}

/// The audit rows of one kind, newest first, after everything recorded so far is written.
async fn audit_rows(
    app: &TestApp,
    kind: portcullis::store::AuditKind,
) -> Vec<portcullis::store::AuditEvent> {
    app.state.auditor.flush().await;
    let filter = portcullis::store::AuditFilter {
        kind: Some(kind),
        limit: 100,
        ..Default::default()
    };
    app.state.store.audit_events(&filter).await.unwrap()
}

#[tokio::test]
async fn every_tool_call_is_audited_allowed_or_denied() {
    audited_calls(Db::Sqlite).await;
}

#[tokio::test]
async fn every_tool_call_is_audited_allowed_or_denied_on_postgres() {
    audited_calls(Db::Postgres).await;
}

async fn audited_calls(db: Db) {
    use portcullis::store::{AuditKind, Decision};
    let (app, _backend) = gateway_on(db, r#"[]"#, "").await;
    let token = token_for_rec(&app, "audited").await;
    let response = app
        .http
        .post(rec_url(&app))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("x-request-id", "audit-req-1")
        .json(&call(1, "echo"))
        .send()
        .await
        .unwrap();
    let size = response.bytes().await.unwrap().len();
    app.mcp(&rec_url(&app), Some(&token), call(2, "admin-reset"))
        .await;
    let aggregate = token_for_aggregate(&app, "audited").await;
    app.mcp(&app.mcp_url(), Some(&aggregate), call(3, "rec__die"))
        .await
        .bytes()
        .await
        .unwrap();

    let rows = audit_rows(&app, AuditKind::ToolCall).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let allowed = rows
        .iter()
        .find(|r| r.request_id.as_deref() == Some("audit-req-1"))
        .unwrap();
    assert_eq!(allowed.decision, Decision::Allowed);
    assert_eq!(
        (allowed.backend.as_deref(), allowed.tool.as_deref()),
        (Some("rec"), Some("echo"))
    );
    assert_eq!(allowed.user_email.as_deref(), Some("audited@example.com"));
    assert!(allowed.client_id.is_some() && allowed.user_id.is_some());
    assert_eq!(allowed.outcome.as_deref(), Some("ok"));
    assert_eq!(allowed.response_bytes, Some(size as i64));
    assert!(allowed.latency_ms.is_some());
    let denied = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("admin-reset"))
        .unwrap();
    assert_eq!(denied.decision, Decision::Denied);
    assert_eq!(
        denied.reason.as_deref(),
        Some("missing scope rec:admin:call")
    );
    assert_eq!(denied.outcome, None, "a denied call never ran");
    let broken = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("die"))
        .unwrap();
    assert_eq!(
        (broken.decision, broken.outcome.as_deref()),
        (Decision::Allowed, Some("unavailable"))
    );

    // A rejected token is a denied request.
    app.mcp(&rec_url(&app), Some("not-a-token"), call(4, "echo"))
        .await;
    let denied = audit_rows(&app, AuditKind::RequestDenied).await;
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0].reason.as_deref().unwrap().contains("/mcp/rec"),
        "{:?}",
        denied[0]
    );
}

#[tokio::test]
async fn the_proxy_refuses_uses_beyond_tools_without_the_backends_default_scope() {
    let backend = recorder::spawn().await;
    let toml = format!(
        "[[backends]]\nid = \"rec\"\nurl = \"{}\"\n[backends.tools]\n\"echo\" = \"rec:echo:call\"\n",
        backend.url
    );
    let app = spawn(Options {
        grant_scopes: r#"["rec:echo:call"]"#,
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let token = token_for_rec(&app, "narrow").await;
    assert_eq!(
        app.mcp(&rec_url(&app), Some(&token), call(1, "echo"))
            .await
            .status(),
        StatusCode::OK
    );
    let read = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "file:///etc/passwd"}});
    let denied = app.mcp(&rec_url(&app), Some(&token), read).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(
        denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("rec:tools:call")
    );
    assert!(
        backend
            .bodies()
            .iter()
            .all(|b| b["method"] != "resources/read"),
        "nothing reached the backend"
    );
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_ne!(
        app.mcp(&rec_url(&app), Some(&token), ping).await.status(),
        StatusCode::FORBIDDEN,
        "housekeeping needs no scope"
    );
}
