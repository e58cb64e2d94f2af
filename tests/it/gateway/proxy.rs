//! `/mcp/{backend}` relayed to a Streamable HTTP backend.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{call, gateway, rec_url, token_for_rec};
use crate::support::app::{Options, rpc_body, spawn};

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
async fn mcp_sessions_pass_through_the_gateway_bound_to_the_person_who_opened_them() {
    let (app, backend) = gateway(r#"[]"#, "").await;
    let token = token_for_rec(&app, "session").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}});
    let response = app.mcp(&rec_url(&app), Some(&token), init).await;
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(session.starts_with("session-from-backend."), "{session}");
    let send = |method: reqwest::Method, token: &str, session: &str| {
        app.http
            .request(method, rec_url(&app))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18")
            .header("last-event-id", "stream-1_7")
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
    };
    let next = send(reqwest::Method::POST, &token, &session).await.unwrap();
    assert_eq!(next.status(), StatusCode::ACCEPTED);
    let seen = backend.last();
    assert_eq!(seen.headers["mcp-session-id"], "session-from-backend");
    assert_eq!(seen.headers["mcp-protocol-version"], "2025-06-18");
    assert_eq!(seen.headers["last-event-id"], "stream-1_7");

    // Someone else's token with that session id, or the backend's bare id, or an id with a
    // forged tag: an unknown session, on every method, and the backend sees none of it.
    let other = token_for_rec(&app, "intruder").await;
    let forged = format!("session-from-backend.{}", "A".repeat(22));
    let before = backend.bodies().len();
    for method in [
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::DELETE,
    ] {
        for (token, session) in [
            (&other, session.as_str()),
            (&token, "session-from-backend"),
            (&token, forged.as_str()),
        ] {
            let refused = send(method.clone(), token, session).await.unwrap();
            assert_eq!(
                refused.status(),
                StatusCode::NOT_FOUND,
                "{method} {session}"
            );
            let body = rpc_body(refused).await;
            assert_eq!(body["error"]["message"], "Session not found", "{body}");
        }
    }
    assert_eq!(backend.bodies().len(), before);

    // Its owner may end it.
    let ended = send(reqwest::Method::DELETE, &token, &session)
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::ACCEPTED);
    assert_eq!(
        backend.last().headers["mcp-session-id"],
        "session-from-backend"
    );
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
