//! Step-up for clients that refresh on a 403 (the TypeScript SDK 1.x, and so mcp-remote, the
//! Inspector and Claude Code): after the gateway refused a grant's token a scope the person may
//! have, the grant's next refresh answers `invalid_grant`, so the client authorizes again asking
//! for it. A refusal the person could not get past, or an old one, changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::gateway;
use crate::support::app::{Db, TestApp, TestClient};

async fn signed_in(app: &TestApp, login: &str) -> (TestClient, Value) {
    app.tokens_for_resource(login, Some("rec:tools:call"), Some(app.url("/mcp/rec")))
        .await
}

/// Calls `tool` at `/mcp/rec`; returns the HTTP status.
async fn call(app: &TestApp, token: &Value, tool: &str) -> StatusCode {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": {"text": "hi"}}});
    app.mcp(&app.url("/mcp/rec"), token["access_token"].as_str(), body)
        .await
        .status()
}

async fn refresh(app: &TestApp, client: &TestClient, tokens: &Value) -> (StatusCode, Value) {
    app.refresh(client, tokens["refresh_token"].as_str().unwrap())
        .await
}

#[tokio::test]
async fn a_refusal_within_the_persons_entitlement_makes_the_next_refresh_ask_for_sign_in() {
    // The person may call `rec` tools and `echo`, never `admin-*`; the client asks only for
    // the basic scope, so its grant lacks `rec:echo:call`.
    let (app, _backend) = gateway("[]", "").await;
    let (client, tokens) = signed_in(&app, "stepper").await;
    assert_eq!(tokens["scope"], "rec:tools:call");

    assert_eq!(call(&app, &tokens, "echo").await, StatusCode::FORBIDDEN);
    let (status, body) = refresh(&app, &client, &tokens).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("rec:echo:call"),
        "{body}"
    );

    // The grant is over: its access token no longer works, and its refresh token neither.
    assert_eq!(call(&app, &tokens, "add").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&app, &client, &tokens).await.0,
        StatusCode::BAD_REQUEST
    );

    // Authorizing again for what the 403 named gives a token that makes the call.
    let (_, wider) = app
        .tokens_for_resource(
            "stepper",
            Some("rec:echo:call rec:tools:call"),
            Some(app.url("/mcp/rec")),
        )
        .await;
    assert_eq!(wider["scope"], "rec:echo:call rec:tools:call");
    assert_eq!(call(&app, &wider, "echo").await, StatusCode::OK);
}

#[tokio::test]
async fn refusals_the_person_cannot_get_past_old_ones_and_none_leave_refresh_alone() {
    // The person may call `rec` tools and `echo`, never `admin-*`; the client asks only for
    // the basic scope, so its grant lacks `rec:echo:call`.
    let (app, _backend) = gateway("[]", "").await;
    let (client, tokens) = signed_in(&app, "no-stepper").await;

    // No refusal: a refresh rotates as ever.
    let (status, tokens) = refresh(&app, &client, &tokens).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // `admin-*` is beyond the person's roles: signing in again would not help.
    assert_eq!(
        call(&app, &tokens, "admin-reset").await,
        StatusCode::FORBIDDEN
    );
    let (status, tokens) = refresh(&app, &client, &tokens).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "rec:tools:call");

    // A refusal long past (the client did not refresh at once) is forgotten.
    assert_eq!(call(&app, &tokens, "echo").await, StatusCode::FORBIDDEN);
    app.clock.advance(chrono::Duration::minutes(3));
    let (status, tokens) = refresh(&app, &client, &tokens).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(call(&app, &tokens, "add").await, StatusCode::OK);
}

#[tokio::test]
async fn in_the_default_grant_mode_a_role_given_after_sign_in_is_reached_by_signing_in_again() {
    let (app, _backend) =
        crate::people::app_with(Db::Sqlite, "default_role = \"reader\"\n", "", false).await;
    let (client, tokens) = crate::people::tokens(&app, "corp", "gus").await;
    assert_eq!(tokens["scope"], "rec:tools:call");

    // An operator makes gus an engineer. His grant was consented to as a reader: a refresh
    // keeps it so, until a call needs more.
    let store = app.state.store.clone();
    let gus = store
        .users_by_email("gus@example.com")
        .await
        .unwrap()
        .remove(0);
    let now = app.clock.now();
    assert!(store.add_user_role(&gus.id, "engineer", now).await.unwrap());
    let (status, tokens) = refresh(&app, &client, &tokens).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "rec:tools:call");

    assert_eq!(call(&app, &tokens, "echo").await, StatusCode::FORBIDDEN);
    let (status, body) = refresh(&app, &client, &tokens).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
    let (_, again) = crate::people::tokens(&app, "corp", "gus").await;
    assert_eq!(again["scope"], "rec:echo:call rec:tools:call");
    assert_eq!(call(&app, &again, "echo").await, StatusCode::OK);
}
