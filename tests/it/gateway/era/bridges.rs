//! A client of one era bridged to a backend of the other, both eras on stdio backends, the
//! `Origin` check, and the aggregate's description of the backends a caller may use.

use super::*;

#[tokio::test]
async fn a_legacy_client_is_bridged_to_a_modern_http_backend() {
    let (app, backends) = start("").await;
    let token = token(&app, "legacy-bridge", "/mcp/mod").await;

    let initialized = initialize(&app, "/mcp/mod", &token, "2025-11-25").await;
    assert_eq!(
        initialized["serverInfo"]["name"], "modern-fake",
        "the backend's own identity"
    );
    assert_eq!(initialized["instructions"], modern::INSTRUCTIONS);

    let list = legacy_result(&app, "/mcp/mod", &token, "tools/list", json!({})).await;
    assert_legacy_shape(&list);
    assert_eq!(names(&list), ["echo", "ask"]);
    let call = json!({"name": "echo", "arguments": {"text": "hi"}});
    let result = legacy_result(&app, "/mcp/mod", &token, "tools/call", call).await;
    assert_legacy_shape(&result);
    assert_eq!(text(&result), "modern echo: hi");

    spoken_to_as_modern(&backends.modern);

    // No stream to open, no session to end: the gateway is this client's (sessionless) server.
    let get = app
        .http
        .get(app.url("/mcp/mod"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_modern_client_is_bridged_to_a_legacy_http_backend() {
    let (app, backends) = start("").await;
    let token = token(&app, "modern-bridge", "/mcp/rec").await;

    let discovered = modern_result(&app, "/mcp/rec", &token, "server/discover", json!({})).await;
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "recorder"
    );
    let list = modern_result(&app, "/mcp/rec", &token, "tools/list", json!({})).await;
    assert_eq!(
        (list["resultType"].clone(), list["cacheScope"].clone()),
        (json!("complete"), json!("private"))
    );
    let call = json!({"name": "echo", "arguments": {"text": "hi"}});
    let result = modern_result(&app, "/mcp/rec", &token, "tools/call", call).await;
    assert_eq!(result["resultType"], "complete");

    let seen = backends.legacy.last();
    assert_eq!(seen.body["method"], "tools/call");
    assert_eq!(seen.headers["mcp-session-id"], "session-from-backend");
    assert!(
        backends
            .legacy
            .bodies()
            .iter()
            .any(|b| b["method"] == "initialize")
    );

    // The methods a modern client may not find are 404s.
    let missing = modern_rpc(
        &app,
        "/mcp",
        &token_for_aggregate(&app).await,
        "completion/complete",
        json!({}),
        json!({}),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(rpc_body(missing).await["error"]["code"], -32601);
}

async fn token_for_aggregate(app: &TestApp) -> String {
    token(app, "modern-bridge-agg", "/mcp").await
}

#[tokio::test]
async fn both_eras_reach_stdio_backends_of_both_eras() {
    let (app, _backends) = start("").await;
    let legacy_backend = token(&app, "stdio-eras", "/mcp/fx").await;
    let modern_backend = token(&app, "stdio-eras", "/mcp/mfx").await;

    let discovered = modern_result(
        &app,
        "/mcp/fx",
        &legacy_backend,
        "server/discover",
        json!({}),
    )
    .await;
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "stdio-fixture"
    );
    let call = json!({"name": "echo", "arguments": {"text": "hi"}});
    let result = modern_result(&app, "/mcp/fx", &legacy_backend, "tools/call", call.clone()).await;
    assert_eq!(
        (result["resultType"].clone(), text(&result)),
        (json!("complete"), "hi")
    );

    let initialized = initialize(&app, "/mcp/mfx", &modern_backend, "2025-06-18").await;
    assert_eq!(initialized["serverInfo"]["name"], "modern-stdio");
    assert_eq!(
        initialized["instructions"],
        "Modern stdio fixture: echo repeats."
    );
    assert!(
        initialized["capabilities"].get("prompts").is_some(),
        "{initialized}"
    );
    let result = legacy_result(&app, "/mcp/mfx", &modern_backend, "tools/call", call).await;
    assert_legacy_shape(&result);
    assert_eq!(text(&result), "modern stdio echo: hi");
    let prompts = legacy_result(&app, "/mcp/mfx", &modern_backend, "prompts/list", json!({})).await;
    assert_legacy_shape(&prompts);

    // What the modern process was told: the version, and the modern client's capabilities.
    let response = modern_rpc(
        &app,
        "/mcp/mfx",
        &modern_backend,
        "tools/call",
        json!({"name": "meta", "arguments": {}}),
        json!({"roots": {}}),
    )
    .await;
    let result = rpc_body(response).await;
    let seen: Value = serde_json::from_str(text(&result["result"])).unwrap();
    assert_eq!(
        seen["meta"]["io.modelcontextprotocol/protocolVersion"],
        MODERN
    );
    assert_eq!(
        seen["meta"]["io.modelcontextprotocol/clientCapabilities"],
        json!({"roots": {}})
    );
    assert_eq!(
        seen["meta"]["io.modelcontextprotocol/clientInfo"]["name"],
        "portcullis"
    );
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_public_and_configured_ones_are_let_in() {
    let (app, _backends) =
        start("[gateway]\nallowed_origins = [\"https://inspector.example\"]\n").await;
    let token = token(&app, "origins", "/mcp").await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let send = |origin: Option<&str>| {
        let mut request = app.http.post(app.mcp_url()).bearer_auth(&token).json(&list);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let foreign = send(Some("https://evil.example")).await.unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let body: Value = foreign.json().await.unwrap();
    assert!(
        body.get("id").is_none() && body["error"]["code"] == -32600,
        "{body}"
    );

    let public = app.url("/").trim_end_matches('/').to_owned();
    for allowed in [
        None,
        Some(public.as_str()),
        Some("https://inspector.example"),
    ] {
        assert_eq!(
            send(allowed).await.unwrap().status(),
            StatusCode::OK,
            "{allowed:?}"
        );
    }
    // Refused before anything else, token or not.
    let anonymous = app
        .http
        .post(app.mcp_url())
        .header("origin", "https://evil.example")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_aggregate_describes_only_the_backends_the_caller_may_use() {
    let (app, _backends) = start("").await;
    let (_, tokens) = app.tokens_for("rec-only", Some("rec:tools:call")).await;
    let token = tokens["access_token"].as_str().unwrap();
    let initialized = initialize(&app, "/mcp", token, "2025-06-18").await;
    let instructions = initialized["instructions"].as_str().unwrap();
    assert!(!instructions.contains("Backend mfx"), "{instructions}");
    let started: usize = app
        .state
        .gateway
        .backends
        .iter()
        .map(|backend| match &backend.transport {
            portcullis::gateway::Transport::Stdio(pool) => pool.process_count(),
            _ => 0,
        })
        .sum();
    assert_eq!(
        started, 0,
        "no process started for backends the caller cannot use"
    );
}
